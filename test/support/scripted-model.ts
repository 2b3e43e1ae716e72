import type { LlmChunk, LlmProvider, LlmRequest, LlmToolCall } from '../../src/llm/llm.types.js';
import { type Deferred, deferred } from './deferred.js';

/**
 * One call to the model, driven by the test: nothing is streamed until the test says so, so a test
 * can act (cancel, disconnect, resume, restart) at an exact point of a run without sleeping.
 */
export class ScriptedCall {
  private readonly queue: Array<LlmChunk | { type: 'fail'; error: Error } | { type: 'end' }> = [];
  private wake = deferred();
  /** Resolves when the run aborts this call (cancel, timeout, shutdown). */
  readonly aborted = deferred<unknown>();

  constructor(
    readonly request: LlmRequest,
    readonly signal: AbortSignal,
  ) {
    signal.addEventListener('abort', () => this.aborted.resolve(signal.reason), { once: true });
  }

  text(...parts: string[]): this {
    for (const text of parts) this.push({ type: 'text', text });
    return this;
  }

  /** Reasoning deltas (what a reasoning model streams before it answers). */
  reasoning(...parts: string[]): this {
    for (const text of parts) this.push({ type: 'reasoning', text });
    return this;
  }

  toolCall(call: LlmToolCall): this {
    return this.push({ type: 'tool_call', call });
  }

  /** Ends the reply with usage. */
  finish(usage = { promptTokens: 3, completionTokens: 5 }): this {
    this.push({ type: 'finish', usage });
    return this.push({ type: 'end' });
  }

  fail(error: Error): this {
    return this.push({ type: 'fail', error });
  }

  async *stream(): AsyncGenerator<LlmChunk> {
    for (;;) {
      const next = this.queue.shift();
      if (next === undefined) {
        await Promise.race([this.wake.promise, this.aborted.promise]);
        this.signal.throwIfAborted();
        continue;
      }
      if (next.type === 'end') return;
      if (next.type === 'fail') throw next.error;
      yield next;
    }
  }

  private push(item: (typeof this.queue)[number]): this {
    this.queue.push(item);
    const woken = this.wake;
    this.wake = deferred();
    woken.resolve();
    return this;
  }
}

/** An {@link LlmProvider} whose every call is a {@link ScriptedCall} the test takes with {@link nextCall}. */
export class ScriptedModel implements LlmProvider {
  readonly name = 'scripted';
  readonly remote = true;
  readonly calls: ScriptedCall[] = [];
  private waiting: Array<Deferred<ScriptedCall>> = [];
  private taken = 0;

  init(): Promise<void> {
    return Promise.resolve();
  }

  stream(request: LlmRequest, signal: AbortSignal): AsyncGenerator<LlmChunk> {
    const call = new ScriptedCall(request, signal);
    this.calls.push(call);
    this.waiting.shift()?.resolve(call);
    return call.stream();
  }

  /** The next call the agent makes (already made, or still to come), in order. */
  nextCall(): Promise<ScriptedCall> {
    const index = this.taken;
    this.taken += 1;
    const existing = this.calls[index];
    if (existing !== undefined) return Promise.resolve(existing);
    const next = deferred<ScriptedCall>();
    this.waiting.push(next);
    return next.promise;
  }
}
