import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { filter, first } from 'rxjs';
import { createAppLogger } from './app.logger.js';
import { AppModule } from './app.module.js';
import { configureApp } from './app.setup.js';
import { ConfigError, type LoadedConfig, loadConfig } from './config/load-config.js';
import { ConnectionRegistry } from './gateway/connection.registry.js';
import { ReadinessService } from './readiness/readiness.service.js';

/** How long refused clients get to complete the close handshake before a failed start-up exits. */
const FAILED_START_CLOSE_GRACE_MS = 1_000;

async function bootstrap(): Promise<void> {
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(process.env);
  } catch (error) {
    process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
    process.exit(1);
  }
  const { config, warnings } = loaded;
  const logger = createAppLogger(config.log);
  const log = new Logger('Bootstrap');
  const app = await NestFactory.create(AppModule.forRoot(config), { logger });
  for (const warning of warnings) log.warn(warning);
  configureApp(app, config);

  // listen() returns once the port is open; dependencies keep initialising in the background.
  await app.listen(config.http.port, config.http.host);
  const url = (await app.getUrl()).replace('[::1]', 'localhost').replace('127.0.0.1', 'localhost');
  log.log(
    `listening on ${url} (WebSocket ${url.replace(/^http/u, 'ws')}/ws, probes ${url}/health/live and /health/ready)`,
  );
  if (config.auth.usingDevelopmentSecret) log.log('get a development token with: npm run token -- <userId>');

  app
    .get(ReadinessService)
    .snapshot$.pipe(
      filter((snapshot) => snapshot.phase === 'failed'),
      first(),
    )
    .subscribe(() => {
      // The gateway refuses held clients with 1013 on the same snapshot; give the closes a moment.
      void app
        .get(ConnectionRegistry)
        .whenAllClosed(FAILED_START_CLOSE_GRACE_MS)
        .finally(() => {
          log.fatal('start-up failed; exiting with code 1 so the orchestrator restarts the instance');
          process.exit(1);
        });
    });
}

bootstrap().catch((error: unknown) => {
  process.stderr.write(`fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
