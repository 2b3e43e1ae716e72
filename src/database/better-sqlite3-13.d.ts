/** better-sqlite3 13 under an alias (see `database.connect.ts`): the same API as the typed 12. */
declare module 'better-sqlite3-13' {
  import BetterSqlite3 from 'better-sqlite3';
  export default BetterSqlite3;
}
