import { describe, expect, it } from '@jest/globals';
import type { ErrorPayload } from '../protocol/error-codes.js';
import { fullJitterDelay } from './backoff.js';
import { decideOnClose } from './close-policy.js';

const error = (code: ErrorPayload['code'], extra: Partial<ErrorPayload> = {}): ErrorPayload => ({
  code,
  message: code,
  retryable: true,
  ...extra,
});

describe('decideOnClose: the close-code table of docs/protocol.md', () => {
  it.each([1001, 1006, 1007, 1009, 1011, 1012, 1013])('reconnects after %i', (code) => {
    expect(decideOnClose({ code, reason: '' })).toEqual({ action: 'reconnect', notBeforeMs: 0 });
  });

  it('honours retryAfterMs from the error frame before the close', () => {
    expect(
      decideOnClose({ code: 1013, reason: '', error: error('SERVICE_NOT_READY', { retryAfterMs: 2_000 }) }),
    ).toEqual({ action: 'reconnect', notBeforeMs: 2_000 });
  });

  it.each(['TOKEN_EXPIRED', 'UNAUTHORIZED'] as const)(
    'asks for a new token on 1008 %s, never reconnects as is',
    (code) => {
      expect(decideOnClose({ code: 1008, reason: '', error: error(code) })).toEqual({ action: 'refresh_token' });
    },
  );

  it('reconnects after retryAfterMs on 1008 RATE_LIMITED (closed for flooding: its own doing, not its token)', () => {
    expect(
      decideOnClose({
        code: 1008,
        reason: 'rate limit exceeded',
        error: error('RATE_LIMITED', { retryAfterMs: 2_000 }),
      }),
    ).toEqual({ action: 'reconnect', notBeforeMs: 2_000 });
  });

  it.each([
    [
      '1008 ORIGIN_NOT_ALLOWED (a new token cannot help)',
      { code: 1008, reason: '', error: error('ORIGIN_NOT_ALLOWED') },
    ],
    ['1008 without an error frame', { code: 1008, reason: '' }],
    ['1000 (a deliberate end)', { code: 1000, reason: '' }],
    ['1002 (a protocol error: a bug)', { code: 1002, reason: '' }],
  ])('stops on %s', (_, close) => {
    expect(decideOnClose(close)).toEqual({ action: 'stop' });
  });
});

describe('fullJitterDelay', () => {
  const policy = { initialDelayMs: 500, maxDelayMs: 30_000 };

  it('draws from [0, min(max, initial · 2^(attempt−1)))', () => {
    expect([1, 2, 3, 4].map((attempt) => fullJitterDelay(attempt, policy, () => 0.999_999))).toEqual([
      499, 999, 1_999, 3_999,
    ]);
    expect(fullJitterDelay(3, policy, () => 0)).toBe(0);
    expect(fullJitterDelay(3, policy, () => 0.5)).toBe(1_000);
  });

  it('never exceeds maxDelayMs, however many attempts', () => {
    expect(fullJitterDelay(60, policy, () => 0.999_999)).toBe(29_999);
    expect(fullJitterDelay(1_000, policy, () => 0.999_999)).toBe(29_999);
  });
});
