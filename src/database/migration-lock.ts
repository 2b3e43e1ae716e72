import type { DialectAdapter, Kysely } from 'kysely';
import { DatabaseLock } from './database-locks.js';

/** SQLSTATE 55P03: a lock wait ran into `lock_timeout`. */
const LOCK_NOT_AVAILABLE = '55P03';

/** The lock's key: advisory locks are per database, so it names the schema being migrated. */
const LOCK_KEY = DatabaseLock.migrations.sql;

/** Who holds the lock a replica has to wait for. */
export interface MigrationLockHolder {
  /** The PostgreSQL backend (`pg_stat_activity.pid`) holding it, if it could be seen. */
  readonly backend: number | null;
  readonly schema: string;
}

export interface MigrationLockOptions {
  /** How long to wait for another replica's migration before giving up (readiness retries). */
  readonly waitMs: number;
  /** Called when the lock is taken and this replica starts waiting: start-up stalls say why. */
  readonly onWait?: (holder: MigrationLockHolder) => void;
}

/**
 * Kysely's PostgreSQL migration lock is one advisory lock for the whole database, waited on for up
 * to an hour: every service sharing the server (one per schema, say) migrates one at a time, and a
 * session that never lets go stalls them all, silently. This one is per schema, says when it
 * waits, and waits at most `waitMs`; after that the attempt fails, naming the holder, and readiness
 * retries it with backoff. Session-level, like Kysely's: the migrator takes it before opening its
 * transaction, on the same connection.
 */
export function scopedMigrationLock(adapter: DialectAdapter, options: MigrationLockOptions): DialectAdapter {
  const { waitMs, onWait } = options;
  // Prototype delegation keeps the adapter's own getters (supportsTransactionalDdl and the rest).
  const scoped = Object.create(adapter) as DialectAdapter;
  return Object.assign(scoped, {
    async acquireMigrationLock(db: Kysely<unknown>): Promise<void> {
      const { sql } = await import('kysely');
      const key = sql.raw(LOCK_KEY);
      const holder = async (): Promise<MigrationLockHolder> => {
        const { rows } = await sql<{ backend: number | null; schema: string }>`
          select (select pid from pg_locks where locktype = 'advisory' and granted
                    and ((classid::bigint << 32) | objid::bigint) = ${key} limit 1) as backend,
                 current_schema() as schema`.execute(db);
        return rows[0] ?? { backend: null, schema: '?' };
      };
      const { rows } = await sql<{ taken: boolean }>`select pg_try_advisory_lock(${key}) as taken`.execute(db);
      if (rows[0]?.taken === true) return;
      onWait?.(await holder());
      try {
        // `set_config(…, true)` lasts for this statement's implicit transaction only.
        await sql`
          with wait as (select set_config('lock_timeout', ${String(waitMs)}, true))
          select pg_advisory_lock(${key}) from wait`.execute(db);
      } catch (error) {
        if ((error as { code?: unknown }).code !== LOCK_NOT_AVAILABLE) throw error;
        const { backend, schema } = await holder();
        throw new Error(
          `another process (PostgreSQL backend ${backend ?? 'unknown'}) has held the migration lock of schema ` +
            `"${schema}" for over ${waitMs} ms`,
          { cause: error },
        );
      }
    },
    async releaseMigrationLock(db: Kysely<unknown>): Promise<void> {
      const { sql } = await import('kysely');
      await sql`select pg_advisory_unlock(${sql.raw(LOCK_KEY)})`.execute(db);
    },
  } satisfies Pick<DialectAdapter, 'acquireMigrationLock' | 'releaseMigrationLock'>);
}
