import { afterEach, describe, expect, it } from '@jest/globals';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { scopedMigrationLock } from '../../src/database/migration-lock.js';
import { createTestDatabase, POSTGRES_SKIP_REASON, POSTGRES_URL, type TestDatabase } from '../support/databases.js';
import { deferred } from '../support/deferred.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

const available = POSTGRES_URL !== undefined && POSTGRES_URL !== '';

/**
 * The migration lock replicas take on PostgreSQL: one per schema, and a bounded wait that ends in
 * an error naming the holder (readiness then retries), never a silent hour-long stall.
 */
describe('the PostgreSQL migration lock', () => {
  if (!available) {
    it.skip(POSTGRES_SKIP_REASON, () => {});
    return;
  }

  const databases: TestDatabase[] = [];
  const pools: Kysely<unknown>[] = [];
  let app: TestApp | undefined;
  /** Every lock a test holds is let go at its end, passed or failed: a held one would keep its pool open. */
  const releases: Array<() => void> = [];

  afterEach(async () => {
    for (const release of releases.splice(0)) release();
    await app?.close();
    app = undefined;
    await Promise.all(pools.splice(0).map((db) => db.destroy()));
    await Promise.all(databases.splice(0).map((db) => db.drop()));
  });

  /** A pool on a fresh schema, as a replica of one deployment sees it. */
  async function schemaPool(): Promise<{ db: Kysely<unknown>; schema: string }> {
    const database = await createTestDatabase('postgres');
    databases.push(database);
    const schema = database.env.DATABASE_SCHEMA ?? '';
    const db = new Kysely<unknown>({
      dialect: new PostgresDialect({
        pool: new pg.Pool({ connectionString: POSTGRES_URL, max: 4, options: `-c search_path=${schema}` }),
      }),
    });
    pools.push(db);
    await sql`create schema ${sql.id(schema)}`.execute(db);
    return { db, schema };
  }

  /** Takes the lock on one connection and keeps it until `release` resolves; resolves `held` with the backend's pid. */
  function holdLock(db: Kysely<unknown>, release: Promise<void>): { held: Promise<number>; done: Promise<void> } {
    const held = deferred<number>();
    const letGo = deferred();
    releases.push(() => letGo.resolve());
    void release.then(() => letGo.resolve());
    const lock = scopedMigrationLock(db.getExecutor().adapter, { waitMs: 1_000 });
    const done = db.connection().execute(async (session) => {
      await lock.acquireMigrationLock(session, { lockTable: '', lockRowId: '' });
      const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(session);
      held.resolve(rows[0]?.pid ?? -1);
      await letGo.promise;
      await lock.releaseMigrationLock(session, { lockTable: '', lockRowId: '' });
    });
    done.catch(held.reject);
    return { held: held.promise, done };
  }

  it('gives up after its wait, naming the backend that holds it and the schema', async () => {
    const { db, schema } = await schemaPool();
    const release = deferred();
    const holder = holdLock(db, release.promise);
    const pid = await holder.held;

    const contender = scopedMigrationLock(db.getExecutor().adapter, { waitMs: 200 });
    const failure = await db
      .connection()
      .execute((session) => contender.acquireMigrationLock(session, { lockTable: '', lockRowId: '' }))
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toBe(
      `another process (PostgreSQL backend ${pid}) has held the migration lock of schema "${schema}" for over 200 ms`,
    );
    expect(((failure as Error).cause as { code?: string }).code).toBe('55P03');

    // Once the holder lets go, the next replica gets it.
    release.resolve();
    await holder.done;
    const next = holdLock(db, Promise.resolve());
    await expect(next.held).resolves.toEqual(expect.any(Number));
    await next.done;
  });

  it('is per schema: a migration in one schema does not hold up another', async () => {
    const first = await schemaPool();
    const second = await schemaPool();
    const release = deferred();
    const holder = holdLock(first.db, release.promise);
    await holder.held;

    const other = scopedMigrationLock(second.db.getExecutor().adapter, { waitMs: 200 });
    await second.db.connection().execute(async (session) => {
      await other.acquireMigrationLock(session, { lockTable: '', lockRowId: '' });
      await other.releaseMigrationLock(session, { lockTable: '', lockRowId: '' });
    });

    release.resolve();
    await holder.done;
  });

  /** The service on `schema`, resolved once it logged that it waits for the lock `pid` holds. */
  async function waitingApp(schema: string, pid: number): Promise<TestApp> {
    const started = await startTestApp({
      // Longer than the test may take: were any of this to wait for the lock, the test would fail.
      env: { DATABASE_URL: POSTGRES_URL ?? '', DATABASE_SCHEMA: schema, DATABASE_MIGRATION_LOCK_WAIT_MS: '60000' },
    });
    const waiting = await started.logs.waitFor((entry) => entry.message === 'waiting for the migration lock');
    expect(waiting).toMatchObject({ level: 'warn', params: { schema, heldByBackend: pid } });
    return started;
  }

  it('holds a replica starting beside a migrating one until it lets go, then the replica becomes ready', async () => {
    const { db, schema } = await schemaPool();
    const release = deferred();
    const holder = holdLock(db, release.promise);
    app = await waitingApp(schema, await holder.held);
    expect(app.readiness.snapshot.phase).toBe('starting');
    expect((await fetch(`${app.url}/health/ready`)).status).toBe(503);

    release.resolve();
    await holder.done;
    await app.dependencyReady('threads');
    expect(app.logs.messages('log')).toContain('migration 0001-conversations applied');
  });

  it('shuts down without waiting for a lock another process holds (the wait is cut, not sat out)', async () => {
    const { db, schema } = await schemaPool();
    const release = deferred();
    const holder = holdLock(db, release.promise);
    const waiting = await waitingApp(schema, await holder.held);
    // The holder lets go only after the close: were the close to sit out the wait, it would not end in time.
    await waiting.close();
    // Nobody is left queued for the lock: the waiting session ended with the service.
    const { rows } = await sql<{ waiting: number }>`
      select count(*)::int as waiting from pg_locks where locktype = 'advisory' and not granted
        and ((classid::bigint << 32) | objid::bigint) = hashtextextended('agent-gateway/migrations/' || current_schema(), 0)`.execute(
      db,
    );
    expect(rows[0]?.waiting).toBe(0);
    release.resolve();
    await holder.done;
  });

  it('migrates a schema of its own when another schema of the database already has migration tables', async () => {
    // Kysely, told no schema, takes another schema's `kysely_migration_lock` for this one's and
    // then fails to find it ("relation does not exist"): every new deployment would stay unready.
    const first = await createTestDatabase('postgres');
    const second = await createTestDatabase('postgres');
    databases.push(first, second);
    const one = await startTestApp({ ready: true, env: first.env });
    await one.close();
    app = await startTestApp({ ready: true, env: second.env });
    expect(app.logs.messages('log')).toContain('migration 0001-conversations applied');
  });
});
