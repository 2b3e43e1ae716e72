import type { ErrorPayload } from '../protocol/error-codes.js';

/**
 * Bytes of request ids (JSON-encoded) one error frame lists at most: with the rest of the frame it
 * stays under `MAX_ERROR_FRAME_BYTES`, whatever the client sent. The count is always exact.
 */
const MAX_LISTED_BYTES = 4_096;

/**
 * Frames that were never processed (held then refused, or dropped before establishment): how many,
 * and the request ids of as many of them as fit in {@link MAX_LISTED_BYTES}. A fixed amount of
 * memory however many frames a client sends.
 */
export class UnprocessedRequests {
  private total = 0;
  private readonly ids: string[] = [];
  private bytes = 0;

  get count(): number {
    return this.total;
  }

  add(requestId: string | undefined): void {
    this.total += 1;
    if (requestId !== undefined) this.list(requestId);
  }

  /** Takes in another list (its count, and its ids while they fit). */
  merge(other: UnprocessedRequests | undefined): void {
    if (other === undefined) return;
    this.total += other.total;
    for (const id of other.ids) this.list(id);
  }

  /** `unprocessedRequestIds` and `unprocessedCount`, or nothing when every frame was processed. */
  toPayload(): Pick<ErrorPayload, 'unprocessedRequestIds' | 'unprocessedCount'> {
    return this.total === 0 ? {} : { unprocessedRequestIds: [...this.ids], unprocessedCount: this.total };
  }

  private list(id: string): void {
    const size = Buffer.byteLength(id) * 2 + 3; // quoted, a comma, every character escaped at worst
    if (this.bytes + size > MAX_LISTED_BYTES) return;
    this.ids.push(id);
    this.bytes += size;
  }
}
