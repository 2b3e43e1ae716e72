import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import type { AppDependency } from '../app.dependencies.js';
import { DatabaseService } from '../database/database.service.js';
import { runNotFound, threadNotFound, validationFailed } from '../errors/client-errors.js';
import { ReadinessService } from '../readiness/readiness.service.js';
import { MessageRepository } from './message.repository.js';
import { RunRepository } from './run.repository.js';
import { RunEventRepository } from './run-event.repository.js';
import { type ThreadCursor, ThreadRepository } from './thread.repository.js';
import type { HistoryPage, Message, Page, Run, StoredRunEvent, Thread } from './thread.types.js';

const DEPENDENCY: AppDependency = 'threads';
/**
 * A run's first event, `agent_started`, carries its user message, which is stored with it: a
 * history that holds that message covers the run up to this `seq`, and nothing of it beyond.
 */
const AGENT_STARTED_SEQ = 1;

/**
 * The conversation store, read side: threads, their history and runs, always scoped by owner.
 * A thread or run that exists but belongs to someone else is reported exactly like a missing one.
 * Its initialisation (connect, migrate) is the
 * `threads` readiness dependency.
 */
@Injectable()
export class ThreadsService implements OnApplicationBootstrap {
  constructor(
    private readonly database: DatabaseService,
    private readonly threads: ThreadRepository,
    private readonly messages: MessageRepository,
    private readonly runs: RunRepository,
    private readonly runEvents: RunEventRepository,
    private readonly readiness: ReadinessService,
  ) {}

  onApplicationBootstrap(): void {
    this.readiness.track(DEPENDENCY, (signal) => this.init(signal), { details: () => this.storageDetails() });
  }

  /**
   * The `threads` entry of `/health/ready` carries the database's health, reported, not judged: the
   * database is shared, and unrouting every replica at once would not bring it back.
   */
  private storageDetails(): Record<string, unknown> {
    const { status, lastError, since } = this.database.currentHealth;
    const lease = this.database.lease?.current;
    return {
      ...(status === 'up'
        ? { storage: 'up' }
        : { storage: 'down', storageDownSince: new Date(since).toISOString(), storageError: lastError }),
      // PostgreSQL: without its lease this instance looks dead to the fleet and starts no run.
      ...(lease === undefined ? {} : { lease: lease.held ? 'held' : 'lost' }),
    };
  }

  async listThreads(ownerId: string, limit: number, cursor?: string): Promise<Page<Thread>> {
    const threads = await this.threads.listOwned(
      ownerId,
      limit + 1,
      cursor === undefined ? undefined : decodeCursor(cursor),
    );
    const active = await this.runs.runningInThreads(threads.slice(0, limit).map((thread) => thread.id));
    const page = threads.slice(0, limit).map((thread) => {
      const activeRunId = active.get(thread.id);
      return activeRunId === undefined ? thread : { ...thread, activeRunId };
    });
    const last = page.at(-1);
    return threads.length > limit && last !== undefined
      ? { items: page, next: encodeCursor({ updatedAt: last.updatedAt.getTime(), id: last.id }) }
      : { items: page };
  }

  /**
   * A page of the thread's messages, oldest first within the page: the newest `limit` messages
   * before the message `before` (or the newest of all). `next` is the `before` of the older page.
   */
  async history(ownerId: string, threadId: string, limit: number, before?: string): Promise<HistoryPage> {
    await this.findThread(ownerId, threadId);
    // The running run first, the messages second: a run that completes in between shows up as its
    // answer in the page, and is then not reported as running (two replies on the page otherwise).
    const runningId = before === undefined ? (await this.runs.runningInThreads([threadId])).get(threadId) : undefined;
    const newestFirst = await this.messages.listNewestFirst(threadId, limit + 1, before);
    const page = await this.withSteps(newestFirst.slice(0, limit).reverse());
    const answered = page.filter((message) => message.role === 'assistant' && message.runId !== undefined);
    const activeRun =
      runningId === undefined || answered.some((message) => message.runId === runningId)
        ? undefined
        : { runId: runningId, afterSeq: AGENT_STARTED_SEQ };
    const oldest = page[0];
    return {
      items: page,
      ...(newestFirst.length > limit && oldest !== undefined ? { next: oldest.id } : {}),
      ...(activeRun === undefined ? {} : { activeRun }),
    };
  }

  async findThread(ownerId: string, threadId: string): Promise<Thread> {
    const thread = await this.threads.findOwned(ownerId, threadId);
    if (thread === undefined) throw threadNotFound(threadId);
    return thread;
  }

  /** The last `count` messages of a thread, oldest first, answers with their tool calls: what the model sees. */
  async recentMessages(threadId: string, count: number): Promise<Message[]> {
    return this.withSteps((await this.messages.listNewestFirst(threadId, count)).reverse());
  }

  /** Assistant messages with the tool calls of the run that produced them (one query for all). */
  private async withSteps(messages: readonly Message[]): Promise<Message[]> {
    const answered = messages.filter((message) => message.role === 'assistant' && message.runId !== undefined);
    const steps = await this.runEvents.toolSteps(answered.map((message) => message.runId ?? ''));
    return messages.map((message) => {
      const ofRun = message.role === 'assistant' && message.runId !== undefined ? steps.get(message.runId) : undefined;
      return ofRun === undefined ? message : { ...message, steps: ofRun };
    });
  }

  async findRun(ownerId: string, runId: string): Promise<Run> {
    const run = await this.runs.findOwned(ownerId, runId);
    if (run === undefined) throw runNotFound(runId);
    return run;
  }

  findMessage(messageId: string): Promise<Message | undefined> {
    return this.messages.find(messageId);
  }

  /** The run's stored events after `afterSeq`; with `maxRows`, a page of that many rows (a row may hold many deltas). */
  runEventsAfter(runId: string, afterSeq: number, maxRows?: number): Promise<StoredRunEvent[]> {
    return this.runEvents.listAfter(runId, afterSeq, maxRows);
  }

  /** The `seq` of the run's last stored event (0: none). */
  lastStoredSeq(runId: string): Promise<number> {
    return this.runEvents.lastSeq(runId);
  }

  /** The run's last stored event, if any. */
  lastStoredEvent(runId: string): Promise<StoredRunEvent | undefined> {
    return this.runEvents.last(runId);
  }

  /** The instances that have runs marked `running`. */
  instancesWithRunningRuns(): Promise<string[]> {
    return this.runs.runningInstances();
  }

  /** The runs of `instanceId` marked `running`. */
  runningRunsOf(instanceId: string): Promise<Run[]> {
    return this.runs.listRunning(instanceId);
  }

  /** Records a cancellation for the instance executing the run (it reads them while the bus is down). */
  requestCancel(runId: string): Promise<void> {
    return this.runs.requestCancel(runId, new Date());
  }

  /** Runs of `instanceId` whose cancellation was requested through the database. */
  cancelRequested(instanceId: string): Promise<string[]> {
    return this.runs.cancelRequested(instanceId);
  }

  isInstanceAlive(instanceId: string): Promise<boolean> {
    return this.database.isInstanceAlive(instanceId);
  }

  private async init(signal: AbortSignal): Promise<void> {
    // Runs a dead process left `running` are closed out by the agent's reaper (`RunReaper`).
    await this.database.init(signal);
  }
}
function encodeCursor(cursor: ThreadCursor): string {
  return Buffer.from(`${cursor.updatedAt}.${cursor.id}`).toString('base64url');
}

function decodeCursor(cursor: string): ThreadCursor {
  const match = /^(\d{1,16})\.([0-9a-f-]{36})$/u.exec(Buffer.from(cursor, 'base64url').toString());
  if (match?.[1] === undefined || match[2] === undefined) {
    throw validationFailed('cursor', 'is not a cursor this server returned');
  }
  return { updatedAt: Number(match[1]), id: match[2] };
}
