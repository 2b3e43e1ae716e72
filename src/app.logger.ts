import { ConsoleLogger, type LogLevel } from '@nestjs/common';
import type { AppConfig } from './config/app-config.js';

const SEVERITY: readonly LogLevel[] = ['verbose', 'debug', 'log', 'warn', 'error', 'fatal'];

/** Nest's own logger: one JSON object per line by default (`LOG_FORMAT=json`), levels from `LOG_LEVEL` up. */
export function createAppLogger(log: AppConfig['log']): ConsoleLogger {
  return new ConsoleLogger({
    json: log.format === 'json',
    colors: log.format === 'text' && process.stdout.isTTY,
    logLevels: SEVERITY.slice(SEVERITY.indexOf(log.level)),
  });
}
