/**
 * Every lock the service takes in a shared database, in one place: PostgreSQL advisory locks, as
 * the SQL of their 64-bit key and its parameters. Advisory locks are per database, so each key
 * names what it guards (a schema), and services sharing one server never meet.
 * (SQLite's lock is the file itself: see `sqlite.connection.ts`.)
 */
export interface AdvisoryLockKey {
  /** An expression giving the key, over `$1`… */
  readonly sql: string;
  /** …bound to these. */
  readonly params: readonly string[];
}

export const DatabaseLock = {
  /**
   * Held (at session level) while a replica migrates the current schema: replicas starting
   * together migrate one at a time. See `migration-lock.ts`.
   */
  migrations: { sql: `hashtextextended('agent-gateway/migrations/' || current_schema(), 0)`, params: [] },
} as const satisfies Record<string, AdvisoryLockKey | ((...args: string[]) => AdvisoryLockKey)>;

/** `select pg_<fn>(<key>) as result`, ready for a driver's `query(text, values)`. */
export function lockQuery(fn: 'advisory_lock' | 'try_advisory_lock' | 'advisory_unlock', key: AdvisoryLockKey) {
  return { text: `select pg_${fn}(${key.sql}) as result`, values: [...key.params] };
}
