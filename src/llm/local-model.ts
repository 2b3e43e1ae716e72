import { setImmediate as nextTurn } from 'node:timers/promises';
import { findArithmetic } from './arithmetic-scan.js';
import type { LlmChunk, LlmMessage, LlmProvider, LlmRequest, LlmToolCall } from './llm.types.js';

export interface LocalModelOptions {
  /** Simulated model load time (`LOCAL_LLM_WARMUP_MS`). */
  readonly warmupMs: number;
  /** Delay between streamed tokens (`LOCAL_LLM_TOKEN_DELAY_MS`). */
  readonly tokenDelayMs: number;
}

/**
 * Without a token delay a whole reply would be streamed in one turn of the event loop (an async
 * generator's `yield` is a promise job, not a turn, and each token's frames are sent in it): after
 * this long it lets I/O through. By time, not by count: what a token costs depends on how many
 * connections follow the run. (Yielding after every few tokens would also split the frames of a
 * turn, gathered into one write, into many: it halved the stream benchmark.)
 */
const YIELD_AFTER_MS = 4;
const ASKS_FOR_TIME = /\b(?:time|date|today|clock)\b/iu;
/** `/tool <name> [JSON arguments]`: a call of any offered tool by name (MCP tools, say), for trying them out. */
const NAMED_TOOL_CALL = /^\/tool\s+([A-Za-z0-9_-]{1,64})(?:\s+([\s\S]*))?$/u;

/**
 * The embedded model: deterministic, offline, instant to install. It behaves like a small
 * tool-using model so the whole agent path (tool calls, tool results, streamed answer) runs for
 * real without a network or weights:
 * - a message containing arithmetic makes it call `calculator`, and `time`/`date` `current_time`;
 * - a message `/tool <name> [JSON arguments]` makes it call that tool, when it is offered (how to
 *   try an MCP server's tool without a real model: `/tool files__read {"path": "notes.txt"}`);
 * - given tool results, it answers with them;
 * - otherwise it quotes the user's message back, token by token.
 */
export class LocalModel implements LlmProvider {
  readonly name = 'local';
  readonly remote = false;
  private loaded = false;
  private calls = 0;

  constructor(private readonly options: LocalModelOptions) {}

  async init(signal: AbortSignal): Promise<void> {
    await wait(this.options.warmupMs, signal);
    this.loaded = true;
  }

  async *stream(request: LlmRequest, signal: AbortSignal): AsyncGenerator<LlmChunk> {
    if (!this.loaded) throw new Error('local model is not loaded');
    signal.throwIfAborted();
    const toolCall = this.toolCallFor(request);
    if (toolCall !== undefined) {
      yield { type: 'tool_call', call: toolCall };
    } else {
      let yieldedAt = performance.now();
      for (const text of tokenize(LocalModel.reply(request))) {
        if (this.options.tokenDelayMs > 0) {
          await wait(this.options.tokenDelayMs, signal);
        } else if (performance.now() - yieldedAt >= YIELD_AFTER_MS) {
          await nextTurn();
          yieldedAt = performance.now();
        }
        signal.throwIfAborted();
        yield { type: 'text', text };
      }
    }
    yield {
      type: 'finish',
      usage: {
        promptTokens: request.messages.reduce((sum, message) => sum + tokenize(message.content).length, 0),
        completionTokens: toolCall === undefined ? tokenize(LocalModel.reply(request)).length : 1,
      },
    };
  }

  /** The text answer the model streams for `request` (when it calls no tool). */
  static reply(request: LlmRequest): string {
    const last = request.messages.at(-1);
    if (last?.role === 'tool') return answerFromToolResults(request.messages);
    const lastUser = [...request.messages].reverse().find((message) => message.role === 'user');
    const said = lastUser?.content ?? '';
    return `You said: "${said}". I am the embedded local model, so I can only echo it back to you.`;
  }

  private toolCallFor(request: LlmRequest): LlmToolCall | undefined {
    const last = request.messages.at(-1);
    if (last?.role !== 'user') return undefined;
    const offered = new Set((request.tools ?? []).map((tool) => tool.name));
    this.calls += 1;
    const named = NAMED_TOOL_CALL.exec(last.content.trim());
    if (named?.[1] !== undefined && offered.has(named[1])) {
      return { id: `call_local_${this.calls}`, name: named[1], arguments: named[2]?.trim() ?? '{}' };
    }
    const expression = findArithmetic(last.content);
    if (expression !== undefined && offered.has('calculator')) {
      return { id: `call_local_${this.calls}`, name: 'calculator', arguments: JSON.stringify({ expression }) };
    }
    if (ASKS_FOR_TIME.test(last.content) && offered.has('current_time')) {
      return { id: `call_local_${this.calls}`, name: 'current_time', arguments: '{}' };
    }
    return undefined;
  }
}

function answerFromToolResults(messages: readonly LlmMessage[]): string {
  const results: string[] = [];
  for (let index = messages.length - 1; index >= 0; index -= 1) {
    const message = messages[index];
    if (message?.role !== 'tool') break;
    results.unshift(describeToolResult(message.content));
  }
  return results.join(' ');
}

function describeToolResult(content: string): string {
  try {
    const parsed = JSON.parse(content) as Record<string, unknown>;
    if (typeof parsed.error === 'object' && parsed.error !== null) {
      return `The tool failed: ${String((parsed.error as { message?: unknown }).message)}.`;
    }
    if (typeof parsed.expression === 'string' && typeof parsed.result === 'number') {
      return `${parsed.expression} = ${parsed.result}.`;
    }
    if (typeof parsed.local === 'string') return `It is ${parsed.local}.`;
  } catch {
    // Fall through: quote the raw result.
  }
  return `The tool returned ${content}.`;
}

/**
 * Words with their trailing whitespace (the first also with the leading one), so the deltas
 * concatenate back to the exact text. Each match starts at a word, so the expression never
 * backtracks over whitespace (`\s*\S+\s*` did, once per character of a run of blanks with no word
 * after it).
 */
export function tokenize(text: string): string[] {
  const tokens = text.match(/\S+\s*/gu);
  if (tokens === null) return [];
  const leading = text.length - text.trimStart().length;
  if (leading > 0) tokens[0] = `${text.slice(0, leading)}${tokens[0] ?? ''}`;
  return tokens;
}

function wait(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}
