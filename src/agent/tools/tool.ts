import * as z from 'zod';
import type { LlmToolSpec } from '../../llm/llm.types.js';
import type { ToolErrorCode } from '../../protocol/error-codes.js';

/**
 * A tool the agent may call: built in, or from an MCP server (`src/mcp/mcp-tool.ts`). Arguments
 * arrive as JSON text from the model and are validated by `args` before `execute` sees them; `execute` must stop when `signal` aborts
 * (the run was cancelled or the tool's timeout passed).
 */
export interface Tool<Args = unknown, Result = unknown> {
  readonly spec: LlmToolSpec;
  readonly args: z.ZodType<Args>;
  execute(args: Args, signal: AbortSignal): Promise<Result>;
  /** A person must approve each call before it runs (MCP tools: their server's `requireApproval`). */
  readonly requiresApproval?: boolean;
  /** This tool's per-call timeout, instead of the caller's (MCP tools: `MCP_TOOL_TIMEOUT_MS`). */
  readonly timeoutMs?: number;
}

/**
 * The spec the model sees, its arguments' JSON Schema generated from the same zod schema that
 * validates them: one definition, so the two cannot drift. (Refinements, such as "a known time
 * zone", have no JSON Schema form: the description says them.)
 */
export function toolSpec(name: string, description: string, args: z.ZodType): LlmToolSpec {
  const { $schema: _dialect, ...parameters } = z.toJSONSchema(args, { unrepresentable: 'any' });
  return { name, description, parameters };
}

/** A tool failed in a way the model should hear about; `code` is stable. */
export class ToolError extends Error {
  constructor(
    readonly code: ToolErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ToolError';
  }
}
