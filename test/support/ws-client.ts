import { WebSocket, type ClientOptions } from 'ws';
import { TERMINAL_RUN_EVENTS } from '../../src/protocol/events.js';

export interface ReceivedFrame {
  readonly event: string;
  readonly data: Record<string, unknown>;
}

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

export interface ConnectOptions {
  /** Where the token goes: the Authorization header (default) or the `token` query parameter. */
  readonly via?: 'header' | 'query';
  readonly token?: string;
  readonly headers?: Record<string, string>;
  /** Frames sent the moment the socket opens, before anything is received (a reconnect flush). */
  readonly sendOnOpen?: ReadonlyArray<{ event: string; data?: unknown } | string>;
  readonly wsOptions?: ClientOptions;
}

/**
 * A real `ws` client that records every frame and its close, and lets a test await a frame or
 * the close as events: no sleeping, no polling.
 */
export class TestClient {
  readonly frames: ReceivedFrame[] = [];
  readonly socket: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseInfo>;
  private waiters: Array<{ match: (frame: ReceivedFrame) => boolean; resolve: (frame: ReceivedFrame) => void }> = [];

  constructor(baseUrl: string, options: ConnectOptions = {}) {
    const url = new URL('/ws', baseUrl.replace(/^http/u, 'ws'));
    const headers: Record<string, string> = { ...options.headers };
    if (options.token !== undefined) {
      if (options.via === 'query') url.searchParams.set('token', options.token);
      else headers.authorization = `Bearer ${options.token}`;
    }
    this.socket = new WebSocket(url, { headers, perMessageDeflate: false, ...options.wsOptions });
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
    // Tests that care await `opened`; a refused handshake must not become an unhandled rejection.
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.socket.on('message', (raw) => {
      const frame = JSON.parse((raw as Buffer).toString()) as ReceivedFrame;
      this.frames.push(frame);
      this.waiters = this.waiters.filter((waiter) => {
        if (!waiter.match(frame)) return true;
        waiter.resolve(frame);
        return false;
      });
    });
    if (options.sendOnOpen !== undefined) {
      const frames = options.sendOnOpen;
      this.socket.once('open', () => {
        for (const frame of frames) this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
      });
    }
  }

  send(event: string, data?: unknown): void {
    this.socket.send(JSON.stringify({ event, data }));
  }

  sendRaw(payload: string | Buffer, options: { binary?: boolean } = {}): void {
    this.socket.send(payload, { binary: options.binary ?? false });
  }

  /** The first frame (already received or still to come) with `event` that satisfies `match`. */
  waitFor(
    event: string | readonly string[],
    match: (data: Record<string, unknown>) => boolean = () => true,
  ): Promise<ReceivedFrame> {
    const events: readonly string[] = typeof event === 'string' ? [event] : event;
    const predicate = (frame: ReceivedFrame): boolean => events.includes(frame.event) && match(frame.data);
    const seen = this.frames.find(predicate);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ match: predicate, resolve }));
  }

  /** The final frame of the run started by `requestId`: `agent_completed`, `agent_cancelled` or `agent_error`. */
  runEnd(requestId: string): Promise<ReceivedFrame> {
    return this.waitFor(TERMINAL_RUN_EVENTS, (data) => data.requestId === requestId);
  }

  /** Sends an `agent_request` and resolves with every event of its run, once the run has ended. */
  async request(requestId: string, message: string, threadId?: unknown): Promise<ReceivedFrame[]> {
    this.send('agent_request', threadId === undefined ? { requestId, message } : { requestId, message, threadId });
    const end = await this.runEnd(requestId);
    return this.runFrames(end.data.runId);
  }

  /** Every event of one run (the numbered frames) received so far, in arrival order. */
  runFrames(runId: unknown): ReceivedFrame[] {
    return this.frames.filter((frame) => frame.data.runId === runId && typeof frame.data.seq === 'number');
  }

  events(): string[] {
    return this.frames.map((frame) => frame.event);
  }

  close(): Promise<CloseInfo> {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) {
      this.socket.close(1000);
    }
    return this.closed;
  }
}
