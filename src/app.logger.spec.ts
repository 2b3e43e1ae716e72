import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { ConsoleLogger } from '@nestjs/common';
import { stripVTControlCharacters } from 'node:util';
import { createAppLogger, logStyle, MAX_LOGGED_FIELD_CHARS, REDACTED_LOG_KEYS } from './app.logger.js';
import { loadConfig } from './config/load-config.js';

const ESC = '\u001b[';

/** Calls `log` and returns what the logger wrote to stdout, one entry per line. */
function written(log: () => void): string[] {
  const lines: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    log();
  } finally {
    spy.mockRestore();
  }
  return lines.flatMap((chunk) => chunk.split('\n')).filter((line) => line !== '');
}

describe('createAppLogger', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('writes one JSON object per line with the structured fields at the top level', () => {
    const logger = createAppLogger({ format: 'json', level: 'log' });
    const [line, ...rest] = written(() =>
      logger.log('connection closed', { connectionId: 'c1', code: 1000, durationMs: 12 }, 'Gateway'),
    );
    expect(rest).toEqual([]);
    expect(JSON.parse(line ?? '')).toMatchObject({
      level: 'log',
      message: 'connection closed',
      context: 'Gateway',
      connectionId: 'c1',
      code: 1000,
      durationMs: 12,
    });
  });

  it('masks credentials and message bodies passed as structured fields, at any depth', () => {
    const logger = createAppLogger({ format: 'json', level: 'log' });
    const [line] = written(() =>
      logger.log(
        'oops',
        { token: 'eyJ.secret', request: { headers: { authorization: 'Bearer eyJ.secret' } } },
        { message: { content: 'my diary' }, delta: { text: 'my diary' } },
        'Test',
      ),
    );
    expect(line).not.toContain('eyJ.secret');
    expect(line).not.toContain('my diary');
    expect(JSON.parse(line ?? '')).toMatchObject({ token: '[REDACTED]', delta: { text: '[REDACTED]' } });
  });

  it('writes flat records (its shortcut) exactly as Nest would, masking included', () => {
    const nest = new ConsoleLogger({ json: true, flattenParams: true, redact: [...REDACTED_LOG_KEYS] });
    const ours = createAppLogger({ format: 'json', level: 'log' });
    const fields = { connectionId: 'c1', userId: 'u1', code: 1000, ok: true, Token: 'eyJ.secret', level: 'fake' };
    const lines = (logger: ConsoleLogger): unknown[] =>
      written(() => {
        logger.log('connection closed', fields, 'Gateway');
        logger.warn('slow consumer cut off', { connectionId: 'c2', userId: undefined }, 'Gateway');
        logger.log('no fields', 'Gateway');
      }).map((line) => ({ ...(JSON.parse(line) as object), timestamp: 0 }));
    const expected = lines(nest);
    expect(expected).toHaveLength(3);
    expect(lines(ours)).toEqual(expected);
    expect(JSON.stringify(expected)).not.toContain('eyJ.secret');
    expect(expected[0]).toMatchObject({ level: 'log', Token: '[REDACTED]' });
  });

  it('drops the levels below LOG_LEVEL', () => {
    const logger = createAppLogger({ format: 'json', level: 'log' });
    expect(written(() => logger.debug('per-frame noise', 'Test'))).toEqual([]);
  });

  it('writes LOG_FORMAT=text without colours when stdout is a file or a pipe, and with them on a terminal', () => {
    const plain = written(() => createAppLogger({ format: 'text', level: 'log' }, false).log('hello', 'Test'));
    expect(plain.join('\n')).toContain('hello');
    expect(plain.join('\n')).not.toContain(ESC);
    const coloured = written(() => createAppLogger({ format: 'text', level: 'log' }, true).log('hello', 'Test'));
    expect(coloured.join('\n')).toContain(ESC);
  });

  it('writes coloured text by default when stdout is a terminal, and JSON when it is a file or a pipe', () => {
    expect(logStyle('auto', true)).toBe('terminal');
    expect(logStyle('auto', false)).toBe('json');
    expect(logStyle('json', true)).toBe('json');
    expect(logStyle('text', false)).toBe('text');
    const { log } = loadConfig({}).config;
    const [piped] = written(() => createAppLogger(log, false).log('hello', 'Test'));
    expect(JSON.parse(piped ?? '')).toMatchObject({ level: 'log', message: 'hello', context: 'Test' });
    const [terminal] = written(() => createAppLogger(log, true).log('hello', 'Test'));
    expect(terminal).toContain(ESC);
    // The time of day, the level, the context and the message; no pid, no date.
    const plain = stripVTControlCharacters(terminal ?? '');
    expect(plain).toMatch(/^\d\d:\d\d:\d\d\.\d{3} +LOG \[Test\] hello$/u);
  });

  it('writes JSON in production even on a terminal (log shippers read it)', () => {
    const { log } = loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'a'.repeat(32) }).config;
    const [line] = written(() => createAppLogger(log, true).log('hello', 'Test'));
    expect(JSON.parse(line ?? '')).toMatchObject({ message: 'hello' });
  });

  it("leaves Nest's start-up inventory out on a terminal unless LOG_LEVEL is debug, and keeps it in JSON", () => {
    const inventory = (logger: ConsoleLogger): string[] =>
      written(() => {
        logger.log('AppModule dependencies initialized', 'InstanceLoader');
        logger.log('Mapped {/health/live, GET} route', 'RouterExplorer');
        logger.log('chat page: http://localhost:3000/', 'Bootstrap');
      });
    expect(inventory(createAppLogger({ format: 'auto', level: 'log' }, true))).toEqual([
      expect.stringContaining('chat page: http://localhost:3000/'),
    ]);
    expect(inventory(createAppLogger({ format: 'auto', level: 'debug' }, true))).toHaveLength(3);
    expect(inventory(createAppLogger({ format: 'auto', level: 'log' }, false))).toHaveLength(3);
  });

  it(`cuts a field longer than ${MAX_LOGGED_FIELD_CHARS} characters (a client-chosen value never fills the log)`, () => {
    const logger = createAppLogger({ format: 'json', level: 'log' });
    const [line] = written(() => logger.log('connection closed', { userId: 'u'.repeat(5_000) }, 'Gateway'));
    const record = JSON.parse(line ?? '') as { userId: string };
    expect(record.userId).toBe(`${'u'.repeat(MAX_LOGGED_FIELD_CHARS)}…`);
  });
});
