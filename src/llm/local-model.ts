import type { LlmDelta, LlmRequest } from './llm.types.js';

export interface LocalModelOptions {
  /** Simulated model load time (`LOCAL_LLM_WARMUP_MS`). */
  readonly warmupMs: number;
  /** Delay between streamed tokens (`LOCAL_LLM_TOKEN_DELAY_MS`). */
  readonly tokenDelayMs: number;
}

/**
 * The embedded model: deterministic, offline, instant to install. Its reply quotes the user's
 * last message and is streamed token by token, so the whole streaming path is exercised for real
 * without a network or weights.
 */
export class LocalModel {
  private loaded = false;

  constructor(private readonly options: LocalModelOptions) {}

  async load(signal: AbortSignal): Promise<void> {
    await wait(this.options.warmupMs, signal);
    this.loaded = true;
  }

  async *stream(request: LlmRequest, signal?: AbortSignal): AsyncGenerator<LlmDelta> {
    if (!this.loaded) throw new Error('local model is not loaded');
    for (const text of tokenize(LocalModel.reply(request))) {
      if (this.options.tokenDelayMs > 0) await wait(this.options.tokenDelayMs, signal);
      signal?.throwIfAborted();
      yield { text };
    }
  }

  /** The full reply the model streams for `request`. */
  static reply(request: LlmRequest): string {
    const lastUser = [...request.messages].reverse().find((message) => message.role === 'user');
    const said = lastUser?.content ?? '';
    return `You said: "${said}". I am the embedded local model, so I can only echo it back to you.`;
  }
}

/** Words with their trailing whitespace, so the deltas concatenate back to the exact reply. */
function tokenize(text: string): string[] {
  return text.match(/\s*\S+\s*/gu) ?? [];
}

function wait(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}
