import { randomUUID } from 'node:crypto';
import type OpenAI from 'openai';
import type * as OpenAiSdk from 'openai';
import { untilAborted } from './abortable.js';
import { LlmUnavailableError } from './llm.errors.js';
import type { LlmChunk, LlmMessage, LlmProvider, LlmRequest, LlmToolCall, LlmToolSpec } from './llm.types.js';
import type { Usage } from '../protocol/events.js';

export interface OpenAiProviderOptions {
  /** Base URL of an OpenAI-compatible API, including the version path (`https://api.openai.com/v1`). */
  readonly baseUrl: string;
  /** Sent as the bearer token; never appears in error messages. Unset: no `Authorization` header at all. */
  readonly apiKey?: string;
  /** Model name passed with every request (`gpt-4o-mini`, or whatever the endpoint serves). */
  readonly model: string;
  /**
   * Both the SDK's per-attempt deadline for the response headers and, once the stream is open,
   * the longest silence allowed between two chunks.
   */
  readonly timeoutMs: number;
  /** Retries the SDK makes on connection errors, 408, 409, 429 and 5xx before the stream starts. */
  readonly maxRetries: number;
  /** `temperature` of every request; unset: not sent (the server's default). */
  readonly temperature?: number;
  /** `max_tokens` of every request; unset: not sent (the server's default). */
  readonly maxTokens?: number;
}

type ChunkStream = AsyncIterable<OpenAI.ChatCompletionChunk>;
type Sdk = typeof OpenAiSdk;

/** Any OpenAI Chat Completions endpoint (OpenAI itself, vLLM, llama.cpp, Ollama, …), streamed. */
export class OpenAiProvider implements LlmProvider {
  readonly name = 'openai';
  readonly remote = true;
  private client: OpenAI | undefined;
  private sdk: Sdk | undefined;

  constructor(private readonly options: OpenAiProviderOptions) {}

  async init(_signal: AbortSignal): Promise<void> {
    // Loaded here, after the port is open, rather than at import: the SDK costs a quarter of a
    // second of start-up that the local default does not need.
    this.sdk = await import('openai');
    const { baseUrl, apiKey, timeoutMs, maxRetries } = this.options;
    this.client = new this.sdk.default({
      baseURL: baseUrl,
      timeout: timeoutMs,
      maxRetries,
      // Without a key the SDK would read OPENAI_API_KEY from the environment (nothing but the config
      // may), or refuse to start. A placeholder satisfies it, and a null default header removes the
      // `Authorization` it would build: local servers (Ollama, llama.cpp) get none at all.
      ...(apiKey === undefined ? { apiKey: 'no-key', defaultHeaders: { Authorization: null } } : { apiKey }),
    });
  }

  async *stream(request: LlmRequest, signal: AbortSignal): AsyncGenerator<LlmChunk> {
    if (!this.client) throw new Error('OpenAiProvider.stream() called before init()');
    signal.throwIfAborted();
    const idle = new AbortController();
    const calls = new ToolCallAssembler();
    let usage: Usage = { promptTokens: 0, completionTokens: 0 };
    const { temperature, maxTokens } = this.options;
    const params: OpenAI.ChatCompletionCreateParamsStreaming = {
      model: this.options.model,
      messages: request.messages.map(toOpenAiMessage),
      tools: request.tools?.length ? request.tools.map(toOpenAiTool) : undefined,
      stream: true,
      stream_options: { include_usage: true },
      ...(temperature === undefined ? {} : { temperature }),
      // `max_tokens`, not OpenAI's newer `max_completion_tokens`: the one every compatible server reads.
      ...(maxTokens === undefined ? {} : { max_tokens: maxTokens }),
    };
    try {
      const pending = this.client.chat.completions.create(params, { signal: AbortSignal.any([signal, idle.signal]) });
      // The SDK sleeps between retries without watching the signal, for as long as the server's
      // `retry-after` asks (it sets no cap), so a caller's abort must not wait for that sleep.
      const stream = await untilAborted(pending, signal);
      for await (const chunk of this.failWhenIdle(stream, idle)) {
        if (chunk.usage) {
          usage = { promptTokens: chunk.usage.prompt_tokens, completionTokens: chunk.usage.completion_tokens };
        }
        for (const choice of chunk.choices) {
          const reasoning = reasoningOf(choice.delta);
          if (reasoning) yield { type: 'reasoning', text: reasoning };
          if (choice.delta.content) yield { type: 'text', text: choice.delta.content };
          for (const fragment of choice.delta.tool_calls ?? []) calls.add(fragment);
          if (choice.finish_reason) yield* calls.flush();
        }
      }
      // The SDK ends the iteration quietly when its request is aborted, so an abort shows up here.
      signal.throwIfAborted();
      idle.signal.throwIfAborted();
    } catch (error) {
      signal.throwIfAborted();
      idle.signal.throwIfAborted();
      throw this.unavailable(error);
    }
    yield* calls.flush();
    yield { type: 'finish', usage };
  }

  /**
   * The SDK's timeout stops at the response headers; after that a silent server would hold the
   * run forever. The clock only runs while we wait for the server, not while the consumer works.
   */
  private async *failWhenIdle(stream: ChunkStream, idle: AbortController): ChunkStream {
    const { timeoutMs } = this.options;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      timer = setTimeout(() => {
        idle.abort(new LlmUnavailableError(`LLM stream stalled: no data for ${timeoutMs} ms`));
      }, timeoutMs).unref();
    };
    try {
      arm();
      for await (const chunk of stream) {
        clearTimeout(timer);
        yield chunk;
        arm();
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private unavailable(error: unknown): LlmUnavailableError {
    return new LlmUnavailableError(describeFailure(error, this.options, this.sdk), {
      cause: error,
      misconfigured: isMisconfiguration(error, this.sdk),
    });
  }
}

/** Streamed tool calls arrive as fragments keyed by `index`: id and name first, arguments in pieces. */
class ToolCallAssembler {
  private pending = new Map<number, { id: string; name: string; arguments: string }>();

  add(fragment: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall): void {
    const call = this.pending.get(fragment.index) ?? { id: '', name: '', arguments: '' };
    call.id ||= fragment.id ?? '';
    call.name ||= fragment.function?.name ?? '';
    call.arguments += fragment.function?.arguments ?? '';
    this.pending.set(fragment.index, call);
  }

  *flush(): Generator<LlmChunk> {
    const calls = [...this.pending.entries()].sort(([a], [b]) => a - b);
    this.pending.clear();
    for (const [, call] of calls) {
      // Some compatible servers omit ids; the tool result message still needs one to quote.
      const complete: LlmToolCall = { ...call, id: call.id || `call_${randomUUID()}` };
      yield { type: 'tool_call', call: complete };
    }
  }
}

function toOpenAiMessage(message: LlmMessage): OpenAI.ChatCompletionMessageParam {
  switch (message.role) {
    case 'system':
    case 'user':
      return { role: message.role, content: message.content };
    case 'assistant':
      if (!message.toolCalls?.length) return { role: 'assistant', content: message.content };
      return {
        role: 'assistant',
        // OpenAI itself sends null content beside tool calls; some compatible servers reject ''.
        content: message.content || null,
        tool_calls: message.toolCalls.map((call) => ({
          id: call.id,
          type: 'function',
          function: { name: call.name, arguments: call.arguments },
        })),
      };
    case 'tool':
      return { role: 'tool', tool_call_id: message.toolCallId, content: message.content };
    default: {
      const _exhaustive: never = message;
      throw new Error(`unknown message role in ${JSON.stringify(_exhaustive)}`);
    }
  }
}

/**
 * The reasoning text of a delta: `reasoning_content` (vLLM, llama.cpp, DeepSeek) or `reasoning`
 * (Ollama, OpenRouter). Not in OpenAI's own types: its API does not stream reasoning.
 */
function reasoningOf(delta: OpenAI.ChatCompletionChunk.Choice.Delta): string | undefined {
  const { reasoning_content: content, reasoning } = delta as { reasoning_content?: unknown; reasoning?: unknown };
  if (typeof content === 'string' && content !== '') return content;
  return typeof reasoning === 'string' && reasoning !== '' ? reasoning : undefined;
}

function toOpenAiTool(tool: LlmToolSpec): OpenAI.ChatCompletionTool {
  return {
    type: 'function',
    function: { name: tool.name, description: tool.description, parameters: { ...tool.parameters } },
  };
}

function describeFailure(error: unknown, { apiKey, timeoutMs }: OpenAiProviderOptions, sdk: Sdk | undefined): string {
  const message = errorLike(error)?.message ?? String(error);
  // Error bodies come from the server, and some echo the credential they refused. Keys too short
  // to be secret ("none", "ollama") are left alone rather than mangling the message.
  const detail = apiKey !== undefined && apiKey.length >= 8 ? message.replaceAll(apiKey, '***') : message;
  if (sdk === undefined) return `LLM client failed: ${detail}`;
  const { APIConnectionError, APIConnectionTimeoutError, APIError } = sdk;
  if (error instanceof APIConnectionTimeoutError) return `LLM endpoint did not answer within ${timeoutMs} ms`;
  if (error instanceof APIConnectionError) return `LLM endpoint unreachable: ${detail}${describeRootCause(error)}`;
  if (error instanceof APIError) {
    const status = error.status as number | undefined;
    // An SSE `data: {"error": …}` line becomes an APIError without a status.
    if (status === undefined) return `LLM stream failed: ${detail}`;
    if (status === 429) return `LLM endpoint rate limited after retries: ${detail}`;
    if (status >= 500 || status === 408 || status === 409) return `LLM endpoint failed after retries: ${detail}`;
    return `LLM endpoint rejected the request: ${detail} (a configuration problem: check the API key, model and base URL)`;
  }
  // undici's "terminated" when the connection drops mid-body, or a malformed SSE line.
  return `LLM stream broke off: ${detail}${describeRootCause(error)}`;
}

/** 401, 403, 404: the endpoint refuses the key, the model or the path; no retry can fix that. */
const MISCONFIGURATION_STATUSES = new Set([401, 403, 404]);

function isMisconfiguration(error: unknown, sdk: Sdk | undefined): boolean {
  if (sdk === undefined || !(error instanceof sdk.APIError)) return false;
  const status = error.status as number | undefined;
  return status !== undefined && MISCONFIGURATION_STATUSES.has(status);
}

/**
 * undici hides the useful part ("connect ECONNREFUSED …", "other side closed") at the end of the
 * cause chain. Duck-typed: those errors may come from another realm (Jest's VM modules).
 */
function describeRootCause(error: unknown): string {
  let root = errorLike(error);
  while (root && errorLike(root.cause)) root = errorLike(root.cause);
  if (!root || root === error) return '';
  return ` (${root.message || (root.code ?? 'unknown cause')})`;
}

function errorLike(value: unknown): { message: string; code?: string; cause?: unknown } | undefined {
  if (typeof value !== 'object' || value === null || !('message' in value)) return undefined;
  return value as { message: string; code?: string; cause?: unknown };
}
