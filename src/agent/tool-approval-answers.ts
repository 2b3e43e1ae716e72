import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { filter, Subscription } from 'rxjs';
import { DatabaseService } from '../database/database.service.js';
import { approvalUndelivered, runNotActive, toolCallNotPending } from '../errors/client-errors.js';
import { type ControlCommand, InstanceControl } from '../fleet/instance-control.js';
import type { ToolApprovalRequest } from '../protocol/events.js';
import { ThreadsService } from '../threads/threads.service.js';
import { AgentSupervisor } from './agent.supervisor.js';
import { RemoteRuns } from './remote-runs.js';
import type { ApprovalAnswer } from './run-approvals.js';
import { RunReaper } from './run-reaper.js';

type ApprovalCommand = Extract<ControlCommand, { readonly type: 'approval' }>;

/**
 * `tool_approval`: brings a person's answer to the run whose call waits for it, from any of the
 * user's connections. A run executing here is answered at once; in fleet mode, one executing on
 * another instance is answered through that instance's control channel, once its events (in Redis
 * or PostgreSQL) show the call still waiting. Errors: `RUN_NOT_FOUND` (not the user's run, or
 * none), `RUN_NOT_ACTIVE` (ended), `TOOL_CALL_NOT_PENDING` (that call is not waiting), and in fleet
 * mode a retryable `STORAGE_UNAVAILABLE` when the other instance cannot be reached.
 */
@Injectable()
export class ToolApprovalAnswers implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('Agent');
  private readonly subscriptions = new Subscription();

  constructor(
    private readonly supervisor: AgentSupervisor,
    private readonly threads: ThreadsService,
    private readonly reaper: RunReaper,
    private readonly remote: RemoteRuns,
    private readonly database: DatabaseService,
    private readonly control: InstanceControl,
  ) {}

  onApplicationBootstrap(): void {
    this.subscriptions.add(
      this.control.commands$
        .pipe(filter((command): command is ApprovalCommand => command.type === 'approval'))
        .subscribe((command) => {
          // The sender checked the call was waiting; a second answer racing the first loses here.
          if (!this.answerHere(command.ownerId, command)) {
            this.logger.debug(`run ${command.runId}: an approval for a call no longer waiting was ignored`);
          }
        }),
    );
  }

  onModuleDestroy(): void {
    this.subscriptions.unsubscribe();
  }

  async answer(ownerId: string, request: ToolApprovalRequest): Promise<void> {
    const { runId, toolCallId } = request;
    const live = this.supervisor.liveRun(ownerId, runId);
    if (live !== undefined && !live.done) {
      if (!this.answerHere(ownerId, request)) throw toolCallNotPending(runId, toolCallId);
      return;
    }
    const run = await this.reaper.asOfNow(await this.threads.findRun(ownerId, runId));
    if (run.status === 'running' && this.remote.enabled && run.instanceId !== this.database.instanceId) {
      if (!(await this.waitsRemotely(runId, toolCallId))) throw toolCallNotPending(runId, toolCallId);
      const command: ApprovalCommand = {
        type: 'approval',
        runId,
        ownerId,
        toolCallId,
        approved: request.approved,
        ...(request.reason === undefined ? {} : { reason: request.reason }),
      };
      if (!(await this.control.send(run.instanceId, command))) throw approvalUndelivered(runId);
      return;
    }
    throw runNotActive(runId, run.status, 'answer');
  }

  /** Settles the call if it waits in a run of this process; false otherwise. */
  private answerHere(ownerId: string, request: Omit<ToolApprovalRequest, 'requestId'>): boolean {
    const live = this.supervisor.liveRun(ownerId, request.runId);
    if (live === undefined || live.done) return false;
    return live.approvals.answer(request.toolCallId, answerOf(request));
  }

  /**
   * A paused run's last event is the request it waits on (it asks about one call at a time and
   * sends nothing while it waits), so the call waits exactly when that event is the run's last.
   */
  private async waitsRemotely(runId: string, toolCallId: string): Promise<boolean> {
    const lastSeq = await this.remote.lastSeq(runId);
    if (lastSeq === 0) return false;
    const [last] = await this.remote.read(runId, lastSeq, 1);
    return last?.event === 'tool_approval_required' && last.data.toolCallId === toolCallId;
  }
}

function answerOf(request: Pick<ToolApprovalRequest, 'approved' | 'reason'>): ApprovalAnswer {
  if (request.approved) return { kind: 'approved' };
  return request.reason === undefined ? { kind: 'refused' } : { kind: 'refused', reason: request.reason };
}
