import { afterEach, describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import {
  type ConnectionState,
  GatewayClient,
  type GatewayClientOptions,
  GatewayError,
} from '../../src/client/index.js';
import type { RunFrame } from '../../src/protocol/events.js';
import { serviceShuttingDown } from '../../src/errors/client-errors.js';
import { ConnectionRegistry } from '../../src/gateway/connection.registry.js';
import { deferred } from '../support/deferred.js';
import { freePort } from '../support/server-process.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';

/**
 * The client SDK against a real gateway in this process: every close code it reacts to is
 * produced by the real server (or by a real network cut), never by a fake socket.
 */
describe('the client SDK', () => {
  let app: TestApp | undefined;
  let proxy: TcpProxy | undefined;
  const clients: GatewayClient[] = [];

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await app?.close();
    app = undefined;
    await proxy?.down();
    proxy = undefined;
  });

  function wsUrl(httpUrl: string): string {
    return `${httpUrl.replace(/^http/u, 'ws')}/ws`;
  }

  /** A client of `app` (or of `url`) that records every state it goes through. */
  function client(
    options: Partial<GatewayClientOptions> & { url?: string } = {},
  ): GatewayClient & { states: ConnectionState[] } {
    const created = new GatewayClient({
      url: options.url ?? wsUrl(app?.url ?? ''),
      token: signToken({ sub: 'alice' }),
      WebSocket: WebSocket,
      random: () => 0.5,
      ...options,
      reconnect: { initialDelayMs: 20, maxDelayMs: 200, ...options.reconnect },
    }) as GatewayClient & { states: ConnectionState[] };
    created.states = [];
    created.onState((state) => created.states.push(state));
    clients.push(created);
    return created;
  }

  /** Resolves with the first state (current or later) that `matches`. */
  function reaches(target: GatewayClient, matches: (state: ConnectionState) => boolean): Promise<ConnectionState> {
    const reached = deferred<ConnectionState>();
    const stop = target.onState((state) => {
      if (matches(state)) reached.resolve(state);
    });
    return reached.promise.finally(stop);
  }

  async function collect(run: AsyncIterable<RunFrame>): Promise<RunFrame[]> {
    const frames: RunFrame[] = [];
    for await (const frame of run) frames.push(frame);
    return frames;
  }

  /** Every run event once, in order: seq 1, 2, 3, … with no gap and no repeat. */
  function expectExactlyOnce(frames: readonly RunFrame[]): void {
    expect(frames.map((frame) => frame.data.seq)).toEqual(frames.map((_, index) => index + 1));
  }

  describe('requests and runs', () => {
    it('correlates replies by requestId, even when several are in flight', async () => {
      app = await startTestApp({ ready: true });
      const alice = client();
      await alice.connect();
      const [pong, list, history] = await Promise.all([
        alice.request('ping', {}),
        alice.request('thread_list', { limit: 5 }),
        alice.request('thread_list', { limit: 1 }),
      ]);
      expect(pong.serverTime).toEqual(expect.any(String));
      expect(list.threads).toEqual([]);
      expect(history.threads).toEqual([]);
      // The service is ready: the socket waits for nothing but `connection_established`.
      expect(alice.states.map((state) => state.status)).toEqual(['idle', 'connecting', 'establishing', 'open']);
    });

    it('rejects a request with the server error, as a GatewayError with its code', async () => {
      app = await startTestApp({ ready: true });
      const alice = client();
      const failure = await alice
        .request('thread_history', { threadId: '0190a6f0-0000-7000-8000-000000000000' })
        .catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(GatewayError);
      expect(failure).toMatchObject({ code: 'THREAD_NOT_FOUND', retryable: false });
    });

    it('streams a run: every event once and in order, a tool step, then the stored answer', async () => {
      app = await startTestApp({ ready: true });
      const alice = client();
      await alice.connect();
      const run = alice.run('What is 6*7?');
      const frames = await collect(run);
      expectExactlyOnce(frames);
      expect(frames.map((frame) => frame.event)).toEqual(
        expect.arrayContaining(['agent_started', 'tool_executing', 'tool_completed', 'agent_completed']),
      );
      const result = await run.result;
      expect(result).toMatchObject({ status: 'completed', message: { role: 'assistant' } });
      const deltas = frames.filter((frame) => frame.event === 'agent_message_delta');
      const text = deltas.map((frame) => (frame.event === 'agent_message_delta' ? frame.data.text : '')).join('');
      expect(result.status === 'completed' ? result.message.content : '').toBe(text);
      expect(text).toContain('42');
      // The thread is there for the next request.
      const { threads } = await alice.request('thread_list', {});
      expect(threads.map((thread) => thread.id)).toEqual([run.threadId]);
    });

    it('yields tool_approval_required with the call pending, and approve() / reject() answer it', async () => {
      app = await startTestApp({ ready: true, env: { AGENT_APPROVAL_TOOLS: 'calculator' } });
      const alice = client();
      await alice.connect();
      const approved = alice.run('What is 6*7?');
      const seen: RunFrame[] = [];
      for await (const frame of approved) {
        seen.push(frame);
        if (frame.event !== 'tool_approval_required') continue;
        expect(approved.pendingApproval).toEqual(frame.data);
        expect(frame.data).toMatchObject({ name: 'calculator', arguments: { expression: '6*7' } });
        approved.approve();
      }
      expect(approved.pendingApproval).toBeUndefined();
      expect(seen.map((frame) => frame.event)).toEqual(
        expect.arrayContaining(['tool_approval_required', 'tool_executing', 'tool_completed', 'agent_completed']),
      );

      const refused = alice.run('What is 6*8?');
      for await (const frame of refused) {
        if (frame.event === 'tool_approval_required') refused.reject('not now');
        if (frame.event === 'tool_failed') {
          expect(refused.pendingApproval).toBeUndefined();
          expect(frame.data.error).toEqual({ code: 'TOOL_REFUSED', message: expect.stringContaining('not now') });
        }
      }
      expect((await refused.result).status).toBe('completed');
    });

    it('cancels a run, also one cancelled before the server acknowledged it', async () => {
      app = await startTestApp({ ready: true, env: { LOCAL_LLM_TOKEN_DELAY_MS: '50' } });
      const alice = client();
      await alice.connect();
      const run = alice.run('Tell me everything you know about readiness probes');
      run.cancel();
      expect(await run.result).toEqual({ status: 'cancelled' });
      const frames = await collect(run);
      expect(frames.at(0)?.event).toBe('agent_started');
      expect(frames.at(-1)?.event).toBe('agent_cancelled');
    });

    it('queues requests made while disconnected and sends them after connection_established; the queue is bounded', async () => {
      app = await startTestApp({ gated: ['agent'] });
      const alice = client({ maxQueuedRequests: 2, serviceWaitHintMs: 50 });
      const first = alice.request('ping', {});
      const second = alice.request('thread_list', {});
      const third = alice.request('ping', {}).catch((error: unknown) => error);
      expect(await third).toMatchObject({ code: 'QUEUE_FULL', retryable: true });
      await reaches(alice, (state) => state.status === 'waiting_for_service');
      app.gates.release('agent');
      await expect(first).resolves.toMatchObject({ serverTime: expect.any(String) });
      await expect(second).resolves.toMatchObject({ threads: [] });
    });
  });

  describe('the close-code table', () => {
    it('shows waiting_for_service once the socket has waited serviceWaitHintMs, then opens the moment it is ready', async () => {
      app = await startTestApp({ gated: ['agent'] });
      const alice = client({ serviceWaitHintMs: 50 });
      const opened = alice.connect();
      await reaches(alice, (state) => state.status === 'waiting_for_service');
      app.gates.release('agent');
      await opened;
      expect(alice.states.map((state) => state.status)).toEqual([
        'idle',
        'connecting',
        'establishing',
        'waiting_for_service',
        'open',
      ]);
    });

    it('shows waiting_for_service at once on the attempt after a 1013 (the service said it is starting)', async () => {
      app = await startTestApp({ gated: ['agent'], env: { WS_READY_WAIT_MS: '50' } });
      const alice = client({ serviceWaitHintMs: 60_000 });
      const opened = alice.connect();
      await reaches(alice, (state) => state.status === 'reconnecting' && state.lastClose.code === 1013);
      await reaches(alice, (state) => state.status === 'waiting_for_service');
      app.gates.release('agent');
      await opened;
      const statuses = alice.states.map((state) => state.status);
      expect(statuses.slice(0, 4)).toEqual(['idle', 'connecting', 'establishing', 'reconnecting']);
      expect(statuses.slice(4)).toContain('waiting_for_service');
      expect(statuses.slice(4)).not.toContain('establishing');
      expect(statuses.at(-1)).toBe('open');
    });

    it('on 1013 waits at least retryAfterMs, with backoff, and connects once the service is ready', async () => {
      app = await startTestApp({ gated: ['agent'], env: { WS_READY_WAIT_MS: '100' } });
      const alice = client();
      const opened = alice.connect();
      const reconnecting = await reaches(alice, (state) => state.status === 'reconnecting');
      expect(reconnecting).toMatchObject({
        status: 'reconnecting',
        attempt: 2,
        lastClose: { code: 1013, error: { code: 'SERVICE_NOT_READY', retryable: true } },
      });
      const retryAfterMs =
        reconnecting.status === 'reconnecting' ? (reconnecting.lastClose.error?.retryAfterMs ?? -1) : -1;
      expect(retryAfterMs).toBeGreaterThan(0);
      expect(reconnecting.status === 'reconnecting' && reconnecting.delayMs).toBeGreaterThanOrEqual(retryAfterMs);
      app.gates.release('agent');
      await opened;
    });

    it('on 1012 (the instance drains) reconnects, and the backoff does not start over before the connection is stable', async () => {
      app = await startTestApp({ ready: true });
      const alice = client({ reconnect: { stableAfterMs: 60_000 } });
      await alice.connect();
      const registry = app.app.get(ConnectionRegistry);
      const restart = serviceShuttingDown({ retryAfterMs: 0 });
      for (const attempt of [2, 3]) {
        const reconnecting = reaches(alice, (state) => state.status === 'reconnecting');
        await registry.closeAll(1012, 'service restart', restart, 1_000);
        expect(await reconnecting).toMatchObject({ attempt, lastClose: { code: 1012 } });
        await reaches(alice, (state) => state.status === 'open');
      }
    });

    it('on 1008 TOKEN_EXPIRED asks the application for a new token, once, and connects with it', async () => {
      app = await startTestApp({ ready: true });
      const asked: string[] = [];
      const alice = client({
        token: signToken({ sub: 'alice', exp: Math.floor(Date.now() / 1000) - 60 }),
        refreshToken: (error) => {
          asked.push(error.code);
          return signToken({ sub: 'alice' });
        },
      });
      await alice.connect();
      expect(asked).toEqual(['TOKEN_EXPIRED']);
      expect(alice.state).toMatchObject({ status: 'open', userId: 'alice' });
    });

    it('never loops on 1008: a refreshed token refused again ends in closed, with the reason', async () => {
      app = await startTestApp({ ready: true });
      let asked = 0;
      const expired = () => signToken({ sub: 'alice', exp: Math.floor(Date.now() / 1000) - 60 });
      const alice = client({
        token: expired(),
        refreshToken: () => {
          asked += 1;
          return expired();
        },
      });
      const failure = await alice.connect().catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: 'CLIENT_CLOSED' });
      expect(asked).toBe(1);
      expect(alice.state).toMatchObject({
        status: 'closed',
        reason: { kind: 'auth', close: { code: 1008, error: { code: 'TOKEN_EXPIRED' } } },
      });
      expect(alice.states.filter((state) => state.status === 'connecting')).toHaveLength(2);
    });

    it('without a refresh callback, 1008 stops at once', async () => {
      app = await startTestApp({ ready: true });
      const alice = client({ token: signToken({ sub: 'alice' }, { secret: 'another-secret-another-secret-123' }) });
      await alice.connect().catch(() => undefined);
      expect(alice.state).toMatchObject({ status: 'closed', reason: { kind: 'auth', close: { code: 1008 } } });
      expect(alice.states.filter((state) => state.status === 'connecting')).toHaveLength(1);
    });

    it('on 1009 (a frame over the limit) reconnects without resending it; the run says it was lost', async () => {
      app = await startTestApp({ ready: true, env: { WS_MAX_PAYLOAD_BYTES: '1024' } });
      const alice = client();
      await alice.connect();
      const lost = reaches(alice, (state) => state.status === 'reconnecting');
      const run = alice.run('x'.repeat(2_000));
      expect(await lost).toMatchObject({ lastClose: { code: 1009 } });
      expect(await run.result).toMatchObject({ status: 'failed', error: { code: 'CONNECTION_LOST', retryable: true } });
      await reaches(alice, (state) => state.status === 'open');
      await expect(alice.request('ping', {})).resolves.toMatchObject({ serverTime: expect.any(String) });
      // Nothing was resent: the second connection carried only the ping.
      expect(alice.states.filter((state) => state.status === 'open')).toHaveLength(2);
    });

    it('gives up after its budget of attempts, and says why', async () => {
      const nobody = await freePort();
      const alice = client({ url: `ws://127.0.0.1:${nobody}/ws`, reconnect: { maxAttempts: 3 } });
      const failure = await alice.connect().catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(GatewayError);
      expect(alice.state).toMatchObject({
        status: 'closed',
        reason: { kind: 'gave_up', attempts: 3, close: { code: 1006 } },
      });
      expect(alice.state.status === 'closed' && alice.state.reason.message).toBe(
        'gave up after 3 attempts; last: close 1006',
      );
    });
  });

  describe('a connection lost in the middle of a run (1006)', () => {
    it('reconnects, resumes the run after the last seq it has, and delivers every event exactly once', async () => {
      app = await startTestApp({ ready: true, env: { LOCAL_LLM_TOKEN_DELAY_MS: '20' } });
      const port = await freePort();
      const target = new URL(app.url);
      proxy = new TcpProxy(port, { host: target.hostname, port: Number(target.port) });
      await proxy.up();
      const alice = client({ url: `ws://127.0.0.1:${port}/ws` });
      await alice.connect();
      const run = alice.run('Please repeat this sentence back to me slowly, one word at a time, all of it');
      const frames: RunFrame[] = [];
      const cutAt = deferred();
      const collected = (async () => {
        for await (const frame of run) {
          frames.push(frame);
          if (frame.event === 'agent_message_delta' && frame.data.seq === 6) cutAt.resolve();
        }
      })();
      await cutAt.promise;

      const lost = reaches(alice, (state) => state.status === 'reconnecting');
      await proxy.down();
      expect(await lost).toMatchObject({ lastClose: { code: 1006 } });
      await proxy.up();
      await collected;

      expectExactlyOnce(frames);
      const result = await run.result;
      expect(result.status).toBe('completed');
      const text = frames.map((frame) => (frame.event === 'agent_message_delta' ? frame.data.text : '')).join('');
      expect(result.status === 'completed' && result.message.content).toBe(text);
      expect(alice.states.filter((state) => state.status === 'open')).toHaveLength(2);
    });
  });
});
