import type { ChatMessage, ThreadSummary } from '../protocol/events.js';
import type { Message, Thread } from './thread.types.js';

/** Stored message → wire shape. */
export function toChatMessage(message: Message): ChatMessage {
  return {
    id: message.id,
    threadId: message.threadId,
    role: message.role,
    content: message.content,
    ...(message.runId === undefined ? {} : { runId: message.runId }),
    createdAt: message.createdAt.toISOString(),
  };
}

/** Stored thread → wire shape. */
export function toThreadSummary(thread: Thread): ThreadSummary {
  return {
    id: thread.id,
    title: thread.title,
    createdAt: thread.createdAt.toISOString(),
    updatedAt: thread.updatedAt.toISOString(),
  };
}
