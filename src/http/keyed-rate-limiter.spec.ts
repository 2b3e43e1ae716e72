import { describe, expect, it } from '@jest/globals';
import { KeyedRateLimiter } from './keyed-rate-limiter.js';

describe('KeyedRateLimiter', () => {
  it('lets a burst through, then one request per refill, and says how long to wait', () => {
    let now = 0;
    const limiter = new KeyedRateLimiter(2, 3, 100, () => now);
    expect([limiter.take('alice'), limiter.take('alice'), limiter.take('alice')]).toEqual([0, 0, 0]);
    expect(limiter.take('alice')).toBe(500);
    now = 499;
    expect(limiter.take('alice')).toBe(2);
    now = 500;
    expect(limiter.take('alice')).toBe(0);
    // Another key has its own bucket.
    expect(limiter.take('bob')).toBe(0);
    // Never more than the burst, however long the wait.
    now = 1_000_000;
    expect([0, 1, 2, 3].map(() => limiter.take('alice'))).toEqual([0, 0, 0, 500]);
  });

  it('holds at most maxKeys keys, forgetting the one seen longest ago', () => {
    let now = 0;
    const limiter = new KeyedRateLimiter(1, 1, 3, () => now);
    for (const key of ['a', 'b', 'c']) expect(limiter.take(key)).toBe(0);
    expect(limiter.take('a')).toBe(1000); // a is now the most recently seen
    now = 1;
    expect(limiter.take('d')).toBe(0); // b is forgotten
    expect(limiter.size).toBe(3);
    expect(limiter.take('a')).toBe(999); // a's empty bucket was kept
    expect(limiter.take('b')).toBe(0); // b starts again with a full bucket
    expect(limiter.size).toBe(3);
  });
});
