import type { LoggerService } from '@nestjs/common';
import type { Dialect } from 'kysely';
import type { Client, Pool, PoolClient } from 'pg';
import type { AppConfig } from '../config/app-config.js';
import type { Connection, DatabaseSchema } from './database.types.js';
import { scopedMigrationLock } from './migration-lock.js';
import { observedDialect, type StorageObserver } from './observed-dialect.js';

const INT8_OID = 20;

/**
 * `postgres://…`: a pool of `DATABASE_POOL_SIZE` connections, the scoped migration lock, and a close
 * that ends the sessions still busy on the server.
 */
export async function postgresConnection(
  config: AppConfig['database'],
  observer: StorageObserver,
  logger: Pick<LoggerService, 'warn'>,
  applicationName: string,
): Promise<Connection> {
  const [{ default: pg }, { Kysely, PostgresDialect }] = await Promise.all([import('pg'), import('kysely')]);
  const pool: Pool = new pg.Pool({
    connectionString: config.url,
    max: config.poolSize,
    connectionTimeoutMillis: 5_000,
    // Names this instance's sessions in pg_stat_activity (operators, and the blip tests, find them by it).
    application_name: applicationName,
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
