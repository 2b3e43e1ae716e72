import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import type { AppDependency } from '../app.dependencies.js';
import { AppError } from '../errors/app-error.js';
import { ReadinessService } from '../readiness/readiness.service.js';
import { ThreadStore } from './thread.store.js';
import type { Message, NewMessage, Thread } from './thread.types.js';

const DEPENDENCY: AppDependency = 'threads';
const TITLE_MAX_CHARS = 80;

/** The thread registry: resolves and creates threads for their owner and records messages. */
@Injectable()
export class ThreadsService implements OnApplicationBootstrap {
  constructor(
    private readonly store: ThreadStore,
    private readonly readiness: ReadinessService,
  ) {}

  onApplicationBootstrap(): void {
    this.readiness.track(DEPENDENCY, (signal) => this.store.init(signal));
  }

  /**
   * The owner's thread `threadId`, or a new thread titled after `firstMessage` when no id is given.
   * Another user's thread answers `THREAD_NOT_FOUND`, exactly like a missing one.
   */
  async resolveThread(ownerId: string, threadId: string | undefined, firstMessage: string): Promise<Thread> {
    if (threadId === undefined) {
      return this.store.createThread(ownerId, firstMessage.slice(0, TITLE_MAX_CHARS));
    }
    const thread = await this.store.findThread(ownerId, threadId);
    if (thread === undefined) throw new AppError('THREAD_NOT_FOUND', `thread ${threadId} not found`);
    return thread;
  }

  appendMessage(message: NewMessage): Promise<Message> {
    return this.store.appendMessage(message);
  }

  listMessages(ownerId: string, threadId: string): Promise<Message[]> {
    return this.store.listMessages(ownerId, threadId);
  }
}
