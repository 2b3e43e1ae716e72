import { type ArgumentsHost, Catch, type ExceptionFilter, NotFoundException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { notFound } from '../errors/client-errors.js';

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
    response.setHeader('Cache-Control', 'no-store');
    response.status(404).json(notFound(request.method, request.path).toPayload());
  }
}
