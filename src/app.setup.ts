import { type INestApplication, Logger } from '@nestjs/common';
import type { Express } from 'express';
import { config as rxjsConfig } from 'rxjs';
import type { AppConfig } from './config/app-config.js';
import { ConnectionRegistry } from './gateway/connection.registry.js';
import { GatewayWsAdapter } from './gateway/gateway.ws-adapter.js';
import { corsPolicy, securityHeaders } from './http/edge.middleware.js';
import { NotFoundFilter } from './http/not-found.filter.js';

/**
 * Everything done to an application after it is created and before it listens. `main.ts` and the
 * integration tests both call this, so the tests run what production runs.
 */
export function configureApp(app: INestApplication, config: AppConfig): void {
  app.useWebSocketAdapter(new GatewayWsAdapter(app, config.ws, app.get(ConnectionRegistry)));
  app.useGlobalFilters(new NotFoundFilter());
  // Before any route: every answer carries the security headers, and CORS is decided first.
  app.use(securityHeaders(config.httpEdge), corsPolicy(config.httpEdge));
  (app.getHttpAdapter().getInstance() as Express).disable('x-powered-by');
  // rxjs rethrows an error thrown inside a subscriber on a timer, where it would end the process
  // (and every connection with it). Every subscriber on the start-up and shutdown paths handles
  // its own errors; this is the net under that rule: logged, never fatal.
  const logger = new Logger('Rx');
  rxjsConfig.onUnhandledError = (error: unknown) => {
    logger.error(
      `a stream subscriber threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
  };
}
