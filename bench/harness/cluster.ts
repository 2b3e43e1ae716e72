/**
 * Several replicas of ours (`node dist/bundle/main.mjs`) on one fresh PostgreSQL schema (`bench_<hex>`): a
 * fleet (with one fresh Redis key prefix, `bench-<hex>`) or a single instance (no `REDIS_URL`).
 * Stopping kills every replica, then drops the schema and deletes the prefix's keys, whatever
 * happened before. The servers are `TEST_DATABASE_URL`'s and `TEST_REDIS_URL`'s, as for the tests.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import { POSTGRES_URL } from '../../test/support/databases.js';
import { FLEET_AVAILABLE, REDIS_URL } from '../../test/support/fleet.js';
import { scrape } from '../../test/support/prometheus.js';
import { type BenchServer, startServer } from './servers.js';

export type StoreMode = 'single' | 'fleet';

/** Statements and transactions sent to PostgreSQL so far (`/metrics`), summed over the replicas. */
export interface StorageCount {
  readonly statements: number;
  readonly transactions: number;
}

export interface Cluster {
  readonly mode: StoreMode;
  readonly replicas: readonly BenchServer[];
  storage(): Promise<StorageCount>;
  /** A counter of `/metrics`, summed over the replicas. */
  counter(name: string): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Why fleet mode cannot be measured here (`TEST_DATABASE_URL`, `TEST_REDIS_URL` unset or not
 * answering within 3 s), or `undefined` when it can.
 */
export async function fleetUnavailable(): Promise<string | undefined> {
  if (!FLEET_AVAILABLE || POSTGRES_URL === undefined || REDIS_URL === undefined) {
    return 'skipped: set TEST_DATABASE_URL=postgres://… and TEST_REDIS_URL=redis://… to measure fleet mode';
  }
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3_000 });
  client.on('error', () => undefined);
  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 3_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  let redisError: unknown;
  redis.on('error', (error: unknown) => (redisError ??= error));
  const reason = (what: string, error: unknown): string =>
    `skipped: ${what} not reachable (${error instanceof Error ? error.message : String(error)})`;
  try {
    try {
      await client.connect();
      await client.query('select 1');
    } catch (error) {
      return reason('PostgreSQL (TEST_DATABASE_URL)', error);
    }
    try {
      await redis.connect();
      await redis.ping();
    } catch (error) {
      return reason('Redis (TEST_REDIS_URL)', redisError ?? error);
    }
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
    redis.disconnect();
  }
}

/** What the replicas of one cluster share: a schema and, for a fleet, a key prefix. */
interface Store {
  readonly env: Readonly<Record<string, string>>;
  drop(): Promise<void>;
}

async function createStore(mode: StoreMode): Promise<Store> {
  if (POSTGRES_URL === undefined || (mode === 'fleet' && REDIS_URL === undefined)) {
    throw new Error('TEST_DATABASE_URL and TEST_REDIS_URL must be set');
  }
  const name = `bench_${randomBytes(6).toString('hex')}`;
  const prefix = name.replace('_', '-');
  const env: Record<string, string> = { DATABASE_URL: POSTGRES_URL, DATABASE_SCHEMA: name };
  if (mode === 'fleet' && REDIS_URL !== undefined) Object.assign(env, { REDIS_URL, REDIS_KEY_PREFIX: prefix });
  const dropSchema = async (): Promise<void> => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await client.query(`drop schema if exists "${name}" cascade`);
    } finally {
      await client.end();
    }
  };
  const deleteKeys = async (): Promise<void> => {
    if (mode !== 'fleet' || REDIS_URL === undefined) return;
    const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
  };
  return {
    env,
    async drop() {
      const results = await Promise.allSettled([dropSchema(), deleteKeys()]);
      const failed = results.find((result) => result.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    },
  };
}

/**
 * `count` replicas started together (the migrator's advisory lock lets one migrate), replica `i`
 * on the cores `cpus[i % cpus.length]`.
 */
export async function startCluster(
  mode: StoreMode,
  count: number,
  env: Readonly<Record<string, string>>,
  cpus: readonly string[],
): Promise<Cluster> {
  const store = await createStore(mode);
  const replicas: BenchServer[] = [];
  const stop = async (): Promise<void> => {
    try {
      await Promise.all(replicas.map((replica) => replica.stop()));
    } finally {
      await store.drop();
    }
  };
  try {
    const started = await Promise.allSettled(
      Array.from({ length: count }, (_, index) =>
        startServer('ours', { env: { ...store.env, ...env }, cpu: cpus[index % cpus.length] }),
      ),
    );
    for (const result of started) if (result.status === 'fulfilled') replicas.push(result.value);
    const failed = started.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  } catch (error) {
    await stop();
    throw error;
  }
  const counter = async (name: string): Promise<number> => {
    const scrapes = await Promise.all(replicas.map((replica) => scrape(`http://127.0.0.1:${replica.port}`)));
    return scrapes.reduce((sum, each) => sum + (each.value(name) ?? Number.NaN), 0);
  };
  return {
    mode,
    replicas,
    counter,
    async storage() {
      const [statements, transactions] = await Promise.all([
        counter('agent_gateway_db_statements_total'),
        counter('agent_gateway_db_transactions_total'),
      ]);
      return { statements, transactions };
    },
    stop,
  };
}
