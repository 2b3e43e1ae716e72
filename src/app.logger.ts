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
 * How lines are written: `LOG_FORMAT` resolved against where stdout goes. `terminal` is for a person
 * watching (coloured, short); `json` for log shippers, files and pipes (the e2e tests read it too).
 */
export type LogStyle = 'json' | 'text' | 'terminal';

export function logStyle(format: AppConfig['log']['format'], stdoutIsTerminal: boolean): LogStyle {
  switch (format) {
    case 'json':
      return 'json';
    case 'text':
      return stdoutIsTerminal ? 'terminal' : 'text';
    case 'auto':
      return stdoutIsTerminal ? 'terminal' : 'json';
    default: {
      const _exhaustive: never = format;
      return _exhaustive;
    }
  }
}

/**
 * Nest's own logger, levels from `LOG_LEVEL` up, in the {@link logStyle} of `LOG_FORMAT`: one JSON
 * object per line unless stdout is a terminal (production's `auto` is already `json`). Structured
 * fields (`logger.log('connection closed', { connectionId, code })`) become top-level keys of the
 * JSON line.
 */
export function createAppLogger(
  log: AppConfig['log'],
  stdoutIsTerminal = process.stdout.isTTY === true,
): ConsoleLogger {
  const style = logStyle(log.format, stdoutIsTerminal);
  const options = {
    json: style === 'json',
    // Explicitly false when stdout is a file or a pipe: left undefined, Nest colours text anyway.
    colors: style === 'terminal',
    logLevels: SEVERITY.slice(SEVERITY.indexOf(log.level)),
    flattenParams: true,
    redact: [...REDACTED_LOG_KEYS],
  };
  return style === 'terminal' ? new TerminalLogger(options) : new AppLogger(options);
}

/**
 * Nest's inventory at start-up: a line per module, route and gateway message, about 40 in all. On a
 * terminal they bury the few lines a developer needs (the chat page's URL), so there they show
 * from `LOG_LEVEL=debug` only; JSON and plain text keep them for whoever reads those later.
 */
const NEST_START_UP_CONTEXTS: ReadonlySet<string> = new Set([
  'NestFactory',
  'InstanceLoader',
  'RoutesResolver',
  'RouterExplorer',
  'WebSocketsController',
  'NestApplication',
]);

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
  /** Every line, here; a terminal's logger leaves some out. */
  protected showsLine(_context: string, _logLevel: LogLevel): boolean {
    return true;
  }

  protected override printMessages(
    messages: unknown[],
    context = '',
    logLevel: LogLevel = 'log',
    writeStreamType?: 'stdout' | 'stderr',
    errorStack?: unknown,
    params?: Record<string, unknown>,
  ): void {
    if (!this.showsLine(context, logLevel)) return;
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

/** For a person at a terminal: coloured, the time of day instead of the pid and date, no inventory. */
class TerminalLogger extends AppLogger {
  protected override showsLine(context: string, logLevel: LogLevel): boolean {
    return logLevel !== 'log' || !NEST_START_UP_CONTEXTS.has(context) || this.isLevelEnabled('debug');
  }

  protected override formatPid(): string {
    return '';
  }

  protected override getTimestamp(): string {
    const now = new Date();
    const two = (value: number): string => String(value).padStart(2, '0');
    return `${two(now.getHours())}:${two(now.getMinutes())}:${two(now.getSeconds())}.${String(now.getMilliseconds()).padStart(3, '0')}`;
  }
}
