import type { Usage } from '../protocol/events.js';

/**
 * The provider-neutral model interface the agent talks to. A request is a conversation plus the
 * tools the model may call; the answer is a stream of chunks: text deltas, reasoning deltas (what
 * reasoning models think before they answer: shown, never part of the answer), complete tool calls
 * (providers that stream tool-call fragments assemble them first), then one `finish` with usage.
 */

export interface LlmToolCall {
  /** The provider's id for the call; the tool's result message quotes it. */
  readonly id: string;
  readonly name: string;
  /** The raw JSON text of the arguments, exactly as the model produced it (may be garbage). */
  readonly arguments: string;
}

export type LlmMessage =
  | { readonly role: 'system'; readonly content: string }
  | { readonly role: 'user'; readonly content: string }
  | { readonly role: 'assistant'; readonly content: string; readonly toolCalls?: readonly LlmToolCall[] }
  | { readonly role: 'tool'; readonly toolCallId: string; readonly content: string };

/** A tool as the model sees it: name, description and a JSON Schema of its arguments. */
export interface LlmToolSpec {
  readonly name: string;
  readonly description: string;
  readonly parameters: Readonly<Record<string, unknown>>;
}

export interface LlmRequest {
  readonly messages: readonly LlmMessage[];
  readonly tools?: readonly LlmToolSpec[];
}

export type LlmChunk =
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'reasoning'; readonly text: string }
  | { readonly type: 'tool_call'; readonly call: LlmToolCall }
  | { readonly type: 'finish'; readonly usage: Usage };

/**
 * One model backend. `stream` must stop promptly when `signal` aborts, and report failures of
 * the backend itself (unreachable, rate limited after retries, 5xx, stalled) as `LlmUnavailableError`.
 */
export interface LlmProvider {
  /** Shown in `/health/ready` and the logs. */
  readonly name: string;
  /**
   * A remote provider is reached over the network: its reachability never gates readiness. An
   * embedded one is proven with a one-token self-check before the agent reports ready.
   */
  readonly remote: boolean;
  /** Prepares the provider (load weights, build the client). Gates readiness; must not need the network. */
  init(signal: AbortSignal): Promise<void>;
  stream(request: LlmRequest, signal: AbortSignal): AsyncGenerator<LlmChunk>;
}
