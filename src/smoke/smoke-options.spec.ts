import { DEFAULT_THRESHOLDS, DEFAULT_TIMEOUT_MS, parseDuration, parseSmokeArguments } from './smoke-options.js';

describe('parseSmokeArguments', () => {
  it('reads the URL, a user and the defaults', () => {
    const parsed = parseSmokeArguments(['--url', 'http://127.0.0.1:3000', '--user', 'smoke'], {});
    expect(parsed).toEqual({
      kind: 'options',
      options: expect.objectContaining({
        auth: { user: 'smoke' },
        thresholds: DEFAULT_THRESHOLDS,
        timeoutMs: DEFAULT_TIMEOUT_MS,
        json: false,
      }),
    });
    if (parsed.kind === 'options') expect(parsed.options.url.href).toBe('http://127.0.0.1:3000/');
  });

  it('takes --flag=value, durations with units, --json and SMOKE_TOKEN', () => {
    const parsed = parseSmokeArguments(
      ['--url=https://chat.example', '--max-connect-ms=500', '--timeout', '30s', '--json'],
      { SMOKE_TOKEN: 'abc' },
    );
    expect(parsed.kind).toBe('options');
    if (parsed.kind !== 'options') return;
    expect(parsed.options.auth).toEqual({ token: 'abc' });
    expect(parsed.options.thresholds.connectMs).toBe(500);
    expect(parsed.options.timeoutMs).toBe(30_000);
    expect(parsed.options.json).toBe(true);
  });

  it('reports every problem at once', () => {
    const parsed = parseSmokeArguments(
      ['--url', 'ftp://x', '--token', 't', '--user', 'u', '--max-completed-ms', '0', '-v'],
      {},
    );
    expect(parsed.kind).toBe('invalid');
    if (parsed.kind !== 'invalid') return;
    expect(parsed.problems).toEqual([
      'unknown argument "-v"',
      '--url: http:// or https:// (got ftp:)',
      '--token and --user: give one',
      '--max-completed-ms: a duration of at least 1 ms (got "0")',
    ]);
  });

  it('never takes the next flag for a missing value', () => {
    const parsed = parseSmokeArguments(['--url', '--user', 'u'], {});
    expect(parsed).toEqual({ kind: 'invalid', problems: ['--url needs a value', '--url is required'] });
  });

  it('requires a URL and a token source', () => {
    expect(parseSmokeArguments([], {})).toEqual({
      kind: 'invalid',
      problems: ['--url is required', '--token (or SMOKE_TOKEN) or --user is required'],
    });
  });

  it('answers --help before anything else', () => {
    expect(parseSmokeArguments(['--bogus', '-h'], {})).toEqual({ kind: 'help' });
  });
});

describe('parseDuration', () => {
  it.each([
    ['1500', 1500],
    ['1500ms', 1500],
    ['2s', 2000],
    ['1.5s', 1500],
    ['2m', 120_000],
  ])('%s → %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', '0', '-1', 'soon', '5h', '0.4'])('refuses %j', (text) => expect(parseDuration(text)).toBeUndefined());
});
