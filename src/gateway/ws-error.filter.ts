import { type ArgumentsHost, Catch, Injectable, Logger, type WsExceptionFilter } from '@nestjs/common';
import type { WebSocket } from 'ws';
import { AppError } from '../errors/app-error.js';
import { internalError } from '../errors/client-errors.js';
import { ConnectionRegistry } from './connection.registry.js';
import { isRequestId } from './frame.codec.js';

/**
 * The one place where a handler's failure becomes an `error` frame. Known errors keep their code;
 * anything else is a bug: the client gets `INTERNAL_ERROR` and a correlation id that is logged
 * with the stack, and the socket stays open.
 */
@Catch()
@Injectable()
export class WsErrorFilter implements WsExceptionFilter {
  private readonly logger = new Logger('Gateway');

  constructor(private readonly connections: ConnectionRegistry) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const ws = host.switchToWs();
    const connection = this.connections.get(ws.getClient<WebSocket>());
    const data: unknown = ws.getData();
    const candidate =
      typeof data === 'object' && data !== null ? (data as { requestId?: unknown }).requestId : undefined;
    // Echoed only when it is a valid id: never a 100 KB string or control characters.
    const requestId = isRequestId(candidate) ? candidate : undefined;
    const error =
      exception instanceof AppError
        ? exception
        : internalError(this.logger, `handler failed (connection ${connection.id})`, exception);
    connection.sendError(error.toPayload(requestId));
  }
}
