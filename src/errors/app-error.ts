import type { ErrorCode, ErrorPayload } from '../protocol/error-codes.js';

type ErrorDetails = Omit<ErrorPayload, 'code' | 'message' | 'retryable' | 'requestId'>;

/**
 * An error a client is allowed to see: a stable code, a human message and whether retrying the
 * same request can succeed. Anything thrown that is not an `AppError` is a bug and reaches the
 * client only as `INTERNAL_ERROR` with a correlation id.
 */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryable = false,
    readonly details: ErrorDetails = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
  }

  toPayload(requestId?: string): ErrorPayload {
    return {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...(requestId === undefined ? {} : { requestId }),
      ...this.details,
    };
  }
}
