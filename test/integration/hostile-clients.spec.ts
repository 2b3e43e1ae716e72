import type { Socket } from 'node:net';
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { filter, firstValueFrom, take, toArray } from 'rxjs';
import { ConnectionRegistry } from '../../src/gateway/connection.registry.js';
import { MAX_ERROR_FRAME_BYTES } from '../../src/gateway/frame.codec.js';
import { MAX_EARLY_FRAMES, WsConnection } from '../../src/gateway/ws-connection.js';
import { MAX_SEQ } from '../../src/protocol/events.js';
import { scrape } from '../support/prometheus.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';
import type { TestClient } from '../support/ws-client.js';

/** Every frame as it came off the wire, to check sizes. */
function rawFrames(client: TestClient): Buffer[] {
  const raw: Buffer[] = [];
  client.socket.on('message', (data: Buffer) => raw.push(data));
  return raw;
}

/** The answers of hostile input: a clear error with a stable code, bounded, and the process goes on. */
describe('hostile clients', () => {
  let app: TestApp | undefined;

  afterEach(async () => {
    jest.restoreAllMocks();
    await app?.close();
    app = undefined;
  });

  it(`keeps ${MAX_EARLY_FRAMES} frames of a held connection, counts the rest, and lists them in an error frame under 8 KiB`, async () => {
    app = await startTestApp({ gated: ['agent'] });
    const requestId = (index: number): string => `${String(index).padStart(4, '0')}-${'x'.repeat(123)}`;
    const early = Array.from({ length: 500 }, (_, index) => ({ event: 'ping', data: { requestId: requestId(index) } }));
    const arrived = firstValueFrom(app.app.get(ConnectionRegistry).earlyFrames$.pipe(take(early.length), toArray()));
    const client = app.connect({ token: signToken({ sub: 'flood' }), sendOnOpen: early });
    const raw = rawFrames(client);
    const outcomes = await arrived;
    expect(outcomes.filter((event) => event.outcome === 'held')).toHaveLength(MAX_EARLY_FRAMES);

    app.gates.release('agent');
    const tooMany = await client.waitFor('error', (data) => data.code === 'TOO_MANY_EARLY_FRAMES');
    expect(tooMany.data).toMatchObject({ retryable: true, unprocessedCount: early.length - MAX_EARLY_FRAMES });
    const listed = tooMany.data.unprocessedRequestIds as string[];
    expect(listed.length).toBeGreaterThan(0);
    expect(listed).toEqual(listed.map((_, index) => requestId(MAX_EARLY_FRAMES + index)));
    await client.waitFor('pong', (data) => data.requestId === requestId(MAX_EARLY_FRAMES - 1));
    expect(Math.max(...raw.map((frame) => frame.length))).toBeLessThanOrEqual(MAX_ERROR_FRAME_BYTES);
  });

  it('ends only the one connection whose release throws (INTERNAL_ERROR, 1011): the others are released and the process goes on', async () => {
    app = await startTestApp({ gated: ['agent'] });
    const establish = WsConnection.prototype.establish;
    jest.spyOn(WsConnection.prototype, 'establish').mockImplementation(function (
      this: WsConnection,
      ...args: Parameters<WsConnection['establish']>
    ) {
      // What a frame too large to serialise did at the readiness flip.
      if (args[0] === 'boom') throw new RangeError('Invalid string length');
      establish.apply(this, args);
    });
    const boom = app.connect({ token: signToken({ sub: 'boom' }) });
    const fine = app.connect({ token: signToken({ sub: 'fine' }) });
    await Promise.all([boom.opened, fine.opened]);

    app.gates.release('agent');
    await fine.waitFor('connection_established');
    const error = await boom.waitFor('error');
    expect(error.data).toMatchObject({ code: 'INTERNAL_ERROR', correlationId: expect.any(String) });
    expect((await boom.closed).code).toBe(1011);
    expect(app.logs.messages('error').some((line) => line.includes(String(error.data.correlationId)))).toBe(true);
    expect(app.readiness.snapshot.phase).toBe('ready');
    await app.connectAs('later');
  });

  it('counts held connections toward WS_MAX_CONNECTIONS_PER_USER from the handshake: one token cannot park more', async () => {
    app = await startTestApp({ gated: ['agent'], env: { WS_MAX_CONNECTIONS_PER_USER: '2' } });
    const token = signToken({ sub: 'parker' });
    const first = app.connect({ token });
    const second = app.connect({ token });
    await Promise.all([first.opened, second.opened]);
    const third = app.connect({ token });
    expect((await third.closed).code).toBe(1008);
    expect(third.frames).toEqual([
      { event: 'error', data: expect.objectContaining({ code: 'TOO_MANY_CONNECTIONS', retryable: false }) },
    ]);
    app.gates.release('agent');
    await Promise.all([first.waitFor('connection_established'), second.waitFor('connection_established')]);
  });

  it('answers pings within the frame budget, and closes a ping flood with RATE_LIMITED and 1008 "rate limit exceeded"', async () => {
    app = await startTestApp({ ready: true, env: { WS_MAX_MESSAGES_PER_SECOND: '10', WS_MESSAGE_BURST: '10' } });
    const client = await app.connectAs('pinger');
    const ponged = new Promise((resolve) => client.socket.once('pong', resolve));
    client.socket.ping('are you there');
    await ponged;

    let pongs = 0;
    client.socket.on('pong', () => (pongs += 1));
    for (let ping = 0; ping < 5_000; ping += 1) client.socket.ping();
    expect(await client.closed).toEqual({ code: 1008, reason: 'rate limit exceeded' });
    // Answered within the budget only (`ws` answering every ping itself would have sent 5 000).
    expect(pongs).toBeLessThanOrEqual(20);
    expect(client.frames.at(-1)).toMatchObject({ event: 'error', data: { code: 'RATE_LIMITED', retryable: true } });
    const metrics = await scrape(app.url);
    expect(metrics.value('agent_gateway_ws_limited_total', { limit: 'flood' })).toBe(1);
    const other = await app.connectAs('other');
    other.send('ping', { requestId: 'still-here' });
    await other.waitFor('pong', (data) => data.requestId === 'still-here');
  });

  it('never echoes a requestId that is too long or carries control characters: VALIDATION_FAILED on requestId, without it', async () => {
    app = await startTestApp({ ready: true });
    const client = await app.connectAs('echo');
    const raw = rawFrames(client);
    client.send('ping', { requestId: 'x'.repeat(100_000) });
    client.send('agent_request', { requestId: 'a\u0000b', message: 'hi' });
    client.send('thread_list', { requestId: 'line\nbreak' });
    client.send('ping', { requestId: 'sentinel' });
    await client.waitFor('pong', (data) => data.requestId === 'sentinel');
    const errors = client.frames.filter((frame) => frame.event === 'error');
    expect(errors).toHaveLength(3);
    for (const error of errors) {
      expect(error.data).toMatchObject({ code: 'VALIDATION_FAILED', field: 'requestId' });
      expect(error.data).not.toHaveProperty('requestId');
    }
    expect(Math.max(...raw.map((frame) => frame.length))).toBeLessThan(1_000);
  });

  it.each([
    ['zero-width spaces', '\u200b\u200b\u200b'],
    ['a word joiner, a soft hyphen and a space', '\u2060\u00ad '],
    ['a byte order mark and a Hangul filler', '\ufeff\u3164'],
    ['ideographic spaces and a line break', '\u3000\u3000\n'],
  ])('refuses a message made only of invisible characters (%s) with VALIDATION_FAILED', async (_name, message) => {
    app = await startTestApp({ ready: true });
    const client = await app.connectAs('ghost');
    client.send('agent_request', { requestId: 'invisible', message });
    const error = await client.waitFor(['error', 'agent_started'], (data) => data.requestId === 'invisible');
    expect(error).toMatchObject({ event: 'error', data: { code: 'VALIDATION_FAILED', field: 'message' } });
  });

  it(`refuses afterSeq beyond ${MAX_SEQ} (a 32-bit column on PostgreSQL) with VALIDATION_FAILED, and accepts it up to there`, async () => {
    app = await startTestApp({ ready: true });
    const client = await app.connectAs('seq');
    const frames = await client.request('r1', 'hello');
    const runId = frames[0]?.data.runId;
    client.send('resume', { requestId: 'too-far', runId, afterSeq: MAX_SEQ + 1 });
    expect((await client.waitFor(['error', 'resumed'], (data) => data.requestId === 'too-far')).data).toMatchObject({
      code: 'VALIDATION_FAILED',
      field: 'afterSeq',
    });
    client.send('resume', { requestId: 'at-the-end', runId, afterSeq: MAX_SEQ });
    expect((await client.waitFor(['error', 'resumed'], (data) => data.requestId === 'at-the-end')).data).toMatchObject({
      recovered: true,
      status: 'completed',
      replayed: 0,
    });
  });

  it.each([
    ['256 characters', 'u'.repeat(256)],
    ['5 000 characters', 'u'.repeat(5_000)],
    ['a NUL', 'ali\u0000ce'],
    ['a line break', 'alice\nadmin'],
  ])('refuses a token whose sub has %s at the handshake: UNAUTHORIZED, then 1008', async (_name, sub) => {
    app = await startTestApp({ ready: true });
    const client = app.connect({ token: signToken({ sub }) });
    expect((await client.closed).code).toBe(1008);
    expect(client.frames).toEqual([{ event: 'error', data: expect.objectContaining({ code: 'UNAUTHORIZED' }) }]);
    expect(JSON.stringify(app.logs.lines())).not.toContain('u'.repeat(600));
  });

  it('replays a long run to a client that stopped reading, and once it reads again it has every event exactly once, in order', async () => {
    app = await startTestApp({ ready: true, env: { AGENT_MESSAGE_MAX_CHARS: '20000' } });
    const writer = await app.connectAs('reader');
    const original = await writer.request('long', 'word '.repeat(3_000));
    expect(original.length).toBeGreaterThan(3_000);
    const runId = original[0]?.data.runId;

    const reader = await app.connectAs('reader');
    const tcp = (reader.socket as unknown as { _socket: Socket })._socket;
    tcp.pause();
    reader.send('resume', { requestId: 'back', runId, afterSeq: 0 });
    // The server is not stuck on it: others are answered meanwhile.
    const other = await app.connectAs('someone-else');
    other.send('ping', { requestId: 'meanwhile' });
    await other.waitFor('pong', (data) => data.requestId === 'meanwhile');

    tcp.resume();
    await reader.waitFor('agent_completed', (data) => data.runId === runId);
    expect(reader.runFrames(runId)).toEqual(original);
  });

  it('answers an unknown HTTP route with the documented error shape', async () => {
    app = await startTestApp({ ready: true });
    for (const [method, path] of [
      ['GET', '/nope'],
      ['POST', '/threads/x/y/z'],
      ['DELETE', `/${'a'.repeat(5_000)}`],
    ] as const) {
      const response = await fetch(`${app.url}${path}`, { method });
      expect(response.status).toBe(404);
      const body = (await response.json()) as { code: string; message: string; retryable: boolean };
      expect(body).toEqual({ code: 'NOT_FOUND', message: expect.stringContaining(method), retryable: false });
      expect(body.message.length).toBeLessThan(300);
    }
  });
});

describe('the registry after hostile clients', () => {
  it('forgets a connection refused at the handshake: its user can connect again at once', async () => {
    const app = await startTestApp({ ready: true, env: { WS_MAX_CONNECTIONS_PER_USER: '1' } });
    try {
      const registry = app.app.get(ConnectionRegistry);
      const first = await app.connectAs('once');
      const second = app.connect({ token: signToken({ sub: 'once' }) });
      expect((await second.closed).code).toBe(1008);
      const closed = firstValueFrom(
        registry.events$.pipe(filter((event) => event.type === 'closed' && event.userId === 'once')),
      );
      await first.close();
      await closed;
      expect(registry.openOf('once')).toBe(0);
      await app.connectAs('once');
    } finally {
      await app.close();
    }
  });
});
