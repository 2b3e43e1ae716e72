import { CloseCode } from '../protocol/close-codes.js';
import type { ErrorPayload } from '../protocol/error-codes.js';
import type {
  ClientRequests,
  ConnectionEstablished,
  Pong,
  RunFrame,
  ServerEventName,
  ServerEvents,
  ServerFrame,
  ThreadHistoryResult,
  ThreadListResult,
} from '../protocol/events.js';
import { AgentRun, type ApprovalAnswer } from './agent-run.js';
import { type BackoffPolicy, fullJitterDelay } from './backoff.js';
import { GatewayError, type GatewayErrorInfo } from './client-errors.js';
import { type CloseInfo, decideOnClose } from './close-policy.js';
import { type WebSocketConstructorLike, type WebSocketLike, defaultWebSocket } from './websocket-like.js';

/** What the UI shows: one of these at any time. */
export type ConnectionState =
  | { readonly status: 'idle' }
  /** Opening the socket. */
  | { readonly status: 'connecting'; readonly attempt: number }
  /** The socket is open; `connection_established` has not come yet (it usually follows at once). */
  | { readonly status: 'establishing'; readonly attempt: number }
  /**
   * The socket is open and the service is starting: the server holds the connection until it is
   * ready. Shown when the last attempt was refused as not ready yet (1013), or when
   * `connection_established` takes longer than `serviceWaitHintMs`.
   */
  | { readonly status: 'waiting_for_service'; readonly attempt: number }
  | { readonly status: 'open'; readonly connectionId: string; readonly userId: string }
  /** The server refused the token (1008); the application is being asked for a new one. */
  | { readonly status: 'refreshing_token'; readonly error: ErrorPayload }
  | {
      readonly status: 'reconnecting';
      readonly attempt: number;
      readonly delayMs: number;
      /** Epoch ms of the next attempt (for "reconnecting in N s"). */
      readonly retryAt: number;
      readonly lastClose: CloseInfo;
    }
  | { readonly status: 'closed'; readonly reason: ClosedReason };

/** Why the client stopped for good. */
export type ClosedReason =
  | { readonly kind: 'client'; readonly message: string }
  | { readonly kind: 'auth'; readonly message: string; readonly close: CloseInfo }
  | { readonly kind: 'gave_up'; readonly message: string; readonly attempts: number; readonly close: CloseInfo }
  | { readonly kind: 'server'; readonly message: string; readonly close: CloseInfo };

export interface ReconnectOptions extends BackoffPolicy {
  /** Consecutive attempts without a stable connection before giving up. */
  readonly maxAttempts: number;
  /** A connection open this long counts as stable: only then does the backoff start over. */
  readonly stableAfterMs: number;
}

export interface GatewayClientOptions {
  /** `ws(s)://host/ws`. */
  readonly url: string;
  /** The JWT, or a function returning one (called for every connection attempt). */
  readonly token: string | (() => string | Promise<string>);
  /**
   * Called when the server refuses the token (close 1008 with `TOKEN_EXPIRED` or `UNAUTHORIZED`):
   * return a new token and the client retries once with it; return nothing (or throw) to stop.
   */
  readonly refreshToken?: (error: ErrorPayload) => string | undefined | Promise<string | undefined>;
  /** Defaults to the global `WebSocket` (browsers, Node 22+); pass `ws`'s on older Node. */
  readonly WebSocket?: WebSocketConstructorLike;
  readonly reconnect?: Partial<ReconnectOptions>;
  /** Requests made while disconnected wait, up to this many (then `QUEUE_FULL`). */
  readonly maxQueuedRequests?: number;
  /** Jitter source, [0, 1). */
  readonly random?: () => number;
  /**
   * How long an open socket may wait for `connection_established` before the state says the
   * service is starting (`waiting_for_service`). Default 1000 ms.
   */
  readonly serviceWaitHintMs?: number;
}

/** What {@link GatewayClient.attach} continues from. */
export interface AttachOptions {
  /** Events with a `seq` above this are delivered (0: all of them). A history's `activeRun.afterSeq`. */
  readonly afterSeq?: number;
}

/** How often a run still running elsewhere is asked about again (see `AgentRun.acceptResumed`). */
const UNFOLLOWABLE_RUN_BACKOFF = { initialDelayMs: 1_000, maxDelayMs: 30_000 };

const DEFAULT_SERVICE_WAIT_HINT_MS = 1_000;

const DEFAULT_RECONNECT: ReconnectOptions = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  maxAttempts: 10,
  stableAfterMs: 10_000,
};

/** The replies of request/reply events. */
interface Replies {
  thread_list: ThreadListResult;
  thread_history: ThreadHistoryResult;
  ping: Pong;
}
type ReplyEvent = keyof Replies;

type Without<T, K extends PropertyKey> = Omit<T, K> & Partial<Record<K, never>>;
export type RequestData<E extends ReplyEvent> = Without<ClientRequests[E], 'requestId'>;

interface PendingRequest {
  readonly frame: { readonly event: string; readonly data: { readonly requestId: string } };
  readonly resolve: (data: unknown) => void;
  readonly reject: (error: GatewayError) => void;
}

type Listener<T> = (value: T) => void;

/**
 * A client of the agent gateway for browsers and Node: connects with a token, keeps the connection
 * through restarts as the close-code table says, queues requests while disconnected, and resumes
 * the runs it was following after a reconnect, so every event reaches the application exactly
 * once and in order.
 */
export class GatewayClient {
  private stateValue: ConnectionState = { status: 'idle' };
  private readonly stateListeners = new Set<Listener<ConnectionState>>();
  private readonly frameListeners = new Map<string, Set<Listener<unknown>>>();
  private readonly reconnectPolicy: ReconnectOptions;
  private readonly WebSocketImpl: WebSocketConstructorLike;
  private readonly random: () => number;
  private readonly maxQueued: number;
  private socket: WebSocketLike | undefined;
  private currentToken: string | undefined;
  /** Consecutive attempts since the last stable connection. */
  private attempts = 0;
  private refreshedAfterAuthFailure = false;
  private lastError: ErrorPayload | undefined;
  /** How the last connection ended (cleared once one is established). */
  private lastClose: CloseInfo | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private stableTimer: ReturnType<typeof setTimeout> | undefined;
  private sequence = 0;
  private readonly instance = Math.floor(Math.random() * 36 ** 6).toString(36);
  /** Requests waiting for a connection, in order. */
  private readonly queue: Array<{ readonly event: string; readonly data: unknown }> = [];
  /** `requestId`s written to the current connection. */
  private readonly written = new Set<string>();
  private readonly pending = new Map<string, PendingRequest>();
  private readonly runs = new Map<string, AgentRun>();
  /** Runs followed with {@link attach}, by `runId`: their frames carry another page's `requestId`. */
  private readonly attached = new Map<string, AgentRun>();
  private serviceWaitTimer: ReturnType<typeof setTimeout> | undefined;
  /** `resume` requestId → the run it resumes. */
  private readonly resumes = new Map<string, AgentRun>();
  private firstOpen: { resolve: () => void; reject: (error: GatewayError) => void } | undefined;
  /** Runs to ask about again, with the timer that will. */
  private readonly askAgain = new Map<AgentRun, ReturnType<typeof setTimeout>>();

  constructor(private readonly options: GatewayClientOptions) {
    this.reconnectPolicy = { ...DEFAULT_RECONNECT, ...options.reconnect };
    this.WebSocketImpl = options.WebSocket ?? defaultWebSocket();
    this.random = options.random ?? Math.random;
    this.maxQueued = options.maxQueuedRequests ?? 100;
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** Calls `listener` with the current state and every change; returns the unsubscribe function. */
  onState(listener: Listener<ConnectionState>): () => void {
    this.stateListeners.add(listener);
    listener(this.stateValue);
    return () => this.stateListeners.delete(listener);
  }

  /** Every server frame of one event (run events included); returns the unsubscribe function. */
  on<E extends ServerEventName>(event: E, listener: Listener<ServerEvents[E]>): () => void {
    let listeners = this.frameListeners.get(event);
    if (listeners === undefined) {
      listeners = new Set();
      this.frameListeners.set(event, listeners);
    }
    const untyped = listener as Listener<unknown>;
    listeners.add(untyped);
    return () => listeners.delete(untyped);
  }

  /** Starts connecting; resolves at the first `connection_established`, rejects if the client stops first. */
  connect(): Promise<void> {
    if (this.stateValue.status === 'open') return Promise.resolve();
    const opened = new Promise<void>((resolve, reject) => {
      const previous = this.firstOpen;
      this.firstOpen = {
        resolve: () => {
          previous?.resolve();
          resolve();
        },
        reject: (error) => {
          previous?.reject(error);
          reject(error);
        },
      };
    });
    if (this.stateValue.status === 'idle' || this.stateValue.status === 'closed') {
      this.attempts = 0;
      this.refreshedAfterAuthFailure = false;
      void this.open();
    }
    return opened;
  }

  /** A request with a reply, correlated by a generated `requestId`; rejects with the server's error. */
  request<E extends ReplyEvent>(event: E, data: RequestData<E>): Promise<Replies[E]> {
    const requestId = this.nextId(event);
    return new Promise<Replies[E]>((resolve, reject) => {
      const frame = { event, data: { ...data, requestId } };
      this.pending.set(requestId, { frame, resolve: resolve as (data: unknown) => void, reject });
      if (this.trySend(frame)) return;
      this.pending.delete(requestId);
      reject(new GatewayError(this.unsendable()));
    });
  }

  /** Sends a message to the agent; a new thread unless `threadId` is given. */
  run(message: string, options: { readonly threadId?: string } = {}): AgentRun {
    const requestId = this.nextId('run');
    const run = new AgentRun(
      requestId,
      message,
      (target) => this.cancelRun(target),
      (target, answer) => this.answerApproval(target, answer),
    );
    this.runs.set(requestId, run);
    const frame = {
      event: 'agent_request',
      data: { requestId, message, ...(options.threadId === undefined ? {} : { threadId: options.threadId }) },
    };
    if (!this.trySend(frame)) {
      this.runs.delete(requestId);
      run.fail(this.unsendable());
    }
    void run.result.then(() => this.forgetRun(run));
    return run;
  }

  /**
   * Follows a run this client did not start: one streaming when the page was reloaded (a thread's
   * `activeRunId`, or its history's `activeRun`), or started elsewhere. Returns the same
   * {@link AgentRun} as {@link run}: its events after `afterSeq`, replayed then live, each exactly
   * once and in order, across reconnects too. Attaching twice to one run returns the same object.
   */
  attach(runId: string, options: AttachOptions = {}): AgentRun {
    const existing = this.attached.get(runId) ?? [...this.runs.values()].find((run) => run.runId === runId);
    if (existing !== undefined && !existing.done) return existing;
    const run = new AgentRun(
      this.nextId('attach'),
      '',
      (target) => this.cancelRun(target),
      (target, answer) => this.answerApproval(target, answer),
    );
    run.runId = runId;
    run.lastSeq = Math.max(0, Math.floor(options.afterSeq ?? 0));
    this.attached.set(runId, run);
    void run.result.then(() => {
      if (this.attached.get(runId) === run) this.attached.delete(runId);
    });
    if (this.stateValue.status === 'closed') {
      run.fail(this.unsendable());
      return run;
    }
    // Resumed now when open, else as every followed run is once the connection is established.
    if (this.stateValue.status === 'open') this.resume(run);
    else if (this.stateValue.status === 'idle') void this.connect().catch(() => undefined);
    return run;
  }

  /** Closes the connection for good (1000); what was still pending fails with `CLIENT_CLOSED`. */
  close(): void {
    this.stop({ kind: 'client', message: 'closed by the application' });
  }

  // ------------------------------------------------------------------------------------------

  private async open(): Promise<void> {
    this.attempts += 1;
    const attempt = this.attempts;
    this.setState({ status: 'connecting', attempt });
    this.lastError = undefined;
    let token: string;
    try {
      token =
        this.currentToken ?? (typeof this.options.token === 'string' ? this.options.token : await this.options.token());
    } catch (error) {
      this.stop({ kind: 'client', message: `could not get a token: ${String(error)}` });
      return;
    }
    if (this.stateValue.status !== 'connecting') return; // closed meanwhile
    const separator = this.options.url.includes('?') ? '&' : '?';
    let socket: WebSocketLike;
    try {
      socket = new this.WebSocketImpl(`${this.options.url}${separator}token=${encodeURIComponent(token)}`);
    } catch (error) {
      this.stop({ kind: 'client', message: `cannot connect to ${this.options.url}: ${String(error)}` });
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      // Refused as not ready a moment ago: the server is holding this one too, most likely.
      const starting = this.lastClose?.code === CloseCode.TRY_AGAIN_LATER;
      this.setState({ status: starting ? 'waiting_for_service' : 'establishing', attempt });
      if (starting) return;
      clearTimeout(this.serviceWaitTimer);
      this.serviceWaitTimer = setTimeout(() => {
        if (this.socket === socket && this.stateValue.status === 'establishing') {
          this.setState({ status: 'waiting_for_service', attempt });
        }
      }, this.options.serviceWaitHintMs ?? DEFAULT_SERVICE_WAIT_HINT_MS);
    };
    socket.onmessage = (event) => {
      if (this.socket === socket && typeof event.data === 'string') this.receive(event.data);
    };
    socket.onerror = () => {
      // Always followed by a close event, which decides what happens next.
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.closed({
        code: event.code,
        reason: event.reason,
        ...(this.lastError === undefined ? {} : { error: this.lastError }),
      });
    };
  }

  private receive(text: string): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text) as ServerFrame;
    } catch {
      return;
    }
    if (typeof frame !== 'object' || frame === null || typeof frame.event !== 'string') return;
    switch (frame.event) {
      case 'connection_established':
        this.established(frame.data);
        break;
      case 'error':
        this.errorFrame(frame.data);
        break;
      case 'resumed': {
        const requestId = frame.data.requestId;
        const run = requestId === undefined ? undefined : this.resumes.get(requestId);
        if (requestId !== undefined) this.resumes.delete(requestId);
        if (run?.acceptResumed(frame.data) === 'ask_again') this.resumeLater(run);
        break;
      }
      case 'thread_list_result':
      case 'thread_history_result':
      case 'pong':
        this.reply(frame.data.requestId, frame.data);
        break;
      default:
        this.runFrame(frame);
    }
    this.emit(frame.event, frame.data);
  }

  private established(data: ConnectionEstablished): void {
    clearTimeout(this.serviceWaitTimer);
    this.lastClose = undefined;
    this.setState({ status: 'open', connectionId: data.connectionId, userId: data.userId });
    this.refreshedAfterAuthFailure = false;
    clearTimeout(this.stableTimer);
    this.stableTimer = setTimeout(() => {
      this.attempts = 0;
    }, this.reconnectPolicy.stableAfterMs);
    const opened = this.firstOpen;
    this.firstOpen = undefined;
    opened?.resolve();
    // Runs that were streaming when the last connection dropped continue where they left off.
    for (const run of [...this.runs.values(), ...this.attached.values()]) {
      if (run.runId === undefined || run.done) continue;
      this.resume(run);
      if (run.cancelRequested) this.write({ event: 'agent_cancel', data: { runId: run.runId } });
    }
    for (const frame of this.queue.splice(0)) this.write(frame);
  }

  private resume(run: AgentRun): void {
    clearTimeout(this.askAgain.get(run));
    this.askAgain.delete(run);
    if (run.runId === undefined || run.done) return;
    const requestId = this.nextId('resume');
    this.resumes.set(requestId, run);
    this.write({ event: 'resume', data: { runId: run.runId, afterSeq: run.lastSeq, requestId } });
  }

  /**
   * The run is still running somewhere this connection cannot follow: ask again after a growing,
   * jittered delay. A reconnect asks at once (and clears this timer).
   */
  private resumeLater(run: AgentRun): void {
    clearTimeout(this.askAgain.get(run));
    const delayMs = fullJitterDelay(run.unfollowableResumes, UNFOLLOWABLE_RUN_BACKOFF, this.random);
    this.askAgain.set(
      run,
      setTimeout(() => {
        this.askAgain.delete(run);
        if (this.stateValue.status === 'open') this.resume(run);
      }, delayMs),
    );
  }

  private errorFrame(error: ErrorPayload): void {
    const requestId = error.requestId;
    if (requestId === undefined) {
      // About the connection: the close that follows is decided with it.
      this.lastError = error;
      return;
    }
    const pending = this.pending.get(requestId);
    if (pending !== undefined) {
      this.pending.delete(requestId);
      pending.reject(GatewayError.fromPayload(error));
      return;
    }
    this.runs.get(requestId)?.fail(error);
    const resumed = this.resumes.get(requestId);
    if (resumed !== undefined) {
      this.resumes.delete(requestId);
      resumed.fail(error);
    }
  }

  private reply(requestId: string | undefined, data: unknown): void {
    if (requestId === undefined) return;
    const pending = this.pending.get(requestId);
    if (pending === undefined) return;
    this.pending.delete(requestId);
    this.written.delete(requestId);
    pending.resolve(data);
  }

  private runFrame(frame: RunFrame): void {
    const run =
      this.runs.get(frame.data.requestId) ??
      (frame.data.runId === undefined ? undefined : this.attached.get(frame.data.runId));
    if (run === undefined) return;
    const wasStarted = run.runId !== undefined;
    run.accept(frame);
    if (!wasStarted && run.runId !== undefined && run.cancelRequested) this.cancelRun(run);
  }

  private closed(close: CloseInfo): void {
    clearTimeout(this.stableTimer);
    clearTimeout(this.serviceWaitTimer);
    this.lastClose = close;
    if (this.stateValue.status === 'closed') return;
    // Reads are idempotent: those written and not answered go again, first, on the next connection.
    // An `agent_request` without its `agent_started` is not: the run may exist, so it is not sent twice.
    const unanswered = [...this.pending.values()].filter((pending) => this.written.has(pending.frame.data.requestId));
    this.queue.unshift(...unanswered.map((pending) => pending.frame));
    for (const run of this.runs.values()) {
      if (run.runId !== undefined || run.done || !this.written.has(run.requestId)) continue;
      run.fail({
        code: 'CONNECTION_LOST',
        message: 'the connection closed before the server acknowledged the message; it may have been stored',
        retryable: true,
      });
    }
    this.resumes.clear();
    this.written.clear();
    const decision = decideOnClose(close);
    if (decision.action === 'stop') {
      const kind = close.code === CloseCode.POLICY_VIOLATION ? 'auth' : 'server';
      this.stop({ kind, message: describeClose(close), close });
      return;
    }
    if (decision.action === 'refresh_token') {
      void this.refreshAndRetry(close);
      return;
    }
    if (this.attempts >= this.reconnectPolicy.maxAttempts) {
      this.stop({
        kind: 'gave_up',
        attempts: this.attempts,
        message: `gave up after ${this.attempts} attempts; last: ${describeClose(close)}`,
        close,
      });
      return;
    }
    const delayMs = Math.max(
      decision.notBeforeMs,
      fullJitterDelay(this.attempts + 1, this.reconnectPolicy, this.random),
    );
    this.setState({
      status: 'reconnecting',
      attempt: this.attempts + 1,
      delayMs,
      retryAt: Date.now() + delayMs,
      lastClose: close,
    });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.open();
    }, delayMs);
  }

  private async refreshAndRetry(close: CloseInfo): Promise<void> {
    const error = close.error as ErrorPayload;
    const refresh = this.options.refreshToken;
    if (refresh === undefined || this.refreshedAfterAuthFailure) {
      this.stop({ kind: 'auth', message: describeClose(close), close });
      return;
    }
    this.refreshedAfterAuthFailure = true;
    this.setState({ status: 'refreshing_token', error });
    let token: string | undefined;
    try {
      token = await refresh(error);
    } catch {
      token = undefined;
    }
    if (this.stateValue.status === 'closed') return;
    if (token === undefined || token === '') {
      this.stop({ kind: 'auth', message: describeClose(close), close });
      return;
    }
    this.currentToken = token;
    this.attempts = 0;
    void this.open();
  }

  private stop(reason: ClosedReason): void {
    if (this.stateValue.status === 'closed') return;
    clearTimeout(this.retryTimer);
    clearTimeout(this.stableTimer);
    clearTimeout(this.serviceWaitTimer);
    for (const timer of this.askAgain.values()) clearTimeout(timer);
    this.askAgain.clear();
    const socket = this.socket;
    this.socket = undefined;
    if (socket !== undefined && socket.readyState <= 1) socket.close(CloseCode.NORMAL, 'client closed');
    this.setState({ status: 'closed', reason });
    const error = new GatewayError({ code: 'CLIENT_CLOSED', message: reason.message, retryable: false });
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
    this.queue.length = 0;
    for (const run of [...this.runs.values(), ...this.attached.values()]) run.fail(error);
    this.runs.clear();
    this.attached.clear();
    const opened = this.firstOpen;
    this.firstOpen = undefined;
    opened?.reject(error);
  }

  private cancelRun(run: AgentRun): void {
    if (run.runId === undefined) return; // sent once `agent_started` names it
    this.trySend({ event: 'agent_cancel', data: { runId: run.runId } });
  }

  /** `tool_approval`; a refusal of it (say, already answered elsewhere) arrives as an `error` frame. */
  private answerApproval(run: AgentRun, answer: ApprovalAnswer): void {
    if (run.runId === undefined) return;
    this.trySend({ event: 'tool_approval', data: { runId: run.runId, ...answer } });
  }

  private forgetRun(run: AgentRun): void {
    this.runs.delete(run.requestId);
    this.written.delete(run.requestId);
  }

  /** Why a request could not even be queued. */
  private unsendable(): GatewayErrorInfo {
    return this.stateValue.status === 'closed'
      ? { code: 'CLIENT_CLOSED', message: 'the client is closed', retryable: false }
      : { code: 'QUEUE_FULL', message: 'too many requests are waiting for a connection', retryable: true };
  }

  /** Sends now if open, else queues; false if the queue is full or the client closed. */
  private trySend(frame: { readonly event: string; readonly data: unknown }): boolean {
    if (this.stateValue.status === 'closed') return false;
    if (this.stateValue.status === 'open') {
      this.write(frame);
      return true;
    }
    if (this.queue.length >= this.maxQueued) return false;
    this.queue.push(frame);
    if (this.stateValue.status === 'idle') void this.connect().catch(() => undefined);
    return true;
  }

  private write(frame: { readonly event: string; readonly data: unknown }): void {
    const requestId = (frame.data as { requestId?: unknown }).requestId;
    if (typeof requestId === 'string') this.written.add(requestId);
    this.socket?.send(JSON.stringify(frame));
  }

  private setState(state: ConnectionState): void {
    this.stateValue = state;
    for (const listener of this.stateListeners) listener(state);
  }

  private emit(event: string, data: unknown): void {
    for (const listener of this.frameListeners.get(event) ?? []) listener(data);
  }

  private nextId(kind: string): string {
    this.sequence += 1;
    return `${kind}-${this.instance}-${this.sequence}`;
  }
}

function describeClose(close: CloseInfo): string {
  const error = close.error === undefined ? '' : ` ${close.error.code}: ${close.error.message}`;
  return `close ${close.code}${close.reason === '' ? '' : ` (${close.reason})`}${error}`;
}
