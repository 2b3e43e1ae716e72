import { stepLimitReached } from '../errors/client-errors.js';
import type { LlmMessage, LlmToolCall } from '../llm/llm.types.js';
import type { LlmService } from '../llm/llm.service.js';
import type { Usage } from '../protocol/events.js';
import type { LiveRun } from './live-run.js';
import { toolMessageContent } from './model-history.js';
import type { ToolApprovalGate } from './tool-approval-gate.js';
import type { ToolRegistry } from './tools/tool.registry.js';

export interface AgentLoopInput {
  readonly run: LiveRun;
  readonly llm: LlmService;
  readonly tools: ToolRegistry;
  readonly history: readonly LlmMessage[];
  readonly maxSteps: number;
  readonly toolTimeoutMs: number;
  /** Calls that need a person's approval wait here (and, refused, do not run). */
  readonly approvals: ToolApprovalGate;
  readonly signal: AbortSignal;
}

export interface AgentAnswer {
  /** Every text delta of every step, concatenated: exactly what the client was streamed. */
  readonly text: string;
  readonly usage: Usage;
}

/**
 * The agent's reasoning loop: call the model; if it asks for tools, run them (in order, each with
 * `tool_executing` then `tool_completed` or `tool_failed`), feed the results back and call it
 * again, up to `maxSteps` model calls. A failing tool never ends the run: the model hears why.
 * A call that needs approval is first announced with `tool_approval_required` and waits for a
 * person; refused (or unanswered), it ends as `tool_failed` `TOOL_REFUSED` without running.
 */
export async function runAgentLoop(input: AgentLoopInput): Promise<AgentAnswer> {
  const { run, llm, tools, signal } = input;
  const messages: LlmMessage[] = [...input.history];
  let text = '';
  let usage: Usage = { promptTokens: 0, completionTokens: 0 };

  for (let step = 1; step <= input.maxSteps; step += 1) {
    run.emit('agent_thinking', { step });
    let stepText = '';
    const calls: LlmToolCall[] = [];
    for await (const chunk of llm.stream({ messages, tools: tools.specs }, signal)) {
      switch (chunk.type) {
        case 'text':
          stepText += chunk.text;
          run.emitDelta(chunk.text);
          break;
        case 'reasoning':
          // Shown as it arrives, never part of the answer (nor of what later model calls see).
          run.emit('agent_thinking', { step, text: chunk.text });
          break;
        case 'tool_call':
          calls.push(chunk.call);
          break;
        case 'finish':
          usage = {
            promptTokens: usage.promptTokens + chunk.usage.promptTokens,
            completionTokens: usage.completionTokens + chunk.usage.completionTokens,
          };
          break;
        default: {
          const exhaustive: never = chunk;
          return exhaustive;
        }
      }
    }
    text += stepText;
    if (calls.length === 0) return { text, usage };

    messages.push({ role: 'assistant', content: stepText, toolCalls: calls });
    for (const call of calls) {
      const refused = await input.approvals.check(run, call, displayArgs(call.arguments), signal);
      if (refused === undefined) {
        run.emit('tool_executing', { callId: call.id, tool: call.name, args: displayArgs(call.arguments) });
      }
      const outcome = refused ?? (await tools.execute(call, input.toolTimeoutMs, signal));
      if (outcome.ok) {
        run.emit('tool_completed', { callId: call.id, tool: call.name, result: outcome.result });
        messages.push({ role: 'tool', toolCallId: call.id, content: toolMessageContent({ result: outcome.result }) });
      } else {
        run.emit('tool_failed', { callId: call.id, tool: call.name, error: outcome.error });
        messages.push({ role: 'tool', toolCallId: call.id, content: toolMessageContent({ error: outcome.error }) });
      }
    }
  }
  throw stepLimitReached(input.maxSteps);
}

/** The arguments as the client should see them: parsed when they are JSON, the raw text otherwise. */
function displayArgs(raw: string): unknown {
  try {
    return raw.trim() === '' ? {} : (JSON.parse(raw) as unknown);
  } catch {
    return raw;
  }
}
