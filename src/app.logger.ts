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
export function createAppLogger(
  log: AppConfig['log'],
  stdoutIsTerminal = process.stdout.isTTY === true,
): ConsoleLogger {
  return new AppLogger({
    json: log.format === 'json',
    // Explicitly false when stdout is a file or a pipe: left undefined, Nest colours text anyway.
    colors: log.format === 'text' && stdoutIsTerminal,
    logLevels: SEVERITY.slice(SEVERITY.indexOf(log.level)),
    flattenParams: true,
    redact: [...REDACTED_LOG_KEYS],
  });
}

const REDACTED_KEYS = new Set(REDACTED_LOG_KEYS.map((key) => key.toLowerCase()));
const CENSOR = '[REDACTED]';
/** A field value longer than this is cut (with `…`): fields can carry what a client chose. */
export const MAX_LOGGED_FIELD_CHARS = 512;

/**
 * Nest's `ConsoleLogger`, with a shortcut for the lines the service writes most (one per connection
 * admitted and closed): a string message with flat fields of plain values is written with one
 * `JSON.stringify`, the same record Nest would write (same keys, same masking), at a fraction of the
 * cost of its general path (deep redaction, a replacer per value). Anything else goes through Nest.
 */
class AppLogger extends ConsoleLogger {
  protected override printMessages(
    messages: unknown[],
    context = '',
    logLevel: LogLevel = 'log',
    writeStreamType?: 'stdout' | 'stderr',
    errorStack?: unknown,
    params?: Record<string, unknown>,
  ): void {
    const [message] = messages;
    if (
      this.options.json !== true ||
      this.options.forceConsole === true ||
      messages.length !== 1 ||
      typeof message !== 'string' ||
      errorStack !== undefined ||
      !isFlat(params)
    ) {
      super.printMessages(messages, context, logLevel, writeStreamType, errorStack, params);
      return;
    }
    const record: Record<string, unknown> = { level: logLevel, pid: process.pid, timestamp: Date.now(), message };
    if (context !== '') record.context = context;
    if (params !== undefined) {
      for (const key of Object.keys(params)) {
        // Framework fields win on collisions, as in Nest.
        if (key in record) continue;
        const value = params[key];
        record[key] = REDACTED_KEYS.has(key.toLowerCase())
          ? CENSOR
          : typeof value === 'string' && value.length > MAX_LOGGED_FIELD_CHARS
            ? `${value.slice(0, MAX_LOGGED_FIELD_CHARS)}…`
            : value;
      }
    }
    process[writeStreamType ?? 'stdout'].write(`${JSON.stringify(record)}\n`);
  }
}

/** Absent, or an object whose values are strings, finite numbers, booleans or undefined. */
function isFlat(params: Record<string, unknown> | undefined): boolean {
  if (params === undefined) return true;
  for (const key of Object.keys(params)) {
    const value = params[key];
    const type = typeof value;
    if (type === 'string' || type === 'boolean' || value === undefined) continue;
    if (type === 'number' && Number.isFinite(value)) continue;
    return false;
  }
  return true;
}
