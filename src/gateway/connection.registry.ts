import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { type Observable, Subject } from 'rxjs';
import type { WebSocket } from 'ws';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import type { AppError } from '../errors/app-error.js';
import type { CloseCode } from '../protocol/close-codes.js';
import { FleetQuotas } from '../fleet/fleet-quotas.js';
import type { ConnectionEvent, EarlyFrameEvent } from './connection.events.js';
import { type ConnectionLimits, WsConnection, type WsConnectionObserver } from './ws-connection.js';

/**
 * Every live connection (found from its socket by `WsConnection.of`). Owns the one heartbeat timer
 * for all of them (a timer per socket would cost memory and wake-ups for nothing), and reports what
 * happens to connections as streams (metrics subscribe to them) and as one log line per admission
 * and per close.
 */
@Injectable()
export class ConnectionRegistry implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('Gateway');
  private readonly live = new Set<WsConnection>();
  /**
   * Authenticated connections per user, held or established (admission reads it): a user's held
   * sockets count too, or one token could park any number of them before readiness.
   */
  private readonly openByUser = new Map<string, number>();
  private readonly emptyWaiters = new Set<() => void>();
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private readonly earlyFrames = new Subject<EarlyFrameEvent>();
  /** Every frame held (or dropped) before its connection was established. */
  readonly earlyFrames$: Observable<EarlyFrameEvent> = this.earlyFrames.asObservable();
  private readonly events = new Subject<ConnectionEvent>();
  /** Every connection opened, admitted (or refused), limited and closed (frames: {@link frameCounts}). */
  readonly events$: Observable<ConnectionEvent> = this.events.asObservable();

  /** Frames in and out so far, counted here and read by metrics at scrape time. */
  private readonly frames = { in: 0, out: 0 };
  /** Shared by every connection: nothing per connection beyond the connection itself. */
  private readonly observer: WsConnectionObserver = {
    onEvent: (event) => this.record(event),
    onEarlyFrame: (event) => this.earlyFrames.next(event),
    onFrame: (direction) => {
      this.frames[direction] += 1;
    },
    onClosed: (connection) => this.forget(connection),
  };
  private readonly limits: ConnectionLimits;

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly quotas: FleetQuotas,
  ) {
    const { messagesPerSecond, messageBurst, maxBufferedBytes } = config.ws;
    this.limits = { messagesPerSecond, messageBurst, maxBufferedBytes };
  }

  onModuleInit(): void {
    this.heartbeat = setInterval(() => {
      for (const connection of this.live) connection.heartbeat();
    }, this.config.ws.heartbeatMs);
    this.heartbeat.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.heartbeat);
    this.earlyFrames.complete();
    this.events.complete();
  }

  get size(): number {
    return this.live.size;
  }

  open(socket: WebSocket): WsConnection {
    const connection = new WsConnection(socket, this.observer, this.limits);
    this.live.add(connection);
    this.record({ type: 'opened', connectionId: connection.id });
    return connection;
  }

  /** Frames received and sent by every connection so far. */
  get frameCounts(): { readonly in: number; readonly out: number } {
    return { ...this.frames };
  }

  /** Authenticated connections of `userId` (held or established). */
  openOf(userId: string): number {
    return this.openByUser.get(userId) ?? 0;
  }

  /** The token of `connection` was verified for `userId`: from now on it counts as one of theirs, until it closes. */
  authenticated(connection: WsConnection, userId: string): void {
    if (connection.userId !== undefined) return;
    connection.userId = userId;
    this.openByUser.set(userId, this.openOf(userId) + 1);
  }

  /** The connection of `socket`. Every accepted socket has one: it is registered before any frame is read. */
  get(socket: WebSocket): WsConnection {
    const connection = WsConnection.of(socket);
    if (connection === undefined) throw new Error('ConnectionRegistry: socket has no connection');
    return connection;
  }

  /**
   * Closes every connection with `code` (after an `error` frame saying why, for established ones),
   * waits up to `graceMs` for the close handshakes, then terminates the sockets that did not
   * answer. Returns how many were closed cleanly and how many had to be terminated.
   */
  async closeAll(
    code: CloseCode,
    reason: string,
    error: AppError,
    graceMs: number,
  ): Promise<{ closed: number; terminated: number }> {
    const open = [...this.live];
    for (const connection of open) {
      if (connection.phase === 'established') connection.sendError(error.toPayload());
      connection.close(code, reason);
    }
    const clean = await this.whenAllClosed(graceMs);
    const left = clean ? [] : [...this.live];
    for (const connection of left) connection.socket.terminate();
    return { closed: open.length - left.length, terminated: left.length };
  }

  /** Sends every frame still gathered for a later write (before sockets are terminated). */
  flushWrites(): void {
    for (const connection of this.live) connection.flushWrites();
  }

  /** One line per admission and per close; frames are only counted (metrics), never logged. */
  private record(event: ConnectionEvent): void {
    switch (event.type) {
      case 'admitted':
        if (event.outcome === 'established') {
          this.logger.log('connection established', { connectionId: event.connectionId, userId: event.userId });
        } else {
          this.logger.log('connection refused', {
            connectionId: event.connectionId,
            outcome: event.outcome,
            errorCode: event.errorCode,
          });
        }
        break;
      case 'closed':
        // Only authenticated connections carry a user id.
        if (event.userId !== undefined) {
          const left = this.openOf(event.userId) - 1;
          if (left > 0) this.openByUser.set(event.userId, left);
          else this.openByUser.delete(event.userId);
          this.quotas.sync('connections', event.userId);
        }
        this.logger.log('connection closed', {
          connectionId: event.connectionId,
          userId: event.userId,
          code: event.code,
          durationMs: event.durationMs,
        });
        break;
      case 'limited':
        // A flood of dropped frames is counted, not logged line by line; a cut-off is worth a line.
        if (event.limit === 'slow_consumer') {
          this.logger.warn('slow consumer cut off', { connectionId: event.connectionId, userId: event.userId });
        }
        break;
      case 'opened':
        break;
      default: {
        const exhaustive: never = event;
        return exhaustive;
      }
    }
    this.events.next(event);
  }

  private forget(connection: WsConnection): void {
    this.live.delete(connection);
    if (this.live.size === 0) for (const notify of [...this.emptyWaiters]) notify();
  }

  /** Resolves `true` once no connection is left, or `false` after `timeoutMs`. */
  whenAllClosed(timeoutMs: number): Promise<boolean> {
    if (this.live.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (result: boolean): void => {
        clearTimeout(timer);
        this.emptyWaiters.delete(onEmpty);
        resolve(result);
      };
      const onEmpty = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      timer.unref();
      this.emptyWaiters.add(onEmpty);
    });
  }
}
