import { type BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import { DatabaseService } from '../database/database.service.js';
import { runInterrupted } from '../errors/client-errors.js';
import { RunStreams } from '../fleet/run-streams.js';
import type { RunFrame } from '../protocol/events.js';
import { RunJournal } from '../threads/run-journal.service.js';
import { ThreadsService } from '../threads/threads.service.js';
import type { Run } from '../threads/thread.types.js';
import { toStored } from './live-run.js';

/** How often a replica looks for runs of dead replicas, at most (a third of a lease when that is shorter). */
const REAP_INTERVAL_MAX_MS = 5_000;
/** Events read from a dead run's stream per step while storing them. */
const READ_STEP = 1_000;

/**
 * Closes out the runs of instances that died (killed, crashed, OOM, or cut off longer than their
 * lease): marks each `interrupted`, stores the events it had sent through the bus but not yet
 * stored, and tells its followers with a final `agent_error` (`RUN_INTERRUPTED`) on its stream.
 * At start-up (before the agent is ready) and, with PostgreSQL, every few seconds in the
 * background, so a dead replica's runs end within a lease and a few seconds without waiting for a
 * restart or a client. Replicas reaping together are safe: a run is ended once (`status = running`).
 */
@Injectable()
export class RunReaper implements BeforeApplicationShutdown {
  private readonly logger = new Logger('Agent');
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private othersSeen = 0;

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly database: DatabaseService,
    private readonly threads: ThreadsService,
    private readonly journal: RunJournal,
    private readonly streams: RunStreams,
  ) {}

  /** The first pass (at start-up, part of the agent's initialisation), then the background ones. */
  async start(): Promise<void> {
    await this.reapDead();
    if (this.database.lease === undefined) return;
    await this.warnIfSharedWithoutBus();
    this.schedule();
  }

  /** Before the stores close: a pass running into a closed pool would only log noise. */
  beforeApplicationShutdown(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** The run, after reaping it if its instance is dead: the status a client must see. */
  async asOfNow(run: Run): Promise<Run> {
    if (run.status !== 'running' || (await this.threads.isInstanceAlive(run.instanceId))) return run;
    await this.reap(run);
    return this.threads.findRun(run.ownerId, run.id);
  }

  /**
   * Reaps every run whose instance is dead; returns how many this replica ended. Reads the
   * instances with running runs (one indexed query), and the runs only of those that are dead.
   */
  async reapDead(): Promise<number> {
    let reaped = 0;
    for (const instanceId of await this.threads.instancesWithRunningRuns()) {
      if (await this.threads.isInstanceAlive(instanceId)) continue;
      for (const run of await this.threads.runningRunsOf(instanceId)) if (await this.reap(run)) reaped += 1;
    }
    if (reaped > 0) this.logger.warn(`${reaped} run(s) of instance(s) that died marked interrupted`);
    return reaped;
  }

  private async reap(run: Run): Promise<boolean> {
    const stored = await this.threads.lastStoredSeq(run.id);
    const unstored = await this.unstoredEvents(run.id, stored);
    const error = runInterrupted();
    const seq = (unstored.at(-1)?.data.seq ?? stored) + 1;
    const final = {
      event: 'agent_error',
      data: { code: error.code, message: error.message, retryable: true, runId: run.id, requestId: run.requestId, seq },
    } as RunFrame;
    const ended = await this.journal.interrupt(
      run.id,
      { code: error.code, message: error.message },
      [...unstored, final].map(toStored),
    );
    if (!ended) return false;
    if (this.streams.enabled) {
      // Followers elsewhere learn it from the stream; if Redis is down they read it from PostgreSQL.
      await this.streams.append(run.id, [final], true).catch(() => undefined);
    }
    return true;
  }

  /** The events a dead run had sent through the bus after the `stored` ones, as far as they are contiguous. */
  private async unstoredEvents(runId: string, stored: number): Promise<RunFrame[]> {
    if (!this.streams.enabled) return [];
    const events: RunFrame[] = [];
    let next = stored + 1;
    try {
      for (;;) {
        const page = await this.streams.read(runId, next, READ_STEP);
        for (const frame of page) {
          if ((frame.data.seq ?? 0) !== next) return events;
          events.push(frame);
          next += 1;
        }
        if (page.length < READ_STEP) return events;
      }
    } catch (error) {
      // Redis down: the run ends with what PostgreSQL has (its replay is then incomplete, and says so).
      this.logger.warn(`run ${runId}: its events on the bus could not be read: ${String(error)}`);
      return events;
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    const interval = Math.min(REAP_INTERVAL_MAX_MS, Math.floor(this.config.database.leaseTtlMs / 3));
    this.timer = setTimeout(() => void this.cycle(), interval);
    this.timer.unref();
  }

  private async cycle(): Promise<void> {
    try {
      await this.reapDead();
      await this.warnIfSharedWithoutBus();
      await this.database.lease?.forgetExpired();
    } catch (error) {
      this.logger.warn(`looking for runs of dead instances failed: ${String(error)}`);
    } finally {
      this.schedule();
    }
  }

  /** Several instances on one PostgreSQL without `REDIS_URL`: runs are per instance. Said once per change. */
  private async warnIfSharedWithoutBus(): Promise<void> {
    if (this.streams.enabled || this.database.lease === undefined) return;
    const others = (await this.database.lease.liveInstances()).filter((i) => i.id !== this.database.instanceId).length;
    if (others > 0 && others !== this.othersSeen) {
      this.logger.warn(
        `${others} other live instance(s) share this database, but REDIS_URL is not set: a run can be followed, cancelled and limited only on the instance that started it (set REDIS_URL for fleet mode)`,
      );
    }
    this.othersSeen = others;
  }
}
