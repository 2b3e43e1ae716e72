import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import { McpServers } from '../../mcp/mcp-servers.service.js';
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
 *
 * The set changes: the built-in tools, plus the tools of the MCP servers that are up now. Each
 * model call reads {@link specs} afresh, so the model sees what is available at that moment.
 */
@Injectable()
export class ToolRegistry implements OnModuleDestroy {
  private readonly builtIns: ReadonlyMap<string, Tool>;
  private byName: ReadonlyMap<string, Tool>;
  private currentSpecs: readonly LlmToolSpec[];
  private readonly subscription: Subscription;

  constructor(@Inject(AGENT_TOOLS) tools: readonly Tool[], mcp: McpServers) {
    this.builtIns = new Map(tools.map((tool) => [tool.spec.name, tool]));
    if (this.builtIns.size !== tools.length) throw new Error('two tools share a name');
    // MCP tools are `<server>__<tool>`: a built-in named that way would be shadowed, or shadow.
    for (const name of this.builtIns.keys()) {
      const server = mcp.connections.find((connection) => name.startsWith(`${connection.server.name}__`));
      if (server !== undefined) {
        throw new Error(
          `the built-in tool "${name}" collides with the tools of the MCP server "${server.server.name}" (named ${server.server.name}__<tool>): rename the server in MCP_SERVERS`,
        );
      }
    }
    this.byName = this.builtIns;
    this.currentSpecs = tools.map((tool) => tool.spec);
    this.subscription = mcp.tools$.subscribe((mcpTools) => {
      const byName = new Map(this.builtIns);
      for (const tool of mcpTools) if (!byName.has(tool.spec.name)) byName.set(tool.spec.name, tool);
      this.byName = byName;
      this.currentSpecs = [...byName.values()].map((tool) => tool.spec);
    });
  }

  /** The specs of the tools available now: the built-ins first, then the MCP servers' in their order. */
  get specs(): readonly LlmToolSpec[] {
    return this.currentSpecs;
  }

  onModuleDestroy(): void {
    this.subscription.unsubscribe();
  }

  /** The tool called `name`, if there is one. */
  get(name: string): Tool | undefined {
    return this.byName.get(name);
  }

  /**
   * Never rejects for a tool's own failure; rejects only when `signal` (the run) aborts. `timeoutMs`
   * bounds the call unless the tool has its own (`Tool.timeoutMs`: MCP tools).
   */
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

    const limitMs = tool.timeoutMs ?? timeoutMs;
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new ToolError('TOOL_TIMEOUT', `timed out after ${limitMs} ms`)),
      limitMs,
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
