import { type ArgumentsHost, Catch, type ExceptionFilter, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { AppError } from '../errors/app-error.js';
import { internalError } from '../errors/client-errors.js';
import { HTTP_STATUS_OF } from '../errors/http-status.js';
import type { ErrorPayload } from '../protocol/error-codes.js';

/**
 * HTTP errors in the same shape as WebSocket `error` frames: `{code, message, retryable, …}` with
 * the status from {@link HTTP_STATUS_OF} and `Retry-After` when the error says when to retry.
 * Anything unexpected is `INTERNAL_ERROR` with a correlation id that is logged with the stack.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('Http');

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const [status, payload] = this.describe(exception);
    if (payload.retryAfterMs !== undefined) {
      response.setHeader('Retry-After', String(Math.ceil(payload.retryAfterMs / 1000)));
    }
    response.setHeader('Cache-Control', 'no-store');
    response.status(status).json(payload);
  }

  private describe(exception: unknown): [number, ErrorPayload] {
    const error = exception instanceof AppError ? exception : internalError(this.logger, 'request failed', exception);
    return [HTTP_STATUS_OF[error.code], error.toPayload()];
  }
}
