import { ApiBearerAuth, ApiOperation, ApiParam, ApiQuery, ApiTags } from '@nestjs/swagger';
import {
  ApiErrorResponse,
  ApiJsonResponse,
  ApiOriginRefusedResponse,
  documentController,
  documentRoute,
} from './openapi.decorators.js';
import { schemaRef } from './openapi.schemas.js';
import { ThreadsController } from './threads.controller.js';

/** What every route behind `ReadinessGuard` and `BearerAuthGuard` can answer besides its own errors. */
const authenticatedRouteErrors = (): MethodDecorator[] => [
  ApiErrorResponse(401, ['UNAUTHORIZED', 'TOKEN_EXPIRED'], 'No bearer token, or a bad or expired one'),
  ApiOriginRefusedResponse(),
  ApiErrorResponse(429, ['RATE_LIMITED'], 'Too many requests from this user', { retryAfter: true }),
  ApiErrorResponse(
    503,
    ['SERVICE_NOT_READY', 'SERVICE_SHUTTING_DOWN', 'STORAGE_UNAVAILABLE'],
    'Starting, draining, or the database is unreachable',
    { retryAfter: true },
  ),
  ApiErrorResponse(500, ['INTERNAL_ERROR'], 'A bug; quote the correlationId'),
];

const limit = (max: number, defaultValue: number) =>
  ApiQuery({
    name: 'limit',
    required: false,
    description: `Page size, 1–${max}.`,
    schema: { type: 'integer', minimum: 1, maximum: max, default: defaultValue },
  });

/** `GET /threads` and `GET /threads/{threadId}/messages` in docs/openapi.json. */
export function documentThreadRoutes(): void {
  documentController(ThreadsController, ApiTags('threads'), ApiBearerAuth('bearerHeader'));
  documentRoute(
    ThreadsController,
    'list',
    ApiOperation({
      operationId: 'listThreads',
      summary: "The user's threads, most recently active first",
      description: 'The `thread_list` request of the WebSocket protocol; the same payload without `requestId`.',
    }),
    limit(100, 20),
    ApiQuery({
      name: 'cursor',
      required: false,
      description: '`nextCursor` of the previous page.',
      schema: { type: 'string', minLength: 1, maxLength: 200 },
    }),
    ApiJsonResponse(200, 'ThreadList', 'A page of threads'),
    ApiErrorResponse(400, ['VALIDATION_FAILED'], 'A bad `limit` or `cursor`'),
    ...authenticatedRouteErrors(),
  );
  documentRoute(
    ThreadsController,
    'messages',
    ApiOperation({
      operationId: 'getThreadMessages',
      summary: "A page of a thread's messages, oldest first within the page",
      description: 'The `thread_history` request of the WebSocket protocol; the same payload without `requestId`.',
    }),
    ApiParam({ name: 'threadId', schema: schemaRef('Uuid') }),
    limit(200, 50),
    ApiQuery({
      name: 'before',
      required: false,
      description: '`nextBefore` of the previous page: the newest messages before this one.',
      schema: schemaRef('Uuid'),
    }),
    ApiJsonResponse(200, 'ThreadHistory', 'A page of messages'),
    ApiErrorResponse(400, ['VALIDATION_FAILED'], 'A bad `threadId`, `limit` or `before`'),
    ApiErrorResponse(404, ['THREAD_NOT_FOUND'], "No such thread, or another user's"),
    ...authenticatedRouteErrors(),
  );
}
