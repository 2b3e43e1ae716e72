import { Injectable } from '@nestjs/common';
import { DatabaseService } from '../database/database.service.js';
import { MessageRepository } from './message.repository.js';
import { type RunOutcome, RunRepository } from './run.repository.js';
import { RunEventRepository } from './run-event.repository.js';
import { ThreadRepository } from './thread.repository.js';
import type { Message, StoredRunEvent, Thread } from './thread.types.js';

export interface NewRun {
  /** Set when the run starts a new thread. */
  readonly newThread?: Thread;
  readonly threadId: string;
  readonly runId: string;
  readonly ownerId: string;
  readonly requestId: string;
  readonly userMessage: Message;
  /** Stored with the run (`agent_started`). */
  readonly events: readonly StoredRunEvent[];
}

export interface RunEnd {
  readonly runId: string;
  readonly threadId: string;
  readonly outcome: RunOutcome;
  /** The assistant's answer, for a completed run. */
  readonly assistantMessage?: Message;
  /** The run's remaining events, the final one included. */
  readonly events: readonly StoredRunEvent[];
}

/**
 * The conversation store, write side. Each method is one transaction, so a run is either fully
 * recorded at each step or not at all: a user's message is never stored without its run, and an
 * answer never without its run's final status.
 */
@Injectable()
export class RunJournal {
  constructor(
    private readonly database: DatabaseService,
    private readonly threads: ThreadRepository,
    private readonly messages: MessageRepository,
    private readonly runs: RunRepository,
    private readonly runEvents: RunEventRepository,
  ) {}

  async begin(start: NewRun): Promise<void> {
    const at = start.userMessage.createdAt;
    await this.database.db.transaction().execute(async (trx) => {
      if (start.newThread !== undefined) await this.threads.insert(start.newThread, trx);
      else await this.threads.touch(start.threadId, at, trx);
      await this.runs.insert(
        {
          id: start.runId,
          threadId: start.threadId,
          ownerId: start.ownerId,
          requestId: start.requestId,
          instanceId: this.database.instanceId,
          status: 'running',
          createdAt: at,
          updatedAt: at,
        },
        trx,
      );
      await this.messages.insert(start.userMessage, trx);
      await this.runEvents.insertMany(start.events, at, trx);
    });
  }

  /** Stores events of a run in progress (the live stream does not wait for this). */
  async record(events: readonly StoredRunEvent[]): Promise<void> {
    await this.runEvents.insertMany(events, new Date());
  }

  /**
   * Ends a run whose instance died as `interrupted`, with the events it left on the bus (not stored
   * yet) and the final `agent_error`. False if the run had already ended (another replica reaped it).
   */
  async interrupt(
    runId: string,
    error: { code: string; message: string },
    events: readonly StoredRunEvent[],
  ): Promise<boolean> {
    const at = new Date();
    return this.database.db.transaction().execute(async (trx) => {
      const finished = await this.runs.finish(runId, { status: 'interrupted', at, error }, trx);
      if (!finished) return false;
      await this.runEvents.insertMany(events, at, trx);
      return true;
    });
  }

  /** Ends a run: its answer (if any), its last events and its status together. False if it had already ended. */
  async end(end: RunEnd): Promise<boolean> {
    return this.database.db.transaction().execute(async (trx) => {
      const finished = await this.runs.finish(end.runId, end.outcome, trx);
      if (!finished) return false;
      if (end.assistantMessage !== undefined) {
        await this.messages.insert(end.assistantMessage, trx);
        await this.threads.touch(end.threadId, end.assistantMessage.createdAt, trx);
      }
      await this.runEvents.insertMany(end.events, end.outcome.at, trx);
      return true;
    });
  }
}
