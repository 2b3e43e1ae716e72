import type { ChatMessage, Resumed, RunFrame, RunStatus, ToolApprovalRequired } from '../protocol/events.js';
import type { GatewayErrorInfo } from './client-errors.js';

/** How a run ended, whether its events were all seen or only its stored outcome. */
export type RunResult =
  | { readonly status: 'completed'; readonly threadId: string; readonly message: ChatMessage }
  | { readonly status: 'cancelled' }
  | {
      readonly status: Exclude<RunStatus, 'running' | 'completed' | 'cancelled'>;
      readonly error: GatewayErrorInfo;
    };

/** A person's answer to a `tool_approval_required`, as `AgentRun` sends it. */
export interface ApprovalAnswer {
  readonly toolCallId: string;
  readonly approved: boolean;
  readonly reason?: string;
}

/**
 * One `agent_request` and everything that follows from it. Iterate it (`for await`) for the
 * events, each exactly once and in `seq` order across reconnects; the iteration ends after the
 * run's last event. `result` resolves once the run has ended, however that became known.
 */
export class AgentRun implements AsyncIterable<RunFrame> {
  /** Set by `agent_started`. */
  runId: string | undefined;
  threadId: string | undefined;
  /** The highest `seq` received: what a `resume` asks to continue after. */
  lastSeq = 0;
  readonly result: Promise<RunResult>;
  private readonly frames: RunFrame[] = [];
  private readonly wakers = new Set<() => void>();
  private ended: RunResult | undefined;
  private settle!: (result: RunResult) => void;
  /** Set when `cancel()` was called before the run had an id. */
  cancelRequested = false;
  private pending: ToolApprovalRequired | undefined;

  constructor(
    readonly requestId: string,
    readonly message: string,
    private readonly cancelRun: (run: AgentRun) => void,
    private readonly answerApproval: (run: AgentRun, answer: ApprovalAnswer) => void = () => undefined,
  ) {
    this.result = new Promise((resolve) => (this.settle = resolve));
  }

  get done(): boolean {
    return this.ended !== undefined;
  }

  /** Stops the run (it ends with `agent_cancelled`); before it started, as soon as it does. */
  cancel(): void {
    if (this.done) return;
    this.cancelRequested = true;
    this.cancelRun(this);
  }

  /**
   * The tool call this run waits on (its `tool_approval_required`, live or replayed by a resume),
   * until an answer from any connection lets it run (`tool_executing`) or refuses it (`tool_failed`).
   */
  get pendingApproval(): ToolApprovalRequired | undefined {
    return this.pending;
  }

  /** Lets the pending call `toolCallId` run (default: the one pending now). */
  approve(toolCallId = this.pending?.toolCallId): void {
    if (toolCallId === undefined || this.done) return;
    this.answerApproval(this, { toolCallId, approved: true });
  }

  /** Refuses the pending call `toolCallId` (default: the one pending now); the model hears `reason`. */
  reject(reason?: string, toolCallId = this.pending?.toolCallId): void {
    if (toolCallId === undefined || this.done) return;
    this.answerApproval(this, { toolCallId, approved: false, ...(reason === undefined ? {} : { reason }) });
  }

  /** Takes a frame of this run; repeated or stale `seq`s (a replay overlapping the live stream) are dropped. */
  accept(frame: RunFrame): void {
    if (this.done) return;
    const seq = frame.data.seq;
    if (seq !== undefined) {
      if (seq <= this.lastSeq) return;
      this.lastSeq = seq;
    }
    if (frame.event === 'agent_started') {
      this.runId = frame.data.runId;
      this.threadId = frame.data.threadId;
    }
    this.trackApproval(frame);
    this.frames.push(frame);
    const outcome = outcomeOf(frame);
    if (outcome !== undefined) this.end(outcome);
    this.wake();
  }

  /** `resume`s answered "still running, but not followable from here" in a row (the backoff's attempt). */
  unfollowableResumes = 0;

  /**
   * The answer to this run's `resume`: when the events are gone, the stored outcome is all there is.
   * Returns `'ask_again'` when the run is still running but cannot be followed from this connection
   * (it runs on another instance): it is not over, and must never be reported as interrupted (the
   * user would send the message again and get two answers), so the client asks again later.
   */
  acceptResumed(resumed: Resumed): 'ask_again' | undefined {
    if (this.done) return undefined;
    if (resumed.recovered) {
      this.unfollowableResumes = 0;
      return undefined;
    }
    if (resumed.status === 'running') {
      this.unfollowableResumes += 1;
      return 'ask_again';
    }
    if (resumed.status === 'completed' && resumed.message !== undefined) {
      this.end({ status: 'completed', threadId: resumed.threadId, message: resumed.message });
    } else if (resumed.status === 'cancelled') {
      this.end({ status: 'cancelled' });
    } else {
      const status = resumed.status === 'failed' ? 'failed' : 'interrupted';
      const error = resumed.error ?? {
        code: 'RUN_INTERRUPTED',
        message: 'the run cannot be followed from here (it runs on another instance, or was interrupted)',
      };
      this.end({
        status,
        error: { code: error.code as GatewayErrorInfo['code'], message: error.message, retryable: true },
      });
    }
    this.wake();
    return undefined;
  }

  /** Ends the run without a final event (refused, or the connection was lost before it started). */
  fail(error: GatewayErrorInfo): void {
    if (this.done) return;
    this.end({ status: 'failed', error });
    this.wake();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<RunFrame> {
    let index = 0;
    for (;;) {
      while (index < this.frames.length) yield this.frames[index++];
      if (this.done) return;
      await new Promise<void>((resolve) => this.wakers.add(resolve));
    }
  }

  private trackApproval(frame: RunFrame): void {
    if (frame.event === 'tool_approval_required') this.pending = frame.data;
    else if (
      (frame.event === 'tool_executing' || frame.event === 'tool_failed') &&
      frame.data.callId === this.pending?.toolCallId
    ) {
      this.pending = undefined;
    }
  }

  private end(result: RunResult): void {
    this.pending = undefined;
    this.ended = result;
    this.settle(result);
  }

  private wake(): void {
    for (const wake of this.wakers) wake();
    this.wakers.clear();
  }
}

function outcomeOf(frame: RunFrame): RunResult | undefined {
  switch (frame.event) {
    case 'agent_completed':
      return { status: 'completed', threadId: frame.data.threadId, message: frame.data.message };
    case 'agent_cancelled':
      return { status: 'cancelled' };
    case 'agent_error': {
      const { code, message, retryable, retryAfterMs } = frame.data;
      return {
        status: code === 'RUN_INTERRUPTED' ? 'interrupted' : 'failed',
        error: retryAfterMs === undefined ? { code, message, retryable } : { code, message, retryable, retryAfterMs },
      };
    }
    default:
      return undefined;
  }
}
