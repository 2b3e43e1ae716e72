import { ApiBody, ApiExcludeController, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrorResponse, ApiJsonResponse, documentController, documentRoute } from '../http/openapi.decorators.js';
import { schemaRef } from '../http/openapi.schemas.js';
import { ChatPageController } from './chat-page.controller.js';
import { DevTokenController } from './dev-token.controller.js';

/** `POST /dev/token` in docs/openapi.json; the chat page's files are not part of the API. */
export function documentPageRoutes(): void {
  documentController(ChatPageController, ApiExcludeController());
  documentController(DevTokenController, ApiTags('development'));
  documentRoute(
    DevTokenController,
    'issue',
    ApiOperation({
      operationId: 'issueDevToken',
      summary: 'A token for trying the service out',
      description:
        'Only outside production and only when the service signs its own tokens (`JWT_SECRET`); served to clients on the same machine only.',
    }),
    ApiBody({ required: true, schema: schemaRef('DevTokenRequest') }),
    ApiJsonResponse(200, 'DevToken', 'A signed token'),
    ApiErrorResponse(400, ['VALIDATION_FAILED'], 'A bad `userId` or `ttlSeconds`'),
    ApiErrorResponse(403, ['FORBIDDEN', 'ORIGIN_NOT_ALLOWED'], 'A client on another machine, or a disallowed origin'),
    ApiErrorResponse(429, ['RATE_LIMITED'], 'Too many tokens for this address', { retryAfter: true }),
    ApiErrorResponse(500, ['INTERNAL_ERROR'], 'A bug; quote the correlationId'),
  );
}
