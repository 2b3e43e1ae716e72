import { Injectable } from '@nestjs/common';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import type { RunFrame } from '../protocol/events.js';
import { FleetBus } from './fleet-bus.service.js';
import { RUN_STREAM_MAX_EVENTS, RUN_STREAM_RETENTION_MS } from './fleet.keys.js';

/**
 * The live events of runs, in Redis: one stream per run whose entry ids are the events' `seq`
 * (`<seq>-0`), so a reader asks for "everything after seq N" directly and can never get an event
 * twice or out of order; and one channel per run that announces each new batch to the instances
 * whose clients follow it. Every method may throw while Redis is down: callers fall back to
 * PostgreSQL.
 */
@Injectable()
export class RunStreams {
  private readonly liveTtlMs: number;

  constructor(
    private readonly bus: FleetBus,
    @InjectConfig() config: AppConfig,
  ) {
    // A run that is never ended (its instance died, and Redis was down while it was reaped) still goes.
    this.liveTtlMs = config.agent.runTimeoutMs + RUN_STREAM_RETENTION_MS;
  }

  get enabled(): boolean {
    return this.bus.enabled;
  }

  /** Appends events (in `seq` order, after every earlier one) and announces them. One round trip. */
  async append(runId: string, frames: readonly RunFrame[], final = false): Promise<void> {
    if (frames.length === 0) return;
    const key = this.bus.keys.runEvents(runId);
    await this.bus.run(async (redis) => {
      const batch = redis.pipeline();
      for (const frame of frames) {
        batch.xadd(key, 'MAXLEN', '~', RUN_STREAM_MAX_EVENTS, `${frame.data.seq ?? 0}-0`, 'f', JSON.stringify(frame));
      }
      batch.pexpire(key, final ? RUN_STREAM_RETENTION_MS : this.liveTtlMs);
      batch.publish(this.bus.keys.runChannel(runId), JSON.stringify(frames));
      const results = (await batch.exec()) ?? [];
      const failure = results.find(([error]) => error !== null)?.[0];
      // An id not above the last one means this batch is already there (a retried write): not an error.
      if (failure !== undefined && failure !== null && !/equal or smaller/u.test(failure.message)) throw failure;
    });
  }

  /** Up to `max` events from `fromSeq` on, in order (fewer, or none, at the end of what is there). */
  async read(runId: string, fromSeq: number, max: number): Promise<RunFrame[]> {
    const entries = await this.bus.run((redis) =>
      redis.xrange(this.bus.keys.runEvents(runId), `${fromSeq}-0`, '+', 'COUNT', max),
    );
    return entries.map(([, fields]) => JSON.parse(fields[1] ?? 'null') as RunFrame);
  }

  /** The run's last event in Redis, if it has any there. */
  async lastFrame(runId: string): Promise<RunFrame | undefined> {
    const [entry] = await this.bus.run((redis) =>
      redis.xrevrange(this.bus.keys.runEvents(runId), '+', '-', 'COUNT', 1),
    );
    return entry === undefined ? undefined : (JSON.parse(entry[1][1] ?? 'null') as RunFrame);
  }

  /**
   * Calls `handler` with every batch announced for the run until the returned function is called;
   * `subscribed` once the subscription is in place (see `FleetBus.subscribe`).
   */
  listen(runId: string, handler: (frames: RunFrame[]) => void, subscribed?: () => void): () => void {
    return this.bus.subscribe(
      this.bus.keys.runChannel(runId),
      (message) => handler(JSON.parse(message) as RunFrame[]),
      subscribed,
    );
  }
}
