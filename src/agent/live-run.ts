import { Logger } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import type { RunEventBase, RunEventName, RunEvents, RunFrame } from '../protocol/events.js';
import type { RunStreams } from '../fleet/run-streams.js';
import type { RunJournal } from '../threads/run-journal.service.js';
import type { StoredRunEvent } from '../threads/thread.types.js';
import { RunApprovals } from './run-approvals.js';

/** How long the events of a run wait to be stored together (a crash loses a run anyway: it is interrupted). */
const SAVE_INTERVAL_MS = 50;

export type RunEventData<E extends RunEventName> = Omit<RunEvents[E], keyof RunEventBase>;

/**
 * A run's events from some point on, pulled a few at a time so that the reader sets the pace (a
 * replay to a socket that stops reading pauses instead of piling up), then its live events.
 */
export interface ReplayCursor {
  /**
   * Up to `max` of the next events; none once caught up. Synchronous for a run in this process (so
   * nothing can happen between the last `take` and `follow`), a promise for one read from the bus.
   */
  take(max: number): readonly RunFrame[] | Promise<readonly RunFrame[]>;
  /**
   * Once {@link take} gave nothing: the live events that follow, or `undefined` if the run has
   * ended. Subscribe in the same synchronous step as that last `take`, so no event falls between.
   */
  follow(): Observable<RunFrame> | undefined;
}

/** A cursor over events already in hand (a finished run's stored events). */
export function arrayCursor(frames: readonly RunFrame[]): ReplayCursor {
  let next = 0;
  return {
    take(max: number): readonly RunFrame[] {
      const taken = frames.slice(next, next + max);
      next += taken.length;
      return taken;
    },
    follow: () => undefined,
  };
}

export interface LiveRunIdentity {
  readonly runId: string;
  readonly ownerId: string;
  readonly requestId: string;
  readonly threadId: string;
}

/**
 * A run executing in this process: the numbered events sent so far (kept until the run ends, so a
 * client that reconnects can be replayed to exactly where it left off and then follow live), and
 * where they go besides: alone, a write-behind to the journal every {@link SAVE_INTERVAL_MS}; in
 * fleet mode, the run's stream in Redis as they happen (other instances follow it from there) and
 * the journal once, when the run ends. If a write to Redis fails, the run falls back to the
 * write-behind for the rest of its life, so followers elsewhere find its events in PostgreSQL.
 * The live stream never waits for either; the run's last event is sent only after everything
 * before it is committed (see `finish`).
 */
export class LiveRun {
  private readonly logger = new Logger('Agent');
  private readonly sent: RunFrame[] = [];
  private readonly live = new Subject<RunFrame>();
  private unsaved: RunFrame[] = [];
  /** The write in flight, if any (writes of one run never overlap). */
  private saving: Promise<void> = Promise.resolve();
  private saveTimer: ReturnType<typeof setTimeout> | undefined;
  private ended = false;
  readonly abort = new AbortController();
  /** The tool call waiting for a person's `tool_approval`, if any. */
  readonly approvals = new RunApprovals();
  /** Events stored as they happen (alone, or in fleet mode once the bus failed this run). */
  private writeBehind: boolean;
  private shareQueue: RunFrame[] = [];
  private shareScheduled = false;
  /** The write to the run's stream in flight, if any (writes of one run never overlap). */
  private sharing: Promise<void> = Promise.resolve();

  constructor(
    readonly identity: LiveRunIdentity,
    private readonly journal: RunJournal,
    private readonly streams?: RunStreams,
  ) {
    this.writeBehind = streams === undefined;
  }

  get lastSeq(): number {
    return this.sent.length;
  }

  get done(): boolean {
    return this.ended;
  }

  /** Numbers and stamps an event without sending it (for events committed before they are sent). */
  frame<E extends RunEventName>(event: E, data: RunEventData<E>): RunFrame {
    const { runId, requestId } = this.identity;
    return { event, data: { ...data, runId, requestId, seq: this.sent.length + 1 } } as RunFrame;
  }

  /** Sends an event to everyone following the run and queues it for storage. */
  emit<E extends RunEventName>(event: E, data: RunEventData<E>): void {
    this.record(this.frame(event, data));
  }

  /**
   * `emit('agent_message_delta', { text })`, built directly: a streamed answer is mostly deltas, and
   * one object literal of a fixed shape costs less than the generic spread.
   */
  emitDelta(text: string): void {
    const { runId, requestId } = this.identity;
    this.record({ event: 'agent_message_delta', data: { text, runId, requestId, seq: this.sent.length + 1 } });
  }

  private record(frame: RunFrame): void {
    this.unsaved.push(frame);
    this.publish(frame);
    if (this.writeBehind) this.scheduleSave();
  }

  /** Sends an event that is already stored. */
  publish(frame: RunFrame): void {
    if (this.ended) return;
    this.sent.push(frame);
    this.live.next(frame);
    this.share(frame);
  }

  /** Fleet mode: queues the event for the run's stream; everything queued in one turn is one write. */
  private share(frame: RunFrame): void {
    if (this.streams === undefined) return;
    this.shareQueue.push(frame);
    if (this.shareScheduled) return;
    this.shareScheduled = true;
    setImmediate(() => this.flushShared());
  }

  private flushShared(): void {
    this.shareScheduled = false;
    const streams = this.streams;
    const frames = this.shareQueue;
    this.shareQueue = [];
    if (streams === undefined || frames.length === 0) return;
    const { runId } = this.identity;
    const final = this.ended;
    this.sharing = this.sharing
      .then(() => streams.append(runId, frames, final))
      .catch((error: unknown) => {
        if (this.writeBehind) return;
        // From now on this run is stored as it goes: followers elsewhere read it from PostgreSQL.
        this.writeBehind = true;
        this.logger.warn(`run ${runId}: bus write failed (${String(error)}); storing its events as they happen`);
        this.scheduleSave();
      });
  }

  /**
   * Everything after `afterSeq`, then the live events until the run ends. Replay and switch-over
   * happen in one synchronous step, so no event can fall between them.
   */
  frames$(afterSeq: number): Observable<RunFrame> {
    return new Observable<RunFrame>((subscriber) => {
      for (const frame of this.sent.slice(Math.max(0, afterSeq))) subscriber.next(frame);
      if (this.ended) {
        subscriber.complete();
        return undefined;
      }
      return this.live.subscribe(subscriber);
    });
  }

  /** The events after `afterSeq`, pulled by the reader, then the live ones (see {@link ReplayCursor}). */
  cursor(afterSeq: number): ReplayCursor {
    let next = Math.max(0, afterSeq);
    return {
      take: (max: number): readonly RunFrame[] => {
        const taken = this.sent.slice(next, next + max);
        next += taken.length;
        return taken;
      },
      follow: () => (this.ended ? undefined : this.live.asObservable()),
    };
  }

  /**
   * The events not stored yet, after any save in flight has settled: the final transaction stores
   * them together with the run's outcome.
   */
  async takeUnsaved(): Promise<StoredRunEvent[]> {
    // Events still queued for the bus go there anyway; the final transaction stores them as well.
    // A save still waiting for its moment is not needed: the final transaction takes its events.
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    await this.saving;
    const rest = this.unsaved;
    this.unsaved = [];
    return rest.map(toStored);
  }

  /** Sends the final event (already committed) and completes every follower. */
  finish(last: RunFrame): void {
    this.publish(last);
    this.ended = true;
    this.live.complete();
  }

  private scheduleSave(): void {
    if (this.saveTimer !== undefined || this.ended) return;
    // Deltas arrive in bursts, and a stream is split across turns of the event loop (a real model's
    // tokens come apart; the embedded one yields every few ms): the save waits SAVE_INTERVAL_MS so
    // that a burst is one INSERT and its deltas one row (RunEventRepository). A run that ends first
    // stores them in its final transaction instead.
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.saving = this.saving.then(() => this.save());
    }, SAVE_INTERVAL_MS);
  }

  private async save(): Promise<void> {
    const batch = this.unsaved;
    this.unsaved = [];
    if (batch.length === 0) return;
    try {
      await this.journal.record(batch.map(toStored));
    } catch (error) {
      // Kept for the final transaction, which retries them with the run's outcome.
      this.unsaved = [...batch, ...this.unsaved];
      this.logger.warn(`run ${this.identity.runId}: storing events failed: ${String(error)}`);
    }
  }
}

export function toStored(frame: RunFrame): StoredRunEvent {
  const data = frame.data as unknown as Record<string, unknown> & { runId: string; seq: number };
  return { runId: data.runId, seq: data.seq, event: frame.event, data };
}
