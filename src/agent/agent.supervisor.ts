import { randomUUID } from 'node:crypto';
import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { Observable } from 'rxjs';
import type { AppDependency } from '../app.dependencies.js';
import { LlmService } from '../llm/llm.service.js';
import type { AgentRequest, ChatMessage, RunEventBase, RunEvents, RunFrame } from '../protocol/events.js';
import { ReadinessService } from '../readiness/readiness.service.js';
import { ThreadsService } from '../threads/threads.service.js';
import type { Message } from '../threads/thread.types.js';

const DEPENDENCY: AppDependency = 'agent';

type RunEventData<E extends keyof RunEvents> = Omit<RunEvents[E], keyof RunEventBase>;

/**
 * Turns an `agent_request` into a run: records the user's message, streams the model's reply as
 * `agent_message_delta`s and records the answer. Each subscription is one run.
 */
@Injectable()
export class AgentSupervisor implements OnApplicationBootstrap {
  constructor(
    private readonly llm: LlmService,
    private readonly threads: ThreadsService,
    private readonly readiness: ReadinessService,
  ) {}

  onApplicationBootstrap(): void {
    // Declared as depending on llm and threads, so this starts only once both are ready.
    this.readiness.track(DEPENDENCY, (signal) => this.selfCheck(signal));
  }

  /** The events of one run, in order; unsubscribing aborts the model stream. */
  run(userId: string, request: AgentRequest): Observable<RunFrame> {
    return new Observable<RunFrame>((subscriber) => {
      const abort = new AbortController();
      const runId = randomUUID();
      let seq = 0;
      const emit = <E extends keyof RunEvents>(event: E, data: RunEventData<E>): void => {
        seq += 1;
        const payload = { ...data, runId, seq, requestId: request.requestId };
        subscriber.next({ event, data: payload } as RunFrame);
      };

      const execute = async (): Promise<void> => {
        const thread = await this.threads.resolveThread(userId, request.threadId, request.message);
        await this.threads.appendMessage({
          threadId: thread.id,
          role: 'user',
          content: request.message,
          runId,
        });
        emit('agent_started', { threadId: thread.id });
        emit('agent_thinking', {});
        const history = await this.threads.listMessages(userId, thread.id);
        let reply = '';
        for await (const delta of this.llm.stream(
          { messages: history.map(({ role, content }) => ({ role, content })) },
          abort.signal,
        )) {
          reply += delta.text;
          emit('agent_message_delta', { text: delta.text });
        }
        const answer = await this.threads.appendMessage({
          threadId: thread.id,
          role: 'assistant',
          content: reply,
          runId,
        });
        emit('agent_completed', { threadId: thread.id, message: toChatMessage(answer) });
        subscriber.complete();
      };
      execute().catch((error: unknown) => {
        if (!abort.signal.aborted) subscriber.error(error);
      });
      return () => abort.abort();
    });
  }

  /** Proves the model answers before the agent reports ready: one token, then stop. */
  private async selfCheck(signal: AbortSignal): Promise<void> {
    const stream = this.llm.stream({ messages: [{ role: 'user', content: 'self-check' }] }, signal);
    const first = await stream.next();
    await stream.return(undefined);
    if (first.done === true) throw new Error('the model returned an empty reply to the self-check');
  }
}

function toChatMessage(message: Message): ChatMessage {
  return {
    id: message.id,
    threadId: message.threadId,
    role: message.role,
    content: message.content,
    createdAt: message.createdAt.toISOString(),
  };
}
