import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { last, type Observable, Subject } from 'rxjs';
import type { ErrorCode } from '../protocol/error-codes.js';
import type { RunFrame, RunStatus } from '../protocol/events.js';
import type { LiveRun } from './live-run.js';

/** How a run ended, as its client saw it. */
export type RunEndStatus = Exclude<RunStatus, 'running'>;

/**
 * A run's start and end, or a request refused before any run existed (`RATE_LIMITED`,
 * `SERVER_BUSY`, `SERVICE_SHUTTING_DOWN`, `STORAGE_UNAVAILABLE`). Ids and codes only: never the
 * message or the answer.
 */
export type RunLifecycleEvent =
  | { readonly type: 'started'; readonly runId: string; readonly threadId: string; readonly userId: string }
  | {
      readonly type: 'ended';
      readonly runId: string;
      readonly threadId: string;
      readonly status: RunEndStatus;
      /** Set when the run ended with `agent_error`. */
      readonly errorCode?: ErrorCode;
      /** From `agent_started` to the last event, queue wait included. */
      readonly durationMs: number;
    }
  | { readonly type: 'refused'; readonly errorCode: ErrorCode };

/**
 * Where the supervisor reports runs: one log line per start and per end, and {@link events$} for
 * whoever counts them (metrics). The end is read from the run's own last event, so it is exactly
 * what the client was told, whichever path of the supervisor sent it.
 */
@Injectable()
export class RunLifecycle implements OnModuleDestroy {
  private readonly logger = new Logger('Agent');
  private readonly events = new Subject<RunLifecycleEvent>();
  readonly events$: Observable<RunLifecycleEvent> = this.events.asObservable();

  /** Call once `agent_started` is published; the run is followed until its last event. */
  started(run: LiveRun): void {
    const startedAt = performance.now();
    const { runId, threadId, ownerId: userId } = run.identity;
    this.logger.log('run started', { runId, threadId, userId });
    this.events.next({ type: 'started', runId, threadId, userId });
    run
      .frames$(0)
      .pipe(last())
      .subscribe({
        next: (final) => {
          const { status, errorCode } = endOf(final);
          const durationMs = Math.round(performance.now() - startedAt);
          this.logger.log('run ended', { runId, threadId, status, durationMs, errorCode });
          this.events.next({
            type: 'ended',
            runId,
            threadId,
            status,
            durationMs,
            ...(errorCode === undefined ? {} : { errorCode }),
          });
        },
        // `last()` errors only if the stream completes empty, and a started run always has its first event.
        error: () => {},
      });
  }

  /** Call for a request answered with `agent_error` before any run existed. */
  refused(requestId: string, errorCode: ErrorCode): void {
    this.logger.log('run refused', { requestId, errorCode });
    this.events.next({ type: 'refused', errorCode });
  }

  onModuleDestroy(): void {
    this.events.complete();
  }
}

function endOf(frame: RunFrame): { status: RunEndStatus; errorCode?: ErrorCode } {
  switch (frame.event) {
    case 'agent_completed':
      return { status: 'completed' };
    case 'agent_cancelled':
      return { status: 'cancelled' };
    case 'agent_error':
      return {
        status: frame.data.code === 'RUN_INTERRUPTED' ? 'interrupted' : 'failed',
        errorCode: frame.data.code,
      };
    default:
      // LiveRun.finish is only ever given one of the three final events.
      return { status: 'failed' };
  }
}
