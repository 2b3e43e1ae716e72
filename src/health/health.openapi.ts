import { ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  ApiJsonResponse,
  ApiOriginRefusedResponse,
  documentController,
  documentRoute,
} from '../http/openapi.decorators.js';
import { HealthController } from './health.controller.js';

/** `/health/live` and `/health/ready` in docs/openapi.json. */
export function documentHealthRoutes(): void {
  documentController(HealthController, ApiTags('probes'));
  documentRoute(
    HealthController,
    'live',
    ApiOperation({
      operationId: 'live',
      summary: 'Liveness: the process is up',
      description: 'Never looks at dependencies: an outage of one must not get every instance restarted.',
    }),
    ApiJsonResponse(200, 'Liveness', 'Alive'),
    ApiOriginRefusedResponse(),
  );
  documentRoute(
    HealthController,
    'ready',
    ApiOperation({
      operationId: 'ready',
      summary: 'Readiness: whether this instance may take traffic',
      description: 'One entry per declared dependency, from the latest readiness snapshot; never cached.',
    }),
    ApiJsonResponse(200, 'Readiness', 'Ready: `status` is `ok`'),
    ApiJsonResponse(503, 'Readiness', 'Starting, failed or draining: `error` names the dependencies that are down'),
    ApiOriginRefusedResponse(),
  );
}
