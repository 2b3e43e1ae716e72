import { randomUUID } from 'node:crypto';
import { ThreadStore } from './thread.store.js';
import type { Message, NewMessage, Thread } from './thread.types.js';

/** Keeps threads in process memory: lost on restart. The persistent stores replace it. */
export class InMemoryThreadStore extends ThreadStore {
  private readonly threads = new Map<string, Thread>();
  private readonly messages = new Map<string, Message[]>();

  async init(): Promise<void> {}

  async createThread(ownerId: string, title: string): Promise<Thread> {
    const now = new Date();
    const thread: Thread = { id: randomUUID(), ownerId, title, createdAt: now, updatedAt: now };
    this.threads.set(thread.id, thread);
    this.messages.set(thread.id, []);
    return thread;
  }

  async findThread(ownerId: string, threadId: string): Promise<Thread | undefined> {
    const thread = this.threads.get(threadId);
    return thread?.ownerId === ownerId ? thread : undefined;
  }

  async appendMessage(message: NewMessage): Promise<Message> {
    const list = this.messages.get(message.threadId);
    const thread = this.threads.get(message.threadId);
    if (list === undefined || thread === undefined) throw new Error(`no thread ${message.threadId}`);
    const stored: Message = { ...message, id: randomUUID(), createdAt: new Date() };
    list.push(stored);
    this.threads.set(thread.id, { ...thread, updatedAt: stored.createdAt });
    return stored;
  }

  async listMessages(ownerId: string, threadId: string): Promise<Message[]> {
    if ((await this.findThread(ownerId, threadId)) === undefined) return [];
    return [...(this.messages.get(threadId) ?? [])];
  }
}
