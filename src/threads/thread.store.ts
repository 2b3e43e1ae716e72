import type { Message, NewMessage, Thread } from './thread.types.js';

/**
 * Where threads and messages live. Reads are scoped by owner: a thread that exists but belongs to
 * someone else is indistinguishable from one that does not exist.
 */
export abstract class ThreadStore {
  /** Prepares the store (connect, migrate); part of the `threads` readiness dependency. */
  abstract init(signal: AbortSignal): Promise<void>;
  abstract createThread(ownerId: string, title: string): Promise<Thread>;
  abstract findThread(ownerId: string, threadId: string): Promise<Thread | undefined>;
  abstract appendMessage(message: NewMessage): Promise<Message>;
  abstract listMessages(ownerId: string, threadId: string): Promise<Message[]>;
}
