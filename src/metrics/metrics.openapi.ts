import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import {
  ApiErrorResponse,
  ApiOriginRefusedResponse,
  documentController,
  documentRoute,
} from '../http/openapi.decorators.js';
import { MetricsController } from './metrics.controller.js';

/** `GET /metrics` in docs/openapi.json. */
export function documentMetricsRoutes(): void {
  documentController(MetricsController, ApiTags('metrics'));
  documentRoute(
    MetricsController,
    'scrape',
    ApiOperation({
      operationId: 'metrics',
      summary: 'Prometheus metrics',
      description: 'Not gated by readiness: a starting instance is worth watching too.',
    }),
    ApiResponse({
      status: 200,
      description: 'The Prometheus text exposition format',
      content: { 'text/plain': { schema: { type: 'string' } } },
    }),
    ApiOriginRefusedResponse(),
    ApiErrorResponse(500, ['INTERNAL_ERROR'], 'A bug; quote the correlationId'),
  );
}
