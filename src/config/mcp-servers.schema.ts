import * as z from 'zod';

/** One MCP server of `MCP_SERVERS`, as the rest of the service sees it. */
export type McpServerConfig = {
  /** The key in `MCP_SERVERS`: the prefix of its tools (`<name>__<tool>`) and its dependency `mcp:<name>`. */
  readonly name: string;
  /** Gates readiness (`true`), or leaves the instance ready without its tools while it is down (default). */
  readonly required: boolean;
  /** Every tool of this server needs a person's approval before it runs (passed on as `Tool.requiresApproval`). */
  readonly requireApproval: boolean;
} & (
  | {
      readonly transport: 'stdio';
      readonly command: string;
      readonly args: readonly string[];
      readonly env: Readonly<Record<string, string>>;
      readonly cwd?: string;
    }
  | { readonly transport: 'http'; readonly url: string; readonly headers: Readonly<Record<string, string>> }
);

/** At most this many servers: each one is a process or a connection, and a readiness dependency. */
export const MAX_MCP_SERVERS = 32;

/**
 * Letters, digits, `-` and single `_`s inside: tools are named `<server>__<tool>`, so a server name
 * with `__` or a trailing `_` could give two servers the same tool name (`a` + `_b` and `a_` + `b`).
 * With this rule the first `__` of a tool name always ends its server's name: no two servers can
 * collide. 32 characters at most, so that the tool name still fits OpenAI's 64.
 */
export const MCP_SERVER_NAME = /^[a-zA-Z0-9-]+(?:_[a-zA-Z0-9-]+)*$/u;
const MAX_NAME_LENGTH = 32;

const text = z.string().min(1).max(4096);
const stringMap = z.record(z.string().min(1).max(256), z.string().max(8192));

const serverEntry = z
  .object({
    command: text.optional(),
    args: z.array(z.string().max(4096)).max(100).optional(),
    env: stringMap.optional(),
    cwd: text.optional(),
    url: z.url({ protocol: /^https?$/u, error: 'must be an http(s) URL' }).optional(),
    headers: stringMap.optional(),
    required: z.boolean().default(false),
    requireApproval: z.boolean().default(false),
  })
  .strict()
  .superRefine((entry, context) => {
    if ((entry.command === undefined) === (entry.url === undefined)) {
      context.addIssue({
        code: 'custom',
        message: 'set either "command" (a stdio server) or "url" (a Streamable HTTP server), not both or neither',
      });
      return;
    }
    if (entry.url !== undefined && (entry.args ?? entry.env ?? entry.cwd) !== undefined) {
      context.addIssue({ code: 'custom', message: '"args", "env" and "cwd" are for stdio servers ("command")' });
    }
    if (entry.command !== undefined && entry.headers !== undefined) {
      context.addIssue({ code: 'custom', message: '"headers" are for Streamable HTTP servers ("url")' });
    }
  });

const servers = z
  .record(z.string(), serverEntry)
  .superRefine((record, context) => {
    const names = Object.keys(record);
    if (names.length > MAX_MCP_SERVERS)
      context.addIssue({ code: 'custom', message: `at most ${MAX_MCP_SERVERS} servers` });
    for (const name of names) {
      if (name.length > MAX_NAME_LENGTH || !MCP_SERVER_NAME.test(name)) {
        context.addIssue({
          code: 'custom',
          path: [name],
          message: `server names are 1-${MAX_NAME_LENGTH} letters, digits, - and single _ inside (tools are named <server>__<tool>)`,
        });
      }
    }
  })
  .transform((record): McpServerConfig[] =>
    Object.entries(record).map(([name, entry]) => {
      const common = { name, required: entry.required, requireApproval: entry.requireApproval };
      return entry.url !== undefined
        ? { ...common, transport: 'http', url: entry.url, headers: entry.headers ?? {} }
        : {
            ...common,
            transport: 'stdio',
            command: entry.command ?? '',
            args: entry.args ?? [],
            env: entry.env ?? {},
            ...(entry.cwd === undefined ? {} : { cwd: entry.cwd }),
          };
    }),
  );

/**
 * `MCP_SERVERS`: JSON in the shape MCP clients use, keyed by server name:
 * `{"files": {"command": "node", "args": ["server.mjs"], "env": {…}, "required": true},
 *   "search": {"url": "https://…/mcp", "headers": {…}}}`. Unset: no MCP server.
 */
export const mcpServersVariable = z
  .string()
  .transform((raw, context) => {
    try {
      return JSON.parse(raw) as unknown;
    } catch (error) {
      context.addIssue({
        code: 'custom',
        message: `is not valid JSON (${error instanceof Error ? error.message : String(error)})`,
      });
      return z.NEVER;
    }
  })
  .pipe(z.custom<Record<string, unknown>>(isPlainObject, 'must be a JSON object keyed by server name').pipe(servers))
  .default([]);

function isPlainObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
