import { Agent, get } from 'node:http';
import { describe, expect, it } from '@jest/globals';
import { createTestDatabase, ENGINES, POSTGRES_SKIP_REASON } from '../support/databases.js';
import { processFixture } from '../support/process-fixture.js';
import { ServerProcess } from '../support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../support/tokens.js';
import { TestClient } from '../support/ws-client.js';

/**
 * SIGTERM on the real process, as an orchestrator sends it: what probes and clients see, in order.
 * On both engines: PostgreSQL's pool and instance lease close differently from a SQLite file.
 */
for (const { engine, available } of ENGINES) {
  if (!available) {
    describe(`graceful shutdown of the real process on ${engine}`, () => {
      it.skip(POSTGRES_SKIP_REASON, () => {});
    });
    continue;
  }
  describe(`graceful shutdown of the real process on ${engine}`, () => {
    const fixture = processFixture();
    const { servers, clients } = fixture;

    async function boot(env: Record<string, string>): Promise<ServerProcess> {
      fixture.db ??= await createTestDatabase(engine);
      const server = await ServerProcess.start({ ...fixture.db.env, JWT_SECRET: TEST_JWT_SECRET, ...env });
      servers.push(server);
      await server.ready();
      return server;
    }

    async function connect(server: ServerProcess, user = 'alice'): Promise<TestClient> {
      const client = new TestClient(server.url, { token: signToken({ sub: user }) });
      clients.push(client);
      await client.waitFor('connection_established');
      return client;
    }

    async function status(server: ServerProcess, path: string): Promise<{ status: number; body: string }> {
      const response = await fetch(server.url + path);
      return { status: response.status, body: await response.text() };
    }

    it('drains on SIGTERM: ready 503 at once, live 200, new clients and runs refused, the run in flight completes, every socket closed 1012, exit 0', async () => {
      const delayMs = 600;
      const timeoutMs = 8_000;
      const server = await boot({
        SHUTDOWN_DELAY_MS: String(delayMs),
        SHUTDOWN_TIMEOUT_MS: String(timeoutMs),
        LOCAL_LLM_TOKEN_DELAY_MS: '60',
      });
      const idle = await connect(server, 'idle');
      const runner = await connect(server);
      // An HTTP keep-alive connection left open (a load balancer's): it must not hold the exit.
      const keepAlive = new Agent({ keepAlive: true });
      const keptOpen = await new Promise<number>((resolve, reject) => {
        get(`${server.url}/health/live`, { agent: keepAlive }, (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
        }).on('error', reject);
      });
      expect(keptOpen).toBe(200);
      runner.send('agent_request', { requestId: 'in-flight', message: 'a message long enough to stream for a while' });
      await runner.waitFor('agent_message_delta');

      const signalledAt = performance.now();
      server.child.kill('SIGTERM');
      await server.waitForLine((line) => line.includes('draining; new connections and runs refused'));

      const ready = await status(server, '/health/ready');
      expect(ready.status).toBe(503);
      expect(ready.body).toContain('"phase":"draining"');
      expect((await status(server, '/health/live')).status).toBe(200);

      const late = new TestClient(server.url, { token: signToken({ sub: 'late' }) });
      clients.push(late);
      expect((await late.closed).code).toBe(1012);
      expect(late.frames[0]?.data).toMatchObject({ code: 'SERVICE_SHUTTING_DOWN', retryable: true });

      runner.send('agent_request', { requestId: 'too-late', message: 'one more?' });
      const refused = await runner.waitFor('agent_error', (data) => data.requestId === 'too-late');
      expect(refused.data).toMatchObject({ code: 'SERVICE_SHUTTING_DOWN', retryable: true });

      expect((await runner.runEnd('in-flight')).event).toBe('agent_completed');
      const [runnerClose, idleClose, exit] = await Promise.all([runner.closed, idle.closed, server.exited]);
      expect(runnerClose.code).toBe(1012);
      expect(idleClose.code).toBe(1012);
      expect(idle.frames.at(-1)?.data).toMatchObject({ code: 'SERVICE_SHUTTING_DOWN', retryable: true });
      expect(exit).toEqual({ code: 0, signal: null });
      expect(server.output.at(-1)).toContain('stopped');
      expect(server.output.filter((line) => /"level":"(error|fatal)"|EmptyError|Uncaught/u.test(line))).toEqual([]);
      keepAlive.destroy();
      // Within the budget the watchdog enforces; a timing goal is the benchmark's business.
      expect(performance.now() - signalledAt).toBeLessThan(delayMs + timeoutMs + 2_000);
    });

    it('stores a run that outlasts SHUTDOWN_TIMEOUT_MS as interrupted, and tells its client before the 1012', async () => {
      const server = await boot({
        SHUTDOWN_DELAY_MS: '0',
        SHUTDOWN_TIMEOUT_MS: '300',
        LOCAL_LLM_TOKEN_DELAY_MS: '500',
      });
      const runner = await connect(server);
      runner.send('agent_request', { requestId: 'slow', message: 'this will take far longer than the drain allows' });
      const started = await runner.waitFor('agent_started');

      server.child.kill('SIGTERM');
      const end = await runner.runEnd('slow');
      expect(end.data).toMatchObject({ code: 'RUN_INTERRUPTED', retryable: true });
      expect((await runner.closed).code).toBe(1012);
      expect(await server.exited).toEqual({ code: 0, signal: null });

      const next = await boot({});
      const back = await connect(next);
      back.send('resume', { requestId: 'r', runId: started.data.runId, afterSeq: 0 });
      const resumed = await back.waitFor('resumed');
      expect(resumed.data).toMatchObject({
        status: 'interrupted',
        recovered: false,
        error: { code: 'RUN_INTERRUPTED' },
      });
    });

    it('exits at once on a second signal during the drain', async () => {
      const server = await boot({
        SHUTDOWN_DELAY_MS: '20000',
        SHUTDOWN_TIMEOUT_MS: '1000',
        TERMINATION_GRACE_PERIOD_SECONDS: '60',
      });
      server.child.kill('SIGTERM');
      await server.waitForLine((line) => line.includes('draining; new connections and runs refused'));
      server.child.kill('SIGINT');
      expect(await server.exited).toEqual({ code: 1, signal: null });
      expect(server.output.some((line) => line.includes('SIGINT during the drain'))).toBe(true);
    });
  });
}
