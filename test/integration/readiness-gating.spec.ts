import { afterEach, describe, expect, it } from '@jest/globals';
import { firstValueFrom, take, toArray } from 'rxjs';
import { ConnectionRegistry } from '../../src/gateway/connection.registry.js';
import { FatalInitError } from '../../src/readiness/readiness.errors.js';
import { ReadinessHealthIndicator } from '../../src/health/readiness.health-indicator.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';

const token = signToken({ sub: 'alice' });

async function getJson(
  app: TestApp,
  path: string,
): Promise<{ status: number; body: any; cacheControl: string | null }> {
  const response = await fetch(new URL(path, app.url));
  return { status: response.status, body: await response.json(), cacheControl: response.headers.get('cache-control') };
}

describe('readiness gating', () => {
  let app: TestApp | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  describe('probes', () => {
    it('answers live 200 and ready 503 with one entry per dependency while starting, then ready 200', async () => {
      app = await startTestApp({ gated: ['llm'] });
      await app.gates.reached('llm');
      await app.dependencyReady('threads');

      const live = await getJson(app, '/health/live');
      expect(live).toMatchObject({ status: 200, body: { status: 'ok' } });
      const starting = await getJson(app, '/health/ready');
      expect(starting.status).toBe(503);
      expect(starting.cacheControl).toContain('no-store');
      expect(Object.keys(starting.body.details).sort()).toEqual(['agent', 'llm', 'threads']);
      expect(starting.body.error.llm).toMatchObject({
        status: 'down',
        state: 'initializing',
        phase: 'starting',
        attempts: 1,
      });
      expect(starting.body.error.agent).toMatchObject({ status: 'down', state: 'pending' });
      expect(starting.body.info.threads).toMatchObject({ status: 'up', state: 'ready' });

      app.gates.release('llm');
      await app.readiness.whenReady(5_000);
      const ready = await getJson(app, '/health/ready');
      expect(ready.status).toBe(200);
      expect(ready.cacheControl).toContain('no-store');
      expect(ready.body.status).toBe('ok');
      expect(ready.body.details.llm).toMatchObject({ status: 'up', state: 'ready', phase: 'ready' });
      expect(typeof ready.body.details.llm.durationMs).toBe('number');
    });

    it('answers 503 naming a dependency that failed, with its error', async () => {
      app = await startTestApp({ gated: ['llm'] });
      app.gates.fail('llm', new FatalInitError('model file missing'));
      await expect(app.readiness.whenReady(5_000)).rejects.toThrow('failed');

      const failed = await getJson(app, '/health/ready');
      expect(failed.status).toBe(503);
      expect(failed.body.error.llm).toMatchObject({
        status: 'down',
        state: 'failed',
        lastError: 'model file missing',
        phase: 'failed',
      });
      expect((await getJson(app, '/health/live')).status).toBe(200);
    });

    it('shows a failing attempt while it is retried, then recovers when it succeeds', async () => {
      app = await startTestApp({ gated: ['threads'] });
      app.gates.fail('threads', new Error('database not reachable yet'));
      await app.gates.reached('threads'); // the retry, after backoff
      const retrying = await getJson(app, '/health/ready');
      expect(retrying.status).toBe(503);
      expect(retrying.body.error.threads).toMatchObject({
        state: 'initializing',
        attempts: 2,
        lastError: 'database not reachable yet',
      });

      app.gates.release('threads');
      await app.readiness.whenReady(5_000);
      expect((await getJson(app, '/health/ready')).status).toBe(200);
    });

    it('answers 503 with the reason, not 500, when a check itself throws', async () => {
      app = await startTestApp({
        override: (builder) =>
          builder.overrideProvider(ReadinessHealthIndicator).useValue({
            check: () => {
              throw new Error('indicator exploded');
            },
          }),
      });
      const response = await getJson(app, '/health/ready');
      expect(response.status).toBe(503);
      expect(response.body.error.llm).toMatchObject({ status: 'down', message: 'check failed: indicator exploded' });
    });

    it('answers 503 while draining even though every dependency is up', async () => {
      app = await startTestApp({ ready: true });
      app.readiness.beginDrain();
      const draining = await getJson(app, '/health/ready');
      expect(draining.status).toBe(503);
      expect(draining.body.error.llm).toMatchObject({ state: 'ready', phase: 'draining' });
      expect((await getJson(app, '/health/live')).status).toBe(200);
    });
  });

  describe('held connections', () => {
    it('holds a connection opened before ready and releases it the moment the last dependency is up', async () => {
      app = await startTestApp({ gated: ['llm', 'threads'] });
      const clients = [app.connect({ token }), app.connect({ token, via: 'query' }), app.connect({ token })];
      await Promise.all(clients.map((client) => client.opened));
      await app.gates.reached('llm');

      app.gates.release('threads');
      await app.gates.reached('llm');
      expect(app.readiness.snapshot.phase).toBe('starting');
      for (const client of clients) expect(client.frames).toEqual([]);

      app.gates.release('llm');
      const established = await Promise.all(clients.map((client) => client.waitFor('connection_established')));
      for (const [index, frame] of established.entries()) {
        expect(clients[index]?.frames[0]).toBe(frame);
        expect(frame.data).toMatchObject({
          userId: 'alice',
          protocolVersion: 1,
          heartbeatMs: app.config.ws.heartbeatMs,
        });
        expect(typeof frame.data.connectionId).toBe('string');
        expect(Number.isNaN(Date.parse(String(frame.data.serverTime)))).toBe(false);
      }
      expect(new Set(established.map((frame) => frame.data.connectionId)).size).toBe(3);
    });

    it('processes frames sent before connection_established only after it, in order', async () => {
      app = await startTestApp({ gated: ['agent'] });
      const client = app.connect({
        token,
        sendOnOpen: [
          { event: 'ping', data: { requestId: 'p1' } },
          { event: 'agent_request', data: { requestId: 'r1', message: 'hello early' } },
          { event: 'ping', data: { requestId: 'p2' } },
          '{not json',
          { event: 'ping', data: { requestId: 'p3' } },
        ],
      });
      await client.opened;
      await app.gates.reached('agent');
      expect(client.frames).toEqual([]);

      app.gates.release('agent');
      const completed = await client.waitFor('agent_completed');
      expect(client.events()[0]).toBe('connection_established');
      const replies = client.frames
        .filter((frame) => frame.event === 'pong' || frame.event === 'error')
        .map((frame) => frame.data.requestId ?? frame.data.code);
      expect(replies).toEqual(['p1', 'p2', 'BAD_REQUEST', 'p3']);
      expect((completed.data.message as { content: string }).content).toContain('hello early');
    });

    it('refuses a connection with SERVICE_NOT_READY and close 1013 when the wait runs out, naming unprocessed requests', async () => {
      app = await startTestApp({ gated: ['llm'], env: { WS_READY_WAIT_MS: '400' } });
      const client = app.connect({
        token,
        sendOnOpen: [
          { event: 'agent_request', data: { requestId: 'r1', message: 'are you there?' } },
          { event: 'ping', data: {} },
          { event: 'ping', data: { requestId: 'p2' } },
        ],
      });
      const close = await client.closed;

      expect(close.code).toBe(1013);
      expect(Buffer.byteLength(close.reason)).toBeLessThanOrEqual(123);
      expect(client.frames).toHaveLength(1);
      expect(client.frames[0]).toEqual({
        event: 'error',
        data: expect.objectContaining({
          code: 'SERVICE_NOT_READY',
          retryable: true,
          retryAfterMs: expect.any(Number),
          missing: ['llm', 'agent'],
          unprocessedRequestIds: ['r1', 'p2'],
        }),
      });
    });

    it('refuses held connections with 1013 as soon as start-up fails', async () => {
      app = await startTestApp({ gated: ['llm'] });
      const client = app.connect({ token });
      await client.opened;
      await app.gates.reached('llm');
      await app.dependencyReady('threads');
      app.gates.fail('llm', new FatalInitError('bad model'));
      const close = await client.closed;
      expect(close.code).toBe(1013);
      expect(client.frames[0]?.data).toMatchObject({
        code: 'SERVICE_NOT_READY',
        missing: ['llm', 'agent'],
        retryable: true,
      });
    });

    it('refuses new connections with 1012 SERVICE_SHUTTING_DOWN while draining', async () => {
      app = await startTestApp({ ready: true });
      app.readiness.beginDrain();
      const client = app.connect({ token });
      const close = await client.closed;
      expect(close.code).toBe(1012);
      expect(client.frames.map((frame) => frame.data.code)).toEqual(['SERVICE_SHUTTING_DOWN']);
    });

    it('holds at most 32 early frames, processes those, and names the dropped ones', async () => {
      app = await startTestApp({ gated: ['agent'] });
      const early = Array.from({ length: 35 }, (_, index) => ({ event: 'ping', data: { requestId: `p${index + 1}` } }));
      const allRead = firstValueFrom(app.app.get(ConnectionRegistry).earlyFrames$.pipe(take(early.length), toArray()));
      const client = app.connect({ token, sendOnOpen: early });
      const outcomes = (await allRead).map((event) => event.outcome);
      expect(outcomes.filter((outcome) => outcome === 'held')).toHaveLength(32);
      expect(outcomes.slice(32)).toEqual(['dropped', 'dropped', 'dropped']);
      expect(client.frames).toEqual([]);

      app.gates.release('agent');
      await client.waitFor('pong', (data) => data.requestId === 'p32');
      const tooMany = await client.waitFor('error', (data) => data.code === 'TOO_MANY_EARLY_FRAMES');
      expect(client.events()[0]).toBe('connection_established');
      expect(tooMany.data.unprocessedRequestIds).toEqual(['p33', 'p34', 'p35']);
      expect(client.frames.filter((frame) => frame.event === 'pong').map((frame) => frame.data.requestId)).toEqual(
        early.slice(0, 32).map((frame) => frame.data.requestId),
      );
    });

    it('establishes a connection at once when the service is already ready', async () => {
      app = await startTestApp({ ready: true });
      const client = app.connect({ token, sendOnOpen: [{ event: 'ping', data: { requestId: 'now' } }] });
      await client.waitFor('pong');
      expect(client.events()).toEqual(['connection_established', 'pong']);
    });
  });
});
