import type { LlmMessage, LlmToolCall } from '../llm/llm.types.js';
import type { Message, ToolStep } from '../threads/thread.types.js';

/** What the model may see of a thread: at most this many stored messages, and characters. */
export interface HistoryBudget {
  /** Stored (chat) messages: a user message, or an assistant answer with all its tool calls. */
  readonly maxMessages: number;
  /** Characters of message text, tool-call arguments and tool results together (not the system prompt). */
  readonly maxChars: number;
}

export interface ModelHistoryInput {
  /** The thread's latest messages, oldest first, the new user message last; assistant ones with their `steps`. */
  readonly messages: readonly Pick<Message, 'role' | 'content' | 'steps'>[];
  /** Sent first, whatever the budget. */
  readonly systemPrompt?: string;
  readonly budget: HistoryBudget;
}

/**
 * The conversation a model call starts from: the thread as it happened, in the provider-neutral
 * form. An assistant answer whose run called tools becomes three parts, as the model produced them:
 * the assistant's tool calls, one `tool` message per call with its result (or error, exactly as the
 * model heard it then), and the answer.
 *
 * The budget drops the oldest messages first, a stored message at a time: an answer's tool calls
 * and their results go together (a `tool` message without its call is refused by OpenAI-style
 * APIs). The newest message is always kept. The window then starts at a user message, since some
 * chat templates refuse a conversation that opens with the assistant.
 */
export function toModelHistory(input: ModelHistoryInput): LlmMessage[] {
  const { budget } = input;
  const turns = input.messages.slice(-budget.maxMessages).map(toTurn);
  let chars = 0;
  let first = turns.length;
  while (first > 0) {
    const turn = turns[first - 1];
    if (turn === undefined) break;
    const size = sizeOf(turn);
    if (first < turns.length && chars + size > budget.maxChars) break;
    chars += size;
    first -= 1;
  }
  let window = turns.slice(first);
  const firstUser = window.findIndex((turn) => turn[0]?.role === 'user');
  if (firstUser > 0) window = window.slice(firstUser);
  const system: LlmMessage[] =
    input.systemPrompt === undefined ? [] : [{ role: 'system', content: input.systemPrompt }];
  return [...system, ...window.flat()];
}

/**
 * The text a model hears as a tool's outcome: the result as JSON, or `{"error": {code, message}}`.
 * The agent loop builds its `tool` messages with it too, so the history replays exactly what the
 * model heard when the call happened.
 */
export function toolMessageContent(outcome: Pick<ToolStep, 'result' | 'error'>): string {
  return outcome.error === undefined ? JSON.stringify(outcome.result) : JSON.stringify({ error: outcome.error });
}

/** One stored message as the messages the model saw (or said). */
function toTurn(message: Pick<Message, 'role' | 'content' | 'steps'>): LlmMessage[] {
  if (message.role === 'user') return [{ role: 'user', content: message.content }];
  // A call without an outcome cannot be replayed (its `tool` message would be missing); completed
  // runs have none, but a step can be cut short by a crash between the events and the answer.
  const steps = (message.steps ?? []).filter((step) => step.error !== undefined || step.result !== undefined);
  if (steps.length === 0) return [{ role: 'assistant', content: message.content }];
  const toolCalls: LlmToolCall[] = steps.map((step) => ({
    id: step.callId,
    name: step.tool,
    arguments: toolArguments(step.args),
  }));
  return [
    { role: 'assistant', content: '', toolCalls },
    ...steps.map((step): LlmMessage => ({ role: 'tool', toolCallId: step.callId, content: toolMessageContent(step) })),
    { role: 'assistant', content: message.content },
  ];
}

/** Stored arguments are parsed JSON when the model gave JSON, its raw text otherwise. */
function toolArguments(args: unknown): string {
  if (typeof args === 'string') return args;
  return JSON.stringify(args ?? {});
}

function sizeOf(turn: readonly LlmMessage[]): number {
  let size = 0;
  for (const message of turn) {
    size += message.content.length;
    if (message.role === 'assistant') {
      for (const call of message.toolCalls ?? []) size += call.name.length + call.arguments.length;
    }
  }
  return size;
}
