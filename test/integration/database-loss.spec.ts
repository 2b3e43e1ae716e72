import { afterEach, describe, expect, it } from '@jest/globals';
import { filter, firstValueFrom } from 'rxjs';
import { DatabaseService } from '../../src/database/database.service.js';
import { POSTGRES_SKIP_REASON, POSTGRES_URL } from '../support/databases.js';
import { freePort } from '../support/server-process.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';

let app: TestApp | undefined;
let proxy: TcpProxy | undefined;
let schema: string | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
  await proxy?.down();
  proxy = undefined;
  if (schema !== undefined && POSTGRES_URL !== undefined) {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    await client.query(`drop schema if exists "${schema}" cascade`);
    await client.end();
    schema = undefined;
  }
});

/** The app on a schema of its own, reaching PostgreSQL through {@link proxy}, which the test can take down. */
async function startBehindProxy(
  name: string,
  env: Record<string, string> = {},
): Promise<{ app: TestApp; proxy: TcpProxy }> {
  const target = new URL(POSTGRES_URL ?? '');
  const port = await freePort();
  proxy = new TcpProxy(port, { host: target.hostname, port: Number(target.port || 5432) });
  await proxy.up();
  const url = new URL(POSTGRES_URL ?? '');
  url.hostname = '127.0.0.1';
  url.port = String(port);
  schema = `test_${name}_${port}`;
  const started = await startTestApp({
    ready: true,
    env: { DATABASE_URL: url.toString(), DATABASE_SCHEMA: schema, ...env },
  });
  return { app: started, proxy };
}

async function readyBody(started: TestApp): Promise<{ status: number; threads: Record<string, unknown> }> {
  const response = await fetch(`${started.url}/health/ready`);
  const body = (await response.json()) as { details: { threads: Record<string, unknown> } };
  return { status: response.status, threads: body.details.threads };
}

const available = POSTGRES_URL !== undefined && POSTGRES_URL !== '';

describe('the database going away after start-up (PostgreSQL)', () => {
  (available ? it : it.skip)(
    available
      ? 'fails requests with a retryable STORAGE_UNAVAILABLE, reports the store down while staying ready, and recovers without a restart'
      : POSTGRES_SKIP_REASON,
    async () => {
      const behind = await startBehindProxy('loss');
      app = behind.app;
      const database = app.app.get(DatabaseService);
      const alice = await app.connectAs('alice');
      const before = await alice.request('r1', 'before the outage');
      expect(before.at(-1)?.event).toBe('agent_completed');

      // The database restarts: every connection is cut and nothing answers.
      await behind.proxy.down();
      alice.send('agent_request', { requestId: 'r2', message: 'during the outage' });
      const refused = await alice.waitFor(['agent_error', 'error'], (data) => data.requestId === 'r2');
      expect(refused.data).toMatchObject({ code: 'STORAGE_UNAVAILABLE', retryable: true });
      alice.send('thread_list', { requestId: 'list' });
      const listError = await alice.waitFor('error', (data) => data.requestId === 'list');
      expect(listError.data).toMatchObject({ code: 'STORAGE_UNAVAILABLE', retryable: true });
      const http = await fetch(`${app.url}/threads`, {
        headers: { authorization: `Bearer ${signToken({ sub: 'alice' })}` },
      });
      expect(http.status).toBe(503);
      expect(await http.json()).toMatchObject({ code: 'STORAGE_UNAVAILABLE', retryable: true });

      const down = await readyBody(app);
      expect(down.status).toBe(200);
      expect(down.threads).toMatchObject({ status: 'up', storage: 'down', storageError: expect.any(String) });

      // It comes back: the pool reconnects on the next query, no restart needed.
      await behind.proxy.up();
      const after = await alice.request('r3', 'after the outage');
      expect(after.at(-1)?.event).toBe('agent_completed');
      await firstValueFrom(database.health$.pipe(filter((health) => health.status === 'up')));
      expect((await readyBody(app)).threads).toMatchObject({ status: 'up', storage: 'up' });
    },
  );
});

describe('an outage longer than the lease (PostgreSQL)', () => {
  (available ? it : it.skip)(
    available
      ? 'stops starting runs once its lease is lost, says so in /health/ready, and takes a lease again when the database is back'
      : POSTGRES_SKIP_REASON,
    async () => {
      const behind = await startBehindProxy('lease', { FLEET_LEASE_TTL_MS: '600' });
      app = behind.app;
      const logs = app.logs;
      const alice = await app.connectAs('alice');
      expect((await readyBody(app)).threads).toMatchObject({ lease: 'held' });

      await behind.proxy.down();
      await logs.waitFor((entry) => entry.message.includes('instance lease lost'));
      expect((await readyBody(app)).threads).toMatchObject({ status: 'up', lease: 'lost' });
      expect(await (await fetch(`${app.url}/metrics`)).text()).toMatch(/^agent_gateway_fleet_lease_held 0$/mu);
      // Looking dead to the other replicas: it starts nothing (retryable: another replica can).
      alice.send('agent_request', { requestId: 'r1', message: 'while the lease is lost' });
      const refused = await alice.waitFor('agent_error', (data) => data.requestId === 'r1');
      expect(refused.data).toMatchObject({ code: 'STORAGE_UNAVAILABLE', retryable: true });

      await behind.proxy.up();
      await logs.waitFor((entry) => entry.message.includes('instance lease held again'));
      expect((await readyBody(app)).threads).toMatchObject({ lease: 'held' });
      const after = await alice.request('r2', 'after the outage');
      expect(after.at(-1)?.event).toBe('agent_completed');
    },
  );
});
