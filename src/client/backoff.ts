/** How reconnect delays grow. */
export interface BackoffPolicy {
  /** The cap of the first retry's delay. */
  readonly initialDelayMs: number;
  /** No delay is ever longer. */
  readonly maxDelayMs: number;
}

/**
 * Exponential backoff with full jitter: a uniformly random delay between 0 and
 * `min(maxDelayMs, initialDelayMs · 2^(attempt−1))`, so clients that lost the same server do not
 * come back in lock step. `attempt` counts from 1; `random` returns [0, 1).
 */
export function fullJitterDelay(attempt: number, policy: BackoffPolicy, random: () => number): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const cap = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** exponent);
  return Math.floor(random() * cap);
}
