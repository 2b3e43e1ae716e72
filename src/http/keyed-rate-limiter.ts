/**
 * Token buckets by key (a user id, an address), in a table of bounded size: when it is full the
 * least recently seen key is forgotten, which only ever gives that key a full bucket again. A key
 * costs about a hundred bytes, so the default bound holds the table under 10 MB whatever the
 * number of users or addresses.
 */
export class KeyedRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    /** Tokens added per second… */
    private readonly perSecond: number,
    /** …up to this many (the burst). */
    private readonly burst: number,
    private readonly maxKeys = 50_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one token for `key`: 0 when there was one, else the milliseconds until there will be. */
  take(key: string): number {
    const now = this.now();
    const bucket = this.buckets.get(key);
    let tokens = this.burst;
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) this.forgetOldest();
    } else {
      tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
      // Re-inserted, so that the table's order is the order keys were last seen in.
      this.buckets.delete(key);
    }
    if (tokens < 1) {
      this.buckets.set(key, { tokens, at: now });
      return Math.ceil(((1 - tokens) / this.perSecond) * 1000);
    }
    this.buckets.set(key, { tokens: tokens - 1, at: now });
    return 0;
  }

  /** Keys held now (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  private forgetOldest(): void {
    const oldest = this.buckets.keys().next();
    if (oldest.done !== true) this.buckets.delete(oldest.value);
  }
}
