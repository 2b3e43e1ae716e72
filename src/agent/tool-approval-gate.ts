import { Injectable } from '@nestjs/common';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import type { LlmToolCall } from '../llm/llm.types.js';
import type { LiveRun } from './live-run.js';
import type { ApprovalOutcome } from './run-approvals.js';
import type { ToolOutcome } from './tools/tool.registry.js';
import { ToolRegistry } from './tools/tool.registry.js';

/** A call that will not run: what the loop reports as its `tool_failed` and tells the model. */
export type ToolRefusal = Extract<ToolOutcome, { readonly ok: false }>;

/**
 * Whether an entry of `AGENT_APPROVAL_TOOLS` covers the tool `name`: the name itself,
 * `<server>__*` for every tool of that MCP server (its tools are named `<server>__<tool>`), `*` for all.
 */
export function approvalListCovers(patterns: readonly string[], name: string): boolean {
  return patterns.some(
    (pattern) =>
      pattern === '*' || pattern === name || (pattern.endsWith('__*') && name.startsWith(pattern.slice(0, -1))),
  );
}

/**
 * Between a tool call and its execution: a call of a tool listed in `AGENT_APPROVAL_TOOLS`, or
 * marked `requiresApproval`, is announced with `tool_approval_required` and waits for a person's
 * `tool_approval` (see `ToolApprovalAnswers`) for up to `AGENT_APPROVAL_TIMEOUT_MS`. Refused or
 * unanswered, it does not run: it ends as `tool_failed` `TOOL_REFUSED`, and the model hears why.
 */
@Injectable()
export class ToolApprovalGate {
  private readonly patterns: readonly string[];
  private readonly timeoutMs: number;

  constructor(
    @InjectConfig() config: AppConfig,
    private readonly tools: ToolRegistry,
  ) {
    this.patterns = config.agent.approvalTools;
    this.timeoutMs = config.agent.approvalTimeoutMs;
  }

  /** Calls of `name` wait for a person. A tool that does not exist never does (it fails `UNKNOWN_TOOL`). */
  requires(name: string): boolean {
    const tool = this.tools.get(name);
    if (tool === undefined) return false;
    return tool.requiresApproval === true || approvalListCovers(this.patterns, name);
  }

  /**
   * Undefined when `call` may run now (it needs no approval, or a person approved it); otherwise the
   * refusal. Rejects only when `signal` (the run) aborts while it waits.
   */
  async check(run: LiveRun, call: LlmToolCall, args: unknown, signal: AbortSignal): Promise<ToolRefusal | undefined> {
    if (!this.requires(call.name)) return undefined;
    run.emit('tool_approval_required', { toolCallId: call.id, name: call.name, arguments: args });
    const outcome = await run.approvals.wait(call.id, this.timeoutMs, signal);
    if (outcome.kind === 'approved') return undefined;
    return { ok: false, args, error: { code: 'TOOL_REFUSED', message: refusalMessage(outcome) } };
  }
}

function refusalMessage(outcome: Exclude<ApprovalOutcome, { readonly kind: 'approved' }>): string {
  switch (outcome.kind) {
    case 'refused':
      return outcome.reason === undefined
        ? 'the user refused this call; it was not run'
        : `the user refused this call; it was not run. Reason: ${outcome.reason}`;
    case 'timed_out':
      return `nobody approved this call within ${outcome.afterMs} ms (AGENT_APPROVAL_TIMEOUT_MS); it timed out and was not run`;
    default: {
      const exhaustive: never = outcome;
      return exhaustive;
    }
  }
}
