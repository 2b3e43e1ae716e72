import { Injectable } from '@nestjs/common';
import type { Selectable } from 'kysely';
import { DatabaseService } from '../database/database.service.js';
import type { Database, RunsTable } from '../database/database.types.js';
import type { Run, RunStatus, Usage } from './thread.types.js';

export interface RunOutcome {
  readonly status: Exclude<RunStatus, 'running'>;
  readonly at: Date;
  readonly messageId?: string;
  readonly error?: { readonly code: string; readonly message: string };
  readonly usage?: Usage;
}

@Injectable()
export class RunRepository {
  constructor(private readonly database: DatabaseService) {}

  async insert(run: Run, db: Database = this.database.db): Promise<void> {
    await db
      .insertInto('runs')
      .values({
        id: run.id,
        thread_id: run.threadId,
        owner_id: run.ownerId,
        request_id: run.requestId,
        instance_id: run.instanceId,
        status: run.status,
        message_id: null,
        error_code: null,
        error_message: null,
        prompt_tokens: null,
        completion_tokens: null,
        created_at: run.createdAt.getTime(),
        updated_at: run.updatedAt.getTime(),
        finished_at: null,
        cancel_requested_at: null,
      })
      .execute();
  }

  async findOwned(ownerId: string, id: string): Promise<Run | undefined> {
    const row = await this.database.db
      .selectFrom('runs')
      .selectAll()
      .where('id', '=', id)
      .where('owner_id', '=', ownerId)
      .executeTakeFirst();
    return row === undefined ? undefined : toRun(row);
  }

  /**
   * The run still `running` in each of these threads (the newest, should there be two). Cheap
   * without an index of its own: `runs_status_instance` leads with the status, and the running
   * runs are few (at most the fleet's run slots and queues).
   */
  async runningInThreads(threadIds: readonly string[]): Promise<Map<string, string>> {
    if (threadIds.length === 0) return new Map();
    const rows = await this.database.db
      .selectFrom('runs')
      .select(['id', 'thread_id'])
      .where('status', '=', 'running')
      .where('thread_id', 'in', threadIds)
      .orderBy('created_at')
      .execute();
    return new Map(rows.map((row) => [row.thread_id, row.id]));
  }

  /** Ends a run that is still `running`; false when it had already ended. */
  async finish(id: string, outcome: RunOutcome, db: Database = this.database.db): Promise<boolean> {
    const result = await db
      .updateTable('runs')
      .set({
        status: outcome.status,
        message_id: outcome.messageId ?? null,
        error_code: outcome.error?.code ?? null,
        error_message: outcome.error?.message ?? null,
        prompt_tokens: outcome.usage?.promptTokens ?? null,
        completion_tokens: outcome.usage?.completionTokens ?? null,
        updated_at: outcome.at.getTime(),
        finished_at: outcome.at.getTime(),
      })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** The instances that have runs still marked `running` (index `runs_status_instance`). */
  async runningInstances(): Promise<string[]> {
    const rows = await this.database.db
      .selectFrom('runs')
      .select('instance_id')
      .distinct()
      .where('status', '=', 'running')
      .execute();
    return rows.map((row) => row.instance_id);
  }

  /** The runs of `instanceId` still marked `running`. */
  async listRunning(instanceId: string): Promise<Run[]> {
    const rows = await this.database.db
      .selectFrom('runs')
      .selectAll()
      .where('status', '=', 'running')
      .where('instance_id', '=', instanceId)
      .execute();
    return rows.map(toRun);
  }

  /** Records that the run's owner asked to cancel it (read by the instance executing it). */
  async requestCancel(id: string, at: Date): Promise<void> {
    await this.database.db
      .updateTable('runs')
      .set({ cancel_requested_at: at.getTime() })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .execute();
  }

  /** The runs of `instanceId` still running whose cancellation was requested. */
  async cancelRequested(instanceId: string): Promise<string[]> {
    const rows = await this.database.db
      .selectFrom('runs')
      .select('id')
      .where('instance_id', '=', instanceId)
      .where('status', '=', 'running')
      .where('cancel_requested_at', 'is not', null)
      .execute();
    return rows.map((row) => row.id);
  }
}

function toRun(row: Selectable<RunsTable>): Run {
  return {
    id: row.id,
    threadId: row.thread_id,
    ownerId: row.owner_id,
    requestId: row.request_id,
    instanceId: row.instance_id,
    status: row.status,
    ...(row.message_id === null ? {} : { messageId: row.message_id }),
    ...(row.error_code === null ? {} : { error: { code: row.error_code, message: row.error_message ?? '' } }),
    ...(row.prompt_tokens === null
      ? {}
      : { usage: { promptTokens: Number(row.prompt_tokens), completionTokens: Number(row.completion_tokens ?? 0) } }),
    createdAt: new Date(Number(row.created_at)),
    updatedAt: new Date(Number(row.updated_at)),
    ...(row.finished_at === null ? {} : { finishedAt: new Date(Number(row.finished_at)) }),
  };
}
