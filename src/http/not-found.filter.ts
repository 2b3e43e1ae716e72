import { type ArgumentsHost, Catch, type ExceptionFilter, NotFoundException } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { ErrorPayload } from '../protocol/error-codes.js';

/**
 * A route that does not exist answers in the documented error shape, `{code: "NOT_FOUND", message,
 * retryable: false}`, instead of Nest's default body. Global, and for `NotFoundException` only:
 * every other error keeps the handling of its own route (the probes' 503 bodies, for one).
 */
@Catch(NotFoundException)
export class NotFoundFilter implements ExceptionFilter {
  catch(_exception: NotFoundException, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<Request>();
    const response = http.getResponse<Response>();
    // The path is the client's: quoted only in part.
    const payload: ErrorPayload = {
      code: 'NOT_FOUND',
      message: `no such route: ${request.method} ${request.path.slice(0, 200)}`,
      retryable: false,
    };
    response.setHeader('Cache-Control', 'no-store');
    response.status(404).json(payload);
  }
}
