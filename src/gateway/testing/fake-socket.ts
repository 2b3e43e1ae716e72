import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';

/**
 * The parts of a `ws` socket a connection uses, recording what was sent, for unit tests. The
 * socket's own events (`close`, `ping`, `pong`) are emitted by the test.
 */
export class FakeSocket extends EventEmitter {
  readyState: number = WebSocket.OPEN;
  bufferedAmount = 0;
  readonly sent: Array<{ event: string; data: Record<string, unknown> }> = [];
  closedWith: { code: number; reason: string } | undefined;
  terminated = false;
  pings = 0;
  pongs = 0;

  send(frame: string): void {
    this.sent.push(JSON.parse(frame) as { event: string; data: Record<string, unknown> });
  }
  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
    this.readyState = WebSocket.CLOSING;
  }
  terminate(): void {
    this.terminated = true;
  }
  ping(): void {
    this.pings += 1;
  }
  pong(): void {
    this.pongs += 1;
  }

  /** This as the `ws` socket it stands in for. */
  get ws(): WebSocket {
    return this as unknown as WebSocket;
  }
}
