import { Inject, Injectable } from '@nestjs/common';
import type { ToolErrorCode } from '../../protocol/error-codes.js';
import type { LlmToolCall, LlmToolSpec } from '../../llm/llm.types.js';
import { untilAborted } from '../../llm/abortable.js';
import { AGENT_TOOLS } from '../agent.constants.js';
import { type Tool, ToolError } from './tool.js';

export type ToolOutcome =
  | { readonly ok: true; readonly args: unknown; readonly result: unknown }
  | { readonly ok: false; readonly args: unknown; readonly error: { code: ToolErrorCode; message: string } };

/**
 * The tools the model may call, and the one way to call them: arguments parsed and validated,
 * a timeout, cancellation, and every failure turned into a coded outcome the model can read.
 */
@Injectable()
export class ToolRegistry {
  private readonly byName: ReadonlyMap<string, Tool>;
  readonly specs: readonly LlmToolSpec[];

  constructor(@Inject(AGENT_TOOLS) tools: readonly Tool[]) {
    this.byName = new Map(tools.map((tool) => [tool.spec.name, tool]));
    if (this.byName.size !== tools.length) throw new Error('two tools share a name');
    this.specs = tools.map((tool) => tool.spec);
  }

  /** Never rejects for a tool's own failure; rejects only when `signal` (the run) aborts. */
  async execute(call: LlmToolCall, timeoutMs: number, signal: AbortSignal): Promise<ToolOutcome> {
    const tool = this.byName.get(call.name);
    const parsed = parseJson(call.arguments);
    if (tool === undefined) {
      return failure(parsed.value, 'UNKNOWN_TOOL', `there is no tool named ${JSON.stringify(call.name.slice(0, 64))}`);
    }
    if (!parsed.ok) return failure(call.arguments, 'INVALID_TOOL_ARGUMENTS', 'arguments are not valid JSON');
    const args = tool.args.safeParse(parsed.value);
    if (!args.success) {
      const issue = args.error.issues[0];
      const where = issue === undefined || issue.path.length === 0 ? 'arguments' : issue.path.join('.');
      return failure(parsed.value, 'INVALID_TOOL_ARGUMENTS', `${where}: ${issue?.message ?? 'invalid'}`);
    }

    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new ToolError('TOOL_TIMEOUT', `timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    timer.unref();
    const both = AbortSignal.any([signal, timeout.signal]);
    try {
      // Raced against the signal so a tool that ignores it cannot hold the run.
      const result = await untilAborted(tool.execute(args.data, both), both);
      return { ok: true, args: args.data, result };
    } catch (error) {
      signal.throwIfAborted();
      if (error instanceof ToolError) return failure(args.data, error.code, error.message);
      const reason: unknown = timeout.signal.aborted ? timeout.signal.reason : error;
      if (reason instanceof ToolError) return failure(args.data, reason.code, reason.message);
      return failure(args.data, 'TOOL_FAILED', reason instanceof Error ? reason.message : String(reason));
    } finally {
      clearTimeout(timer);
    }
  }
}

function failure(args: unknown, code: ToolErrorCode, message: string): ToolOutcome {
  return { ok: false, args, error: { code, message } };
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; value: string } {
  try {
    return { ok: true, value: text.trim() === '' ? {} : (JSON.parse(text) as unknown) };
  } catch {
    return { ok: false, value: text };
  }
}
