/**
 * The part of the WebSocket API the client uses: the browser's `WebSocket`, Node 22's global one
 * and the `ws` package all fit it.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ readonly data: unknown }> | null;
  onclose: Handler<{ readonly code: number; readonly reason: string }> | null;
  onerror: Handler<unknown> | null;
}

/** Bivariant in its argument, so implementations with richer event types fit. */
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

export type WebSocketConstructorLike = new (url: string) => WebSocketLike;

export function defaultWebSocket(): WebSocketConstructorLike {
  const global = (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket;
  if (global === undefined) {
    throw new TypeError('no global WebSocket here (Node before 22): pass one, e.g. `WebSocket` from the ws package');
  }
  return global;
}
