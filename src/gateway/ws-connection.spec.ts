import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { type WebSocket } from 'ws';
import { AppError } from '../errors/app-error.js';
import type { InboundFrame } from './frame.codec.js';
import { MAX_ERROR_FRAME_BYTES } from './frame.codec.js';
import { FakeSocket } from './testing/fake-socket.js';
import { FLOOD_BURSTS, MAX_EARLY_FRAMES, WsConnection, type WsConnectionObserver } from './ws-connection.js';

const request = (requestId?: string): InboundFrame => ({ kind: 'request', event: 'ping', data: {}, requestId });
const details = { protocolVersion: 1, heartbeatMs: 1000, serverTime: '2026-11-27T00:00:00.000Z' };

function connectionWith(socket: FakeSocket): { connection: WsConnection; dispatched: InboundFrame[] } {
  const connection = new WsConnection(socket as unknown as WebSocket);
  const dispatched: InboundFrame[] = [];
  connection.attach((frame) => dispatched.push(frame), undefined);
  return { connection, dispatched };
}

describe('WsConnection', () => {
  it('holds frames until established, then sends connection_established before dispatching them in order', () => {
    const socket = new FakeSocket();
    const { connection, dispatched } = connectionWith(socket);
    connection.receive(request('a'));
    connection.receive(request('b'));
    expect(dispatched).toEqual([]);
    expect(socket.sent).toEqual([]);

    connection.establish('alice', details);
    expect(socket.sent.map((frame) => frame.event)).toEqual(['connection_established']);
    expect(dispatched.map((frame) => frame.requestId)).toEqual(['a', 'b']);
    connection.receive(request('c'));
    expect(dispatched.map((frame) => frame.requestId)).toEqual(['a', 'b', 'c']);
  });

  it('refuses with one error frame naming the unprocessed requests, then closes with a reason of at most 123 bytes', () => {
    const socket = new FakeSocket();
    const { connection, dispatched } = connectionWith(socket);
    connection.receive(request('a'));
    connection.receive(request());
    connection.refuse(new AppError('SERVICE_NOT_READY', 'not ready', { retryable: true }), 1013, 'é'.repeat(100));

    expect(dispatched).toEqual([]);
    expect(socket.sent).toEqual([
      {
        event: 'error',
        data: {
          code: 'SERVICE_NOT_READY',
          message: 'not ready',
          retryable: true,
          unprocessedRequestIds: ['a'],
          unprocessedCount: 2,
        },
      },
    ]);
    expect(socket.closedWith?.code).toBe(1013);
    expect(Buffer.byteLength(socket.closedWith?.reason ?? '')).toBeLessThanOrEqual(123);
    expect(socket.closedWith?.reason).toBe('é'.repeat(61));
    connection.establish('alice', details);
    expect(socket.sent).toHaveLength(1);
  });

  it(`keeps at most ${MAX_EARLY_FRAMES} early frames and reports the rest after establishing`, () => {
    const socket = new FakeSocket();
    const { connection, dispatched } = connectionWith(socket);
    for (let index = 1; index <= MAX_EARLY_FRAMES + 2; index += 1) connection.receive(request(`r${index}`));
    connection.establish('alice', details);
    expect(dispatched).toHaveLength(MAX_EARLY_FRAMES);
    expect(socket.sent[1]).toEqual({
      event: 'error',
      data: expect.objectContaining({
        code: 'TOO_MANY_EARLY_FRAMES',
        unprocessedRequestIds: ['r33', 'r34'],
        unprocessedCount: 2,
      }),
    });
  });

  it('keeps a fixed amount for the frames it drops while held, however many, and says how many in a frame under 8 KiB', () => {
    const socket = new FakeSocket();
    const raw: string[] = [];
    socket.send = (frame: string) => raw.push(frame);
    const { connection, dispatched } = connectionWith(socket);
    const id = (index: number): string => `${'é'.repeat(120)}${String(index).padStart(8, '0')}`;
    for (let index = 0; index < 5_000; index += 1) connection.receive(request(id(index)));
    connection.establish('alice', details);

    expect(dispatched).toHaveLength(MAX_EARLY_FRAMES);
    const error = raw.find((frame) => frame.includes('TOO_MANY_EARLY_FRAMES')) ?? '';
    expect(Buffer.byteLength(error)).toBeLessThanOrEqual(MAX_ERROR_FRAME_BYTES);
    const data = (JSON.parse(error) as { data: { unprocessedCount: number; unprocessedRequestIds: string[] } }).data;
    expect(data.unprocessedCount).toBe(5_000 - MAX_EARLY_FRAMES);
    // The first dropped ones, in order, as many as fit.
    expect(data.unprocessedRequestIds.length).toBeGreaterThan(0);
    expect(data.unprocessedRequestIds).toEqual(
      data.unprocessedRequestIds.map((_, index) => id(MAX_EARLY_FRAMES + index)),
    );
  });

  it('refuses a held connection in one error frame under 8 KiB, however many frames it sent', () => {
    const socket = new FakeSocket();
    const raw: string[] = [];
    socket.send = (frame: string) => raw.push(frame);
    const { connection } = connectionWith(socket);
    for (let index = 0; index < 3_000; index += 1) connection.receive(request(`r${index}`.padEnd(128, '"')));
    connection.refuse(new AppError('SERVICE_NOT_READY', 'not ready', { retryable: true }), 1013, 'service not ready');
    expect(raw).toHaveLength(1);
    expect(Buffer.byteLength(raw[0] ?? '')).toBeLessThanOrEqual(MAX_ERROR_FRAME_BYTES);
    expect(JSON.parse(raw[0] ?? '')).toMatchObject({ data: { unprocessedCount: 3_000 } });
  });

  it('hands a frame over only once the previous handler has returned, sync or async, in arrival order', async () => {
    const socket = new FakeSocket();
    const connection = new WsConnection(socket as unknown as WebSocket);
    const started: string[] = [];
    const pending = new Map<string, () => void>();
    // Frames named `slow*` return a promise the test settles; the others return at once.
    connection.attach((frame) => {
      const id = frame.requestId ?? '?';
      started.push(id);
      if (!id.startsWith('slow')) return undefined;
      return new Promise<void>((resolve) => pending.set(id, resolve));
    }, undefined);
    connection.receive(request('slow1'));
    connection.receive(request('a'));
    connection.establish('alice', details);
    connection.receive(request('b'));
    connection.receive(request('slow2'));
    connection.receive(request('c'));
    expect(started).toEqual(['slow1']);

    pending.get('slow1')?.();
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toEqual(['slow1', 'a', 'b', 'slow2']);

    pending.get('slow2')?.();
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toEqual(['slow1', 'a', 'b', 'slow2', 'c']);
    connection.receive(request('d'));
    expect(started.at(-1)).toBe('d');
  });

  it('terminates a peer that did not answer the previous ping', () => {
    const socket = new FakeSocket();
    const { connection } = connectionWith(socket);
    connection.heartbeat();
    socket.emit('pong');
    connection.heartbeat();
    expect(socket.terminated).toBe(false);
    connection.heartbeat();
    expect(socket.terminated).toBe(true);
    expect(socket.pings).toBe(2);
  });

  it('ignores frames after close', () => {
    const socket = new FakeSocket();
    const { connection, dispatched } = connectionWith(socket);
    connection.establish('alice', details);
    socket.emit('close');
    connection.receive(request('late'));
    expect(dispatched).toEqual([]);
    expect(connection.phase).toBe('closed');
  });
});

/** 10 frames a second, bursts of 3. */
function limitedConnection(socket: FakeSocket, observer: WsConnectionObserver = {}): WsConnection {
  return new WsConnection(socket as unknown as WebSocket, observer, {
    messagesPerSecond: 10,
    messageBurst: 3,
    maxBufferedBytes: Number.POSITIVE_INFINITY,
  });
}

describe('WsConnection limits', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('lets a burst through, drops what is over the rate with RATE_LIMITED, and refills with time', () => {
    jest.useFakeTimers();
    const socket = new FakeSocket();
    const connection = limitedConnection(socket);
    const dispatched: InboundFrame[] = [];
    connection.attach((frame) => dispatched.push(frame), undefined);
    connection.establish('alice', details);
    for (const id of ['1', '2', '3', '4']) connection.receive(request(id));
    expect(dispatched.map((frame) => frame.requestId)).toEqual(['1', '2', '3']);
    expect(socket.sent.at(-1)).toEqual({
      event: 'error',
      data: expect.objectContaining({ code: 'RATE_LIMITED', retryable: true, requestId: '4', retryAfterMs: 100 }),
    });

    jest.advanceTimersByTime(99);
    connection.receive(request('5'));
    expect(dispatched).toHaveLength(3);
    jest.advanceTimersByTime(101); // 0.2 s since the burst: two tokens back
    connection.receive(request('6'));
    connection.receive(request('7'));
    expect(dispatched.map((frame) => frame.requestId)).toEqual(['1', '2', '3', '6', '7']);
    expect(socket.closedWith).toBeUndefined();
  });

  it('charges held frames to the same budget: over it they are dropped and listed, never held', () => {
    jest.useFakeTimers();
    const socket = new FakeSocket();
    const connection = limitedConnection(socket);
    const dispatched: InboundFrame[] = [];
    connection.attach((frame) => dispatched.push(frame), undefined);
    for (const id of ['1', '2', '3', '4', '5']) connection.receive(request(id));
    connection.establish('alice', details);
    expect(dispatched.map((frame) => frame.requestId)).toEqual(['1', '2', '3']);
    expect(socket.sent[1]?.data).toMatchObject({
      code: 'TOO_MANY_EARLY_FRAMES',
      unprocessedRequestIds: ['4', '5'],
      unprocessedCount: 2,
    });
  });

  it(`closes a peer ${FLOOD_BURSTS} bursts beyond its budget with 1008 and RATE_LIMITED; one that slows down is kept`, () => {
    jest.useFakeTimers();
    const socket = new FakeSocket();
    const events: Array<{ type: string; limit?: string }> = [];
    const connection = limitedConnection(socket, { onEvent: (event) => events.push(event) });
    connection.attach(() => undefined, undefined);
    connection.establish('alice', details);
    // Over the rate, but slowing down as told: the debt drains as fast as it grows.
    for (let second = 0; second < 5; second += 1) {
      for (let frame = 0; frame < 20; frame += 1) connection.receive(request(`slow-${second}-${frame}`));
      jest.advanceTimersByTime(10_000);
    }
    expect(socket.closedWith).toBeUndefined();

    for (let frame = 0; frame <= 3 + FLOOD_BURSTS * 3; frame += 1) connection.receive(request(`flood-${frame}`));
    expect(socket.closedWith).toEqual({ code: 1008, reason: 'rate limit exceeded' });
    expect(socket.sent.at(-1)).toMatchObject({ event: 'error', data: { code: 'RATE_LIMITED', retryable: true } });
    expect(socket.sent.at(-1)?.data.requestId).toBeUndefined();
    expect(events.filter((event) => event.limit === 'flood')).toHaveLength(1);
  });

  it('answers pings within the budget and counts them against it; a ping flood is closed like any other', () => {
    jest.useFakeTimers();
    const socket = new FakeSocket();
    const connection = limitedConnection(socket);
    connection.establish('alice', details);
    socket.emit('ping', Buffer.from('a'));
    expect(socket.pongs).toBe(1);
    for (let ping = 0; ping < 200; ping += 1) socket.emit('ping', Buffer.from('b'));
    expect(socket.pongs).toBe(3);
    expect(socket.closedWith).toEqual({ code: 1008, reason: 'rate limit exceeded' });
  });

  it('lets at most a burst of frames wait for a busy handler; the rest are answered RATE_LIMITED unprocessed', () => {
    const MAX_QUEUED_FRAMES = 64;
    const socket = new FakeSocket();
    const connection = new WsConnection(
      socket as unknown as WebSocket,
      {},
      { messagesPerSecond: 1_000_000, messageBurst: MAX_QUEUED_FRAMES, maxBufferedBytes: Number.POSITIVE_INFINITY },
    );
    const started: string[] = [];
    connection.attach((frame) => {
      started.push(frame.requestId ?? '?');
      return new Promise<void>(() => undefined);
    }, undefined);
    connection.establish('alice', details);
    for (let index = 0; index < MAX_QUEUED_FRAMES + 11; index += 1) connection.receive(request(`q${index}`));
    expect(started).toEqual(['q0']);
    const refused = socket.sent.filter((frame) => frame.event === 'error');
    expect(refused.map((frame) => frame.data.requestId)).toEqual(
      Array.from({ length: 10 }, (_, index) => `q${MAX_QUEUED_FRAMES + 1 + index}`),
    );
    expect(refused[0]?.data).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
  });

  it('cuts off a client that lets more than maxBufferedBytes wait to be sent', () => {
    const socket = new FakeSocket();
    const events: unknown[] = [];
    const connection = new WsConnection(
      socket as unknown as WebSocket,
      { onEvent: (event) => events.push(event) },
      { messagesPerSecond: 1, messageBurst: 1, maxBufferedBytes: 1_000 },
    );
    connection.establish('alice', details);
    socket.bufferedAmount = 1_000;
    connection.send('pong', { serverTime: 'now' });
    expect(socket.terminated).toBe(false);
    socket.bufferedAmount = 1_001;
    connection.send('pong', { serverTime: 'now' });
    expect(socket.terminated).toBe(true);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'limited', limit: 'slow_consumer', userId: 'alice' }),
    );
  });
});
