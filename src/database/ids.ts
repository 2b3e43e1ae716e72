import { randomBytes } from 'node:crypto';

/**
 * UUIDv7 (RFC 9562): a 48-bit millisecond timestamp, then randomness. Ids made by this process
 * are strictly increasing (the 12-bit `rand_a` field counts within a millisecond), so ordering
 * rows by id orders them by creation, which is what the history and list cursors rely on.
 */
let lastMs = 0;
let counter = 0;

export function newId(now = Date.now()): string {
  let ms = Math.max(now, lastMs);
  if (ms === lastMs) {
    counter += 1;
    if (counter > 0xfff) {
      ms += 1;
      counter = 0;
    }
  } else {
    counter = 0;
  }
  lastMs = ms;
  const bytes = randomBytes(16);
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (counter >> 8);
  bytes[7] = counter & 0xff;
  bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/u;

/** Ids are lower-case canonical UUIDs; anything else is rejected before it reaches a query. */
export function isId(value: string): boolean {
  return UUID.test(value);
}
