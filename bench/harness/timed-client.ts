/**
 * A WebSocket client that lives in the benchmark's own process and stamps every frame with
 * `performance.now()` first thing in its `message` handler, so the frames of several clients (on
 * several servers) are compared on one clock. Every wait has a timeout and fails on a close.
 */
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';

export interface TimedFrame {
  readonly event: string;
  readonly data: {
    readonly runId?: string;
    readonly seq?: number;
    readonly requestId?: string;
    readonly [field: string]: unknown;
  };
  /** `performance.now()` when the frame was received. */
  readonly at: number;
}

type Listener = (frame: TimedFrame) => void;

export class TimedClient {
  private readonly listeners = new Set<Listener>();

  private constructor(private readonly socket: WebSocket) {
    socket.on('error', () => undefined);
    socket.on('message', (raw: Buffer) => {
      const at = performance.now();
      const frame = { ...(JSON.parse(raw.toString()) as Omit<TimedFrame, 'at'>), at };
      for (const listener of this.listeners) listener(frame);
    });
  }

  /** A client of `wsUrl` authenticated with `token`, once `connection_established` has arrived. */
  static async connect(wsUrl: string, token: string, timeoutMs = 10_000): Promise<TimedClient> {
    const client = new TimedClient(
      new WebSocket(`${wsUrl}?token=${encodeURIComponent(token)}`, { perMessageDeflate: false }),
    );
    try {
      await client.next((frame) => frame.event === 'connection_established', timeoutMs, 'connection_established');
    } catch (error) {
      client.close();
      throw error;
    }
    return client;
  }

  /** Calls `listener` with every frame from now on, until the returned function is called. */
  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The next frame that satisfies `match`; rejects, naming `what`, after `timeoutMs` or on a close. */
  next(match: (frame: TimedFrame) => boolean, timeoutMs: number, what: string): Promise<TimedFrame> {
    return new Promise((resolve, reject) => {
      const settle = (error: Error | undefined, frame?: TimedFrame): void => {
        clearTimeout(timer);
        off();
        this.socket.off('close', onClose);
        if (error !== undefined || frame === undefined) reject(error ?? new Error(what));
        else resolve(frame);
      };
      const onClose = (code: number): void => settle(new Error(`${what}: the socket closed with ${code}`));
      const timer = setTimeout(() => settle(new Error(`${what}: not within ${timeoutMs} ms`)), timeoutMs);
      const off = this.on((frame) => {
        if (match(frame)) settle(undefined, frame);
      });
      this.socket.once('close', onClose);
    });
  }

  send(event: string, data: Record<string, unknown>): void {
    this.socket.send(JSON.stringify({ event, data }));
  }

  close(): void {
    this.socket.terminate();
  }
}
