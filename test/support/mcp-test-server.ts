import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { McpServer, type RegisteredTool } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import * as z from 'zod';

/**
 * An MCP server for the tests, written with the official SDK. Its tools:
 * - `echo {text}`: answers `echo: <text>`;
 * - `slow {ms}`: answers after `ms` milliseconds (or when the call is cancelled);
 * - `big {chars}`: answers `chars` characters of text;
 * - `fail {}`: a result marked `isError`;
 * - `pid {}`: the server process's id (to tell a restarted stdio server from the first);
 * - `exit {}`: ends the process in the middle of the call (stdio: a server that dies mid-run);
 * - `add_tools {names}`: registers a tool per name (each answers `<name> was added at run time`),
 *   the SDK sending `notifications/tools/list_changed` after each;
 * - `remove_tool {name}`: removes a tool added so, with the same notification;
 * - `tool_lists {}`: how many `tools/list` requests this server has received.
 *
 * Tools added or removed last as long as the server: the stdio process (the HTTP server is
 * stateless, a fresh server per request, so there they are forgotten at once).
 *
 * Run it as a stdio server with `node --import tsx test/support/mcp-test-server.ts`, or serve it
 * over Streamable HTTP in-process with {@link startMcpHttpServer}.
 */
export function createTestMcpServer(): McpServer {
  const server = new McpServer({ name: 'agent-gateway-test', version: '1.0.0' });
  server.registerTool(
    'echo',
    { description: 'Echoes the text back.', inputSchema: { text: z.string() } },
    ({ text }) => ({ content: [{ type: 'text', text: `echo: ${text}` }] }),
  );
  server.registerTool(
    'slow',
    { description: 'Answers after ms milliseconds.', inputSchema: { ms: z.number().int().min(0) } },
    async ({ ms }, extra) => {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        extra.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      return { content: [{ type: 'text', text: `slept ${ms} ms` }] };
    },
  );
  server.registerTool(
    'big',
    { description: 'Answers chars characters.', inputSchema: { chars: z.number().int().min(0).max(10_000_000) } },
    ({ chars }) => ({ content: [{ type: 'text', text: 'x'.repeat(chars) }] }),
  );
  server.registerTool('fail', { description: 'Always fails.' }, () => ({
    isError: true,
    content: [{ type: 'text', text: 'it failed on purpose' }],
  }));
  server.registerTool('pid', { description: 'The process id of the server.' }, () => ({
    content: [{ type: 'text', text: String(process.pid) }],
    structuredContent: { pid: process.pid },
  }));
  server.registerTool('exit', { description: 'Ends the server process.' }, () => process.exit(3));

  // The tools added at run time, for `remove_tool`; the SDK notifies the client of each change itself.
  const added = new Map<string, RegisteredTool>();
  server.registerTool(
    'add_tools',
    {
      description: 'Adds a tool per name; each answers that it was added.',
      inputSchema: {
        names: z
          .array(z.string().regex(/^[a-z_]{1,20}$/u))
          .min(1)
          .max(10),
      },
    },
    ({ names }) => {
      for (const name of names) {
        if (added.has(name)) continue;
        const tool = server.registerTool(name, { description: 'Added at run time.' }, () => ({
          content: [{ type: 'text', text: `${name} was added at run time` }],
        }));
        added.set(name, tool);
      }
      return { content: [{ type: 'text', text: `added ${names.join(', ')}` }] };
    },
  );
  server.registerTool(
    'remove_tool',
    { description: 'Removes a tool added by add_tools.', inputSchema: { name: z.string() } },
    ({ name }) => {
      added.get(name)?.remove();
      added.delete(name);
      return { content: [{ type: 'text', text: `removed ${name}` }] };
    },
  );
  let toolLists = 0;
  server.registerTool('tool_lists', { description: 'How many tools/list requests the server received.' }, () => ({
    content: [{ type: 'text', text: String(toolLists) }],
    structuredContent: { toolLists },
  }));
  // McpServer answers tools/list itself: count the requests on their way in from the transport.
  const connect = server.connect.bind(server);
  server.connect = async (transport) => {
    await connect(transport);
    const handle = transport.onmessage;
    transport.onmessage = (message, extra) => {
      if ('method' in message && message.method === 'tools/list') toolLists += 1;
      handle?.(message, extra);
    };
  };
  return server;
}

export interface McpHttpServer {
  /** `http://127.0.0.1:<port>/mcp` */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The test server over Streamable HTTP on loopback, stateless (a fresh MCP server per request, as
 * the SDK's stateless example does). `port` 0 picks a free one; pass an earlier port to bring a
 * server back where the service expects it.
 */
export async function startMcpHttpServer(port = 0): Promise<McpHttpServer> {
  const http: Server = createServer((req, res) => {
    if (req.url !== '/mcp') {
      res.writeHead(404).end();
      return;
    }
    const server = createTestMcpServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    server
      .connect(transport)
      .then(() => transport.handleRequest(req, res))
      .catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, '127.0.0.1', () => resolve());
  });
  const bound = (http.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}/mcp`,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      }),
  };
}

/** The command and arguments that run this file as a stdio MCP server. */
export const STDIO_TEST_SERVER = {
  command: process.execPath,
  args: ['--import', 'tsx', fileURLToPath(import.meta.url)],
} as const;

// Run directly: serve over stdio until stdin closes.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await createTestMcpServer().connect(new StdioServerTransport());
}
