import { serverBusy, tooManyRuns } from '../errors/client-errors.js';

export interface RunLimits {
  /** Runs (running or queued) one user may have at once. */
  readonly maxRunsPerUser: number;
  /** Runs executing at once across all users. */
  readonly maxConcurrentRuns: number;
  /** Runs allowed to wait for a slot; beyond it requests are refused with `SERVER_BUSY`. */
  readonly queueSize: number;
}

/** A place among the runs: granted at once, or waiting in the queue. Release it exactly once. */
export interface RunTicket {
  /** 0 when a slot was free; otherwise the place in the queue (1: next). */
  readonly position: number;
  /** Resolves when the run may execute. */
  readonly granted: Promise<void>;
  release(): void;
}

/**
 * Admission for agent runs: a per-user cap, a global concurrency cap and a bounded FIFO queue.
 * All synchronous, so two requests arriving together can never both take the last slot.
 */
export class RunLimiter {
  private running = 0;
  private readonly queue: Array<() => void> = [];
  private readonly perUser = new Map<string, number>();

  constructor(private readonly limits: RunLimits) {}

  /** The user's runs here, running or queued. */
  runsOf(userId: string): number {
    return this.perUser.get(userId) ?? 0;
  }

  /** Takes a slot or a place in the queue, or throws `RATE_LIMITED` / `SERVER_BUSY`. */
  admit(userId: string): RunTicket {
    const mine = this.perUser.get(userId) ?? 0;
    if (mine >= this.limits.maxRunsPerUser) {
      throw tooManyRuns(this.limits.maxRunsPerUser);
    }
    const immediate = this.running < this.limits.maxConcurrentRuns;
    if (!immediate && this.queue.length >= this.limits.queueSize) {
      throw serverBusy();
    }
    this.perUser.set(userId, mine + 1);

    let state: 'queued' | 'running' | 'released' = immediate ? 'running' : 'queued';
    let grant: () => void = () => {};
    const granted = new Promise<void>((resolve) => {
      grant = resolve;
    });
    const start = (): void => {
      state = 'running';
      this.running += 1;
      grant();
    };
    if (immediate) start();
    else this.queue.push(start);

    return {
      position: immediate ? 0 : this.queue.length,
      granted,
      release: () => {
        if (state === 'released') return;
        if (state === 'queued') this.queue.splice(this.queue.indexOf(start), 1);
        else this.running -= 1;
        state = 'released';
        const left = (this.perUser.get(userId) ?? 1) - 1;
        if (left === 0) this.perUser.delete(userId);
        else this.perUser.set(userId, left);
        if (this.running < this.limits.maxConcurrentRuns) this.queue.shift()?.();
      },
    };
  }
}
