import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/**
 * The engines every storage contract test runs on. SQLite always; PostgreSQL when
 * `TEST_DATABASE_URL` is set (CI sets it), otherwise its tests are skipped by name so the skip is
 * visible in the summary.
 */
export const POSTGRES_URL = process.env.TEST_DATABASE_URL;

export type Engine = 'sqlite' | 'postgres';

export const ENGINES: ReadonlyArray<{ readonly engine: Engine; readonly available: boolean }> = [
  { engine: 'sqlite', available: true },
  { engine: 'postgres', available: POSTGRES_URL !== undefined && POSTGRES_URL !== '' },
];

export const POSTGRES_SKIP_REASON = 'PostgreSQL skipped: set TEST_DATABASE_URL=postgres://… to run these tests';

/** A fresh, empty database: a temporary SQLite file, or a new PostgreSQL schema. */
export interface TestDatabase {
  readonly engine: Engine;
  /** The environment that points the service at it. */
  readonly env: Readonly<Record<string, string>>;
  drop(): Promise<void>;
}

export async function createTestDatabase(engine: Engine): Promise<TestDatabase> {
  if (engine === 'sqlite') {
    const dir = await mkdtemp(join(tmpdir(), 'agent-gateway-test-'));
    return {
      engine,
      env: { DATABASE_URL: `sqlite:${join(dir, 'test.db')}` },
      drop: () => rm(dir, { recursive: true, force: true }),
    };
  }
  if (POSTGRES_URL === undefined) throw new Error(POSTGRES_SKIP_REASON);
  const schema = `test_${randomBytes(6).toString('hex')}`;
  return {
    engine,
    env: { DATABASE_URL: POSTGRES_URL, DATABASE_SCHEMA: schema },
    drop: async () => {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        await client.query(`drop schema if exists "${schema}" cascade`);
      } finally {
        await client.end();
      }
    },
  };
}
