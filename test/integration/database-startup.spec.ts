import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { filter, firstValueFrom } from 'rxjs';
import { POSTGRES_SKIP_REASON, POSTGRES_URL } from '../support/databases.js';
import { freePort } from '../support/server-process.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

let app: TestApp | undefined;
let proxy: TcpProxy | undefined;
let tempDir: string | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
  await proxy?.down();
  proxy = undefined;
  if (tempDir !== undefined) await rm(tempDir, { recursive: true, force: true });
  tempDir = undefined;
});

/** Resolves once the `threads` dependency has failed `attempts` times (and is being retried). */
function threadsFailed(started: TestApp, attempts: number): Promise<unknown> {
  return firstValueFrom(
    started.readiness.snapshot$.pipe(
      filter((snapshot) =>
        snapshot.dependencies.some(
          (dep) => dep.name === 'threads' && dep.attempts > attempts && dep.lastError !== undefined,
        ),
      ),
    ),
  );
}

describe('a database that is not there yet', () => {
  it('keeps retrying a SQLite file it cannot create, and fails at the start-up deadline naming why', async () => {
    // A directory that cannot be created: a regular file stands where it should be.
    const dir = await mkdtemp(join(tmpdir(), 'agent-gateway-'));
    tempDir = dir;
    const blocker = join(dir, 'not-a-directory');
    await writeFile(blocker, '');
    // Long enough for a second attempt even on a loaded machine (the first attempt, its backoff and
    // the app's own start all come out of it); at 800 ms a busy CI run once reached the deadline first.
    app = await startTestApp({ env: { DATABASE_URL: `sqlite:${blocker}/db.sqlite`, STARTUP_TIMEOUT_MS: '3000' } });
    await threadsFailed(app, 1);
    const failed = await firstValueFrom(
      app.readiness.snapshot$.pipe(filter((snapshot) => snapshot.phase === 'failed')),
    );
    const threads = failed.dependencies.find((dep) => dep.name === 'threads');
    expect(threads?.attempts).toBeGreaterThan(1);
    expect(threads?.lastError).toContain(blocker);
    const ready = await fetch(`${app.url}/health/ready`);
    expect(ready.status).toBe(503);
  });

  const postgres = POSTGRES_URL === undefined || POSTGRES_URL === '' ? it.skip : it;
  postgres(
    POSTGRES_URL === undefined || POSTGRES_URL === ''
      ? POSTGRES_SKIP_REASON
      : 'retries PostgreSQL with backoff until it answers, then becomes ready',
    async () => {
      const target = new URL(POSTGRES_URL ?? '');
      const port = await freePort();
      const url = new URL(POSTGRES_URL ?? '');
      url.hostname = '127.0.0.1';
      url.port = String(port);
      const schema = `test_unreachable_${port}`;
      app = await startTestApp({
        env: { DATABASE_URL: url.toString(), DATABASE_SCHEMA: schema, STARTUP_TIMEOUT_MS: '20000' },
      });
      await threadsFailed(app, 2);
      expect((await fetch(`${app.url}/health/ready`)).status).toBe(503);

      // The database "comes up": a TCP forwarder to the real server starts listening on that port.
      proxy = new TcpProxy(port, { host: target.hostname, port: Number(target.port || 5432) });
      await proxy.up();

      const ready = await app.readiness.whenReady(15_000);
      const threads = ready.dependencies.find((dep) => dep.name === 'threads');
      expect(threads?.attempts).toBeGreaterThan(2);
      expect((await fetch(`${app.url}/health/ready`)).status).toBe(200);
      await app.close();
      app = undefined;
      const { default: pg } = await import('pg');
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`drop schema if exists "${schema}" cascade`);
      await client.end();
    },
  );
});
