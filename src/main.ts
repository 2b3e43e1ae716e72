import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { filter, take } from 'rxjs';
import { createAppLogger } from './app.logger.js';
import { AppModule } from './app.module.js';
import { configureApp } from './app.setup.js';
import { ConfigError, isLoopbackHost, type LoadedConfig, loadConfig } from './config/load-config.js';
import { ConnectionRegistry } from './gateway/connection.registry.js';
import { SHUTDOWN_EXIT_MARGIN_MS } from './config/config.schema.js';
import { ReadinessService } from './readiness/readiness.service.js';
import { GracefulShutdown } from './shutdown/graceful-shutdown.service.js';

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
  // What a developer opens first, so it comes first; the e2e tests wait for "listening on".
  log.log(`chat page: ${url}/`);
  log.log(
    `listening on ${url}: WebSocket ${url.replace(/^http/u, 'ws')}/ws, probes ${url}/health/live and /health/ready, metrics ${url}/metrics`,
  );
  if (config.env !== 'production') {
    log.log(
      `development mode: ${isLoopbackHost(config.http.host) ? `only this machine can connect (HOST unset: ${config.http.host}; set HOST=0.0.0.0 to listen on every interface)` : `listening on ${config.http.host}`}; POST /dev/token serves development tokens to loopback clients only`,
    );
  }
  if (config.auth.usingDevelopmentSecret) log.log('get a development token with: npm run token -- <userId>');

  // SIGTERM (orchestrators) and SIGINT (Ctrl-C) drain; a second signal, or a drain that overruns
  // its budget, exits at once.
  const shutdown = app.get(GracefulShutdown);
  const budgetMs = config.shutdown.delayMs + config.shutdown.timeoutMs + SHUTDOWN_EXIT_MARGIN_MS;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (shutdown.started) {
      log.warn(`${signal} during the drain (at step "${shutdown.step}"): exiting now`);
      process.exit(1);
    }
    shutdown.watch(budgetMs, (step) => {
      log.fatal(`shutdown still at step "${step}" after ${budgetMs} ms; forcing the exit`);
      process.exit(1);
    });
    shutdown
      .run(signal, () => app.close())
      .then(
        // Flush the log lines still buffered in the pipe before exiting.
        () => process.stdout.write('', () => process.exit(0)),
        (error: unknown) => {
          log.fatal(
            `shutdown failed at step "${shutdown.step}": ${error instanceof Error ? error.message : String(error)}`,
          );
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  // `take(1)`, not `first()`: the stream completes at shutdown without ever failing, and `first()`
  // would then raise an EmptyError that ends the process with code 1 after a clean drain.
  app
    .get(ReadinessService)
    .snapshot$.pipe(
      filter((snapshot) => snapshot.phase === 'failed'),
      take(1),
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
