import { BehaviorSubject, distinctUntilChanged, type Observable } from 'rxjs';

/** A person's answer to one `tool_approval_required`, or none in time. */
export type ApprovalOutcome =
  | { readonly kind: 'approved' }
  | { readonly kind: 'refused'; readonly reason?: string }
  | { readonly kind: 'timed_out'; readonly afterMs: number };

/** What a `tool_approval` can say (the timeout is the run's own). */
export type ApprovalAnswer = Exclude<ApprovalOutcome, { readonly kind: 'timed_out' }>;

interface Pending {
  readonly toolCallId: string;
  readonly settle: (outcome: ApprovalOutcome) => void;
}

/**
 * The tool call of one run that waits for a person, if any. The run asks about its calls one at a
 * time, in call order, so at most one is pending: what a run holds stays bounded however many
 * calls a step makes, and an answer is followed at once by that call's `tool_executing` or
 * `tool_failed`, which every follower of the run sees.
 */
export class RunApprovals {
  private pending: Pending | undefined;
  private readonly waitingState = new BehaviorSubject<boolean>(false);
  /** True while the run is paused on a call (the supervisor stops the run's own clock meanwhile). */
  readonly waiting$: Observable<boolean> = this.waitingState.pipe(distinctUntilChanged());

  /** The call waiting now, if any. */
  get pendingCallId(): string | undefined {
    return this.pending?.toolCallId;
  }

  /**
   * Waits for the answer about `toolCallId`; `timed_out` after `timeoutMs`. Rejects with the abort
   * reason when `signal` (the run) aborts: a cancelled run does not wait for anyone.
   */
  wait(toolCallId: string, timeoutMs: number, signal: AbortSignal): Promise<ApprovalOutcome> {
    return new Promise<ApprovalOutcome>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.pending = undefined;
        this.waitingState.next(false);
      };
      const onAbort = (): void => {
        done();
        reject(signal.reason as Error);
      };
      const timer = setTimeout(() => {
        done();
        resolve({ kind: 'timed_out', afterMs: timeoutMs });
      }, timeoutMs);
      timer.unref();
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending = {
        toolCallId,
        settle: (outcome) => {
          done();
          resolve(outcome);
        },
      };
      this.waitingState.next(true);
    });
  }

  /**
   * Settles the call `toolCallId` with `answer`; false when that call is not waiting (never asked
   * about, already answered, or timed out): the first answer wins.
   */
  answer(toolCallId: string, answer: ApprovalAnswer): boolean {
    const pending = this.pending;
    if (pending?.toolCallId !== toolCallId) return false;
    pending.settle(answer);
    return true;
  }
}
