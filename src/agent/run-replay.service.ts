import { Injectable } from '@nestjs/common';
import type { ResumeRequest, Resumed, RunFrame, ServerFrame } from '../protocol/events.js';
import { TERMINAL_RUN_EVENTS } from '../protocol/events.js';
import { ThreadsService } from '../threads/threads.service.js';
import type { Run, StoredRunEvent } from '../threads/thread.types.js';
import { toChatMessage } from '../threads/thread.wire.js';
import { AgentSupervisor } from './agent.supervisor.js';
import { DatabaseService } from '../database/database.service.js';
import { arrayCursor, type ReplayCursor } from './live-run.js';
import { RemoteRuns } from './remote-runs.js';
import { RunReaper } from './run-reaper.js';

/** The answer to a `resume`: the `resumed` frame, then (when recovered) the events, pulled by the sender. */
export interface Replay {
  readonly resumed: ServerFrame<'resumed'>;
  readonly events?: ReplayCursor;
}

/**
 * `resume`: brings a client back to where it left a run. A run executing here is replayed from
 * memory and then followed live; in fleet mode, a run executing on another instance is replayed and
 * followed through the bus (`RemoteRuns`); an ended one is replayed from its stored events. When
 * the events cannot be replayed (the run was interrupted by a restart, or runs on another instance
 * without fleet mode) the client
 * gets `recovered: false` with the run's status and, if it completed, its answer.
 */
@Injectable()
export class RunReplay {
  constructor(
    private readonly supervisor: AgentSupervisor,
    private readonly threads: ThreadsService,
    private readonly reaper: RunReaper,
    private readonly remote: RemoteRuns,
    private readonly database: DatabaseService,
  ) {}

  /**
   * What to send for `request`. The events are not sent from here: the gateway pulls them at the
   * pace of the socket and of the user's replay budget (a replay is the costliest answer a small
   * request can get).
   */
  async resume(ownerId: string, request: ResumeRequest): Promise<Replay> {
    const { runId, afterSeq } = request;
    const live = this.supervisor.liveRun(ownerId, runId);
    if (live !== undefined && !live.done) {
      const resumed = this.resumed(request, live.identity.threadId, {
        recovered: true,
        status: 'running',
        replayed: Math.max(0, live.lastSeq - afterSeq),
      });
      return { resumed, events: live.cursor(afterSeq) };
    }

    const run = await this.reaper.asOfNow(await this.threads.findRun(ownerId, runId));
    if (run.status === 'running' && this.remote.enabled && run.instanceId !== this.database.instanceId) {
      // Fleet mode: the run executes on another instance; its events come through the bus.
      const last = await this.remote.lastSeq(runId);
      const resumed = this.resumed(request, run.threadId, {
        recovered: true,
        status: 'running',
        replayed: Math.max(0, last - afterSeq),
      });
      return { resumed, events: this.remote.cursor(runId, afterSeq) };
    }
    const final = await this.finalState(run);
    if (run.status === 'running' || run.status === 'interrupted') {
      return {
        resumed: this.resumed(request, run.threadId, { recovered: false, status: run.status, replayed: 0, ...final }),
      };
    }
    const events = await this.threads.runEventsAfter(runId, afterSeq);
    if (!isCompleteTail(events, afterSeq)) {
      return {
        resumed: this.resumed(request, run.threadId, { recovered: false, status: run.status, replayed: 0, ...final }),
      };
    }
    const resumed = this.resumed(request, run.threadId, {
      recovered: true,
      status: run.status,
      replayed: events.length,
      ...final,
    });
    return {
      resumed,
      events: arrayCursor(events.map((event) => ({ event: event.event, data: event.data }) as unknown as RunFrame)),
    };
  }

  private async finalState(run: Run): Promise<Pick<Resumed, 'message' | 'error'>> {
    const message = run.messageId === undefined ? undefined : await this.threads.findMessage(run.messageId);
    return {
      ...(message === undefined ? {} : { message: toChatMessage(message) }),
      ...(run.error === undefined ? {} : { error: run.error }),
    };
  }

  private resumed(
    request: ResumeRequest,
    threadId: string,
    state: Omit<Resumed, 'runId' | 'threadId' | 'requestId'>,
  ): ServerFrame<'resumed'> {
    return {
      event: 'resumed',
      data: {
        ...(request.requestId === undefined ? {} : { requestId: request.requestId }),
        runId: request.runId,
        threadId,
        ...state,
      },
    };
  }
}

/** The stored events continue exactly after `afterSeq` and reach the run's final event. */
function isCompleteTail(events: readonly StoredRunEvent[], afterSeq: number): boolean {
  if (events.length === 0) return true;
  const contiguous = events.every((event, index) => event.seq === afterSeq + 1 + index);
  const last = events.at(-1)?.event ?? '';
  return contiguous && (TERMINAL_RUN_EVENTS as readonly string[]).includes(last);
}
