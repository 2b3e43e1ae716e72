import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { firstValueFrom, take, toArray } from 'rxjs';
import { parse } from 'yaml';
import { ConnectionRegistry } from '../../src/gateway/connection.registry.js';
import { LLM_PROVIDER } from '../../src/llm/llm.constants.js';
import { LlmUnavailableError } from '../../src/llm/llm.errors.js';
import { CloseCode } from '../../src/protocol/close-codes.js';
import { ERROR_CODES, TOOL_ERROR_CODES } from '../../src/protocol/error-codes.js';
import {
  type ChatMessage,
  type ClientRequests,
  PROTOCOL_VERSION,
  type RunEventName,
  type RunStatus,
  type ServerEventName,
  type ServerEvents,
  TERMINAL_RUN_EVENTS,
} from '../../src/protocol/events.js';
import { FatalInitError } from '../../src/readiness/readiness.errors.js';
import { GracefulShutdown } from '../../src/shutdown/graceful-shutdown.service.js';
import { ScriptedModel } from '../support/scripted-model.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';
import type { ReceivedFrame, TestClient } from '../support/ws-client.js';

// ajv-formats is CommonJS: under JsonObject ESM its default import is `module.exports`, the plugin itself,
// which also carries itself as `.default` (what TypeScript sees). `Ajv` is a named export of ajv.
const addFormats = addFormatsModule.default;

const DOCUMENT_URL = new URL('../../docs/asyncapi.yaml', import.meta.url);
const SCHEMA_BASE = 'https://agent-gateway.invalid/asyncapi/components/schemas/';
const MISSING_ID = '0190a3b2-0000-7000-8000-000000000000';

// ---------------------------------------------------------------- the protocol's names, checked against its types

/** Compile-time: `A` and `B` are the same union. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

const CLIENT_EVENTS = [
  'agent_request',
  'agent_cancel',
  'tool_approval',
  'resume',
  'thread_list',
  'thread_history',
  'ping',
] as const satisfies ReadonlyArray<keyof ClientRequests>;
const REPLY_EVENTS = [
  'connection_established',
  'pong',
  'thread_list_result',
  'thread_history_result',
  'resumed',
  'error',
] as const satisfies ReadonlyArray<Exclude<ServerEventName, RunEventName>>;
const RUN_EVENTS = [
  'agent_started',
  'agent_queued',
  'agent_thinking',
  'tool_approval_required',
  'tool_executing',
  'tool_completed',
  'tool_failed',
  'agent_message_delta',
  'agent_completed',
  'agent_cancelled',
  'agent_error',
] as const satisfies readonly RunEventName[];
const RUN_STATUSES = [
  'running',
  'completed',
  'failed',
  'cancelled',
  'interrupted',
] as const satisfies readonly RunStatus[];
const ROLES = ['user', 'assistant'] as const satisfies ReadonlyArray<ChatMessage['role']>;

/** tsc fails here when a list above misses a member of its type. */
const LISTS_ARE_COMPLETE: readonly true[] = [
  true satisfies Same<(typeof CLIENT_EVENTS)[number], keyof ClientRequests>,
  true satisfies Same<(typeof REPLY_EVENTS)[number], Exclude<ServerEventName, RunEventName>>,
  true satisfies Same<(typeof RUN_EVENTS)[number], RunEventName>,
  true satisfies Same<(typeof RUN_STATUSES)[number], RunStatus>,
  true satisfies Same<(typeof ROLES)[number], ChatMessage['role']>,
];
const SERVER_EVENTS: readonly ServerEventName[] = [...REPLY_EVENTS, ...RUN_EVENTS];

/** Every field of `T`, and whether it is required: the object literals below must name exactly those. */
type Presence<T> = { readonly [K in keyof T]-?: Partial<Pick<T, K>> extends Pick<T, K> ? 'optional' : 'required' };

const CLIENT_FIELDS: { readonly [E in keyof ClientRequests]: Presence<ClientRequests[E]> } = {
  agent_request: { requestId: 'required', message: 'required', threadId: 'optional' },
  agent_cancel: { requestId: 'optional', runId: 'required' },
  tool_approval: {
    requestId: 'optional',
    runId: 'required',
    toolCallId: 'required',
    approved: 'required',
    reason: 'optional',
  },
  resume: { requestId: 'optional', runId: 'required', afterSeq: 'required' },
  thread_list: { requestId: 'required', limit: 'optional', cursor: 'optional' },
  thread_history: { requestId: 'required', threadId: 'required', before: 'optional', limit: 'optional' },
  ping: { requestId: 'optional' },
};

const RUN_BASE = { runId: 'required', seq: 'required', requestId: 'required' } as const;

const SERVER_FIELDS: { readonly [E in ServerEventName]: Presence<ServerEvents[E]> } = {
  connection_established: {
    connectionId: 'required',
    userId: 'required',
    protocolVersion: 'required',
    heartbeatMs: 'required',
    serverTime: 'required',
  },
  pong: { requestId: 'optional', serverTime: 'required' },
  thread_list_result: { requestId: 'required', threads: 'required', nextCursor: 'optional' },
  thread_history_result: {
    requestId: 'required',
    threadId: 'required',
    messages: 'required',
    nextBefore: 'optional',
    activeRun: 'optional',
  },
  resumed: {
    requestId: 'optional',
    runId: 'required',
    threadId: 'required',
    recovered: 'required',
    status: 'required',
    replayed: 'required',
    message: 'optional',
    error: 'optional',
  },
  error: {
    code: 'required',
    message: 'required',
    retryable: 'required',
    requestId: 'optional',
    field: 'optional',
    correlationId: 'optional',
    retryAfterMs: 'optional',
    missing: 'optional',
    unprocessedRequestIds: 'optional',
    unprocessedCount: 'optional',
  },
  agent_started: { ...RUN_BASE, threadId: 'required', userMessage: 'required' },
  agent_queued: { ...RUN_BASE, position: 'required' },
  agent_thinking: { ...RUN_BASE, step: 'required', text: 'optional' },
  tool_approval_required: { ...RUN_BASE, toolCallId: 'required', name: 'required', arguments: 'required' },
  tool_executing: { ...RUN_BASE, callId: 'required', tool: 'required', args: 'required' },
  tool_completed: { ...RUN_BASE, callId: 'required', tool: 'required', result: 'required' },
  tool_failed: { ...RUN_BASE, callId: 'required', tool: 'required', error: 'required' },
  agent_message_delta: { ...RUN_BASE, text: 'required' },
  agent_completed: { ...RUN_BASE, threadId: 'required', message: 'required', usage: 'required' },
  agent_cancelled: RUN_BASE,
  agent_error: {
    runId: 'optional',
    seq: 'optional',
    requestId: 'required',
    code: 'required',
    message: 'required',
    retryable: 'required',
    retryAfterMs: 'optional',
    correlationId: 'optional',
  },
};

// ---------------------------------------------------------------- the document

type JsonObject = Record<string, unknown>;

interface Ref {
  readonly $ref: string;
}

interface MessageObject {
  readonly name: string;
  readonly payload: JsonObject & {
    readonly properties: { readonly event: { readonly const: string }; readonly data: Ref };
  };
  readonly examples?: ReadonlyArray<{ readonly name?: string; readonly payload: unknown }>;
}

interface CloseCodeEntry {
  readonly code: number;
  readonly name: string;
  readonly reconnect: string;
}

interface AsyncApiDocument {
  readonly asyncapi: string;
  readonly info: { readonly title: string; readonly version: string };
  readonly servers: Record<
    string,
    { readonly host: string; readonly protocol: string; readonly security: readonly Ref[] }
  >;
  readonly channels: Record<
    string,
    {
      readonly address: string;
      readonly messages: Record<string, Ref>;
      readonly servers: readonly Ref[];
      readonly 'x-close-codes': readonly CloseCodeEntry[];
    }
  >;
  readonly operations: Record<
    string,
    { readonly action: 'send' | 'receive'; readonly channel: Ref; readonly messages: readonly Ref[] }
  >;
  readonly components: {
    readonly schemas: Record<string, JsonObject>;
    readonly messages: Record<string, MessageObject>;
    readonly securitySchemes: Record<string, JsonObject>;
  };
}

const doc = parse(readFileSync(DOCUMENT_URL, 'utf8')) as AsyncApiDocument;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value a local `$ref` (`#/a/b`, JSON Pointer) points at in the document, or undefined. */
function pointer(ref: string): unknown {
  if (!ref.startsWith('#/')) throw new Error(`only local $refs are expected, got ${ref}`);
  return ref
    .slice(2)
    .split('/')
    .map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce<unknown>(
      (node, key) => (isObject(node) || Array.isArray(node) ? (node as JsonObject)[key] : undefined),
      doc,
    );
}

/** Follows `$ref`s until a value that is not a reference. */
function deref<T>(value: T | Ref): T {
  let current: unknown = value;
  for (let hops = 0; isObject(current) && typeof current.$ref === 'string'; hops += 1) {
    if (hops > 10) throw new Error(`$ref cycle at ${current.$ref}`);
    current = pointer(current.$ref);
  }
  return current as T;
}

function refsIn(node: unknown, at = '#'): Array<{ at: string; ref: string }> {
  if (Array.isArray(node)) return node.flatMap((item, index) => refsIn(item, `${at}/${index}`));
  if (!isObject(node)) return [];
  return Object.entries(node).flatMap(([key, value]) =>
    key === '$ref' && typeof value === 'string' ? [{ at, ref: value }] : refsIn(value, `${at}/${key}`),
  );
}

/** A copy of a schema whose `#/components/schemas/X` refs point at the `$id` ajv knows `X` by. */
function forAjv(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(forAjv);
  if (!isObject(node)) return node;
  return Object.fromEntries(
    Object.entries(node).map(([key, value]) => {
      if (key !== '$ref' || typeof value !== 'string') return [key, forAjv(value)];
      const match = /^#\/components\/schemas\/([^/]+)$/u.exec(value);
      if (match === null) throw new Error(`a schema may only $ref a components/schemas entry, got ${value}`);
      return [key, `${SCHEMA_BASE}${match[1]}`];
    }),
  );
}

// Strict mode: a misspelt keyword (`additionalProperty`, `minLenght`) fails here instead of being ignored.
// Not strictTypes: the `if` conditions (`required: [code]`) rightly leave the type to the schema around them.
const ajv = new Ajv({ strict: true, strictTypes: false, strictRequired: false, allErrors: true });
addFormats(ajv);
for (const [name, schema] of Object.entries(doc.components.schemas)) {
  ajv.addSchema({ ...(forAjv(schema) as JsonObject), $id: `${SCHEMA_BASE}${name}` });
}

interface Message {
  readonly key: string;
  readonly message: MessageObject;
  readonly data: JsonObject;
  readonly validate: ValidateFunction;
}

function messagesOf(action: 'send' | 'receive'): Map<string, Message> {
  const operations = Object.values(doc.operations).filter((operation) => operation.action === action);
  const refs = operations.flatMap((operation) => operation.messages);
  return new Map(
    refs.map((ref) => {
      const key = ref.$ref.split('/').at(-1) ?? '';
      const message = deref<MessageObject>(ref);
      const data = deref<JsonObject>(message.payload.properties.data);
      return [
        message.payload.properties.event.const,
        { key, message, data, validate: ajv.compile(forAjv(message.payload) as JsonObject) },
      ];
    }),
  );
}

const clientMessages = messagesOf('send');
const serverMessages = messagesOf('receive');

/** Why `frame` does not match the document (empty: it does). */
function problemsOf(frame: unknown, messages: ReadonlyMap<string, Message>): string[] {
  const event = isObject(frame) ? frame.event : undefined;
  const message = typeof event === 'string' ? messages.get(event) : undefined;
  if (message === undefined) return [`no message for event ${JSON.stringify(event)}: ${JSON.stringify(frame)}`];
  if (message.validate(frame)) return [];
  return [
    `${String(event)}: ${ajv.errorsText(message.validate.errors, { dataVar: 'frame' })} in ${JSON.stringify(frame)}`,
  ];
}

function schemaNamed(name: string): JsonObject {
  const schema = doc.components.schemas[name];
  if (schema === undefined) throw new Error(`components/schemas/${name} is missing`);
  return schema;
}

/** Every `const`/`enum` value the document constrains a `code` property to, anywhere under `node`. */
function codeValuesIn(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(codeValuesIn);
  if (!isObject(node)) return [];
  return Object.entries(node).flatMap(([key, value]) => {
    const own =
      key === 'code' && isObject(value)
        ? [...(Array.isArray(value.enum) ? value.enum : []), ...('const' in value ? [value.const] : [])]
        : [];
    return [...own.map(String), ...codeValuesIn(value)];
  });
}

function sorted<T>(values: Iterable<T>): T[] {
  return [...values].sort();
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

describe('docs/asyncapi.yaml', () => {
  it('is an AsyncAPI 3.0.0 document whose every $ref resolves', () => {
    expect(doc.asyncapi).toBe('3.0.0');
    expect(doc.info.title).toEqual(expect.any(String));
    const dangling = refsIn(doc).filter(({ ref }) => pointer(ref) === undefined);
    expect(dangling).toEqual([]);
  });

  it('describes the socket: ws(s)://{host}/ws, authenticated by Bearer header or ?token=', () => {
    const channels = Object.values(doc.channels);
    expect(channels).toHaveLength(1);
    const [socket] = channels;
    expect(socket?.address).toBe('/ws');
    const servers = socket?.servers.map((ref) => deref<AsyncApiDocument['servers'][string]>(ref)) ?? [];
    expect(servers.map((server) => server.protocol).sort()).toEqual(['ws', 'wss']);
    for (const server of servers) {
      expect(server.host).toBe('{host}');
      expect(server.security.map((scheme) => deref(scheme))).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ type: 'http', scheme: 'bearer' }),
          expect.objectContaining({ type: 'httpApiKey', in: 'query', name: 'token' }),
        ]),
      );
    }
  });

  it('has one send operation with every client request and one receive operation with every server event', () => {
    expect(LISTS_ARE_COMPLETE).toHaveLength(5);
    const actions = Object.values(doc.operations).map((operation) => operation.action);
    expect(sorted(actions)).toEqual(['receive', 'send']);
    for (const operation of Object.values(doc.operations)) expect(operation.channel.$ref).toBe('#/channels/socket');
    expect(sorted(clientMessages.keys())).toEqual(sorted(CLIENT_EVENTS));
    expect(sorted(serverMessages.keys())).toEqual(sorted(SERVER_EVENTS));
    expect(TERMINAL_RUN_EVENTS.every((event) => serverMessages.has(event))).toBe(true);
    // The channel lists exactly the messages of its operations, each under its event name.
    const channelMessages = Object.keys(doc.channels.socket?.messages ?? {});
    expect(sorted(channelMessages)).toEqual(sorted([...CLIENT_EVENTS, ...SERVER_EVENTS]));
    for (const [event, { key, message }] of [...clientMessages, ...serverMessages]) {
      expect({ key, name: message.name }).toEqual({ key: event, name: event });
    }
  });

  it('gives every message the fields of its TypeScript type, required exactly where the type requires them', () => {
    const expected: Array<{ event: string; fields: Readonly<Record<string, 'required' | 'optional'>> }> = [
      ...Object.entries(CLIENT_FIELDS).map(([event, fields]) => ({ event, fields })),
      ...Object.entries(SERVER_FIELDS).map(([event, fields]) => ({ event, fields })),
    ];
    for (const { event, fields } of expected) {
      const message = clientMessages.get(event) ?? serverMessages.get(event);
      if (message === undefined) throw new Error(`the document has no message ${event}`);
      const { data } = message;
      const documented = {
        event,
        properties: sorted(Object.keys(isObject(data.properties) ? data.properties : {})),
        required: sorted((data.required as string[] | undefined) ?? []),
        additionalProperties: data.additionalProperties,
      };
      expect(documented).toEqual({
        event,
        properties: sorted(Object.keys(fields)),
        required: sorted(Object.keys(fields).filter((field) => fields[field] === 'required')),
        additionalProperties: false,
      });
    }
  });

  it('enumerates the error codes, tool error codes, run statuses and roles of src/protocol', () => {
    expect(schemaNamed('ErrorCode').enum).toEqual([...ERROR_CODES]);
    expect(schemaNamed('ToolErrorCode').enum).toEqual([...TOOL_ERROR_CODES]);
    expect(schemaNamed('RunStatus').enum).toEqual([...RUN_STATUSES]);
    expect(schemaNamed('Role').enum).toEqual([...ROLES]);
    // Every code a condition names (which codes are retryable, need `field`, may be refused…) exists.
    // ToolError.code refers to ToolErrorCode by $ref, so only error codes appear here.
    const codeConditions = [
      ...codeValuesIn(doc.components.schemas),
      ...(schemaNamed('RetryableCodes').enum as string[]),
    ];
    expect(codeConditions.length).toBeGreaterThan(ERROR_CODES.length);
    expect(codeConditions.filter((code) => !(ERROR_CODES as readonly string[]).includes(code))).toEqual([]);
    const established = serverMessages.get('connection_established')?.data.properties as JsonObject;
    expect(established.protocolVersion).toEqual({ const: PROTOCOL_VERSION });
  });

  it('lists every close code of src/protocol/close-codes.ts with the reconnect advice', () => {
    const closeCodes = doc.channels.socket?.['x-close-codes'] ?? [];
    expect(closeCodes.map((entry) => entry.code)).toEqual(sorted(Object.values(CloseCode)));
    for (const [name, code] of Object.entries(CloseCode)) {
      expect(closeCodes.find((entry) => entry.code === code)?.name).toBe(name);
    }
    expect(closeCodes.find((entry) => entry.code === CloseCode.POLICY_VIOLATION)?.reconnect).toBe(
      'never-with-same-token',
    );
    for (const entry of closeCodes) expect(entry.reconnect).toEqual(expect.any(String));
  });

  it('has examples that match their own messages', () => {
    const examples = [...clientMessages.values(), ...serverMessages.values()].flatMap(({ message }) =>
      (message.examples ?? []).map((example) => ({ messages: clientMessages.has(message.name), example })),
    );
    expect(examples.length).toBeGreaterThanOrEqual(CLIENT_EVENTS.length + SERVER_EVENTS.length);
    const problems = examples.flatMap(({ messages, example }) =>
      problemsOf(example.payload, messages ? clientMessages : serverMessages),
    );
    expect(problems).toEqual([]);
  });

  it('rejects a frame with an unknown field, a missing required field or the wrong event', () => {
    for (const messages of [clientMessages, serverMessages]) {
      for (const [event, { message, data, validate }] of messages) {
        const example = message.examples?.[0]?.payload as { event: string; data: JsonObject };
        expect(problemsOf(example, messages)).toEqual([]);
        const extraData = clone(example);
        extraData.data.unexpected = true;
        const extraTop = { ...clone(example), extra: 1 };
        const noData = { event };
        // Validated against this event's message, whatever event it names.
        const otherEvent = { ...clone(example), event: event === 'ping' ? 'pong' : 'ping' };
        const wrong: unknown[] = [extraData, extraTop, noData];
        for (const field of (data.required as string[] | undefined) ?? []) {
          const missing = clone(example);
          delete missing.data[field];
          wrong.push(missing);
        }
        wrong.push(otherEvent);
        const accepted = wrong.filter((frame) => validate(frame));
        expect({ event, accepted }).toEqual({ event, accepted: [] });
      }
    }
  });

  it.each([
    ['an unknown error code', 'error', { code: 'NOPE', message: 'x', retryable: false }],
    ['VALIDATION_FAILED without field', 'error', { code: 'VALIDATION_FAILED', message: 'x', retryable: false }],
    [
      'a retryable flag that contradicts the code',
      'error',
      { code: 'RATE_LIMITED', message: 'x', retryable: false, retryAfterMs: 1 },
    ],
    [
      'SERVICE_NOT_READY without missing',
      'error',
      { code: 'SERVICE_NOT_READY', message: 'x', retryable: true, retryAfterMs: 1 },
    ],
    [
      'an INTERNAL_ERROR correlationId that is not a UUID',
      'error',
      { code: 'INTERNAL_ERROR', message: 'x', retryable: false, correlationId: 'abc' },
    ],
    [
      'a refusal with seq but no runId',
      'agent_error',
      { requestId: 'r', seq: 2, code: 'SERVER_BUSY', message: 'x', retryable: true, retryAfterMs: 1 },
    ],
    [
      'a refusal with a run failure code',
      'agent_error',
      { requestId: 'r', code: 'RUN_TIMEOUT', message: 'x', retryable: true },
    ],
    [
      'a run error with a refusal-only code',
      'agent_error',
      {
        runId: MISSING_ID,
        seq: 3,
        requestId: 'r',
        code: 'RATE_LIMITED',
        message: 'x',
        retryable: true,
        retryAfterMs: 1,
      },
    ],
    [
      'an unknown tool error code',
      'tool_failed',
      { runId: MISSING_ID, seq: 3, requestId: 'r', callId: 'c', tool: 't', error: { code: 'BOOM', message: 'x' } },
    ],
    ['seq 0', 'agent_thinking', { runId: MISSING_ID, seq: 0, requestId: 'r', step: 1 }],
    ['an upper-case runId', 'agent_cancelled', { runId: MISSING_ID.toUpperCase(), seq: 1, requestId: 'r' }],
    [
      'an unknown run status',
      'resumed',
      { runId: MISSING_ID, threadId: MISSING_ID, recovered: true, status: 'paused', replayed: 0 },
    ],
    [
      'a completed run without its answer',
      'resumed',
      { runId: MISSING_ID, threadId: MISSING_ID, recovered: true, status: 'completed', replayed: 0 },
    ],
    [
      'replayed events when not recovered',
      'resumed',
      { runId: MISSING_ID, threadId: MISSING_ID, recovered: false, status: 'running', replayed: 2 },
    ],
    ['a serverTime that is not a date-time', 'pong', { serverTime: 'yesterday' }],
    [
      'another protocol version',
      'connection_established',
      { connectionId: MISSING_ID, userId: 'a', protocolVersion: 2, heartbeatMs: 1, serverTime: '2025-01-01T00:00:00Z' },
    ],
    [
      'a system message',
      'thread_history_result',
      {
        requestId: 'r',
        threadId: MISSING_ID,
        messages: [
          { id: MISSING_ID, threadId: MISSING_ID, role: 'system', content: 'x', createdAt: '2025-01-01T00:00:00Z' },
        ],
      },
    ],
  ])('rejects %s', (_name, event, data) => {
    expect(problemsOf({ event, data }, serverMessages)).toHaveLength(1);
  });
});

// ---------------------------------------------------------------- frames captured from running apps

interface SentFrame {
  readonly event: string;
  readonly data: unknown;
}

describe('frames captured from a running app', () => {
  const apps: TestApp[] = [];
  const clients: TestClient[] = [];
  /** Well-formed requests the test sent. */
  const sent: SentFrame[] = [];
  /** Deliberately wrong requests, with the server's answer to each. */
  const refused: Array<{ readonly frame: SentFrame; readonly answer: ReceivedFrame }> = [];
  /** Close codes the server chose. */
  const serverCloses: Array<{ readonly code: number; readonly frames: readonly ReceivedFrame[] }> = [];

  const track = (client: TestClient): TestClient => {
    clients.push(client);
    return client;
  };
  const established = async (client: TestClient): Promise<TestClient> => {
    await track(client).waitFor('connection_established');
    return client;
  };
  const send = (client: TestClient, event: string, data: unknown): void => {
    sent.push({ event, data });
    client.send(event, data);
  };
  /** Sends a frame the server must refuse; resolves with its `error` answer. */
  const sendWrong = async (
    client: TestClient,
    event: string,
    data: unknown,
    match: (answer: Record<string, unknown>) => boolean,
  ): Promise<void> => {
    client.send(event, data);
    const answer = await client.waitFor('error', match);
    refused.push({ frame: { event, data }, answer });
  };
  const closedByServer = async (client: TestClient): Promise<void> => {
    const { code } = await client.closed;
    serverCloses.push({ code, frames: client.frames });
  };
  const now = (): number => Math.floor(Date.now() / 1000);

  async function driveReadyApp(): Promise<void> {
    const model = new ScriptedModel();
    const app = await startTestApp({
      ready: true,
      env: {
        AGENT_MAX_CONCURRENT_RUNS: '1',
        AGENT_QUEUE_SIZE: '1',
        SHUTDOWN_DELAY_MS: '0',
        SHUTDOWN_TIMEOUT_MS: '0',
      },
      override: (builder) => builder.overrideProvider(LLM_PROVIDER).useValue(model),
    });
    apps.push(app);
    const aliceToken = signToken({ sub: 'alice' });
    const alice = await established(app.connect({ token: aliceToken }));
    const bob = await established(app.connect({ via: 'query', token: signToken({ sub: 'bob' }) }));
    const carol = await established(app.connect({ token: signToken({ sub: 'carol' }) }));

    // ping / pong, with and without requestId.
    send(alice, 'ping', { requestId: 'ping-1' });
    await alice.waitFor('pong', (data) => data.requestId === 'ping-1');
    send(alice, 'ping', {});
    await alice.waitFor('pong', (data) => data.requestId === undefined);

    // r1 takes the only run slot: bob's run queues, carol's is refused, bob cancels his.
    send(alice, 'agent_request', { requestId: 'r1', message: 'What is 6 * 7?' });
    const r1 = await alice.waitFor('agent_started', (data) => data.requestId === 'r1');
    const r1Id = String(r1.data.runId);
    const thread1 = String(r1.data.threadId);
    const firstStep = await model.nextCall();
    send(bob, 'agent_request', { requestId: 'b1', message: 'Me next' });
    const queued = await bob.waitFor('agent_queued', (data) => data.requestId === 'b1');
    send(carol, 'agent_request', { requestId: 'c1', message: 'And me' });
    const busy = await carol.waitFor('agent_error', (data) => data.requestId === 'c1');
    expect(busy.data).toMatchObject({ code: 'SERVER_BUSY' });
    send(bob, 'agent_cancel', { requestId: 'cancel-b1', runId: queued.data.runId });
    expect((await bob.runEnd('b1')).event).toBe('agent_cancelled');

    // A second connection of alice follows r1 live.
    const follower = await established(app.connect({ token: aliceToken }));
    send(follower, 'resume', { requestId: 'follow-r1', runId: r1Id, afterSeq: 1 });
    const following = await follower.waitFor('resumed', (data) => data.requestId === 'follow-r1');
    expect(following.data).toMatchObject({ recovered: true, status: 'running' });

    // Tools: one answers, one does not exist, one gets arguments that are not JSON.
    firstStep
      .reasoning('The user wants 6 * 7; ', 'the calculator knows.')
      .text('Let me compute. ')
      .toolCall({ id: 'call-1', name: 'calculator', arguments: '{"expression":"6 * 7"}' })
      .toolCall({ id: 'call-2', name: 'weather', arguments: '{"city":"Paris"}' })
      .toolCall({ id: 'call-3', name: 'calculator', arguments: '{not json' })
      .finish();
    (await model.nextCall()).text('6 * 7 = ', '42.').finish();
    const r1End = await alice.runEnd('r1');
    expect(r1End.event).toBe('agent_completed');
    const failures = alice.runFrames(r1Id).filter((frame) => frame.event === 'tool_failed');
    expect(failures.map((frame) => (frame.data.error as { code: string }).code)).toEqual([
      'UNKNOWN_TOOL',
      'INVALID_TOOL_ARGUMENTS',
    ]);
    await follower.waitFor('agent_completed', (data) => data.runId === r1Id);

    // Replay of an ended run from storage, without requestId.
    send(alice, 'resume', { runId: r1Id, afterSeq: 0 });
    await alice.waitFor('resumed', (data) => data.runId === r1Id && data.requestId === undefined);
    await alice.waitFor('agent_completed', (data) => data.runId === r1Id && data !== r1End.data);

    // r2, in a new thread, fails; its replay carries the error.
    send(alice, 'agent_request', { requestId: 'r2', message: 'Tell me a story' });
    const r2 = await alice.waitFor('agent_started', (data) => data.requestId === 'r2');
    (await model.nextCall()).text('Once upon ').fail(new LlmUnavailableError('the model endpoint is unreachable'));
    const r2End = await alice.runEnd('r2');
    expect(r2End.data).toMatchObject({ code: 'LLM_UNAVAILABLE', seq: 4 });
    send(alice, 'resume', { requestId: 'resume-r2', runId: r2.data.runId, afterSeq: 3 });
    const resumedFailed = await alice.waitFor('resumed', (data) => data.requestId === 'resume-r2');
    expect(resumedFailed.data).toMatchObject({ status: 'failed', replayed: 1, error: { code: 'LLM_UNAVAILABLE' } });
    await alice.waitFor('agent_error', (data) => data.runId === r2.data.runId && data !== r2End.data);

    // Thread reads, two pages each.
    send(alice, 'thread_list', { requestId: 'list-1', limit: 1 });
    const list1 = await alice.waitFor('thread_list_result', (data) => data.requestId === 'list-1');
    expect(list1.data.nextCursor).toEqual(expect.any(String));
    send(alice, 'thread_list', { requestId: 'list-2', limit: 1, cursor: list1.data.nextCursor });
    expect((await alice.waitFor('thread_list_result', (data) => data.requestId === 'list-2')).data).not.toHaveProperty(
      'nextCursor',
    );
    send(alice, 'thread_history', { requestId: 'history-1', threadId: thread1, limit: 1 });
    const history1 = await alice.waitFor('thread_history_result', (data) => data.requestId === 'history-1');
    expect(history1.data.nextBefore).toEqual(expect.any(String));
    send(alice, 'thread_history', { requestId: 'history-2', threadId: thread1, before: history1.data.nextBefore });
    await alice.waitFor('thread_history_result', (data) => data.requestId === 'history-2');

    // Well-formed requests the server refuses.
    send(alice, 'resume', { requestId: 'ghost', runId: MISSING_ID, afterSeq: 0 });
    send(alice, 'thread_history', { requestId: 'no-thread', threadId: MISSING_ID });
    send(alice, 'agent_cancel', { requestId: 'late', runId: r1Id });
    const errorCodes = await Promise.all(
      ['ghost', 'no-thread', 'late'].map(async (requestId) => {
        const answer = await alice.waitFor('error', (data) => data.requestId === requestId);
        return answer.data.code;
      }),
    );
    expect(errorCodes).toEqual(['RUN_NOT_FOUND', 'THREAD_NOT_FOUND', 'RUN_NOT_ACTIVE']);

    // Frames that break the protocol: the server refuses each (and the document must too, see below).
    const byRequestId = (requestId: string) => (answer: Record<string, unknown>) => answer.requestId === requestId;
    const longId = 'x'.repeat(129);
    // An invalid requestId is never echoed: the answer names the field instead.
    const unechoed = (answer: Record<string, unknown>): boolean =>
      answer.field === 'requestId' && answer.requestId === undefined;
    await Promise.all([
      sendWrong(alice, 'launch_missiles', { requestId: 'w-event' }, byRequestId('w-event')),
      sendWrong(alice, 'agent_request', { requestId: 'w-missing' }, byRequestId('w-missing')),
      sendWrong(alice, 'agent_request', { requestId: 'w-blank', message: ' \n\t ' }, byRequestId('w-blank')),
      sendWrong(alice, 'agent_request', { requestId: longId, message: 'hi' }, unechoed),
      sendWrong(
        alice,
        'agent_request',
        { requestId: 'w-upper', message: 'hi', threadId: thread1.toUpperCase() },
        byRequestId('w-upper'),
      ),
      sendWrong(alice, 'agent_cancel', { requestId: 'w-cancel' }, byRequestId('w-cancel')),
      sendWrong(alice, 'resume', { requestId: 'w-seq', runId: r1Id, afterSeq: -1 }, byRequestId('w-seq')),
      sendWrong(alice, 'resume', { requestId: 'w-frac', runId: r1Id, afterSeq: 1.5 }, byRequestId('w-frac')),
      sendWrong(alice, 'thread_list', { requestId: 'w-limit', limit: 101 }, byRequestId('w-limit')),
      sendWrong(alice, 'thread_history', { requestId: 'w-thread', threadId: 'not-a-uuid' }, byRequestId('w-thread')),
      sendWrong(alice, 'ping', { requestId: '' }, unechoed),
      sendWrong(alice, 'ping', 'hello', (answer) => answer.field === 'data'),
    ]);
    alice.sendRaw('{"event": "ping", ');
    await alice.waitFor('error', (data) => data.code === 'BAD_REQUEST');

    // Refused at the door: one error frame, then close 1008.
    const expired = track(app.connect({ via: 'query', token: signToken({ iat: now() - 7200, exp: now() - 3600 }) }));
    const anonymousEarly = [{ event: 'ping', data: { requestId: 'never' } }];
    sent.push(...anonymousEarly);
    const anonymous = track(app.connect({ sendOnOpen: anonymousEarly }));
    await Promise.all([closedByServer(expired), closedByServer(anonymous)]);
    expect([expired, anonymous].map((client) => client.frames.map((frame) => frame.data.code))).toEqual([
      ['TOKEN_EXPIRED'],
      ['UNAUTHORIZED'],
    ]);

    // Shutdown: requests and connections refused while draining, the run in flight interrupted,
    // then every socket closed with 1012 after a SERVICE_SHUTTING_DOWN frame.
    send(alice, 'agent_request', { requestId: 'r3', message: 'Keep going', threadId: thread1 });
    await alice.waitFor('agent_started', (data) => data.requestId === 'r3');
    await model.nextCall();
    app.readiness.beginDrain();
    send(carol, 'agent_request', { requestId: 'c2', message: 'Too late?' });
    const draining = await carol.waitFor('agent_error', (data) => data.requestId === 'c2');
    expect(draining.data).toMatchObject({ code: 'SERVICE_SHUTTING_DOWN' });
    const tooLate = track(app.connect({ token: signToken({ sub: 'dave' }) }));
    await closedByServer(tooLate);
    await app.app.get(GracefulShutdown).run('asyncapi spec', () => Promise.resolve());
    expect((await alice.runEnd('r3')).data).toMatchObject({ code: 'RUN_INTERRUPTED' });
    await Promise.all([alice, bob, carol, follower].map(closedByServer));
  }

  /** More than 32 frames before `connection_established`: TOO_MANY_EARLY_FRAMES. */
  async function driveEarlyFrames(): Promise<void> {
    const app = await startTestApp({ gated: ['agent'] });
    apps.push(app);
    const early = Array.from({ length: 35 }, (_, index) => ({ event: 'ping', data: { requestId: `early-${index}` } }));
    sent.push(...early);
    const allHeld = firstValueFrom(app.app.get(ConnectionRegistry).earlyFrames$.pipe(take(early.length), toArray()));
    const client = track(app.connect({ token: signToken({ sub: 'erin' }), sendOnOpen: early }));
    await allHeld;
    app.gates.release('agent');
    const tooMany = await client.waitFor('error', (data) => data.code === 'TOO_MANY_EARLY_FRAMES');
    expect(tooMany.data.unprocessedRequestIds).toEqual(['early-32', 'early-33', 'early-34']);
    await client.waitFor('pong', (data) => data.requestId === 'early-31');
  }

  /** Start-up fails while a connection is held: SERVICE_NOT_READY, then close 1013. */
  async function driveFailedStart(): Promise<void> {
    const app = await startTestApp({ gated: ['agent'] });
    apps.push(app);
    const early = [
      { event: 'agent_request', data: { requestId: 'held-1', message: 'Are you there?' } },
      { event: 'ping', data: { requestId: 'held-2' } },
    ];
    sent.push(...early);
    const allHeld = firstValueFrom(app.app.get(ConnectionRegistry).earlyFrames$.pipe(take(early.length), toArray()));
    const client = track(app.connect({ token: signToken({ sub: 'frank' }), sendOnOpen: early }));
    await allHeld;
    app.gates.fail('agent', new FatalInitError('model file missing'));
    await closedByServer(client);
    expect(client.frames.map((frame) => frame.data)).toEqual([
      expect.objectContaining({ code: 'SERVICE_NOT_READY', unprocessedRequestIds: ['held-1', 'held-2'] }),
    ]);
  }

  /** AGENT_APPROVAL_TOOLS=calculator: one call approved, one refused, answers that find nothing waiting. */
  async function driveApprovals(): Promise<void> {
    const model = new ScriptedModel();
    const app = await startTestApp({
      ready: true,
      env: { AGENT_APPROVAL_TOOLS: 'calculator' },
      override: (builder) => builder.overrideProvider(LLM_PROVIDER).useValue(model),
    });
    apps.push(app);
    const grace = await established(app.connect({ token: signToken({ sub: 'grace' }) }));
    send(grace, 'agent_request', { requestId: 'g1', message: 'What is 6 * 7?' });
    const started = await grace.waitFor('agent_started', (data) => data.requestId === 'g1');
    const runId = String(started.data.runId);
    (await model.nextCall())
      .toolCall({ id: 'call-a', name: 'calculator', arguments: '{"expression":"6 * 7"}' })
      .toolCall({ id: 'call-b', name: 'calculator', arguments: '{"expression":"6 * 8"}' })
      .finish();
    await grace.waitFor('tool_approval_required', (data) => data.toolCallId === 'call-a');
    send(grace, 'tool_approval', { requestId: 'approve-a', runId, toolCallId: 'call-a', approved: true });
    await grace.waitFor('tool_approval_required', (data) => data.toolCallId === 'call-b');
    send(grace, 'tool_approval', { runId, toolCallId: 'call-b', approved: false, reason: 'one is enough' });
    (await model.nextCall()).text('42.').finish();
    expect((await grace.runEnd('g1')).event).toBe('agent_completed');
    send(grace, 'tool_approval', { requestId: 'approve-late', runId, toolCallId: 'call-b', approved: true });
    expect((await grace.waitFor('error', (data) => data.requestId === 'approve-late')).data.code).toBe(
      'RUN_NOT_ACTIVE',
    );
    await sendWrong(
      grace,
      'tool_approval',
      { requestId: 'w-approval', runId, toolCallId: 'call-b' },
      (answer) => answer.requestId === 'w-approval',
    );

    send(grace, 'agent_request', { requestId: 'g2', message: 'What is 2 + 2?' });
    const second = await grace.waitFor('agent_started', (data) => data.requestId === 'g2');
    (await model.nextCall())
      .toolCall({ id: 'call-c', name: 'calculator', arguments: '{"expression":"2 + 2"}' })
      .finish();
    await grace.waitFor('tool_approval_required', (data) => data.toolCallId === 'call-c');
    send(grace, 'tool_approval', {
      requestId: 'wrong-call',
      runId: second.data.runId,
      toolCallId: 'call-x',
      approved: true,
    });
    expect((await grace.waitFor('error', (data) => data.requestId === 'wrong-call')).data.code).toBe(
      'TOOL_CALL_NOT_PENDING',
    );
    send(grace, 'agent_cancel', { runId: second.data.runId });
    expect((await grace.runEnd('g2')).event).toBe('agent_cancelled');
  }

  beforeAll(async () => {
    await Promise.all([driveReadyApp(), driveEarlyFrames(), driveFailedStart(), driveApprovals()]);
  });

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
  });

  const receivedFrames = (): ReceivedFrame[] => clients.flatMap((client) => client.frames);

  it('receives only frames that match the message of their event', () => {
    const frames = receivedFrames();
    expect(frames.length).toBeGreaterThan(100);
    expect(frames.flatMap((frame) => problemsOf(frame, serverMessages))).toEqual([]);
  });

  it('receives every server message of the document, and no event the document does not list', () => {
    const received = new Set(receivedFrames().map((frame) => frame.event));
    expect(sorted(received)).toEqual(sorted(serverMessages.keys()));
    const codes = new Set(
      receivedFrames()
        .filter((frame) => frame.event === 'error' || frame.event === 'agent_error')
        .map((frame) => String(frame.data.code)),
    );
    expect(sorted(codes)).toEqual([
      'BAD_REQUEST',
      'LLM_UNAVAILABLE',
      'RUN_INTERRUPTED',
      'RUN_NOT_ACTIVE',
      'RUN_NOT_FOUND',
      'SERVER_BUSY',
      'SERVICE_NOT_READY',
      'SERVICE_SHUTTING_DOWN',
      'THREAD_NOT_FOUND',
      'TOKEN_EXPIRED',
      'TOOL_CALL_NOT_PENDING',
      'TOO_MANY_EARLY_FRAMES',
      'UNAUTHORIZED',
      'UNKNOWN_EVENT',
      'VALIDATION_FAILED',
    ]);
  });

  it('sent only requests that match the message of their event', () => {
    expect(sent.length).toBeGreaterThan(50);
    expect(sorted(new Set(sent.map((frame) => frame.event)))).toEqual(sorted(clientMessages.keys()));
    expect(sent.flatMap((frame) => problemsOf(frame, clientMessages))).toEqual([]);
  });

  it('rejects every request the server refused as invalid', () => {
    expect(refused).toHaveLength(13);
    for (const { frame, answer } of refused) {
      expect({ frame, code: answer.data.code }).toEqual({
        frame,
        code: clientMessages.has(frame.event) ? 'VALIDATION_FAILED' : 'UNKNOWN_EVENT',
      });
      expect({ frame, problems: problemsOf(frame, clientMessages).length }).toEqual({ frame, problems: 1 });
    }
  });

  it('closes only with codes the document lists, after exactly one error frame when it refuses', () => {
    const listed = (doc.channels.socket?.['x-close-codes'] ?? []).map((entry) => entry.code);
    const seen = sorted(new Set(serverCloses.map((close) => close.code)));
    expect(seen).toEqual([CloseCode.POLICY_VIOLATION, CloseCode.SERVICE_RESTART, CloseCode.TRY_AGAIN_LATER]);
    expect(seen.filter((code) => !listed.includes(code))).toEqual([]);
    for (const { code, frames } of serverCloses) {
      expect({ code, last: frames.at(-1)?.event }).toEqual({ code, last: 'error' });
    }
  });
});
