import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AgentRequest } from '../../src/protocol/events.js';
import { AgentSupervisor, type StartOutcome } from '../../src/agent/agent.supervisor.js';
import { LlmService } from '../../src/llm/llm.service.js';
import type { LlmChunk, LlmRequest } from '../../src/llm/llm.types.js';
import { type Principal, TokenVerifier } from '../../src/auth/token-verifier.service.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';
import type { TestClient } from '../support/ws-client.js';

const token = signToken({ sub: 'alice' });

/** A verifier with a bug: one token makes it throw something that is not an AppError. */
class FlakyVerifier extends TokenVerifier {
  override authenticate(candidate: string | undefined): Principal | Promise<Principal> {
    if (candidate === 'crash') throw new TypeError('cannot read properties of undefined');
    return super.authenticate(candidate);
  }
}

/** The real supervisor (it still initialises and tracks readiness) with a bug in `start`. */
class ExplodingSupervisor extends AgentSupervisor {
  override start(ownerId: string, request: AgentRequest): Promise<StartOutcome> {
    if (request.message === 'throw') throw new Error('supervisor exploded');
    return super.start(ownerId, request);
  }
}

/** The real model, with a bug that shows only inside a run. */
class ExplodingLlm extends LlmService {
  override async *stream(request: LlmRequest, signal: AbortSignal): AsyncGenerator<LlmChunk> {
    const last = request.messages.at(-1);
    if (last?.content === 'stream') throw new TypeError('stream exploded');
    yield* super.stream(request, signal);
  }
}

/** The socket is still usable: a ping after the bad frame is answered. */
async function expectStillOpen(client: TestClient, requestId: string): Promise<void> {
  client.send('ping', { requestId });
  await client.waitFor('pong', (data) => data.requestId === requestId);
}

describe('bad frames', () => {
  let app: TestApp;
  let client: TestClient;

  beforeAll(async () => {
    app = await startTestApp({ ready: true, env: { WS_MAX_PAYLOAD_BYTES: '2048' } });
    client = app.connect({ token });
    await client.waitFor('connection_established');
  });

  afterAll(async () => {
    await app.close();
  });

  it.each([
    ['invalid JSON', '{"event": "ping", ', 'BAD_REQUEST', 'not valid JSON'],
    ['a JSON array', '[1, 2, 3]', 'BAD_REQUEST', 'JSON object'],
    ['a JSON string', '"ping"', 'BAD_REQUEST', 'JSON object'],
    ['null', 'null', 'BAD_REQUEST', 'JSON object'],
    ['a frame without event', '{"data": {}}', 'BAD_REQUEST', '"event"'],
    ['a numeric event', '{"event": 7, "data": {}}', 'BAD_REQUEST', '"event"'],
  ])('answers %s with %s and keeps the socket open', async (name, raw, code, text) => {
    client.sendRaw(raw);
    const error = await client.waitFor('error', (data) => data.code === code && String(data.message).includes(text));
    expect(error.data).toMatchObject({ retryable: false });
    await expectStillOpen(client, `after ${name}`);
  });

  it('answers a binary frame with BAD_REQUEST', async () => {
    client.sendRaw(Buffer.from('{"event":"ping","data":{}}'), { binary: true });
    await client.waitFor('error', (data) => data.code === 'BAD_REQUEST' && String(data.message).includes('binary'));
    await expectStillOpen(client, 'after binary');
  });

  it('answers an unknown event with UNKNOWN_EVENT and echoes the requestId', async () => {
    client.send('launch_missiles', { requestId: 'u1' });
    const error = await client.waitFor('error', (data) => data.requestId === 'u1');
    expect(error.data).toMatchObject({ code: 'UNKNOWN_EVENT', retryable: false });
    expect(error.data.message).toContain('launch_missiles');
    await expectStillOpen(client, 'after unknown');
  });

  it.each([
    ['a missing message', { requestId: 'v1' }, 'message', 'is required'],
    ['a numeric message', { requestId: 'v2', message: 42 }, 'message', 'string'],
    ['an empty message', { requestId: 'v3', message: '   ' }, 'message', 'must not be empty'],
    ['a numeric threadId', { requestId: 'v4', message: 'hi', threadId: 5 }, 'threadId', 'string'],
    ['a numeric requestId', { requestId: 5, message: 'hi' }, 'requestId', 'string'],
  ])('answers an agent_request with %s with VALIDATION_FAILED naming the field', async (_name, data, field, text) => {
    client.send('agent_request', data);
    const error = await client.waitFor(
      'error',
      (payload) =>
        payload.code === 'VALIDATION_FAILED' && payload.field === field && String(payload.message).includes(text),
    );
    if (typeof data.requestId === 'string') expect(error.data.requestId).toBe(data.requestId);
    await expectStillOpen(client, `after ${field} ${text}`);
  });

  it('answers data that is not an object with VALIDATION_FAILED on data', async () => {
    client.sendRaw('{"event": "agent_request", "data": "hello"}');
    await client.waitFor('error', (data) => data.code === 'VALIDATION_FAILED' && data.field === 'data');
    await expectStillOpen(client, 'after data string');
  });

  it('answers ping with pong carrying the requestId and server time', async () => {
    client.send('ping', { requestId: 'time' });
    const pong = await client.waitFor('pong', (data) => data.requestId === 'time');
    expect(Number.isNaN(Date.parse(String(pong.data.serverTime)))).toBe(false);
  });

  it('closes with 1009 on a frame larger than WS_MAX_PAYLOAD_BYTES', async () => {
    const other = app.connect({ token });
    await other.waitFor('connection_established');
    other.send('agent_request', { requestId: 'big', message: 'x'.repeat(4096) });
    expect((await other.closed).code).toBe(1009);
  });
});

describe('handler failures', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({
      ready: true,
      override: (builder) =>
        builder
          .overrideProvider(AgentSupervisor)
          .useClass(ExplodingSupervisor)
          .overrideProvider(LlmService)
          .useClass(ExplodingLlm),
    });
  });

  afterAll(async () => {
    await app.close();
  });

  it.each([
    ['a handler that throws', 'throw', 'error', 'supervisor exploded'],
    ['a run that fails on a bug', 'stream', 'agent_error', 'stream exploded'],
  ])(
    'answers %s with INTERNAL_ERROR and a logged correlation id, and keeps the socket',
    async (_name, message, event, cause) => {
      const client = app.connect({ token });
      await client.waitFor('connection_established');
      client.send('agent_request', { requestId: `boom-${message}`, message });
      const error = await client.waitFor(event, (data) => data.requestId === `boom-${message}`);
      expect(error.data).toMatchObject({ code: 'INTERNAL_ERROR', correlationId: expect.any(String) });
      expect(String(error.data.message)).not.toContain(cause);
      const logged = app.logs.messages('error').find((line) => line.includes(String(error.data.correlationId)));
      expect(logged).toContain(cause);
      await expectStillOpen(client, `after ${message}`);
    },
  );
});

describe('heartbeat', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ ready: true, env: { WS_HEARTBEAT_MS: '100' } });
  });

  afterAll(async () => {
    await app.close();
  });

  it('terminates a peer that stops answering pings, and keeps one that answers', async () => {
    const silent = app.connect({ token, wsOptions: { autoPong: false } });
    let pings = 0;
    // Counted from the start: a tick can fall between the establishment and any later line.
    silent.socket.on('ping', () => (pings += 1));
    const healthy = app.connect({ token });
    await Promise.all([silent.waitFor('connection_established'), healthy.waitFor('connection_established')]);
    const close = await silent.closed;
    expect(close.code).toBe(1006);
    expect(pings).toBeGreaterThanOrEqual(1);
    await expectStillOpen(healthy, 'healthy');
  });
});

describe('admission failures', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({
      ready: true,
      override: (builder) => builder.overrideProvider(TokenVerifier).useClass(FlakyVerifier),
    });
  });

  afterAll(async () => {
    await app.close();
  });

  it('closes with 1011 and a logged correlation id when admission itself crashes, and keeps accepting clients', async () => {
    const crashed = app.connect({ token: 'crash' });
    const close = await crashed.closed;
    expect(close.code).toBe(1011);
    expect(crashed.frames[0]?.data).toMatchObject({ code: 'INTERNAL_ERROR', correlationId: expect.any(String) });
    expect(
      app.logs.messages('error').some((line) => line.includes(String(crashed.frames[0]?.data.correlationId))),
    ).toBe(true);
    await app.connect({ token }).waitFor('connection_established');
  });
});
