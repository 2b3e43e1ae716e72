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
