import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { createAppLogger } from './app.logger.js';

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

  it('drops the levels below LOG_LEVEL', () => {
    const logger = createAppLogger({ format: 'json', level: 'log' });
    expect(written(() => logger.debug('per-frame noise', 'Test'))).toEqual([]);
  });
});
