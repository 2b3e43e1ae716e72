import type { ErrorCode, ErrorPayload } from '../protocol/error-codes.js';

/** Failures the client itself reports, beside the server's own error codes. */
export type ClientErrorCode =
  /** `close()` was called, or the client gave up reconnecting, before this was answered. */
  | 'CLIENT_CLOSED'
  /** Too many requests waited for a connection (`maxQueuedRequests`). */
  | 'QUEUE_FULL'
  /**
   * The connection closed after an `agent_request` was sent and before the server acknowledged
   * it: the run may or may not have started (the thread history tells).
   */
  | 'CONNECTION_LOST';

/** The shape of every error the client surfaces: the server's payload, or one of its own. */
export interface GatewayErrorInfo {
  readonly code: ErrorCode | ClientErrorCode;
  readonly message: string;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
}

/** A request that failed: `code` is stable, branch on it (never on `message`). */
export class GatewayError extends Error implements GatewayErrorInfo {
  readonly code: ErrorCode | ClientErrorCode;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
  /** The server's `error` frame, when the server sent one. */
  readonly payload?: ErrorPayload;

  constructor(info: GatewayErrorInfo, payload?: ErrorPayload) {
    super(info.message);
    this.name = 'GatewayError';
    this.code = info.code;
    this.retryable = info.retryable;
    if (info.retryAfterMs !== undefined) this.retryAfterMs = info.retryAfterMs;
    if (payload !== undefined) this.payload = payload;
  }

  static fromPayload(payload: ErrorPayload): GatewayError {
    return new GatewayError(payload, payload);
  }
}
