import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { filter, firstValueFrom } from 'rxjs';
import { ConnectionRegistry } from '../../src/gateway/connection.registry.js';
import { scrape } from '../support/prometheus.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';

/** Per-connection and per-user limits, against the real gateway. */
describe('connection limits', () => {
  let app: TestApp | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('drops frames over the message rate with RATE_LIMITED (retryable, naming the request) and keeps the connection', async () => {
    app = await startTestApp({ ready: true, env: { WS_MAX_MESSAGES_PER_SECOND: '5', WS_MESSAGE_BURST: '5' } });
    const client = await app.connectAs('alice');
    const ids = Array.from({ length: 20 }, (_, index) => `p${index}`);
    for (const requestId of ids) client.send('ping', { requestId });
    const answers = await Promise.all(
      ids.map((requestId) => client.waitFor(['pong', 'error'], (data) => data.requestId === requestId)),
    );
    const pongs = answers.filter((frame) => frame.event === 'pong');
    const limited = answers.filter((frame) => frame.event === 'error');
    // The burst goes through (plus whatever refilled while the frames arrived), the rest is refused.
    expect(pongs.length).toBeGreaterThanOrEqual(5);
    expect(pongs.length).toBeLessThan(10);
    expect(pongs.map((frame) => frame.data.requestId)).toEqual(ids.slice(0, pongs.length));
    for (const frame of limited) {
      expect(frame.data).toMatchObject({ code: 'RATE_LIMITED', retryable: true, retryAfterMs: expect.any(Number) });
    }
    expect(client.socket.readyState).toBe(client.socket.OPEN);
    const metrics = await scrape(app.url);
    expect(metrics.value('agent_gateway_ws_limited_total', { limit: 'message_rate' })).toBe(limited.length);
  });

  it('refuses a connection beyond WS_MAX_CONNECTIONS_PER_USER with TOO_MANY_CONNECTIONS and 1008; others are not affected', async () => {
    app = await startTestApp({ ready: true, env: { WS_MAX_CONNECTIONS_PER_USER: '2' } });
    const first = await app.connectAs('alice');
    await app.connectAs('alice');
    const third = app.connect({ token: signToken({ sub: 'alice' }) });
    expect((await third.closed).code).toBe(1008);
    expect(third.frames).toEqual([
      { event: 'error', data: expect.objectContaining({ code: 'TOO_MANY_CONNECTIONS', retryable: false }) },
    ]);
    await app.connectAs('bob');

    // Once one of alice's connections has closed (as the server saw it), she may open another.
    const registry = app.app.get(ConnectionRegistry);
    const closed = firstValueFrom(
      registry.events$.pipe(filter((event) => event.type === 'closed' && event.userId === 'alice')),
    );
    await first.close();
    await closed;
    await app.connectAs('alice');
  });

  it('cuts off a client that stopped reading once WS_MAX_BUFFERED_BYTES wait for it, and keeps serving the others', async () => {
    app = await startTestApp({
      ready: true,
      env: { WS_MAX_BUFFERED_BYTES: '65536', WS_MAX_MESSAGES_PER_SECOND: '1000000', WS_MESSAGE_BURST: '1000000' },
    });
    const registry = app.app.get(ConnectionRegistry);
    const slow = await app.connectAs('slow');
    const cut = firstValueFrom(
      registry.events$.pipe(filter((event) => event.type === 'limited' && event.limit === 'slow_consumer')),
    );
    // Stop reading (the socket's own stream is paused), and keep asking: the answers pile up.
    (slow.socket as unknown as { _socket: Socket })._socket.pause();
    const closedOnServer = firstValueFrom(
      registry.events$.pipe(filter((event) => event.type === 'closed' && event.userId === 'slow')),
    );
    let sent = 0;
    let stop = false;
    void cut.then(() => (stop = true));
    while (!stop && sent < 1_000_000) {
      for (let index = 0; index < 1_000; index += 1) slow.send('ping', { requestId: `flood-${sent + index}` });
      sent += 1_000;
      // Let the server read and answer before the next thousand.
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await cut).toMatchObject({ type: 'limited', limit: 'slow_consumer', userId: 'slow' });
    expect(await closedOnServer).toMatchObject({ code: 1006 });
    const metrics = await scrape(app.url);
    expect(metrics.value('agent_gateway_ws_limited_total', { limit: 'slow_consumer' })).toBe(1);
    expect(app.logs.find('slow consumer cut off', 'Gateway')).toHaveLength(1);
    await app.connectAs('someone-else');
  });
});
