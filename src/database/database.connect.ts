import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type { LoggerService } from '@nestjs/common';
import type { Dialect, SqliteDatabase } from 'kysely';
import type { Client, Pool, PoolClient } from 'pg';
import type { AppConfig } from '../config/app-config.js';
import { FatalInitError } from '../readiness/readiness.errors.js';
import type { Database, DatabaseEngine, DatabaseSchema } from './database.types.js';
import { scopedMigrationLock } from './migration-lock.js';
import { observedDialect, type StorageObserver } from './observed-dialect.js';

const INT8_OID = 20;

export interface Connection {
  readonly engine: DatabaseEngine;
  readonly db: Database;
  /**
   * Closes every connection. Queries still running after `graceMs` (an initialisation waiting on a
   * lock, say) are cut: their connections are closed under them, so nothing held on the server
   * (advisory locks, an open transaction) outlives the process's intent to stop.
   */
  close(graceMs: number): Promise<void>;
}

export function engineOf(url: string): DatabaseEngine {
  return url.startsWith('sqlite:') ? 'sqlite' : 'postgres';
}

/**
 * Opens the configured database. Nothing here touches the network: a PostgreSQL pool connects on
 * first use, so an unreachable server surfaces in the first query (and is retried by readiness).
 * Kysely and the drivers are imported here, inside the `threads` initialisation, not when the
 * service starts: they cost over half a second that would otherwise delay opening the port.
 */
export async function connect(
  config: AppConfig['database'],
  observer: StorageObserver,
  logger: Pick<LoggerService, 'warn'>,
): Promise<Connection> {
  if (engineOf(config.url) === 'sqlite') {
    const path = config.url.slice('sqlite:'.length);
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
  return openPostgres(config, observer, logger);
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

async function openSqlite(path: string, observer: StorageObserver): Promise<Database> {
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

async function openPostgres(
  config: AppConfig['database'],
  observer: StorageObserver,
  logger: Pick<LoggerService, 'warn'>,
): Promise<Connection> {
  const [{ default: pg }, { Kysely, PostgresDialect }] = await Promise.all([import('pg'), import('kysely')]);
  const pool: Pool = new pg.Pool({
    connectionString: config.url,
    max: config.poolSize,
    connectionTimeoutMillis: 5_000,
    ...(config.schema === undefined ? {} : { options: `-c search_path=${config.schema}` }),
    // Timestamps are epoch milliseconds in bigint columns: well inside Number's exact range.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
        oid === INT8_OID ? Number : (pg.types.getTypeParser(oid, format) as unknown)) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client losing its connection (a database restart) emits here; unhandled, it would
  // crash the process. The pool replaces the client on the next query.
  pool.on('error', (error) => observer.down(error));
  // A checked-out client (inside a transaction, say) has no pool listener: without its own, losing
  // its connection would be an unhandled 'error' event and end the process.
  // Every client is also tracked, so that shutdown can end the sessions still busy on the server.
  const clients = new Set<PoolClient>();
  pool.on('connect', (client) => {
    client.on('error', (error) => observer.down(error));
    clients.add(client);
  });
  pool.on('remove', (client) => clients.delete(client));
  const postgres = new PostgresDialect({ pool });
  const dialect: Dialect = {
    createAdapter: () =>
      scopedMigrationLock(postgres.createAdapter(), {
        waitMs: config.migrationLockWaitMs,
        onWait: ({ backend, schema }) => {
          logger.warn('waiting for the migration lock', { schema, heldByBackend: backend });
        },
      }),
    createDriver: () => postgres.createDriver(),
    createQueryCompiler: () => postgres.createQueryCompiler(),
    createIntrospector: (db) => postgres.createIntrospector(db),
  };
  const db = new Kysely<DatabaseSchema>({ dialect: observedDialect(dialect, observer) });
  return {
    engine: 'postgres',
    db,
    async close(graceMs: number): Promise<void> {
      // The pool's end waits for every checked-out client to come back.
      const destroyed = db.destroy();
      if (await settlesWithin(destroyed, graceMs)) return;
      // Still busy after the grace. Closing the socket is not enough: a backend waiting on a lock
      // does not notice its client left until the wait ends. End those sessions on the server.
      const backends = [...clients].flatMap((client) => {
        const { processID } = client as PoolClient & { processID?: number | null };
        return typeof processID === 'number' ? [processID] : [];
      });
      if (backends.length > 0) await terminateBackends(pg, config.url, backends, logger);
      for (const client of clients) void client.end().catch(() => undefined);
      await destroyed;
    },
  };
}

/** Ends `backends` on the server (a lock wait ignores a closed socket until it ends). */
async function terminateBackends(
  pg: { readonly Client: typeof Client },
  url: string,
  backends: readonly number[],
  logger: Pick<LoggerService, 'warn'>,
): Promise<void> {
  try {
    const admin = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    await admin.connect();
    try {
      await admin.query('select pg_terminate_backend(pid, 2000) from unnest($1::int[]) as pid', [backends]);
    } finally {
      await admin.end();
    }
  } catch (error) {
    logger.warn('could not end the sessions still busy at shutdown', {
      backends,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/** Whether `promise` settles (either way) within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = promise.then(
    () => true as const,
    () => true as const,
  );
  try {
    return await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
