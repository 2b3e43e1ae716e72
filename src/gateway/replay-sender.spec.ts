import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Subject } from 'rxjs';
import { arrayCursor, type ReplayCursor } from '../agent/live-run.js';
import type { Replay } from '../agent/run-replay.service.js';
import type { AppConfig } from '../config/app-config.js';
import type { RunFrame } from '../protocol/events.js';
import { ReplaySender } from './replay-sender.js';
import type { WsConnection } from './ws-connection.js';

/** The parts of a connection a replay uses: what it sent, and a socket that drains when the test says. */
class FakeConnection {
  phase: WsConnection['phase'] = 'established';
  readonly sent: Array<{ event: string; data: unknown }> = [];
  /** Set while the socket "has too much buffered": the replay waits on it. */
  blocked: { resolve: (writable: boolean) => void } | undefined;
  full = false;
  readonly followed: Array<{ unsubscribe(): void }> = [];

  send(event: string, data: unknown): void {
    this.sent.push({ event, data });
  }
  whenWritable(): Promise<boolean> {
    if (this.phase !== 'established') return Promise.resolve(false);
    if (!this.full) return Promise.resolve(true);
    return new Promise((resolve) => (this.blocked = { resolve }));
  }
  readonly unfollowed: string[] = [];
  unfollow(key: string): void {
    this.unfollowed.push(key);
  }
  follow(subscription: { unsubscribe(): void }): void {
    this.followed.push(subscription);
  }
  drain(): void {
    this.full = false;
    this.blocked?.resolve(true);
    this.blocked = undefined;
  }
  events(): number {
    return this.sent.filter((frame) => frame.event === 'agent_message_delta').length;
  }
}

const delta = (seq: number): RunFrame => ({
  event: 'agent_message_delta',
  data: { runId: 'r', requestId: 'q', seq, text: 'x ' },
});
const deltas = (from: number, count: number): RunFrame[] => Array.from({ length: count }, (_, i) => delta(from + i));
const resumed = {
  event: 'resumed',
  data: { runId: 'r', threadId: 't', recovered: true, status: 'completed', replayed: 0 },
};
const replayOf = (events: ReplayCursor): Replay => ({ resumed: resumed as Replay['resumed'], events });

/** Lets the replay run its steps (each ends with a turn of the event loop). */
async function turns(count = 50): Promise<void> {
  for (let turn = 0; turn < count; turn += 1) await new Promise((resolve) => setImmediate(resolve));
}

describe('ReplaySender', () => {
  let sender: ReplaySender;

  beforeEach(() => {
    // The replay's refill waits run on fake time; its yields to the event loop are real turns.
    jest.useFakeTimers({ doNotFake: ['setImmediate'] });
    sender = new ReplaySender({ ws: { replayEventsPerSecond: 100 } } as AppConfig);
  });

  afterEach(() => {
    sender.onModuleDestroy();
    jest.useRealTimers();
  });

  it('sends `resumed` first, then the events in order, yielding to the event loop between steps', async () => {
    const connection = new FakeConnection();
    const done = sender.send(connection as unknown as WsConnection, 'alice', replayOf(arrayCursor(deltas(1, 90))));
    expect(connection.sent.map((frame) => frame.event)).toEqual(['resumed']);
    await done;
    expect(connection.sent[0]?.event).toBe('resumed');
    expect(connection.sent.slice(1).map((frame) => (frame.data as { seq: number }).seq)).toEqual(
      Array.from({ length: 90 }, (_, i) => i + 1),
    );
  });

  it('pauses while the socket has not taken what was sent (a client that does not read), and goes on once it drained', async () => {
    const connection = new FakeConnection();
    const done = sender.send(connection as unknown as WsConnection, 'alice', replayOf(arrayCursor(deltas(1, 80))));
    connection.full = true;
    await turns();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(connection.blocked).toBeDefined();
    const before = connection.events();
    expect(before).toBeLessThan(80);
    await turns();
    expect(connection.events()).toBe(before);
    connection.drain();
    await done;
    expect(connection.events()).toBe(80);
  });

  it("charges replayed events to the user's budget, shared by all of the user's connections", async () => {
    const first = new FakeConnection();
    const second = new FakeConnection();
    const other = new FakeConnection();
    const a = sender.send(first as unknown as WsConnection, 'alice', replayOf(arrayCursor(deltas(1, 150))));
    const b = sender.send(second as unknown as WsConnection, 'alice', replayOf(arrayCursor(deltas(1, 150))));
    const c = sender.send(other as unknown as WsConnection, 'bob', replayOf(arrayCursor(deltas(1, 100))));
    await turns();
    // 100 events a second for alice, both connections together (the burst is one second's worth).
    expect(first.events() + second.events()).toBeGreaterThanOrEqual(100);
    expect(first.events() + second.events()).toBeLessThanOrEqual(105);
    expect(other.events()).toBe(100);
    await jest.advanceTimersByTimeAsync(1_000);
    await turns();
    expect(first.events() + second.events()).toBeLessThanOrEqual(210);
    for (let second = 0; second < 3; second += 1) {
      await jest.advanceTimersByTimeAsync(1_000);
      await turns();
    }
    await Promise.all([a, b, c]);
    expect(first.events() + second.events()).toBe(300);
  });

  it('stops when the connection closes, and follows a run still going once caught up, with nothing in between', async () => {
    const live = new Subject<RunFrame>();
    const sent = deltas(1, 10);
    let followedAt: number | undefined;
    const cursor: ReplayCursor = {
      take: (max) => sent.splice(0, max),
      follow: () => {
        followedAt = sent.length;
        return live;
      },
    };
    const connection = new FakeConnection();
    await sender.send(connection as unknown as WsConnection, 'alice', replayOf(cursor));
    expect(followedAt).toBe(0);
    live.next(delta(11));
    expect(connection.events()).toBe(11);
    expect(connection.followed).toHaveLength(1);

    const closing = new FakeConnection();
    const done = sender.send(closing as unknown as WsConnection, 'bob', replayOf(arrayCursor(deltas(1, 500))));
    await turns(1);
    closing.phase = 'closed';
    await turns();
    await jest.advanceTimersByTimeAsync(10_000);
    await done;
    expect(closing.events()).toBeLessThan(500);
  });
});
