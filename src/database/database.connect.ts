import type { LoggerService } from '@nestjs/common';
import type { AppConfig } from '../config/app-config.js';
import type { Connection, DatabaseEngine } from './database.types.js';
import type { StorageObserver } from './observed-dialect.js';
import { postgresConnection } from './postgres.connection.js';
import { sqliteConnection } from './sqlite.connection.js';

export function engineOf(url: string): DatabaseEngine {
  return url.startsWith('sqlite:') ? 'sqlite' : 'postgres';
}

/**
 * Opens the configured database. Nothing here touches the network: a PostgreSQL pool connects on
 * first use, so an unreachable server surfaces in the first query (and is retried by readiness).
 * Kysely and the drivers are imported by each engine's file, inside the `threads` initialisation,
 * not when the service starts: they cost over half a second that would otherwise delay opening the
 * port.
 */
export function connect(
  config: AppConfig['database'],
  observer: StorageObserver,
  logger: Pick<LoggerService, 'warn'>,
  instanceId: string,
): Promise<Connection> {
  return engineOf(config.url) === 'sqlite'
    ? sqliteConnection(config.url.slice('sqlite:'.length), observer)
    : postgresConnection(config, observer, logger, `agent-gateway:${instanceId}`);
}
