import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { type ConnectionState, GatewayClient } from './gateway-client.js';
import type { WebSocketLike } from './websocket-like.js';

/**
 * A scripted socket, for what only time can show: when the backoff starts over. (Everything the
 * server does is tested against the real gateway in test/integration/client-sdk.spec.ts.)
 */
class ScriptedSocket implements WebSocketLike {
  static all: ScriptedSocket[] = [];
  readyState = 0;
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  readonly sent: string[] = [];

  constructor(readonly url: string) {
    ScriptedSocket.all.push(this);
  }
  send(data: string): void {
    this.sent.push(data);
  }
  close(): void {
    this.readyState = 3;
  }
  establish(): void {
    this.readyState = 1;
    this.onopen?.({});
    const data = { connectionId: 'c', userId: 'alice', protocolVersion: 1, heartbeatMs: 25_000, serverTime: '' };
    this.onmessage?.({ data: JSON.stringify({ event: 'connection_established', data }) });
  }
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

describe('GatewayClient backoff', () => {
  let states: ConnectionState[];
  let client: GatewayClient;

  beforeEach(() => {
    jest.useFakeTimers();
    ScriptedSocket.all = [];
    states = [];
    client = new GatewayClient({
      url: 'ws://gateway.test/ws',
      token: 'token',
      WebSocket: ScriptedSocket,
      random: () => 0.999_999,
      reconnect: { initialDelayMs: 100, maxDelayMs: 10_000, maxAttempts: 20, stableAfterMs: 5_000 },
    });
    client.onState((state) => states.push(state));
  });

  afterEach(() => {
    client.close();
    jest.useRealTimers();
  });

  const lastSocket = (): ScriptedSocket => ScriptedSocket.all.at(-1) as ScriptedSocket;
  const delays = (): number[] => states.flatMap((state) => (state.status === 'reconnecting' ? [state.delayMs] : []));

  it('grows the delay while connections keep dropping before they are stable, and starts over only after a stable one', async () => {
    void client.connect().catch(() => undefined);
    await jest.advanceTimersByTimeAsync(0);
    for (let drop = 0; drop < 3; drop += 1) {
      lastSocket().establish();
      await jest.advanceTimersByTimeAsync(4_999); // open, but not yet for stableAfterMs
      lastSocket().drop();
      await jest.advanceTimersByTimeAsync(delays().at(-1) ?? 0);
    }
    expect(delays()).toEqual([199, 399, 799]);

    lastSocket().establish();
    await jest.advanceTimersByTimeAsync(5_000); // stable now
    lastSocket().drop();
    expect(delays().at(-1)).toBe(99);
    expect(states.at(-1)).toMatchObject({ status: 'reconnecting', attempt: 1 });
  });

  it('puts the token in the query (browsers cannot set headers on a WebSocket)', async () => {
    void client.connect().catch(() => undefined);
    await jest.advanceTimersByTimeAsync(0);
    expect(lastSocket().url).toBe('ws://gateway.test/ws?token=token');
  });
});

describe('GatewayClient resume of a run that runs elsewhere', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    ScriptedSocket.all = [];
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  const RUN = '0190a6f0-0000-7000-8000-000000000001';
  const THREAD = '0190a6f0-0000-7000-8000-000000000002';
  const frame = (event: string, data: unknown): { data: string } => ({ data: JSON.stringify({ event, data }) });
  const resumes = (socket: ScriptedSocket): Array<{ runId: string; afterSeq: number; requestId: string }> =>
    socket.sent
      .map(
        (text) => JSON.parse(text) as { event: string; data: { runId: string; afterSeq: number; requestId: string } },
      )
      .filter((sent) => sent.event === 'resume')
      .map((sent) => sent.data);
  /** The server's answer to the last `resume` on `socket`: not recovered, with this state. */
  const answerLastResume = (socket: ScriptedSocket, state: Record<string, unknown>): void => {
    const requestId = resumes(socket).at(-1)?.requestId;
    socket.onmessage?.(
      frame('resumed', { requestId, runId: RUN, threadId: THREAD, recovered: false, replayed: 0, ...state }),
    );
  };

  it('never reports a run that is still running as interrupted: it asks again, with backoff, until the run has ended', async () => {
    const client = new GatewayClient({
      url: 'ws://gateway.test/ws',
      token: 'token',
      WebSocket: ScriptedSocket,
      random: () => 0.5,
      reconnect: { initialDelayMs: 100, maxDelayMs: 100, maxAttempts: 20, stableAfterMs: 5_000 },
    });
    void client.connect().catch(() => undefined);
    await jest.advanceTimersByTimeAsync(0);
    const first = ScriptedSocket.all.at(-1) as ScriptedSocket;
    first.establish();
    const run = client.run('hello');
    const requestId = (JSON.parse(first.sent.at(-1) ?? '{}') as { data: { requestId: string } }).data.requestId;
    first.onmessage?.(frame('agent_started', { runId: RUN, requestId, seq: 1, threadId: THREAD, userMessage: {} }));
    first.drop();
    await jest.advanceTimersByTimeAsync(100);
    const second = ScriptedSocket.all.at(-1) as ScriptedSocket;
    second.establish();

    // Three times the server says: still running, but not from here.
    for (let answer = 1; answer <= 3; answer += 1) {
      const asked = resumes(second);
      expect(asked).toHaveLength(answer);
      expect(asked.at(-1)).toMatchObject({ runId: RUN, afterSeq: 1 });
      answerLastResume(second, { status: 'running' });
      expect(run.done).toBe(false);
      await jest.advanceTimersByTimeAsync(30_000);
    }

    // Then it has ended: the stored answer settles the run, exactly once.
    const message = { id: RUN, threadId: THREAD, role: 'assistant', content: 'hi', createdAt: '' };
    answerLastResume(second, { status: 'completed', message });
    await expect(run.result).resolves.toEqual({ status: 'completed', threadId: THREAD, message });
    await jest.advanceTimersByTimeAsync(60_000);
    expect(resumes(second)).toHaveLength(4);
    client.close();
  });
});
