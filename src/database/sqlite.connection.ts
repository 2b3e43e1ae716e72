import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase } from 'kysely';
import { FatalInitError } from '../readiness/readiness.errors.js';
import type { Connection, DatabaseSchema } from './database.types.js';
import { observedDialect, type StorageObserver } from './observed-dialect.js';

/** `sqlite:<path>`: one file, one connection, one process (see {@link openSqlite}). */
export async function sqliteConnection(path: string, observer: StorageObserver): Promise<Connection> {
  const db = await openSqlite(path, observer);
  return {
    engine: 'sqlite',
    db,
    // better-sqlite3 is synchronous: nothing can be in flight when this runs.
    async close(): Promise<void> {
      await db.destroy();
      if (path !== ':memory:') await rm(ownerFileOf(path), { force: true });
    },
  };
}

/**
 * better-sqlite3 12 is the last line that runs on Node 20, and on Node 22+ it aborts the process
 * when V8 finalises a statement after Node's environment is gone (`Assertion failed: (env) !=
 * nullptr`, at exit and even mid-run: WiseLibs/better-sqlite3#1476, #1515). Version 13 (N-API,
 * installed as `better-sqlite3-13`) fixes that but crashes on Node 20. Same API: take the one that
 * works on this runtime.
 */
async function loadSqlite(): Promise<typeof BetterSqlite3> {
  const major = Number(process.versions.node.split('.')[0]);
  const module = major >= 22 ? await import('better-sqlite3-13') : await import('better-sqlite3');
  return module.default;
}

async function openSqlite(path: string, observer: StorageObserver): Promise<Connection['db']> {
  // Asynchronous on purpose: a bad path must never block the event loop (Node's recursive
  // mkdirSync spins forever under /proc, for one), or the start-up deadline could not fire.
  if (path !== ':memory:') await mkdir(dirname(path), { recursive: true });
  const [SQLite, { Kysely, SqliteDialect }] = await Promise.all([loadSqlite(), import('kysely')]);
  // No busy wait while the file lock is taken: another holder is an answer, not a delay.
  const database = new SQLite(path, { timeout: 0 });
  try {
    if (path !== ':memory:') {
      // The file is this process's alone, for as long as it lives: a second process would take the
      // first one's live runs for a dead process's and mark them interrupted. The lock is the
      // kernel's (released the moment the holder dies, however it dies); set before WAL, it also
      // keeps the WAL index in this process's memory.
      database.pragma('locking_mode = EXCLUSIVE');
    }
    // WAL lets readers run beside the single writer; NORMAL sync is durable at every checkpoint and
    // never corrupts on power loss in WAL mode.
    database.pragma('journal_mode = WAL');
    if (path !== ':memory:') database.exec('BEGIN EXCLUSIVE; COMMIT');
  } catch (error) {
    database.close();
    if ((error as { code?: unknown }).code !== 'SQLITE_BUSY') throw error;
    throw new FatalInitError(
      `database file ${resolve(path)} is in use by another process (${await describeOwner(path)}); one SQLite file serves one process: give each its own DATABASE_URL, or use PostgreSQL for several`,
      { cause: error },
    );
  }
  if (path !== ':memory:') await writeOwner(path);
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 5000');
  return new Kysely<DatabaseSchema>({
    dialect: observedDialect(new SqliteDialect({ database: withStatementCache(database) }), observer),
  });
}

/** Beside the database file: who holds it, for the message another process gets (the lock itself is SQLite's). */
function ownerFileOf(path: string): string {
  return `${path}.owner`;
}

async function writeOwner(path: string): Promise<void> {
  const owner = { pid: process.pid, hostname: hostname(), since: new Date().toISOString() };
  await writeFile(ownerFileOf(path), `${JSON.stringify(owner)}\n`);
}

async function describeOwner(path: string): Promise<string> {
  try {
    const owner = JSON.parse(await readFile(ownerFileOf(path), 'utf8')) as {
      pid?: unknown;
      hostname?: unknown;
      since?: unknown;
    };
    return `pid ${String(owner.pid)} on ${String(owner.hostname)}, since ${String(owner.since)}`;
  } catch {
    return 'its owner did not say who it is';
  }
}

/** Prepared statements kept per SQL text (beyond this many, the first prepared is dropped). */
const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely's SQLite driver prepares every query again; SQLite's parser and planner then cost more
 * than running the statement. The statements an app runs are few and repeat, so they are kept.
 * (Queries are never streamed here, so a cached statement is never busy when it is reused.)
 */
function withStatementCache(database: BetterSqlite3.Database): SqliteDatabase {
  const statements = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => database.close(),
    prepare(sql: string) {
      let statement = statements.get(sql);
      if (statement === undefined) {
        statement = database.prepare(sql);
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value ?? '');
        statements.set(sql, statement);
      }
      return statement;
    },
  };
}
