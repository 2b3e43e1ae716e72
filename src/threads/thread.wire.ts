import type { ChatMessage, ThreadHistoryResult, ThreadListResult, ThreadSummary } from '../protocol/events.js';
import type { HistoryPage, Message, Page, Thread } from './thread.types.js';

/** Stored message → wire shape. */
export function toChatMessage(message: Message): ChatMessage {
  return {
    id: message.id,
    threadId: message.threadId,
    role: message.role,
    content: message.content,
    ...(message.runId === undefined ? {} : { runId: message.runId }),
    createdAt: message.createdAt.toISOString(),
    ...(message.steps === undefined ? {} : { steps: message.steps }),
  };
}

/** Stored thread → wire shape. */
export function toThreadSummary(thread: Thread): ThreadSummary {
  return {
    id: thread.id,
    title: thread.title,
    createdAt: thread.createdAt.toISOString(),
    updatedAt: thread.updatedAt.toISOString(),
    ...(thread.activeRunId === undefined ? {} : { activeRunId: thread.activeRunId }),
  };
}

/** A page of threads as `thread_list_result` and `GET /threads` carry it (without `requestId`). */
export function toThreadList(page: Page<Thread>): Omit<ThreadListResult, 'requestId'> {
  return { threads: page.items.map(toThreadSummary), ...(page.next === undefined ? {} : { nextCursor: page.next }) };
}

/** A page of history as `thread_history_result` and `GET /threads/:id/messages` carry it (without `requestId`). */
export function toThreadHistory(threadId: string, page: HistoryPage): Omit<ThreadHistoryResult, 'requestId'> {
  return {
    threadId,
    messages: page.items.map(toChatMessage),
    ...(page.next === undefined ? {} : { nextBefore: page.next }),
    ...(page.activeRun === undefined ? {} : { activeRun: page.activeRun }),
  };
}
