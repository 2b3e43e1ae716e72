import type { ReferenceObject, SchemaObject } from '@nestjs/swagger';
import * as z from 'zod';
import { devTokenRequest } from '../page/dev-token.controller.js';
import { ERROR_CODES, type ErrorCode, TOOL_ERROR_CODES } from '../protocol/error-codes.js';
import type { ChatMessage } from '../protocol/events.js';
import type { DependencyState, ReadinessPhase } from '../readiness/readiness.types.js';

/**
 * The JSON schemas of docs/openapi.json (`components/schemas`), plain JSON Schema 2020-12 as
 * OpenAPI 3.1 takes it: the payloads are TypeScript interfaces and zod schemas, not the classes
 * `@nestjs/swagger` reflects on. A schema that also describes a frame is the one in
 * docs/asyncapi.yaml, word for word (test/integration/openapi.spec.ts compares them).
 */
export type JsonSchema = { readonly [keyword: string]: unknown };

const ROLES = Object.keys({ user: true, assistant: true } satisfies Record<ChatMessage['role'], true>);
const PHASES = Object.keys({ starting: true, ready: true, failed: true, draining: true } satisfies Record<
  ReadinessPhase,
  true
>);
const DEPENDENCY_STATES = Object.keys({ pending: true, initializing: true, ready: true, failed: true } satisfies Record<
  DependencyState,
  true
>);

/** The codes whose `retryable` is always true, as docs/asyncapi.yaml lists them. */
const RETRYABLE_CODES = [
  'SERVICE_NOT_READY',
  'SERVICE_SHUTTING_DOWN',
  'TOO_MANY_EARLY_FRAMES',
  'RATE_LIMITED',
  'SERVER_BUSY',
  'STORAGE_UNAVAILABLE',
  'LLM_UNAVAILABLE',
  'RUN_TIMEOUT',
  'RUN_INTERRUPTED',
] as const satisfies readonly ErrorCode[];

/** `code: X` requires `fields`: how the error constructors of src/errors/client-errors.ts fill them. */
const whenCode = (code: ErrorCode, fields: readonly string[]): JsonSchema => ({
  if: { required: ['code'], properties: { code: { const: code } } },
  then: { required: fields },
});

/** `components/schemas`, by name. */
export const OPENAPI_SCHEMAS = {
  Uuid: {
    type: 'string',
    format: 'uuid',
    pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
    description:
      'An id as the server returned it, a lower-case canonical UUID. Anything else is VALIDATION_FAILED naming the field.',
  },
  Timestamp: {
    type: 'string',
    format: 'date-time',
    description: 'ISO-8601 in UTC, e.g. 2025-01-01T12:00:00.000Z.',
  },
  ErrorCode: {
    type: 'string',
    description:
      'Stable error codes, in `error` frames, `agent_error` and HTTP error bodies. Clients branch on them, never on `message`.',
    enum: [...ERROR_CODES],
  },
  Role: { type: 'string', enum: ROLES },
  ChatMessage: {
    type: 'object',
    required: ['id', 'threadId', 'role', 'content', 'createdAt'],
    additionalProperties: false,
    properties: {
      id: { $ref: '#/components/schemas/Uuid' },
      threadId: { $ref: '#/components/schemas/Uuid' },
      role: { $ref: '#/components/schemas/Role' },
      content: { type: 'string' },
      runId: {
        $ref: '#/components/schemas/Uuid',
        description: 'The run that produced (assistant) or was started by (user) this message.',
      },
      createdAt: { $ref: '#/components/schemas/Timestamp' },
      steps: {
        type: 'array',
        description: 'Assistant messages in history only, when the run that produced it called tools (in call order).',
        items: { $ref: '#/components/schemas/ToolStep' },
      },
    },
  },
  ToolStep: {
    type: 'object',
    description: 'One tool call of a run, as its `tool_executing` and `tool_completed` / `tool_failed` events told it.',
    required: ['callId', 'tool'],
    additionalProperties: false,
    properties: {
      callId: { type: 'string' },
      tool: { type: 'string' },
      args: { description: 'The arguments, as `tool_executing` carried them.' },
      result: { description: 'What the tool returned, when the call succeeded.' },
      error: { $ref: '#/components/schemas/ToolError' },
    },
  },
  ToolError: {
    type: 'object',
    required: ['code', 'message'],
    additionalProperties: false,
    properties: {
      code: { $ref: '#/components/schemas/ToolErrorCode' },
      message: { type: 'string' },
    },
  },
  ToolErrorCode: {
    type: 'string',
    description:
      "Why a tool call failed: `INVALID_TOOL_ARGUMENTS` (not JSON, wrong type or missing field: the\nmessage names it), `UNKNOWN_TOOL`, `TOOL_TIMEOUT` (past `AGENT_TOOL_TIMEOUT_MS`, or\n`MCP_TOOL_TIMEOUT_MS` for an MCP tool), `TOOL_FAILED`, `TOOL_UNAVAILABLE` (an MCP tool's server\ncannot be reached now; it is being reconnected), `TOOL_RESULT_TOO_LARGE` (an MCP tool's result is\nover `MCP_MAX_RESULT_CHARS`), `TOOL_REFUSED` (a person refused the call, or nobody answered its `tool_approval_required`\nwithin `AGENT_APPROVAL_TIMEOUT_MS`; it did not run).\n",
    enum: [...TOOL_ERROR_CODES],
  },
  ActiveRun: {
    type: 'object',
    description: "A thread's run still running, and where its history leaves off.",
    required: ['runId', 'afterSeq'],
    additionalProperties: false,
    properties: {
      runId: { $ref: '#/components/schemas/Uuid' },
      afterSeq: {
        type: 'integer',
        minimum: 0,
        description:
          'The last `seq` the history covers (its `agent_started`); `resume` with it to get the rest, replayed then live.',
      },
    },
  },
  ThreadSummary: {
    type: 'object',
    required: ['id', 'title', 'createdAt', 'updatedAt'],
    additionalProperties: false,
    properties: {
      id: { $ref: '#/components/schemas/Uuid' },
      title: { type: 'string', description: 'The first message of the thread, on one line, cut to 80 characters.' },
      createdAt: { $ref: '#/components/schemas/Timestamp' },
      updatedAt: {
        $ref: '#/components/schemas/Timestamp',
        description: 'Last activity; the list is ordered by it, most recent first.',
      },
      activeRunId: {
        $ref: '#/components/schemas/Uuid',
        description: 'A run of this thread still running (`resume` it to follow it).',
      },
    },
  },
  ThreadList: {
    type: 'object',
    description: "The WebSocket protocol's ThreadListResult without `requestId`.",
    required: ['threads'],
    additionalProperties: false,
    properties: {
      threads: {
        type: 'array',
        description: 'Most recently active first.',
        items: { $ref: '#/components/schemas/ThreadSummary' },
      },
      nextCursor: {
        type: 'string',
        minLength: 1,
        description: 'Pass as `cursor` for the next page; absent on the last page.',
      },
    },
  },
  ThreadHistory: {
    type: 'object',
    description: "The WebSocket protocol's ThreadHistoryResult without `requestId`.",
    required: ['threadId', 'messages'],
    additionalProperties: false,
    properties: {
      threadId: { $ref: '#/components/schemas/Uuid' },
      messages: {
        type: 'array',
        description: 'Oldest first within the page.',
        items: { $ref: '#/components/schemas/ChatMessage' },
      },
      nextBefore: {
        $ref: '#/components/schemas/Uuid',
        description: 'Pass as `before` for the older page; absent on the oldest page.',
      },
      activeRun: {
        $ref: '#/components/schemas/ActiveRun',
        description:
          "On the newest page, the thread's run still running; its events after `afterSeq` are not in `messages`.",
      },
    },
  },
  RetryableCodes: {
    description: 'The codes whose `retryable` is always true; every other code is never retryable.',
    enum: [...RETRYABLE_CODES],
  },
  RetryableMatchesCode: {
    description: '`retryable` is fixed by `code` (see RetryableCodes).',
    if: { required: ['code'], properties: { code: { $ref: '#/components/schemas/RetryableCodes' } } },
    then: { properties: { retryable: { const: true } } },
    else: { properties: { retryable: { const: false } } },
  },
  ErrorPayload: {
    type: 'object',
    description:
      'Every HTTP error body: the `error` frame of the WebSocket protocol without the fields that only frames carry (`requestId`, `unprocessedRequestIds`, `unprocessedCount`). Sent with `Cache-Control: no-store`.',
    required: ['code', 'message', 'retryable'],
    additionalProperties: false,
    properties: {
      code: { $ref: '#/components/schemas/ErrorCode' },
      message: { type: 'string', description: 'For humans; do not parse it.' },
      retryable: { type: 'boolean' },
      field: {
        type: 'string',
        description: 'Set on VALIDATION_FAILED: the offending field, e.g. `message`, `threadId` or `data`.',
      },
      correlationId: {
        type: 'string',
        format: 'uuid',
        description: 'Set on INTERNAL_ERROR: quote it when reporting the problem; it is in the server log too.',
      },
      retryAfterMs: { type: 'integer', minimum: 0, description: 'Wait at least this long before retrying.' },
      missing: {
        type: 'array',
        items: { type: 'string' },
        description: 'Set on SERVICE_NOT_READY: the dependencies that were not ready.',
      },
    },
    allOf: [
      { $ref: '#/components/schemas/RetryableMatchesCode' },
      whenCode('VALIDATION_FAILED', ['field']),
      whenCode('INTERNAL_ERROR', ['correlationId']),
      whenCode('SERVICE_NOT_READY', ['retryAfterMs', 'missing']),
      whenCode('SERVICE_SHUTTING_DOWN', ['retryAfterMs']),
      whenCode('RATE_LIMITED', ['retryAfterMs']),
    ],
  },
  DevTokenRequest: {
    ...withoutDialect(z.toJSONSchema(devTokenRequest, { io: 'input', target: 'draft-2020-12' })),
    description: 'Derived from the zod schema that validates the body; `ttlSeconds` defaults to 3600.',
  },
  DevToken: {
    type: 'object',
    required: ['token', 'userId', 'expiresAt'],
    additionalProperties: false,
    properties: {
      token: { type: 'string', description: 'A JWT for `Authorization: Bearer …` and the WebSocket.' },
      userId: { type: 'string' },
      expiresAt: { $ref: '#/components/schemas/Timestamp' },
    },
  },
  Liveness: {
    type: 'object',
    required: ['status'],
    additionalProperties: false,
    properties: { status: { const: 'ok' } },
  },
  DependencyHealth: {
    type: 'object',
    description:
      "One declared dependency: its readiness state, and whatever its owner publishes (the database's health, the model provider's availability).",
    required: ['status'],
    additionalProperties: true,
    properties: {
      status: {
        enum: ['up', 'down'],
        description: '`up` when the dependency is ready and the instance is not draining.',
      },
      state: { enum: DEPENDENCY_STATES },
      phase: { enum: PHASES, description: 'The phase of the whole instance.' },
      attempts: { type: 'integer', minimum: 0 },
      startedAt: { $ref: '#/components/schemas/Timestamp' },
      durationMs: { type: 'number', minimum: 0, description: 'From the first attempt to ready, retries included.' },
      lastError: { type: 'string', description: 'The last failure, kept after a successful retry.' },
      message: { type: 'string', description: 'Why the check itself failed.' },
    },
  },
  Readiness: {
    type: 'object',
    description: 'A Terminus health check result with one entry per declared dependency.',
    required: ['status', 'details'],
    additionalProperties: false,
    properties: {
      status: {
        enum: ['ok', 'error', 'shutting_down'],
        description: '`ok` (200) only in phase `ready`; otherwise 503.',
      },
      info: { $ref: '#/components/schemas/DependencyHealthMap', description: 'The dependencies that are up.' },
      error: { $ref: '#/components/schemas/DependencyHealthMap', description: 'The dependencies that are down.' },
      details: { $ref: '#/components/schemas/DependencyHealthMap', description: 'Every dependency.' },
    },
  },
  OpenApiDocument: {
    type: 'object',
    description: 'An OpenAPI 3.1 document: this one.',
    required: ['openapi', 'info', 'paths'],
    properties: { openapi: { const: '3.1.0' } },
  },
  DependencyHealthMap: {
    type: 'object',
    additionalProperties: { $ref: '#/components/schemas/DependencyHealth' },
  },
} satisfies Record<string, JsonSchema>;

export type SchemaName = keyof typeof OPENAPI_SCHEMAS;

/**
 * A reference to `components/schemas/<name>`; the name is checked at compile time. Typed as both
 * kinds of schema: some `@nestjs/swagger` options (`ApiParam`'s) take only the inline kind.
 */
export function schemaRef(name: SchemaName): ReferenceObject & SchemaObject {
  return { $ref: `#/components/schemas/${name}` };
}

/** zod writes `$schema`, which only a document's root may carry. */
function withoutDialect(schema: JsonSchema): JsonSchema {
  const { $schema: _dialect, ...rest } = schema;
  return rest;
}
