import { ConsoleLogger, type LogLevel } from '@nestjs/common';
import type { AppConfig } from './config/app-config.js';

const SEVERITY: readonly LogLevel[] = ['verbose', 'debug', 'log', 'warn', 'error', 'fatal'];

/**
 * Keys masked wherever they appear in structured fields. Nothing logs them today; this is the net
 * under that rule: credentials and message bodies never reach the log.
 */
export const REDACTED_LOG_KEYS: readonly string[] = [
  'authorization',
  'token',
  'apiKey',
  'password',
  'secret',
  'content',
  'text',
];

/**
 * Nest's own logger: one JSON object per line by default (`LOG_FORMAT=json`), levels from
 * `LOG_LEVEL` up. Structured fields (`logger.log('connection closed', { connectionId, code })`)
 * become top-level keys of the JSON line.
 */
export function createAppLogger(log: AppConfig['log']): ConsoleLogger {
  return new ConsoleLogger({
    json: log.format === 'json',
    colors: log.format === 'text' && process.stdout.isTTY,
    logLevels: SEVERITY.slice(SEVERITY.indexOf(log.level)),
    flattenParams: true,
    redact: [...REDACTED_LOG_KEYS],
  });
}
