import { Injectable } from '@nestjs/common';
import { Observable } from 'rxjs';
import { FleetBus } from '../fleet/fleet-bus.service.js';
import { RunStreams } from '../fleet/run-streams.js';
import { TERMINAL_RUN_EVENTS, type RunFrame } from '../protocol/events.js';
import { ThreadsService } from '../threads/threads.service.js';
import type { StoredRunEvent } from '../threads/thread.types.js';
import type { ReplayCursor } from './live-run.js';

/** Events asked for per read while catching up. */
const READ_STEP = 256;
/**
 * How often a follower looks for events it was not told about, while the bus is up (pub/sub
 * delivers at most once: a message lost in a reconnect is found by this) and while it is down
 * (events then come from PostgreSQL only, stored every 50 ms by the executing instance).
 */
const CATCH_UP_UP_MS = 1_000;
const CATCH_UP_DOWN_MS = 500;
/** Every this many catch-ups, PostgreSQL is read too, even while Redis answers. */
const THOROUGH_EVERY = 5;

const seqOf = (frame: RunFrame): number => frame.data.seq ?? 0;
const isTerminal = (frame: RunFrame): boolean => (TERMINAL_RUN_EVENTS as readonly string[]).includes(frame.event);

/**
 * Fleet mode: following a run that executes on another instance. Its events are read from the
 * run's stream in Redis and, for what Redis does not have (an outage, a retention expired),
 * from PostgreSQL; new ones are announced on the run's channel. Events are delivered strictly by
 * `seq`: each exactly once, in order, whichever source had it first, up to the final event.
 */
@Injectable()
export class RemoteRuns {
  constructor(
    private readonly bus: FleetBus,
    private readonly streams: RunStreams,
    private readonly threads: ThreadsService,
  ) {}

  /** Fleet mode: runs of other instances can be followed. */
  get enabled(): boolean {
    return this.streams.enabled;
  }

  /** The `seq` of the last event any source has (the replay's length is counted from it). */
  async lastSeq(runId: string): Promise<number> {
    const fromBus = (await this.streams.lastFrame(runId).catch(() => undefined))?.data.seq ?? 0;
    return Math.max(fromBus, await this.threads.lastStoredSeq(runId));
  }

  /** The events of the run after `afterSeq`, then its live ones (see {@link ReplayCursor}). */
  cursor(runId: string, afterSeq: number): ReplayCursor {
    let next = afterSeq + 1;
    let ended = false;
    return {
      take: async (max: number): Promise<readonly RunFrame[]> => {
        if (ended) return [];
        const frames = await this.read(runId, next, max);
        next += frames.length;
        if (frames.some(isTerminal)) ended = true;
        return frames;
      },
      follow: () => (ended ? undefined : this.live(runId, next)),
    };
  }

  /**
   * Up to about `max` events from `from` on, contiguous; none when no source has `from` yet. Redis
   * first; PostgreSQL when Redis fails, has no stream for the run, shows a gap at `from` (events
   * stored during an outage), or when `thorough` (a periodic check: the executing instance may be
   * unable to reach Redis while this one can).
   *
   * A run ended by the reaper after its instance was killed may end *below* `from`: the last events
   * that instance sent to its own clients never reached Redis, and the reaper numbered the final
   * `agent_error` after what it found. That final event is then delivered as `from`, so a follower
   * that already had those events still sees the run end.
   */
  async read(runId: string, from: number, max: number, thorough = true): Promise<RunFrame[]> {
    if (this.bus.up) {
      try {
        const page = await this.streams.read(runId, from, max);
        const frames = contiguous(page, from);
        if (frames.length > 0) return frames;
        if (page.length === 0) {
          const last = await this.streams.lastFrame(runId);
          if (last !== undefined && isTerminal(last)) return endingBelow(last, from);
          if (last !== undefined && !thorough) return [];
        }
      } catch {
        // Counted by the bus; PostgreSQL answers instead.
      }
    }
    const stored = await this.threads.runEventsAfter(runId, from - 1, max);
    const frames = contiguous(stored.map(toFrame), from);
    if (frames.length > 0) return frames;
    const last = await this.threads.lastStoredEvent(runId);
    return last === undefined ? [] : endingBelow(toFrame(last), from);
  }

  /** The live events from `from` on, until the final one. */
  private live(runId: string, from: number): Observable<RunFrame> {
    return new Observable<RunFrame>((subscriber) => {
      let next = from;
      let done = false;
      const early = new Map<number, RunFrame>();
      const deliver = (): void => {
        for (let frame = early.get(next); frame !== undefined && !done; frame = early.get(next)) {
          early.delete(next);
          next += 1;
          this.bus.stats.deliveries += 1;
          subscriber.next(frame);
          if (isTerminal(frame)) {
            done = true;
            subscriber.complete();
          }
        }
      };
      const accept = (frames: readonly RunFrame[]): void => {
        for (const frame of frames) if (seqOf(frame) >= next) early.set(seqOf(frame), frame);
        deliver();
      };

      let reading = false;
      let readAgain = false;
      let ticks = 0;
      const catchUp = async (thorough = false): Promise<void> => {
        if (reading) {
          readAgain = true;
          return;
        }
        reading = true;
        try {
          do {
            readAgain = false;
            const frames = await this.read(runId, next, READ_STEP, thorough || !this.bus.up);
            accept(frames);
            if (frames.length >= READ_STEP) readAgain = true;
          } while (readAgain && !done);
        } catch {
          // Neither source answered: the next tick tries again.
        } finally {
          reading = false;
        }
      };

      const stopListening = this.streams.listen(
        runId,
        (frames) => {
          accept(frames);
          // A gap (a batch lost while the subscription was away): read what is missing.
          if (early.size > 0 && !done) void catchUp();
        },
        // Subscribed: what was announced before it is in the stream now.
        () => {
          if (!done) void catchUp();
        },
      );
      let timer: ReturnType<typeof setTimeout> | undefined;
      const tick = (): void => {
        timer = setTimeout(
          () => {
            ticks += 1;
            void catchUp(ticks % THOROUGH_EVERY === 0).finally(() => {
              if (!done) tick();
            });
          },
          this.bus.up ? CATCH_UP_UP_MS : CATCH_UP_DOWN_MS,
        );
        timer.unref();
      };
      this.bus.stats.followers += 1;
      // At once (what the replay's last read missed), and again once subscribed (above).
      void catchUp(true);
      tick();
      return () => {
        done = true;
        clearTimeout(timer);
        stopListening();
        this.bus.stats.followers -= 1;
      };
    });
  }
}

function toFrame(event: StoredRunEvent): RunFrame {
  return { event: event.event, data: event.data } as unknown as RunFrame;
}

/** The run's final event, renumbered `from`, if the run ended below `from` (see `RemoteRuns.read`); else nothing. */
function endingBelow(last: RunFrame, from: number): RunFrame[] {
  if (!isTerminal(last) || seqOf(last) >= from) return [];
  return [{ event: last.event, data: { ...last.data, seq: from } } as RunFrame];
}

/** The frames from `from` on, as long as their `seq`s follow each other. */
function contiguous(frames: readonly RunFrame[], from: number): RunFrame[] {
  const result: RunFrame[] = [];
  for (const frame of frames) {
    if (seqOf(frame) < from + result.length) continue;
    if (seqOf(frame) !== from + result.length) break;
    result.push(frame);
  }
  return result;
}
