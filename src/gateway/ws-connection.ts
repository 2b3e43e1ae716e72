import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';
import type { AppError } from '../errors/app-error.js';
import { type CloseCode, MAX_CLOSE_REASON_BYTES } from '../protocol/close-codes.js';
import type { ErrorPayload } from '../protocol/error-codes.js';
import type { ConnectionEstablished, ServerEvents } from '../protocol/events.js';
import { type ConnectionEvent, type EarlyFrameEvent, refusalOutcome } from './connection.events.js';
import { encodeFrame, type InboundFrame } from './frame.codec.js';

/** Frames held per connection while it waits for `connection_established`. */
export const MAX_EARLY_FRAMES = 32;

/**
 * `held`: accepted, waiting for auth and readiness; frames are queued, never processed.
 * `established`: `connection_established` was sent; frames are dispatched as they arrive.
 * `closing`/`closed`: nothing more is processed.
 */
export type ConnectionPhase = 'held' | 'established' | 'closing' | 'closed';

export type FrameDispatcher = (frame: InboundFrame) => void;

/** What one connection may do (see `AppConfig['ws']`). */
export interface ConnectionLimits {
  readonly messagesPerSecond: number;
  readonly messageBurst: number;
  readonly maxBufferedBytes: number;
}

const UNLIMITED: ConnectionLimits = {
  messagesPerSecond: Number.POSITIVE_INFINITY,
  messageBurst: Number.POSITIVE_INFINITY,
  maxBufferedBytes: Number.POSITIVE_INFINITY,
};

/** Where a connection reports what happens to it (the registry turns these into streams). */
export interface WsConnectionObserver {
  /** Admission outcomes and frames in and out; no payloads. */
  readonly onEvent?: (event: ConnectionEvent) => void;
  /** Every frame that arrives before `connection_established`. */
  readonly onEarlyFrame?: (event: EarlyFrameEvent) => void;
}

/**
 * One client socket and its protocol state. The first frame a client ever receives is either
 * `connection_established` or an `error` followed by a close: every other send happens after
 * {@link establish}.
 */
export class WsConnection {
  readonly id = randomUUID();
  /** `performance.now()` when the socket was accepted. */
  readonly openedAt = performance.now();
  userId: string | undefined;
  private state: ConnectionPhase = 'held';
  private dispatcher: FrameDispatcher | undefined;
  private readonly early: InboundFrame[] = [];
  private readonly dropped: InboundFrame[] = [];
  private awaitingPong = false;
  /** The message-rate token bucket, refilled lazily from the clock (no timer per connection). */
  private tokens: number;
  private refilledAt = performance.now();

  constructor(
    readonly socket: WebSocket,
    private readonly observer: WsConnectionObserver = {},
    private readonly limits: ConnectionLimits = UNLIMITED,
  ) {
    this.tokens = limits.messageBurst;
    socket.on('pong', () => {
      this.awaitingPong = false;
    });
    socket.once('close', () => {
      this.state = 'closed';
      this.early.length = 0;
    });
  }

  get phase(): ConnectionPhase {
    return this.state;
  }

  /**
   * Why frames are queued here: a reconnecting client flushes its queued sends the moment the
   * socket opens, and Nest binds message handlers before an async admission could finish (nest
   * issue #882). Processing such a frame before readiness is exactly the 1011 of the incident.
   */
  receive(frame: InboundFrame): void {
    this.observer.onEvent?.({ type: 'frame', connectionId: this.id, direction: 'in' });
    switch (this.state) {
      case 'established':
        if (this.takeToken()) this.dispatcher?.(frame);
        else this.rateLimited(frame);
        return;
      case 'held': {
        const outcome = this.early.length < MAX_EARLY_FRAMES ? 'held' : 'dropped';
        (outcome === 'held' ? this.early : this.dropped).push(frame);
        this.observer.onEarlyFrame?.({ connectionId: this.id, outcome });
        return;
      }
      case 'closing':
      case 'closed':
        return;
      default: {
        const exhaustive: never = this.state;
        return exhaustive;
      }
    }
  }

  /** Connects the message pipeline; held frames wait until {@link establish}. */
  attach(dispatcher: FrameDispatcher): void {
    this.dispatcher = dispatcher;
    this.flush();
  }

  /** Sends `connection_established`, then processes the held frames in arrival order. */
  establish(userId: string, details: Omit<ConnectionEstablished, 'connectionId' | 'userId'>): void {
    if (this.state !== 'held') return;
    this.userId = userId;
    this.state = 'established';
    this.observer.onEvent?.({ type: 'admitted', connectionId: this.id, outcome: 'established', userId });
    this.send('connection_established', { connectionId: this.id, userId, ...details });
    if (this.dropped.length > 0) {
      this.sendError({
        code: 'TOO_MANY_EARLY_FRAMES',
        message: `${this.dropped.length} frame(s) beyond the first ${MAX_EARLY_FRAMES} sent before connection_established were dropped; resend them`,
        retryable: true,
        unprocessedRequestIds: requestIdsOf(this.dropped),
      });
      this.dropped.length = 0;
    }
    this.flush();
  }

  /**
   * Refuses the connection: one `error` frame naming the requests that were never processed,
   * then a close with `code`. The close reason is cut to the 123 bytes RFC 6455 allows.
   */
  refuse(error: AppError, code: CloseCode, reason: string): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    if (this.state === 'held') {
      this.observer.onEvent?.({
        type: 'admitted',
        connectionId: this.id,
        outcome: refusalOutcome(error.code),
        errorCode: error.code,
      });
    }
    const unprocessed = requestIdsOf([...this.early, ...this.dropped]);
    this.early.length = 0;
    this.dropped.length = 0;
    this.sendError({ ...error.toPayload(), ...(unprocessed.length > 0 ? { unprocessedRequestIds: unprocessed } : {}) });
    this.close(code, reason);
  }

  send<E extends keyof ServerEvents>(event: E, data: ServerEvents[E]): void {
    this.sendRaw(encodeFrame(event, data));
  }

  /** Sends an already encoded frame (for fan-out: serialise once, send many). */
  sendRaw(frame: string): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(frame);
    this.observer.onEvent?.({ type: 'frame', connectionId: this.id, direction: 'out' });
    // A client that stopped reading: what waits for it would grow without bound. It cannot read a
    // close frame either, so the socket is cut at once (it sees 1006) and the memory goes with it.
    if (this.socket.bufferedAmount > this.limits.maxBufferedBytes) {
      this.observer.onEvent?.({
        type: 'limited',
        connectionId: this.id,
        limit: 'slow_consumer',
        ...(this.userId === undefined ? {} : { userId: this.userId }),
      });
      this.state = 'closing';
      this.socket.terminate();
    }
  }

  sendError(payload: ErrorPayload): void {
    this.send('error', payload);
  }

  close(code: CloseCode, reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closing';
    this.socket.close(code, truncateUtf8(reason, MAX_CLOSE_REASON_BYTES));
  }

  /** One heartbeat tick: a peer that did not answer the previous ping is terminated. */
  heartbeat(): void {
    if (this.state === 'closed') return;
    if (this.awaitingPong) {
      this.socket.terminate();
      return;
    }
    this.awaitingPong = true;
    this.socket.ping();
  }

  private takeToken(): boolean {
    const now = performance.now();
    const refill = ((now - this.refilledAt) / 1000) * this.limits.messagesPerSecond;
    this.tokens = Math.min(this.limits.messageBurst, this.tokens + refill);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** A frame over the rate: dropped unprocessed, answered so the client knows what to resend and when. */
  private rateLimited(frame: InboundFrame): void {
    this.observer.onEvent?.({ type: 'limited', connectionId: this.id, limit: 'message_rate' });
    this.sendError({
      code: 'RATE_LIMITED',
      message: `more than ${this.limits.messagesPerSecond} frames per second on this connection: this one was not processed`,
      retryable: true,
      retryAfterMs: Math.ceil(((1 - this.tokens) / this.limits.messagesPerSecond) * 1000),
      ...(frame.requestId === undefined ? {} : { requestId: frame.requestId }),
    });
  }

  private flush(): void {
    while (this.state === 'established' && this.dispatcher !== undefined && this.early.length > 0) {
      const frame = this.early.shift();
      if (frame !== undefined) this.dispatcher(frame);
    }
  }
}

function requestIdsOf(frames: readonly InboundFrame[]): string[] {
  return frames.flatMap((frame) => (frame.requestId === undefined ? [] : [frame.requestId]));
}

function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  // Step back over UTF-8 continuation bytes so no character is cut in half.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end -= 1;
  return bytes.subarray(0, end).toString('utf8');
}
