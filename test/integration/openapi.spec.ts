import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { OpenAPIObject } from '@nestjs/swagger';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { Express } from 'express';
import { parse } from 'yaml';
import { HTTP_STATUS_OF } from '../../src/errors/http-status.js';
import { createOpenApiDocument, serializeOpenApiDocument } from '../../src/http/openapi.document.js';
import type { ErrorCode } from '../../src/protocol/error-codes.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';

// ajv-formats is CommonJS: under ESM its default import is `module.exports`, the plugin itself,
// which also carries itself as `.default` (what TypeScript sees).
const addFormats = addFormatsModule.default;

const DOCUMENT_URL = new URL('../../docs/openapi.json', import.meta.url);
const ASYNCAPI_URL = new URL('../../docs/asyncapi.yaml', import.meta.url);
const REGENERATE = 'npm run build && node dist/http/openapi.command.js > docs/openapi.json';
const SCHEMA_BASE = 'https://agent-gateway.invalid/openapi/components/schemas/';
const MISSING_ID = '0190a3b2-0000-7000-8000-000000000000';
const ALLOWED_ORIGIN = 'https://chat.example.com';
/** Every request past this many from one address in a minute is refused (the test makes fewer before its burst). */
const ANONYMOUS_PER_MINUTE = 12;
/** The chat page and its files: served over HTTP, but not part of the API. */
const PAGE_ROUTES = ['GET /', 'GET /chat.css', 'GET /chat.js', 'GET /page/{file}', 'GET /sdk/{part}/{file}'];

type JsonObject = Record<string, unknown>;

interface MediaType {
  readonly schema?: JsonObject;
}

interface ResponseObject {
  readonly description: string;
  readonly content?: Record<string, MediaType>;
  readonly headers?: Record<string, { readonly required?: boolean; readonly schema: JsonObject }>;
}

interface Operation {
  readonly operationId: string;
  readonly responses: Record<string, ResponseObject>;
  readonly requestBody?: { readonly content: Record<string, MediaType> };
  readonly security?: ReadonlyArray<Record<string, unknown>>;
}

/** One answer the running service gave, as the client saw it. */
interface Answer {
  readonly operation: string;
  readonly status: number;
  readonly mediaType: string;
  readonly headers: Headers;
  readonly body: unknown;
}

const committedText = readFileSync(DOCUMENT_URL, 'utf8');
const doc = JSON.parse(committedText) as OpenAPIObject;
const asyncapi = parse(readFileSync(ASYNCAPI_URL, 'utf8')) as { components: { schemas: Record<string, JsonObject> } };
const schemas = (doc.components?.schemas ?? {}) as Record<string, JsonObject>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every operation, as `METHOD /path/{param}`. */
const operations = new Map<string, Operation>(
  Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item as Record<string, unknown>)
      .filter(([method]) => ['get', 'post', 'put', 'patch', 'delete'].includes(method))
      .map(([method, operation]) => [`${method.toUpperCase()} ${path}`, operation as Operation]),
  ),
);

function operationNamed(key: string): Operation {
  const operation = operations.get(key);
  if (operation === undefined) throw new Error(`the document has no operation ${key}`);
  return operation;
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

// OpenAPI 3.1 schemas are JSON Schema 2020-12. Strict, as in asyncapi.spec.ts: a misspelt keyword fails.
const ajv = new Ajv2020({ strict: true, strictTypes: false, strictRequired: false, allErrors: true });
addFormats(ajv);
for (const [name, schema] of Object.entries(schemas)) {
  ajv.addSchema({ ...(forAjv(schema) as JsonObject), $id: `${SCHEMA_BASE}${name}` });
}
const validators = new Map<JsonObject, ValidateFunction>();
function validatorOf(schema: JsonObject): ValidateFunction {
  const known = validators.get(schema);
  if (known !== undefined) return known;
  const validate = ajv.compile(forAjv(schema) as JsonObject);
  validators.set(schema, validate);
  return validate;
}

/** Why `answer` does not match the document (empty: it does). */
function problemsOf(answer: Answer): string[] {
  const where = `${answer.operation} ${answer.status}`;
  const response = operations.get(answer.operation)?.responses[String(answer.status)];
  if (response === undefined) return [`${where}: not in the document`];
  const problems: string[] = [];
  for (const [name, header] of Object.entries(response.headers ?? {})) {
    const value = answer.headers.get(name);
    if (value === null) {
      if (header.required === true) problems.push(`${where}: no ${name} header`);
      continue;
    }
    const typed = header.schema.type === 'integer' && /^\d+$/u.test(value) ? Number(value) : value;
    const validate = validatorOf(header.schema);
    if (!validate(typed)) problems.push(`${where}: ${name}: ${ajv.errorsText(validate.errors)}`);
  }
  const schema = response.content?.[answer.mediaType]?.schema;
  if (schema === undefined) return [...problems, `${where}: no schema for ${answer.mediaType}`];
  const validate = validatorOf(schema);
  if (!validate(answer.body)) {
    problems.push(
      `${where}: ${ajv.errorsText(validate.errors, { dataVar: 'body' })} in ${JSON.stringify(answer.body)}`,
    );
  }
  return problems;
}

/** The error codes a response's schema allows (`allOf: [ErrorPayload, {code: {enum}}]`), or undefined. */
function errorCodesOf(response: ResponseObject): ErrorCode[] | undefined {
  const schema = response.content?.['application/json']?.schema;
  const parts = Array.isArray(schema?.allOf) ? (schema.allOf as JsonObject[]) : [];
  if (!parts.some((part) => part.$ref === '#/components/schemas/ErrorPayload')) return undefined;
  const narrowed = parts.find((part) => isObject(part.properties));
  const code = (narrowed?.properties as JsonObject | undefined)?.code;
  return isObject(code) && Array.isArray(code.enum) ? (code.enum as ErrorCode[]) : undefined;
}

function sorted<T>(values: Iterable<T>): T[] {
  return [...values].sort();
}

describe('docs/openapi.json', () => {
  let app: TestApp;
  const answers: Answer[] = [];
  const devTokenRequests: unknown[] = [];

  /** Calls `operation` (`METHOD /path/{param}`) with `params` filled in, and records the answer. */
  async function call(
    operation: string,
    options: { params?: Record<string, string>; query?: string; token?: string; body?: unknown; origin?: string } = {},
  ): Promise<Answer> {
    const [method = '', template = ''] = operation.split(' ');
    const path = template.replace(/\{(\w+)\}/gu, (_match, name: string) =>
      encodeURIComponent(options.params?.[name] ?? ''),
    );
    const response = await fetch(new URL(`${path}${options.query ?? ''}`, app.url), {
      method,
      headers: {
        ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(options.origin === undefined ? {} : { origin: options.origin }),
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    const mediaType = (response.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
    const text = await response.text();
    const answer: Answer = {
      operation,
      status: response.status,
      mediaType,
      headers: response.headers,
      body: mediaType === 'application/json' ? JSON.parse(text) : text,
    };
    answers.push(answer);
    return answer;
  }

  beforeAll(async () => {
    app = await startTestApp({
      gated: ['llm'],
      env: {
        ALLOWED_ORIGINS: ALLOWED_ORIGIN,
        HTTP_MAX_REQUESTS_PER_SECOND: '1',
        HTTP_REQUEST_BURST: '20',
        HTTP_MAX_ANONYMOUS_REQUESTS_PER_MINUTE: String(ANONYMOUS_PER_MINUTE),
      },
    });
    const token = signToken({ sub: 'olivia' });

    // Starting: the gated routes and the readiness probe refuse, liveness answers.
    await app.gates.reached('llm');
    expect((await call('GET /threads', { token })).status).toBe(503);
    expect((await call('GET /health/ready')).status).toBe(503);
    expect((await call('GET /health/live')).status).toBe(200);

    app.gates.release('llm');
    await app.readiness.whenReady(10_000);
    expect((await call('GET /health/ready')).status).toBe(200);

    // Two threads, so that the first page of one has a cursor and a history page has `nextBefore`.
    const client = await app.connectAs('olivia');
    const first = await client.request('first', 'What is 12 * (3 + 4)?');
    await client.request('second', 'And 2 + 2?');
    const threadId = first[0]?.data.threadId as string;

    const list = await call('GET /threads', { token, query: '?limit=1' });
    expect(list.body).toMatchObject({ threads: [expect.any(Object)], nextCursor: expect.any(String) });
    const history = await call('GET /threads/{threadId}/messages', { token, params: { threadId }, query: '?limit=1' });
    expect(history.body).toMatchObject({ threadId, messages: [{ role: 'assistant' }], nextBefore: expect.any(String) });

    expect((await call('GET /threads', { token, query: '?limit=0' })).status).toBe(400);
    expect((await call('GET /threads/{threadId}/messages', { token, params: { threadId: 'nope' } })).status).toBe(400);
    expect((await call('GET /threads')).status).toBe(401);
    const now = Math.floor(Date.now() / 1000);
    const expired = signToken({ sub: 'olivia', iat: now - 7200, exp: now - 3600 });
    expect((await call('GET /threads', { token: expired })).body).toMatchObject({ code: 'TOKEN_EXPIRED' });
    const unknown = await call('GET /threads/{threadId}/messages', { token, params: { threadId: MISSING_ID } });
    expect(unknown.status).toBe(404);

    const devToken = { userId: 'olivia', ttlSeconds: 120 };
    const badDevToken = { userId: 'not a user id!' };
    devTokenRequests.push(devToken, badDevToken);
    const issued = await call('POST /dev/token', { body: devToken });
    expect(issued.status).toBe(200);
    expect((await call('POST /dev/token', { body: badDevToken })).status).toBe(400);
    // The token it issued is one the API takes.
    const issuedToken = (issued.body as { token: string }).token;
    expect((await call('GET /threads', { token: issuedToken })).status).toBe(200);

    expect((await call('GET /metrics')).status).toBe(200);
    expect((await call('GET /openapi.json')).status).toBe(200);

    // A page from another origin is refused before any route runs; the allowed one is served.
    const evil = 'https://evil.example';
    expect((await call('GET /threads', { token, origin: evil })).status).toBe(403);
    expect((await call('POST /dev/token', { body: devToken, origin: evil })).status).toBe(403);
    expect((await call('GET /health/ready', { origin: evil })).status).toBe(403);
    expect((await call('GET /threads', { token, origin: ALLOWED_ORIGIN })).status).toBe(200);

    // Over the per-user budget (burst 20, then 1 a second), and over the per-address one.
    const hasty = signToken({ sub: 'hasty' });
    let status = 0;
    for (let calls = 0; calls < 60 && status !== 429; calls += 1) {
      status = (await call('GET /threads', { token: hasty })).status;
    }
    expect(status).toBe(429);
    status = 0;
    for (let calls = 0; calls <= ANONYMOUS_PER_MINUTE && status !== 429; calls += 1) {
      status = (await call('POST /dev/token', { body: devToken })).status;
    }
    expect(status).toBe(429);

    // Draining: the gated routes refuse with SERVICE_SHUTTING_DOWN, the probe with 503.
    app.readiness.beginDrain();
    expect((await call('GET /threads', { token })).body).toMatchObject({ code: 'SERVICE_SHUTTING_DOWN' });
    expect((await call('GET /health/ready')).status).toBe(503);
  });

  afterAll(async () => {
    await app.close();
  });

  it(`is what the code generates now (regenerate it with: ${REGENERATE})`, () => {
    const generated = serializeOpenApiDocument(createOpenApiDocument(app.app));
    // The parsed documents first, for a readable diff; then the text, for the formatting.
    expect({ regenerate: REGENERATE, document: doc }).toEqual({
      regenerate: REGENERATE,
      document: JSON.parse(generated),
    });
    expect(committedText === generated ? 'up to date' : `stale: ${REGENERATE}`).toBe('up to date');
  });

  it('is an OpenAPI 3.1 document of agent-gateway at the version of package.json, secured by bearer JWTs', () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: 'agent-gateway', version });
    expect(doc.components?.securitySchemes?.bearerHeader).toMatchObject({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
    });
    const secured = [...operations].filter(([, operation]) => operation.security !== undefined).map(([key]) => key);
    expect(sorted(secured)).toEqual(['GET /threads', 'GET /threads/{threadId}/messages']);
    for (const key of secured) expect(operationNamed(key).security).toEqual([{ bearerHeader: [] }]);
  });

  it('describes every route the application registers, except the chat page and its files', () => {
    // Express 5's layers, whose types leave out `route.methods`.
    const layers = (app.app.getHttpAdapter().getInstance() as Express).router.stack as unknown as Array<{
      route?: { path: string; methods: Record<string, boolean> };
    }>;
    // Route middleware (the probes' Cache-Control) registers its own layer for the same route.
    const registered = layers.flatMap(({ route }) =>
      route === undefined
        ? []
        : Object.keys(route.methods).map(
            (method) => `${method.toUpperCase()} ${route.path.replace(/:(\w+)/gu, '{$1}')}`,
          ),
    );
    expect(registered).toEqual(expect.arrayContaining(PAGE_ROUTES));
    const api = new Set(registered.filter((route) => !PAGE_ROUTES.includes(route)));
    expect(sorted(operations.keys())).toEqual(sorted(api));
  });

  it('gives every answer it lists a schema: ErrorPayload narrowed to codes of that status, or a named payload', () => {
    for (const [key, operation] of operations) {
      expect({ key, statuses: Object.keys(operation.responses).length > 0 }).toEqual({ key, statuses: true });
      for (const [status, response] of Object.entries(operation.responses)) {
        const where = `${key} ${status}`;
        const media = Object.entries(response.content ?? {});
        expect({ where, media: media.length }).toEqual({ where, media: 1 });
        const [mediaType, { schema } = {}] = media[0] ?? [];
        const codes = errorCodesOf(response);
        if (codes !== undefined) {
          expect({ where, codes: codes.length > 0 }).toEqual({ where, codes: true });
          expect({ where, statuses: codes.map((code) => HTTP_STATUS_OF[code]) }).toEqual({
            where,
            statuses: codes.map(() => Number(status)),
          });
        } else if (mediaType === 'application/json') {
          // A success payload, or the probe's Terminus body (its 503 is not an error of the API).
          expect({ where, ref: schema?.$ref }).toEqual({
            where,
            ref: expect.stringMatching(/^#\/components\/schemas\//u),
          });
          expect({ where, error: Number(status) < 400 || key === 'GET /health/ready' }).toEqual({ where, error: true });
        } else {
          expect({ where, mediaType, schema }).toEqual({ where, mediaType: 'text/plain', schema: { type: 'string' } });
        }
      }
    }
  });

  it('lets every operation answer 403 ORIGIN_NOT_ALLOWED: the CORS policy runs before any route', () => {
    const without = [...operations]
      .filter(
        ([, operation]) =>
          !(errorCodesOf(operation.responses['403'] ?? { description: '' }) ?? []).includes('ORIGIN_NOT_ALLOWED'),
      )
      .map(([key]) => key);
    expect(without).toEqual([]);
  });

  it('has every $ref resolve, and shares its frame schemas word for word with docs/asyncapi.yaml', () => {
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/gu)].map(
      (match) => match[1],
    );
    expect(refs.length).toBeGreaterThan(20);
    const dangling = refs.filter((name) => name === undefined || schemas[name] === undefined);
    expect(dangling).toEqual([]);

    const frames = asyncapi.components.schemas;
    const shared = [
      ...['Uuid', 'Timestamp', 'ErrorCode', 'Role', 'ChatMessage', 'ThreadSummary', 'RetryableCodes'],
      ...['ToolStep', 'ToolError', 'ToolErrorCode', 'ActiveRun'],
    ];
    for (const name of [...shared, 'RetryableMatchesCode']) {
      expect({ name, schema: schemas[name] }).toEqual({ name, schema: frames[name] });
    }
    // The HTTP pages are the frames' payloads without `requestId`.
    for (const [page, frame] of [
      ['ThreadList', 'ThreadListResult'],
      ['ThreadHistory', 'ThreadHistoryResult'],
    ] as const) {
      const { requestId: _requestId, ...properties } = frames[frame]?.properties as JsonObject;
      const required = (frames[frame]?.required as string[]).filter((field) => field !== 'requestId');
      expect({ page, properties: schemas[page]?.properties, required: schemas[page]?.required }).toEqual({
        page,
        properties,
        required,
      });
    }
    // HTTP error bodies carry a subset of the error frame's fields, each defined the same way.
    const errorFrame = frames.ErrorPayload?.properties as JsonObject;
    const errorBody = schemas.ErrorPayload?.properties as JsonObject;
    expect(Object.keys(errorBody).length).toBeGreaterThanOrEqual(7);
    for (const [field, schema] of Object.entries(errorBody)) {
      expect({ field, schema }).toEqual({ field, schema: errorFrame[field] });
    }
  });

  it('derives the POST /dev/token body from its zod schema: what the route takes, it takes', () => {
    const body = operationNamed('POST /dev/token').requestBody?.content['application/json']?.schema ?? {};
    const validate = validatorOf(body);
    const [accepted, refused] = devTokenRequests;
    expect(validate(accepted)).toBe(true);
    expect(validate(refused)).toBe(false);
    expect(validate({ userId: 'olivia', ttlSeconds: 86_401 })).toBe(false);
  });

  it('matches every answer the service gave: status, media type, headers and body', () => {
    expect(answers.length).toBeGreaterThan(15);
    expect(answers.flatMap(problemsOf)).toEqual([]);
    // Retry-After says what the body says, in whole seconds.
    const retries = answers.filter((answer) => isObject(answer.body) && typeof answer.body.retryAfterMs === 'number');
    expect(retries.length).toBeGreaterThanOrEqual(2);
    for (const { headers, body } of retries) {
      expect(headers.get('retry-after')).toBe(String(Math.ceil(((body as JsonObject).retryAfterMs as number) / 1000)));
    }
  });

  it('saw every answer the test set out to check', () => {
    const seen = sorted(
      new Set(
        answers.map(
          (answer) =>
            `${answer.operation} ${answer.status}${isObject(answer.body) && typeof answer.body.code === 'string' ? ` ${answer.body.code}` : ''}`,
        ),
      ),
    );
    expect(seen).toEqual([
      'GET /health/live 200',
      'GET /health/ready 200',
      'GET /health/ready 403 ORIGIN_NOT_ALLOWED',
      'GET /health/ready 503',
      'GET /metrics 200',
      'GET /openapi.json 200',
      'GET /threads 200',
      'GET /threads 400 VALIDATION_FAILED',
      'GET /threads 401 TOKEN_EXPIRED',
      'GET /threads 401 UNAUTHORIZED',
      'GET /threads 403 ORIGIN_NOT_ALLOWED',
      'GET /threads 429 RATE_LIMITED',
      'GET /threads 503 SERVICE_NOT_READY',
      'GET /threads 503 SERVICE_SHUTTING_DOWN',
      'GET /threads/{threadId}/messages 200',
      'GET /threads/{threadId}/messages 400 VALIDATION_FAILED',
      'GET /threads/{threadId}/messages 404 THREAD_NOT_FOUND',
      'POST /dev/token 200',
      'POST /dev/token 400 VALIDATION_FAILED',
      'POST /dev/token 403 ORIGIN_NOT_ALLOWED',
      'POST /dev/token 429 RATE_LIMITED',
    ]);
  });

  it('refuses answers that break it: an unknown field, a code of another status, a missing Retry-After', () => {
    const find = (operation: string, status: number): Answer => {
      const answer = answers.find((candidate) => candidate.operation === operation && candidate.status === status);
      if (answer === undefined) throw new Error(`no ${operation} ${status} answer`);
      return answer;
    };
    const list = find('GET /threads', 200);
    const notReady = find('GET /threads', 503);
    const unauthorized = find('GET /threads', 401);
    const withoutRetryAfter = new Headers(notReady.headers);
    withoutRetryAfter.delete('retry-after');
    const broken: Answer[] = [
      { ...list, body: { ...(list.body as JsonObject), requestId: 'r1' } },
      { ...list, body: { threads: [{ id: 'not-a-uuid', title: 't', createdAt: 'x', updatedAt: 'y' }] } },
      { ...unauthorized, body: { ...(unauthorized.body as JsonObject), code: 'THREAD_NOT_FOUND' } },
      { ...unauthorized, body: { ...(unauthorized.body as JsonObject), retryable: true } },
      { ...notReady, headers: withoutRetryAfter },
      { ...notReady, body: { ...(notReady.body as JsonObject), missing: undefined } },
      { ...list, mediaType: 'text/html' },
      { ...list, status: 418 },
    ];
    expect(broken.map((answer) => problemsOf(answer).length > 0)).toEqual(broken.map(() => true));
  });

  it('is served at GET /openapi.json as committed, revalidated on every use', () => {
    const served = answers.find((answer) => answer.operation === 'GET /openapi.json');
    expect(served?.body).toEqual(doc);
    expect(served?.headers.get('cache-control')).toBe('no-cache');
  });
});
