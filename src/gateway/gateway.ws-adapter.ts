import type { INestApplicationContext } from '@nestjs/common';
import { Logger } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { isObservable } from 'rxjs';
import type { RawData, WebSocket, WebSocketServer } from 'ws';
import type { AppConfig } from '../config/app-config.js';
import { unknownEvent } from '../errors/client-errors.js';
import type { ConnectionRegistry } from './connection.registry.js';
import { decodeFrame, type InboundFrame } from './frame.codec.js';
import { isPromiseLike, WsConnection } from './ws-connection.js';

const log = new Logger('Gateway');

/** Shared by every socket (a closure per socket would cost memory for as long as it is open). */
function onSocketMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  WsConnection.of(this)?.receive(decodeFrame(data, isBinary));
}

/** Client-caused socket errors (bad UTF-8, oversized frame) are expected on a public endpoint. */
function onSocketError(error: Error): void {
  log.debug(`socket error: ${error.message}`);
}

/**
 * Nest's `ws` adapter with the gateway's transport rules: the payload limit (ws closes with 1009),
 * no compression, pings answered within the connection's frame budget, and a message pipeline that routes every frame through its {@link WsConnection},
 * which holds frames until the connection is established and answers malformed or unknown frames
 * with an error instead of dropping them silently.
 *
 * Replies are taken from the handlers directly rather than through Nest's `transform` (an rxjs
 * pipeline per frame, even for a single value): a value or a promise of one is sent as it is, an
 * Observable is followed until it completes or the socket closes. Same behaviour, a fraction of
 * the cost per frame (docs/benchmarks.md).
 */
export class GatewayWsAdapter extends WsAdapter {
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
      // Pings are answered by the connection, within its frame budget (a flood of them is closed).
      autoPong: false,
    }) as WebSocketServer;
  }

  override bindMessageHandlers(socket: WebSocket, handlers: MessageMappingProperties[]): void {
    this.connections.get(socket).attach(dispatch, handlers);
    socket.on('message', onSocketMessage);
  }

  /**
   * Nest would add a `close` listener per socket to feed `handleDisconnect`. The gateway has none
   * (connection ends are `ConnectionRegistry`'s `closed` events), so nothing is bound; a unit test
   * fails if `ChatGateway` ever gets a `handleDisconnect`, which would need this back.
   */
  override bindClientDisconnect(): void {
    // Nothing to feed.
  }

  /** Nest terminates every socket here: the frames already sent must leave first. */
  override async close(server: WebSocketServer): Promise<void> {
    this.connections.flushWrites();
    await super.close(server);
  }

  override bindErrorHandler(server: WebSocketServer): WebSocketServer {
    server.on('connection', (socket: WebSocket) => socket.on('error', onSocketError));
    server.on('error', (error) => log.error(`server error: ${error.message}`));
    return server;
  }
}

/**
 * Handles one frame; returns the handler's promise, so that the connection hands it the next frame
 * only once this one's handler has returned (a streamed reply goes on after that).
 */
function dispatch(
  frame: InboundFrame,
  connection: WsConnection,
  handlers: readonly MessageMappingProperties[],
): Promise<void> | undefined {
  if (frame.kind === 'invalid') {
    connection.sendError(frame.error.toPayload(frame.requestId));
    return undefined;
  }
  const handler = handlerFor(handlers, frame.event);
  if (handler === undefined) {
    connection.sendError(unknownEvent(frame.event).toPayload(frame.requestId));
    return undefined;
  }
  // Handler errors, sync or async, become error frames in WsErrorFilter inside Nest's proxy.
  let result: unknown;
  try {
    result = handler.callback(frame.data, frame.event);
  } catch (error) {
    log.error(`handler escaped its exception filter: ${String(error)}`);
    return undefined;
  }
  return reply(connection, result);
}

/** A handful of handlers: a scan is cheaper than a map per socket. */
function handlerFor(
  handlers: readonly MessageMappingProperties[],
  event: string,
): MessageMappingProperties | undefined {
  for (const handler of handlers) if (handler.message === event) return handler;
  return undefined;
}

/** Sends what a handler returned: nothing, a `{event, data}` response, or a stream of them. */
function reply(connection: WsConnection, result: unknown): Promise<void> | undefined {
  if (isPromiseLike(result)) {
    return Promise.resolve(result).then(
      (value) => reply(connection, value),
      (error: unknown) => log.error(`handler escaped its exception filter: ${String(error)}`),
    );
  }
  if (isObservable(result)) {
    connection.follow(
      result.subscribe({
        next: (response) => send(connection, response, true),
        error: (error: unknown) => log.error(`response stream failed: ${String(error)}`),
      }),
    );
    return undefined;
  }
  send(connection, result);
  return undefined;
}

function send(connection: WsConnection, response: unknown, gather = false): void {
  if (isWsResponse(response)) connection.send(response.event as never, response.data as never, gather);
}

function isWsResponse(value: unknown): value is { event: string; data: unknown } {
  return typeof value === 'object' && value !== null && typeof (value as { event?: unknown }).event === 'string';
}
