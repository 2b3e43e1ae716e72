import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod';
import { type Tool, ToolError } from '../agent/tools/tool.js';
import type { McpConnection, McpToolListing } from './mcp-connection.js';

export interface McpToolOptions {
  /** `MCP_TOOL_TIMEOUT_MS`. */
  readonly timeoutMs: number;
  /** `MCP_MAX_RESULT_CHARS`. */
  readonly maxResultChars: number;
}

/** What OpenAI (and most providers) accept as a function name. */
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/u;
const MAX_DESCRIPTION_CHARS = 2_000;
/** Every spec goes to the model on every call: a larger argument schema is refused. */
const MAX_SCHEMA_CHARS = 32_000;
const MAX_ERROR_CHARS = 1_000;

/**
 * The name the model sees: `<server>__<tool>` (two underscores; providers allow only letters,
 * digits, `_` and `-`). Server names never contain `__` nor end with `_`, so the first `__` ends
 * the server's name and two servers can never produce the same name.
 */
export function mcpToolName(server: string, tool: string): string {
  return `${server}__${tool}`;
}

/** The server checks the arguments against its own schema; here they only have to be an object. */
const permissiveArgs = z.record(z.string(), z.unknown());

/**
 * An MCP server's tool as one of the agent's: its listing becomes the spec, a call goes through the
 * connection, and its answer becomes the result the model reads. Returns why not when the listing
 * cannot be offered (a name providers refuse, an oversized schema).
 */
export function toAgentTool(
  connection: McpConnection,
  listing: McpToolListing,
  options: McpToolOptions,
): Tool<Record<string, unknown>> | { readonly skipped: string } {
  const server = connection.server;
  const name = mcpToolName(server.name, listing.name);
  if (!TOOL_NAME.test(name)) {
    return {
      skipped: `"${listing.name.slice(0, 80)}": ${name.length > 64 ? 'the name is over 64 characters with its prefix' : 'the name has characters other than letters, digits, _ and -'}`,
    };
  }
  const parameters = listing.inputSchema as Record<string, unknown>;
  if (JSON.stringify(parameters).length > MAX_SCHEMA_CHARS) {
    return { skipped: `"${listing.name}": its input schema is over ${MAX_SCHEMA_CHARS} characters` };
  }
  const description = (listing.description ?? listing.title ?? listing.annotations?.title ?? '').slice(
    0,
    MAX_DESCRIPTION_CHARS,
  );
  return {
    spec: { name, description, parameters },
    args: permissiveArgs,
    timeoutMs: options.timeoutMs,
    ...(server.requireApproval ? { requiresApproval: true } : {}),
    async execute(args, signal) {
      const result = await connection.call(listing.name, args, options.timeoutMs, signal);
      return toolResult(result, options.maxResultChars);
    },
  };
}

/**
 * What the model reads of an MCP result: the structured content when the tool gives one; else its
 * text (one string when it is all text), binary parts named but left out (the model reads text).
 * A result the tool marks `isError` is `TOOL_FAILED` with its text; one longer than
 * `maxResultChars` as JSON is `TOOL_RESULT_TOO_LARGE`.
 */
export function toolResult(result: CallToolResult, maxResultChars: number): unknown {
  const content = Array.isArray(result.content) ? result.content : [];
  if (result.isError === true) {
    const text = content
      .map((part) => (part.type === 'text' ? part.text : ''))
      .join('\n')
      .trim();
    throw new ToolError('TOOL_FAILED', text === '' ? 'the tool reported an error' : text.slice(0, MAX_ERROR_CHARS));
  }
  const value: unknown =
    result.structuredContent ??
    (content.every((part) => part.type === 'text')
      ? content.map((part) => part.text).join('\n')
      : content.map((part) => {
          switch (part.type) {
            case 'text':
              return { type: 'text', text: part.text };
            case 'image':
            case 'audio':
              return { type: part.type, mimeType: part.mimeType, omitted: `${part.data.length} characters of base64` };
            case 'resource':
              return 'text' in part.resource
                ? { type: 'resource', uri: part.resource.uri, text: part.resource.text }
                : { type: 'resource', uri: part.resource.uri, omitted: 'binary' };
            case 'resource_link':
              return { type: 'resource_link', uri: part.uri, name: part.name };
            default: {
              const exhaustive: never = part;
              return exhaustive;
            }
          }
        }));
  const size = JSON.stringify(value ?? null).length;
  if (size > maxResultChars) {
    throw new ToolError(
      'TOOL_RESULT_TOO_LARGE',
      `the result is ${size} characters, over the limit of ${maxResultChars} (MCP_MAX_RESULT_CHARS)`,
    );
  }
  return value;
}
