import type { ErrorCode, ErrorPayload } from '../protocol/error-codes.js';

/** What an error frame carries besides its code, message and retry hint. */
export type ErrorDetails = Omit<ErrorPayload, 'code' | 'message' | 'retryable' | 'requestId'>;

/** Everything but the code and the message, by name. */
export interface AppErrorOptions extends ErrorDetails {
  /** Whether sending the same request again can succeed. Default: false. */
  readonly retryable?: boolean;
  readonly cause?: unknown;
}

/**
 * An error a client is allowed to see: a stable code, a human message and whether retrying the
 * same request can succeed. Anything thrown that is not an `AppError` is a bug and reaches the
 * client only as `INTERNAL_ERROR` with a correlation id. Build them with the named constructors of
 * `client-errors.ts`: each error is defined there once.
 */
export class AppError extends Error {
  readonly retryable: boolean;
  readonly details: ErrorDetails;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: AppErrorOptions = {},
  ) {
    const { retryable = false, cause, ...details } = options;
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'AppError';
    this.retryable = retryable;
    this.details = details;
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
