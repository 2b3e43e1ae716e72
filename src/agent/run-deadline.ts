/**
 * A run's `AGENT_RUN_TIMEOUT_MS` clock, which can stop: it bounds the agent's own work (model calls
 * and tools), not the time a person takes to answer `tool_approval_required`, whose wait has its
 * own bound (`AGENT_APPROVAL_TIMEOUT_MS` per call).
 */
export class RunDeadline {
  private remainingMs: number;
  private runningSince = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private cleared = false;

  constructor(
    timeoutMs: number,
    private readonly onExpire: () => void,
  ) {
    this.remainingMs = timeoutMs;
    this.resume();
  }

  /** Stops the clock (the time left is kept). */
  pause(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.remainingMs -= Date.now() - this.runningSince;
  }

  /** Starts the clock again with the time that was left. */
  resume(): void {
    if (this.timer !== undefined || this.cleared) return;
    this.runningSince = Date.now();
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.cleared = true;
        this.onExpire();
      },
      Math.max(0, this.remainingMs),
    );
    this.timer.unref();
  }

  /** The run ended: the clock never fires. */
  clear(): void {
    this.cleared = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
