import type { ActiveRun, RunStatus, ToolStep, Usage } from '../protocol/events.js';

export type { ActiveRun, RunStatus, ToolStep, Usage };

export interface Thread {
  readonly id: string;
  readonly ownerId: string;
  readonly title: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  /** Read with the thread list only: its run still running. */
  readonly activeRunId?: string;
}

export interface Message {
  readonly id: string;
  readonly threadId: string;
  readonly role: 'user' | 'assistant';
  readonly content: string;
  readonly runId?: string;
  readonly createdAt: Date;
  /** Read with the history only: the tool calls of the run that produced an assistant message. */
  readonly steps?: readonly ToolStep[];
}

export interface Run {
  readonly id: string;
  readonly threadId: string;
  readonly ownerId: string;
  readonly requestId: string;
  /** The process executing (or that executed) the run. */
  readonly instanceId: string;
  readonly status: RunStatus;
  /** The assistant's answer, once completed. */
  readonly messageId?: string;
  readonly error?: { readonly code: string; readonly message: string };
  readonly usage?: Usage;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly finishedAt?: Date;
}

/** One stored event of a run, as it was sent (`data` includes `runId` and `seq`). */
export interface StoredRunEvent {
  readonly runId: string;
  readonly seq: number;
  readonly event: string;
  readonly data: Readonly<Record<string, unknown>>;
}

export interface Page<T> {
  readonly items: readonly T[];
  /** Pass back to get the next (older) page; absent on the last page. */
  readonly next?: string;
}

/** A page of a thread's history, and the run still running in it (its later events are not in the page). */
export interface HistoryPage extends Page<Message> {
  readonly activeRun?: ActiveRun;
}
