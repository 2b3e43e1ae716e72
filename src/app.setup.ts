import type { INestApplication } from '@nestjs/common';
import type { Express } from 'express';
import type { AppConfig } from './config/app-config.js';
import { ConnectionRegistry } from './gateway/connection.registry.js';
import { GatewayWsAdapter } from './gateway/gateway.ws-adapter.js';

/**
 * Everything done to an application after it is created and before it listens. `main.ts` and the
 * integration tests both call this, so the tests run what production runs.
 */
export function configureApp(app: INestApplication, config: AppConfig): void {
  app.useWebSocketAdapter(new GatewayWsAdapter(app, config.ws, app.get(ConnectionRegistry)));
  (app.getHttpAdapter().getInstance() as Express).disable('x-powered-by');
}
