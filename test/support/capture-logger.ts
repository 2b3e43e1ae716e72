import type { LoggerService } from '@nestjs/common';

export interface LogEntry {
  readonly level: string;
  readonly message: string;
  readonly context?: string;
  /** Structured fields: the plain objects passed after the message (`log('closed', { code })`). */
  readonly params?: Record<string, unknown>;
  /** Any other arguments (an error's stack, say), as text. */
  readonly extra?: readonly string[];
}

/** A Nest logger that records lines instead of printing them. */
export class CaptureLogger implements LoggerService {
  readonly entries: LogEntry[] = [];
  private readonly waiters = new Set<{ matches(entry: LogEntry): boolean; resolve(entry: LogEntry): void }>();

  log(message: unknown, ...rest: unknown[]): void {
    this.push('log', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.push('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.push('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.push('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.push('verbose', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.push('fatal', message, rest);
  }

  messages(level?: string): string[] {
    return this.entries.filter((entry) => level === undefined || entry.level === level).map((entry) => entry.message);
  }

  /** The entries with `message` (and `context`, when given), e.g. every `connection closed` line. */
  find(message: string, context?: string): LogEntry[] {
    return this.entries.filter(
      (entry) => entry.message === message && (context === undefined || entry.context === context),
    );
  }

  /** Resolves with the first entry, logged already or later, that `matches`. */
  waitFor(matches: (entry: LogEntry) => boolean): Promise<LogEntry> {
    const logged = this.entries.find(matches);
    if (logged !== undefined) return Promise.resolve(logged);
    return new Promise((resolve) => this.waiters.add({ matches, resolve }));
  }

  /** Every entry as one JSON line, everything it carries included: what a log shipper would see. */
  lines(): string[] {
    return this.entries.map((entry) => JSON.stringify(entry));
  }

  private push(level: string, message: unknown, rest: readonly unknown[]): void {
    // Nest's Logger appends its context as the last argument.
    const last = rest.at(-1);
    const context = typeof last === 'string' ? last : undefined;
    const args = context === undefined ? rest : rest.slice(0, -1);
    const objects = args.filter(isPlainObject);
    const others = args.filter((arg) => !isPlainObject(arg)).map((arg) => String(arg));
    const entry: LogEntry = {
      level,
      message: typeof message === 'string' ? message : stringify(message),
      context,
      ...(objects.length === 0 ? {} : { params: Object.assign({}, ...objects) as Record<string, unknown> }),
      ...(others.length === 0 ? {} : { extra: others }),
    };
    this.entries.push(entry);
    for (const waiter of this.waiters) {
      if (!waiter.matches(entry)) continue;
      this.waiters.delete(waiter);
      waiter.resolve(entry);
    }
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

function stringify(value: unknown): string {
  if (value instanceof Error) return value.stack ?? value.message;
  return isPlainObject(value) || Array.isArray(value) ? JSON.stringify(value) : String(value);
}
