import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';
import type { ReceivedFrame, TestClient } from '../support/ws-client.js';

/** How many generated frames one run sends (10 000 by default; FUZZ_FRAMES to change it). */
const FRAMES = Number(process.env.FUZZ_FRAMES ?? 10_000);
const BATCH = 100;
const MAX_PAYLOAD_BYTES = 65_536;

const CLIENT_EVENTS = ['agent_request', 'agent_cancel', 'resume', 'thread_list', 'thread_history', 'ping'];

/** One generated frame: what goes on the wire, and the answer the protocol promises for it. */
interface Generated {
  readonly payload: string | Buffer;
  readonly binary: boolean;
  /** `BAD_REQUEST` or `UNKNOWN_EVENT` when the frame must get exactly that; `any` for a known event. */
  readonly expected: 'BAD_REQUEST' | 'UNKNOWN_EVENT' | 'any';
  /** `data` is there and is not an object: `VALIDATION_FAILED` on `data`, before the event is looked up. */
  readonly badData?: boolean;
}

const isObject = (value: unknown): boolean => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * What the server must answer to a text frame, from docs/protocol.md ("Bad frames"), worked out
 * independently of its code: not JSON, not an object or no non-empty string `event` is
 * `BAD_REQUEST`; then `data`, when present, must be an object (`VALIDATION_FAILED`); then an unknown
 * event is `UNKNOWN_EVENT`.
 */
function text(payload: string): Generated {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return { payload, binary: false, expected: 'BAD_REQUEST' };
  }
  if (!isObject(value)) return { payload, binary: false, expected: 'BAD_REQUEST' };
  const { event, data } = value as { event?: unknown; data?: unknown };
  if (typeof event !== 'string' || event === '') return { payload, binary: false, expected: 'BAD_REQUEST' };
  if (data !== undefined && !isObject(data)) return { payload, binary: false, expected: 'any', badData: true };
  return { payload, binary: false, expected: CLIENT_EVENTS.includes(event) ? 'any' : 'UNKNOWN_EVENT' };
}

/** Values of every awkward kind for the fields the protocol knows. */
const awkward = fc.oneof(
  fc.anything(),
  fc.string({ maxLength: 300 }),
  fc.constantFrom(1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, -0, 0.5, 2 ** 53, -1),
  fc.constantFrom('', ' ', '\u0000', '\ud800', 'x'.repeat(9_000), '0190a6f0-0000-7000-8000-000000000000'),
  fc.uuid(),
);

const frames: fc.Arbitrary<Generated> = fc.oneof(
  // Arbitrary text: almost never JSON.
  fc.string({ unit: 'binary', maxLength: 200 }).map(text),
  // Valid JSON of any shape.
  fc.json({ maxDepth: 4 }).map(text),
  // Known and unknown events with data of any shape.
  fc
    .record({
      event: fc.oneof(fc.constantFrom(...CLIENT_EVENTS), fc.string({ maxLength: 30 })),
      data: fc.oneof(
        fc.anything({ maxDepth: 3 }),
        fc.record(
          {
            requestId: awkward,
            message: awkward,
            threadId: awkward,
            runId: awkward,
            afterSeq: awkward,
            limit: awkward,
            cursor: awkward,
            before: awkward,
          },
          { requiredKeys: [] },
        ),
      ),
    })
    .map((frame) => text(JSON.stringify(frame))),
  // Deeply nested structures, within the payload limit.
  fc.integer({ min: 1, max: 20_000 }).map((depth) => text(`${'['.repeat(depth)}${']'.repeat(depth)}`)),
  fc
    .integer({ min: 1, max: 5_000 })
    .map((depth) => text(`{"event":"ping","data":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`)),
  // Numbers JSON can write but not hold.
  fc
    .constantFrom('{"event":"thread_list","data":{"requestId":"n","limit":1e999}}', '{"event":"ping","data":-1e999}')
    .map(text),
  // Binary frames.
  fc
    .uint8Array({ maxLength: 200 })
    .map((bytes) => ({ payload: Buffer.from(bytes), binary: true, expected: 'BAD_REQUEST' as const })),
);

/**
 * Garbage on a live connection: the server never crashes and never closes 1011, answers each
 * frame as the protocol says, and the same connection still runs an agent afterwards.
 */
describe('frame fuzzing', () => {
  let app: TestApp;
  let client: TestClient;

  beforeAll(async () => {
    app = await startTestApp({
      ready: true,
      env: {
        // The per-connection rate limit has its own test (limits.spec.ts): here every frame must be processed.
        WS_MAX_MESSAGES_PER_SECOND: '1000000',
        WS_MESSAGE_BURST: '1000000',
        WS_MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES),
        AGENT_MAX_RUNS_PER_USER: '1000',
        AGENT_QUEUE_SIZE: '1000',
      },
    });
    client = app.connect({ token: signToken({ sub: 'fuzzer' }) });
    await client.waitFor('connection_established');
  });

  afterAll(async () => {
    await app.close();
  });

  /** Sends `batch` again frame by frame, and names the first one whose answer disagrees with the oracle. */
  async function isolate(batch: readonly Generated[], code: string): Promise<string> {
    for (const [index, frame] of batch.entries()) {
      const before = client.frames.length;
      client.sendRaw(frame.payload, { binary: frame.binary });
      client.send('ping', { requestId: `isolate-${index}` });
      await client.waitFor('pong', (data) => data.requestId === `isolate-${index}`);
      const answers = client.frames.slice(before).filter((answer) => answer.event === 'error');
      const got = answers.filter((answer) => answer.data.code === code).length;
      const want = frame.expected === code || (code === 'VALIDATION_FAILED' && frame.badData === true) ? 1 : 0;
      if (code === 'VALIDATION_FAILED' ? got < want : got !== want) {
        return `${JSON.stringify(String(frame.payload).slice(0, 200))} (expected ${frame.expected}) was answered ${JSON.stringify(answers.map((answer) => answer.data))}`;
      }
    }
    return `no single frame disagrees with the oracle on ${code}`;
  }

  it(`answers ${FRAMES} generated frames as documented, and the connection still completes an agent run`, async () => {
    const sample = fc.sample(frames, { numRuns: FRAMES, seed: Number(process.env.FUZZ_SEED ?? 20_261_128) });
    const counted = (frame: ReceivedFrame, code: string): boolean =>
      frame.event === 'error' && frame.data.code === code;
    for (let start = 0; start < sample.length; start += BATCH) {
      const batch = sample.slice(start, start + BATCH);
      const before = client.frames.length;
      for (const frame of batch) client.sendRaw(frame.payload, { binary: frame.binary });
      // Frames of one connection are handled in order: once this is answered, the batch has been.
      const sentinel = `after-${start}`;
      client.send('ping', { requestId: sentinel });
      await client.waitFor('pong', (data) => data.requestId === sentinel);
      const answers = client.frames.slice(before);
      const badData = batch.filter((frame) => frame.badData === true).length;
      const dataAnswers = answers.filter((frame) => counted(frame, 'VALIDATION_FAILED') && frame.data.field === 'data');
      if (dataAnswers.length < badData)
        throw new Error(`batch at ${start}: ${await isolate(batch, 'VALIDATION_FAILED')}`);
      for (const code of ['BAD_REQUEST', 'UNKNOWN_EVENT'] as const) {
        const expected = batch.filter((frame) => frame.expected === code).length;
        const got = answers.filter((frame) => counted(frame, code)).length;
        if (got !== expected) throw new Error(`batch at ${start}: ${await isolate(batch, code)}`);
      }
    }
    expect(client.frames.filter((frame) => frame.event === 'error' && frame.data.code === 'INTERNAL_ERROR')).toEqual(
      [],
    );
    expect(client.socket.readyState).toBe(client.socket.OPEN);
    const run = await client.request('after-fuzzing', 'What is 2+2?');
    expect(run.at(-1)?.event).toBe('agent_completed');
  });

  it('closes a text frame that is not UTF-8 with 1007 (RFC 6455), never 1011, and keeps serving', async () => {
    const other = app.connect({ token: signToken({ sub: 'fuzzer' }) });
    await other.waitFor('connection_established');
    other.sendRaw(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    expect((await other.closed).code).toBe(1007);
    const next = app.connect({ token: signToken({ sub: 'fuzzer' }) });
    await next.waitFor('connection_established');
  });
});
