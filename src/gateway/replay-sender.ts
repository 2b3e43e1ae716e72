import { setImmediate as nextTurn } from 'node:timers/promises';
import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type { Replay } from '../agent/run-replay.service.js';
import type { RunFrame } from '../protocol/events.js';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import type { WsConnection } from './ws-connection.js';

/** Events sent per step of a replay; between steps the replay yields to the event loop. */
const REPLAY_STEP_EVENTS = 64;
/** A replay waits while more than this is buffered for its socket (the client reads slowly, or not at all). */
const REPLAY_HIGH_WATER_BYTES = 256 * 1024;

interface Bucket {
  tokens: number;
  refilledAt: number;
  /** Deletes the bucket once it would be full again and nobody uses it. */
  expiry: ReturnType<typeof setTimeout> | undefined;
  users: number;
}

/**
 * Sends the answer to a `resume`: the `resumed` frame, then the run's events, pulled from the
 * replay's cursor in small steps. Each step waits until the socket has taken what was sent before
 * (a client that does not read pauses its replay instead of buffering it) and until the user's
 * replay budget (`WS_REPLAY_EVENTS_PER_SECOND`, shared by all of the user's connections) allows
 * it, and yields to the event loop, so no replay can starve the probes or other clients. Once the
 * replay has caught up, a run still going is followed live.
 *
 * The returned promise settles when the replayed part is sent: the connection handles its next
 * frame only then, so each connection has one replay in flight at most.
 */
@Injectable()
export class ReplaySender implements OnModuleDestroy {
  private readonly logger = new Logger('Gateway');
  private readonly buckets = new Map<string, Bucket>();
  private readonly rate: number;

  constructor(@InjectConfig() config: AppConfig) {
    this.rate = config.ws.replayEventsPerSecond;
  }

  async send(connection: WsConnection, userId: string, replay: Replay): Promise<void> {
    const { runId } = replay.resumed.data;
    // A run this connection already follows: the new replay takes over from the old follow.
    connection.unfollow(runId);
    connection.send('resumed', replay.resumed.data);
    const cursor = replay.events;
    if (cursor === undefined) return;
    const bucket = this.bucketOf(userId);
    try {
      for (;;) {
        if (!(await connection.whenWritable(REPLAY_HIGH_WATER_BYTES))) return;
        const granted = await this.take(bucket, REPLAY_STEP_EVENTS);
        if (connection.phase !== 'established') return;
        const taken = cursor.take(granted);
        // Awaited only when it is a promise: a run of this process must be followed in the same step.
        const frames: readonly RunFrame[] = isPromise(taken) ? await taken : taken;
        bucket.tokens += granted - frames.length;
        if (frames.length === 0) break;
        for (const frame of frames) connection.send(frame.event, frame.data, true);
        await nextTurn();
      }
      // Caught up: in the same synchronous step as the last take, so no event falls between.
      const live = cursor.follow();
      if (live === undefined) return;
      connection.follow(
        live.subscribe({
          next: (frame) => connection.send(frame.event, frame.data, true),
          error: (error: unknown) => this.logger.error(`run stream failed: ${String(error)}`),
        }),
        runId,
      );
    } finally {
      this.release(userId, bucket);
    }
  }

  onModuleDestroy(): void {
    for (const bucket of this.buckets.values()) clearTimeout(bucket.expiry);
    this.buckets.clear();
  }

  /** Waits until the bucket holds at least one token, then takes up to `max`. */
  private async take(bucket: Bucket, max: number): Promise<number> {
    for (;;) {
      const now = performance.now();
      bucket.tokens = Math.min(this.rate, bucket.tokens + ((now - bucket.refilledAt) / 1000) * this.rate);
      bucket.refilledAt = now;
      if (bucket.tokens >= 1) {
        const granted = Math.min(max, Math.floor(bucket.tokens));
        bucket.tokens -= granted;
        return granted;
      }
      await delay(Math.ceil(((1 - bucket.tokens) / this.rate) * 1000));
    }
  }

  private bucketOf(userId: string): Bucket {
    let bucket = this.buckets.get(userId);
    if (bucket === undefined) {
      bucket = { tokens: this.rate, refilledAt: performance.now(), expiry: undefined, users: 0 };
      this.buckets.set(userId, bucket);
    }
    clearTimeout(bucket.expiry);
    bucket.expiry = undefined;
    bucket.users += 1;
    return bucket;
  }

  /** Forgets the bucket once it has refilled (a full bucket is what a new one would be). */
  private release(userId: string, bucket: Bucket): void {
    bucket.users -= 1;
    if (bucket.users > 0) return;
    const untilFullMs = Math.max(0, ((this.rate - bucket.tokens) / this.rate) * 1000);
    bucket.expiry = setTimeout(() => {
      if (this.buckets.get(userId) === bucket && bucket.users === 0) this.buckets.delete(userId);
    }, untilFullMs);
    bucket.expiry.unref();
  }
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return value instanceof Promise;
}

/** The global timer (not `node:timers/promises`): tests drive it with fake time. Never holds the process open. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
