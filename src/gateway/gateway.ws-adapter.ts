import type { INestApplicationContext } from '@nestjs/common';
import { Logger } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { fromEvent, type Observable, share, take, takeUntil } from 'rxjs';
import type { WebSocket, WebSocketServer } from 'ws';
import type { AppConfig } from '../config/app-config.js';
import { AppError } from '../errors/app-error.js';
import type { ConnectionRegistry } from './connection.registry.js';
import { decodeFrame, type InboundFrame } from './frame.codec.js';
import type { WsConnection } from './ws-connection.js';

type Transform = (data: unknown) => Observable<unknown>;

/**
 * Nest's `ws` adapter with the gateway's transport rules: the payload limit (ws closes with 1009),
 * no compression, and a message pipeline that routes every frame through its {@link WsConnection},
 * which holds frames until the connection is established and answers malformed or unknown frames
 * with an error instead of dropping them silently.
 */
export class GatewayWsAdapter extends WsAdapter {
  private readonly log = new Logger('Gateway');

  constructor(
    app: INestApplicationContext,
    private readonly wsConfig: AppConfig['ws'],
    private readonly connections: ConnectionRegistry,
  ) {
    super(app);
  }

  override create(port: number, options: Record<string, unknown> = {}): WebSocketServer {
    return super.create(port, {
      ...options,
      maxPayload: this.wsConfig.maxPayloadBytes,
      perMessageDeflate: false,
    }) as WebSocketServer;
  }

  override bindMessageHandlers(socket: WebSocket, handlers: MessageMappingProperties[], transform: Transform): void {
    const connection = this.connections.get(socket);
    const byEvent = new Map(handlers.map((handler) => [handler.message as string, handler]));
    const closed$ = fromEvent(socket, 'close').pipe(take(1), share());
    // Frames are dispatched one after another: a frame's handler is invoked only once the previous
    // one has returned (not finished streaming), so replies to quick requests keep request order.
    let previous = Promise.resolve();
    connection.attach((frame) => {
      previous = previous
        .then(() => this.dispatch(connection, frame, byEvent, transform, closed$))
        .catch((error: unknown) => this.log.error(`dispatch failed: ${String(error)}`));
    });
    socket.on('message', (data, isBinary) => connection.receive(decodeFrame(data, isBinary)));
  }

  /** Client-caused socket errors (bad UTF-8, oversized frame) are expected on a public endpoint. */
  override bindErrorHandler(server: WebSocketServer): WebSocketServer {
    server.on('connection', (socket: WebSocket) =>
      socket.on('error', (error) => this.log.debug(`socket error: ${error.message}`)),
    );
    server.on('error', (error) => this.log.error(`server error: ${error.message}`));
    return server;
  }

  private async dispatch(
    connection: WsConnection,
    frame: InboundFrame,
    byEvent: ReadonlyMap<string, MessageMappingProperties>,
    transform: Transform,
    closed$: Observable<unknown>,
  ): Promise<void> {
    if (frame.kind === 'invalid') {
      connection.sendError(frame.error.toPayload(frame.requestId));
      return;
    }
    const handler = byEvent.get(frame.event);
    if (handler === undefined) {
      const error = new AppError('UNKNOWN_EVENT', `unknown event "${frame.event.slice(0, 64)}"`, false);
      connection.sendError(error.toPayload(frame.requestId));
      return;
    }
    // Handler errors, sync or async, become error frames in WsErrorFilter inside Nest's proxy.
    let result: unknown;
    try {
      result = await handler.callback(frame.data, frame.event);
    } catch (error) {
      this.log.error(`handler escaped its exception filter: ${String(error)}`);
      return;
    }
    transform(result)
      .pipe(takeUntil(closed$))
      .subscribe({
        next: (response) => {
          if (isWsResponse(response)) connection.send(response.event as never, response.data as never);
        },
        error: (error: unknown) => this.log.error(`response stream failed: ${String(error)}`),
      });
  }
}

function isWsResponse(value: unknown): value is { event: string; data: unknown } {
  return typeof value === 'object' && value !== null && typeof (value as { event?: unknown }).event === 'string';
}
