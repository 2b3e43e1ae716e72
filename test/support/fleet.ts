import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createTestDatabase, POSTGRES_URL, type TestDatabase } from './databases.js';

/** The Redis of fleet tests (CI sets it); without it, with `TEST_DATABASE_URL`, they are skipped by name. */
export const REDIS_URL = process.env.TEST_REDIS_URL;

export const FLEET_AVAILABLE =
  POSTGRES_URL !== undefined && POSTGRES_URL !== '' && REDIS_URL !== undefined && REDIS_URL !== '';

export const FLEET_SKIP_REASON =
  'fleet mode skipped: set TEST_DATABASE_URL=postgres://… and TEST_REDIS_URL=redis://… to run these tests';

/** One PostgreSQL schema and one Redis key prefix, shared by the instances of a fleet test. */
export interface FleetEnvironment {
  readonly env: Readonly<Record<string, string>>;
  readonly prefix: string;
  /** A Redis client of the test's own (closed by {@link drop}). */
  readonly redis: Redis;
  /** Keys under the prefix right now. */
  keys(): Promise<string[]>;
  /** Drops the schema and every key of the prefix. */
  drop(): Promise<void>;
}

export async function createFleetEnvironment(extra: Record<string, string> = {}): Promise<FleetEnvironment> {
  if (!FLEET_AVAILABLE || REDIS_URL === undefined) throw new Error(FLEET_SKIP_REASON);
  const database: TestDatabase = await createTestDatabase('postgres');
  const prefix = `test-${randomBytes(6).toString('hex')}`;
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  const keys = async (): Promise<string[]> => {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      found.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    return found;
  };
  return {
    env: { ...database.env, REDIS_URL, REDIS_KEY_PREFIX: prefix, ...extra },
    prefix,
    redis,
    keys,
    async drop(): Promise<void> {
      try {
        const left = await keys();
        if (left.length > 0) await redis.del(...left);
      } finally {
        redis.disconnect();
        await database.drop();
      }
    },
  };
}
