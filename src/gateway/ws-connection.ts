import { randomUUID } from 'node:crypto';
import type { Writable } from 'node:stream';
import type { Subscription } from 'rxjs';
import type { WebSocket } from 'ws';
import type { AppError } from '../errors/app-error.js';
import { rateLimited, tooManyEarlyFrames } from '../errors/client-errors.js';
import { CloseCode, MAX_CLOSE_REASON_BYTES } from '../protocol/close-codes.js';
import type { ErrorPayload } from '../protocol/error-codes.js';
import type { ConnectionEstablished, ServerEvents } from '../protocol/events.js';
import {
  type ConnectionEvent,
  type EarlyFrameEvent,
  type FrameDirection,
  refusalOutcome,
} from './connection.events.js';
import { encodeErrorFrame, encodeFrame, type InboundFrame } from './frame.codec.js';
import { UnprocessedRequests } from './unprocessed-requests.js';

/**
 * `WebSocket.OPEN`, the readyState of an open socket (the WebSocket standard's 1), named here rather
 * than imported: importing `ws` as an ES module makes Node scan its CommonJS source for export
 * names at every start, and Nest's adapter loads `ws` with `require` anyway.
 */
const OPEN = 1;

/** Frames held per connection while it waits for `connection_established`. */
export const MAX_EARLY_FRAMES = 32;
/**
 * A peer this many bursts beyond its frame budget (it ignored the `RATE_LIMITED` answers, or floods
 * control frames, which get none) is closed with 1008: what it sends costs the server CPU whether
 * or not it is processed.
 */
export const FLOOD_BURSTS = 10;
/** The close reason of a flooding peer (docs/protocol.md, "Close codes"). */
export const FLOOD_CLOSE_REASON = 'rate limit exceeded';
/** Bytes written to a corked socket after which they leave at once instead of at the end of the turn. */
const CORK_FLUSH_BYTES = 64 * 1024;

/**
 * `held`: accepted, waiting for auth and readiness; frames are queued, never processed.
 * `established`: `connection_established` was sent; frames are dispatched as they arrive.
 * `closing`/`closed`: nothing more is processed.
 */
export type ConnectionPhase = 'held' | 'established' | 'closing' | 'closed';

/**
 * Handles one frame of `connection` with the connection's `routes` (one function for every
 * connection: nothing is allocated per connection for it). When it returns a promise, the next frame
 * waits for it: replies to quick requests keep request order (a streaming reply goes on after the
 * promise, beside later frames).
 */
export type FrameDispatcher<R = unknown> = (frame: InboundFrame, connection: WsConnection, routes: R) => unknown;

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

/**
 * Where connections report what happens to them (the registry, one object for all of them, turns
 * these into streams and counters).
 */
export interface WsConnectionObserver {
  /** Admission outcomes, limits applied, the close; no payloads. */
  readonly onEvent?: (event: ConnectionEvent) => void;
  /** Every frame that arrives before `connection_established`. */
  readonly onEarlyFrame?: (event: EarlyFrameEvent) => void;
  /** Every frame in or out, counted (an event object per frame would cost more than the frame). */
  readonly onFrame?: (direction: FrameDirection) => void;
  /** The socket closed (after the `closed` event). */
  readonly onClosed?: (connection: WsConnection) => void;
}

const NO_OBSERVER: WsConnectionObserver = {};
/** The connection of a socket, on the socket: its listeners are shared functions, not closures. */
const CONNECTION = Symbol('WsConnection');
type TrackedSocket = WebSocket & { [CONNECTION]?: WsConnection };

function onSocketPong(this: TrackedSocket): void {
  this[CONNECTION]?.pong();
}

function onSocketClose(this: TrackedSocket, code: number): void {
  this[CONNECTION]?.onClose(code);
}

/** `ws` answers pings itself unless told not to (`autoPong: false`, see the adapter): here, within the budget. */
function onSocketPing(this: TrackedSocket, data: Buffer): void {
  this[CONNECTION]?.ping(data);
}

/**
 * One client socket and its protocol state. The first frame a client ever receives is either
 * `connection_established` or an `error` followed by a close: every other send happens after
 * {@link establish}. A connection costs memory for as long as it is open, so it keeps what it needs
 * and no more: its queues exist only while they hold something, and its listeners are shared.
 */
export class WsConnection {
  readonly id = randomUUID();
  /** `performance.now()` when the socket was accepted. */
  readonly openedAt = performance.now();
  userId: string | undefined;
  private state: ConnectionPhase = 'held';
  private dispatcher: FrameDispatcher | undefined;
  /** What the dispatcher needs for this connection (the gateway's handlers bound to this socket). */
  private routes: unknown;
  /** Frames received before establishment, held in order (at most {@link MAX_EARLY_FRAMES}). */
  private early: InboundFrame[] | undefined;
  /** Frames dropped before establishment: counted, with a bounded list of their request ids. */
  private dropped: UnprocessedRequests | undefined;
  /** Frames waiting for the previous one's handler to return. */
  private queued: InboundFrame[] | undefined;
  private dispatching = false;
  private following: Set<Subscription> | undefined;
  /** The follows with a key (a run followed after `resume`): one per key, the latest. */
  private followingByKey: Map<string, Subscription> | undefined;
  private awaitingPong = false;
  /** The message-rate token bucket, refilled lazily from the clock (no timer per connection). */
  private tokens: number;
  private refilledAt = performance.now();
  /** Frames refused for the rate, decaying at the rate: past {@link FLOOD_BURSTS} bursts the peer is closed. */
  private debt = 0;
  private debtAt = 0;
  /** The TCP socket under `ws`, while it is corked for the rest of this turn of the event loop. */
  private corked: Writable | undefined;

  constructor(
    readonly socket: WebSocket,
    private readonly observer: WsConnectionObserver = NO_OBSERVER,
    private readonly limits: ConnectionLimits = UNLIMITED,
  ) {
    this.tokens = limits.messageBurst;
    (socket as TrackedSocket)[CONNECTION] = this;
    socket.on('pong', onSocketPong);
    socket.on('ping', onSocketPing);
    socket.on('close', onSocketClose);
  }

  /** The connection of a socket accepted by {@link WsConnection}, if any. */
  static of(socket: WebSocket): WsConnection | undefined {
    return (socket as TrackedSocket)[CONNECTION];
  }

  get phase(): ConnectionPhase {
    return this.state;
  }

  /**
   * Why frames are queued here: a reconnecting client flushes its queued sends the moment the
   * socket opens, and Nest binds message handlers before an async admission could finish (nest
   * issue #882). Processing such a frame before readiness would reach services that are not
   * initialised yet: the crash (and close 1011) this gateway exists to prevent.
   */
  receive(frame: InboundFrame): void {
    this.observer.onFrame?.('in');
    switch (this.state) {
      case 'established':
        if (this.takeToken()) this.dispatch(frame);
        else this.rateLimited(frame);
        return;
      case 'held': {
        // Held sockets pay for their frames like established ones; what they cannot be answered
        // yet (nothing is sent before connection_established) is dropped and listed later.
        const withinRate = this.takeToken();
        const outcome = withinRate && (this.early?.length ?? 0) < MAX_EARLY_FRAMES ? 'held' : 'dropped';
        if (outcome === 'held') (this.early ??= []).push(frame);
        else (this.dropped ??= new UnprocessedRequests()).add(frame.requestId);
        this.observer.onEarlyFrame?.({ connectionId: this.id, outcome });
        if (!withinRate) this.overRate();
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
  attach<R>(dispatcher: FrameDispatcher<R>, routes: R): void {
    this.dispatcher = dispatcher as FrameDispatcher;
    this.routes = routes;
    this.flush();
  }

  /** Sends `connection_established`, then processes the held frames in arrival order. */
  establish(userId: string, details: Omit<ConnectionEstablished, 'connectionId' | 'userId'>): void {
    if (this.state !== 'held') return;
    this.userId = userId;
    this.state = 'established';
    this.observer.onEvent?.({ type: 'admitted', connectionId: this.id, outcome: 'established', userId });
    this.send('connection_established', { connectionId: this.id, userId, ...details });
    if (this.dropped !== undefined) {
      const dropped = this.dropped;
      this.dropped = undefined;
      this.sendError({ ...tooManyEarlyFrames(dropped.count, MAX_EARLY_FRAMES).toPayload(), ...dropped.toPayload() });
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
    const unprocessed = new UnprocessedRequests();
    for (const frame of this.early ?? []) unprocessed.add(frame.requestId);
    unprocessed.merge(this.dropped);
    this.early = undefined;
    this.dropped = undefined;
    this.sendError({ ...error.toPayload(), ...unprocessed.toPayload() });
    this.close(code, reason);
  }

  /**
   * Sends one frame. `gather`: more frames are likely to follow in this turn of the event loop (a
   * streamed reply), so the frames of the turn leave in one write; see {@link cork}.
   */
  send<E extends keyof ServerEvents>(event: E, data: ServerEvents[E], gather = false): void {
    this.sendRaw(encodeFrame(event, data), gather);
  }

  /** Sends an already encoded frame (for fan-out: serialise once, send many). */
  sendRaw(frame: string, gather = false): void {
    if (this.socket.readyState !== OPEN) return;
    if (gather) this.cork();
    this.socket.send(frame);
    if ((this.corked?.writableLength ?? 0) > CORK_FLUSH_BYTES) this.uncork();
    this.observer.onFrame?.('out');
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

  /** Sends an `error` frame, never more than `MAX_ERROR_FRAME_BYTES` (see `encodeErrorFrame`). */
  sendError(payload: ErrorPayload): void {
    this.sendRaw(encodeErrorFrame(payload));
  }

  close(code: CloseCode, reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closing';
    this.socket.close(code, truncateUtf8(reason, MAX_CLOSE_REASON_BYTES));
  }

  /**
   * Stops `subscription` if the socket closes first (a reply still streaming, a pending admission),
   * and forgets it as soon as it ends by itself: nothing is kept for a subscription that has ended.
   */
  follow(subscription: Subscription, key?: string): void {
    if (subscription.closed) return;
    if (this.state === 'closed') {
      subscription.unsubscribe();
      return;
    }
    (this.following ??= new Set()).add(subscription);
    subscription.add(() => {
      this.following?.delete(subscription);
      if (this.following?.size === 0) this.following = undefined;
    });
    if (key === undefined) return;
    // One follow per key: resuming a run again replaces the previous follow instead of adding one
    // (each would send every event again, and a remote one polls besides).
    this.unfollow(key);
    (this.followingByKey ??= new Map()).set(key, subscription);
    subscription.add(() => {
      if (this.followingByKey?.get(key) === subscription) this.followingByKey.delete(key);
    });
  }

  /** Stops the follow with `key`, if any. */
  unfollow(key: string): void {
    this.followingByKey?.get(key)?.unsubscribe();
  }

  /** The socket closed: everything held or followed for it goes. Called once, by its `close` event. */
  onClose(code: number): void {
    this.state = 'closed';
    this.early = undefined;
    this.dropped = undefined;
    this.queued = undefined;
    const following = this.following;
    this.following = undefined;
    if (following !== undefined) for (const subscription of following) subscription.unsubscribe();
    this.observer.onEvent?.({
      type: 'closed',
      connectionId: this.id,
      ...(this.userId === undefined ? {} : { userId: this.userId }),
      code,
      durationMs: Math.round(performance.now() - this.openedAt),
    });
    this.observer.onClosed?.(this);
  }

  /**
   * Resolves `true` once at most `maxBuffered` bytes wait to be sent to the peer (at once if that is
   * already so), or `false` when the connection closes first. Listens only while it waits.
   */
  whenWritable(maxBuffered: number): Promise<boolean> {
    if (this.state !== 'established') return Promise.resolve(false);
    if (this.socket.bufferedAmount <= maxBuffered) return Promise.resolve(true);
    const tcp = (this.socket as unknown as { _socket?: Writable | null })._socket;
    if (tcp === undefined || tcp === null) return Promise.resolve(false);
    return new Promise((resolve) => {
      const settle = (writable: boolean): void => {
        tcp.off('drain', onDrain);
        tcp.off('close', onClose);
        resolve(writable && this.state === 'established');
      };
      const onDrain = (): void => settle(true);
      const onClose = (): void => settle(false);
      tcp.on('drain', onDrain);
      tcp.on('close', onClose);
    });
  }

  /** A pong arrived (the answer to the heartbeat, or unsolicited): it costs a frame of the budget. */
  pong(): void {
    this.awaitingPong = false;
    this.observer.onFrame?.('in');
    if (!this.takeToken()) this.overRate();
  }

  /** A ping arrived: answered within the frame budget, dropped over it. */
  ping(data: Buffer): void {
    this.observer.onFrame?.('in');
    if (this.state === 'closing' || this.state === 'closed') return;
    if (!this.takeToken()) {
      this.overRate();
      return;
    }
    if (this.socket.readyState === OPEN) this.socket.pong(data);
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

  /**
   * `ws` writes each frame with its own system call. A model streams many deltas in one turn of the
   * event loop, so the frames of a stream sent in a turn are gathered and leave together (up to
   * 64 KiB at a time) once the turn's callbacks and promise jobs are done: the same frames, fewer
   * writes. (A single reply is not gathered: it would only wait.)
   */
  private cork(): void {
    if (this.corked !== undefined) return;
    const tcp = (this.socket as unknown as { _socket?: Writable | null })._socket;
    if (tcp === undefined || tcp === null) return;
    tcp.cork();
    this.corked = tcp;
    process.nextTick(() => this.uncork());
  }

  /**
   * Sends what is gathered now. A turn made only of promise jobs can end with the socket being
   * terminated before the gathered frames leave (Nest's shutdown does that): it calls this first.
   */
  flushWrites(): void {
    this.uncork();
  }

  private uncork(): void {
    const tcp = this.corked;
    this.corked = undefined;
    tcp?.uncork();
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

  /**
   * A frame over the rate was refused. The debt decays at the rate, so a client that slows down
   * when told is never closed; one that keeps sending far beyond it is.
   */
  private overRate(): void {
    const now = performance.now();
    this.debt = Math.max(0, this.debt - ((now - this.debtAt) / 1000) * this.limits.messagesPerSecond) + 1;
    this.debtAt = now;
    if (this.debt <= FLOOD_BURSTS * this.limits.messageBurst || this.state === 'closing' || this.state === 'closed') {
      return;
    }
    this.observer.onEvent?.({
      type: 'limited',
      connectionId: this.id,
      limit: 'flood',
      ...(this.userId === undefined ? {} : { userId: this.userId }),
    });
    this.refuse(
      rateLimited(
        `far more than ${this.limits.messagesPerSecond} frames per second (control frames included): closing the connection`,
        Math.ceil((this.limits.messageBurst / this.limits.messagesPerSecond) * 1000),
      ),
      CloseCode.POLICY_VIOLATION,
      FLOOD_CLOSE_REASON,
    );
  }

  /** A frame over the rate: dropped unprocessed, answered so the client knows what to resend and when. */
  private rateLimited(frame: InboundFrame): void {
    this.observer.onEvent?.({ type: 'limited', connectionId: this.id, limit: 'message_rate' });
    this.overRate();
    if (this.state !== 'established') return;
    const error = rateLimited(
      `more than ${this.limits.messagesPerSecond} frames per second on this connection: this one was not processed`,
      Math.ceil(((1 - this.tokens) / this.limits.messagesPerSecond) * 1000),
    );
    this.sendError(error.toPayload(frame.requestId));
  }

  private flush(): void {
    if (this.state !== 'established' || this.dispatcher === undefined || this.early === undefined) return;
    const early = this.early;
    this.early = undefined;
    for (const frame of early) this.dispatch(frame);
  }

  /** Frames are handled one after another: the next once the previous handler has returned. */
  private dispatch(frame: InboundFrame): void {
    if (this.dispatcher === undefined) return;
    if (this.dispatching) {
      // As many may wait as a client may send at once (WS_MESSAGE_BURST); beyond that a stalled
      // connection (a paused replay, a slow database) would pile up frames for as long as it lasts.
      if ((this.queued?.length ?? 0) >= this.limits.messageBurst) {
        const error = rateLimited(
          `${this.limits.messageBurst} requests are already waiting on this connection: this one was not processed`,
          1_000,
        );
        this.sendError(error.toPayload(frame.requestId));
        return;
      }
      (this.queued ??= []).push(frame);
      return;
    }
    let current: InboundFrame | undefined = frame;
    while (current !== undefined && this.state !== 'closed') {
      const pending = this.dispatcher(current, this, this.routes);
      if (isPromiseLike(pending)) {
        this.dispatching = true;
        const next = (): void => this.dispatchNext();
        pending.then(next, next);
        return;
      }
      current = this.takeQueued();
    }
  }

  private dispatchNext(): void {
    this.dispatching = false;
    const next = this.takeQueued();
    if (next !== undefined) this.dispatch(next);
  }

  private takeQueued(): InboundFrame | undefined {
    const next = this.queued?.shift();
    if (this.queued?.length === 0) this.queued = undefined;
    return next;
  }
}

export function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === 'function';
}

function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  // Step back over UTF-8 continuation bytes so no character is cut in half.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end -= 1;
  return bytes.subarray(0, end).toString('utf8');
}
