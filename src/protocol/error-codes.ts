/**
 * Every error code a client can see, in `error` frames and in HTTP error bodies.
 * The codes are stable: clients branch on them, never on `message`.
 */
export const ERROR_CODES = [
  'UNAUTHORIZED',
  'TOKEN_EXPIRED',
  'ORIGIN_NOT_ALLOWED',
  'SERVICE_NOT_READY',
  'SERVICE_SHUTTING_DOWN',
  'TOO_MANY_EARLY_FRAMES',
  'BAD_REQUEST',
  'UNKNOWN_EVENT',
  'VALIDATION_FAILED',
  'THREAD_NOT_FOUND',
  'INTERNAL_ERROR',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The `data` of an `error` frame. */
export interface ErrorPayload {
  readonly code: ErrorCode;
  readonly message: string;
  readonly retryable: boolean;
  /** The `requestId` of the client frame this error answers, when it had one. */
  readonly requestId?: string;
  /** Set on `VALIDATION_FAILED`: the path of the offending field, e.g. `message` or `data`. */
  readonly field?: string;
  /** Set on `INTERNAL_ERROR`: quote it when reporting the problem; it is in the server log too. */
  readonly correlationId?: string;
  /** Set on `SERVICE_NOT_READY` and `SERVICE_SHUTTING_DOWN`: wait at least this long before retrying. */
  readonly retryAfterMs?: number;
  /** Set on `SERVICE_NOT_READY`: the dependencies that were not ready. */
  readonly missing?: readonly string[];
  /**
   * Set when frames the client sent were dropped without being processed (refused connection,
   * `TOO_MANY_EARLY_FRAMES`): their `requestId`s, so the client knows exactly what to resend.
   */
  readonly unprocessedRequestIds?: readonly string[];
}
