/**
 * What calling a tool through an MCP server costs over a built-in one (issue 18): the same
 * `ToolRegistry.execute` the agent loop calls, one call at a time, for `calculator` (built in) and
 * for the test server's `echo` over stdio (a child process) and over Streamable HTTP (a loopback
 * server in this process, stateless: one HTTP request per call). p50 and p99 of each, and the
 * overhead of each transport over the built-in at both.
 *
 * Standalone: `npx tsx bench/scenarios/mcp-tools.ts [--quick]` prints the numbers.
 */
import { performance } from 'node:perf_hooks';
import { Logger } from '@nestjs/common';
import { fileURLToPath } from 'node:url';
import { of } from 'rxjs';
import { calculatorTool } from '../../src/agent/tools/calculator.tool.js';
import type { Tool } from '../../src/agent/tools/tool.js';
import { ToolRegistry } from '../../src/agent/tools/tool.registry.js';
import type { McpServerConfig } from '../../src/config/mcp-servers.schema.js';
import { McpConnection } from '../../src/mcp/mcp-connection.js';
import type { McpServers } from '../../src/mcp/mcp-servers.service.js';
import { toAgentTool } from '../../src/mcp/mcp-tool.js';
import { startMcpHttpServer, STDIO_TEST_SERVER } from '../../test/support/mcp-test-server.js';
import { fix, percentile } from '../harness/stats.js';

export interface ToolCallLatency {
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface McpToolOverhead {
  readonly calls: number;
  readonly builtIn: ToolCallLatency;
  readonly stdio: ToolCallLatency & { readonly overheadP50Ms: number; readonly overheadP99Ms: number };
  readonly http: ToolCallLatency & { readonly overheadP50Ms: number; readonly overheadP99Ms: number };
}

const OPTIONS = { connectTimeoutMs: 30_000, maxMessageBytes: 4 * 1024 * 1024 };

export async function measureMcpToolOverhead(quick: boolean): Promise<McpToolOverhead> {
  const calls = quick ? 200 : 2_000;
  const http = await startMcpHttpServer();
  const servers: McpServerConfig[] = [
    {
      name: 'stdio',
      transport: 'stdio',
      command: STDIO_TEST_SERVER.command,
      args: [...STDIO_TEST_SERVER.args],
      env: {},
      required: true,
      requireApproval: false,
    },
    { name: 'http', transport: 'http', url: http.url, headers: {}, required: true, requireApproval: false },
  ];
  const connections = servers.map((server) => new McpConnection(server, OPTIONS));
  try {
    const tools: Tool[] = [];
    for (const connection of connections) {
      await connection.connect();
      const echo = connection.current.tools.find((listing) => listing.name === 'echo');
      if (echo === undefined) throw new Error(`${connection.server.name}: no echo tool`);
      const tool = toAgentTool(connection, echo, { timeoutMs: 10_000, maxResultChars: 100_000 });
      if ('skipped' in tool) throw new Error(tool.skipped);
      tools.push(tool);
    }
    const mcp = { connections: [], tools$: of(tools) } as unknown as McpServers;
    const registry = new ToolRegistry([calculatorTool], mcp);
    const signal = new AbortController().signal;
    const sample = async (name: string, args: string): Promise<ToolCallLatency> => {
      const times: number[] = [];
      for (let index = 0; index < calls + 50; index += 1) {
        const started = performance.now();
        const outcome = await registry.execute({ id: `c${index}`, name, arguments: args }, 10_000, signal);
        const elapsed = performance.now() - started;
        if (!outcome.ok) throw new Error(`${name}: ${outcome.error.code} ${outcome.error.message}`);
        if (index >= 50) times.push(elapsed); // the first 50 warm up JIT and connections
      }
      return { p50Ms: fix(percentile(times, 0.5), 3), p99Ms: fix(percentile(times, 0.99), 3) };
    };
    const builtIn = await sample('calculator', '{"expression":"12 * (3 + 4)"}');
    const overhead = (latency: ToolCallLatency) => ({
      ...latency,
      overheadP50Ms: fix(latency.p50Ms - builtIn.p50Ms, 3),
      overheadP99Ms: fix(latency.p99Ms - builtIn.p99Ms, 3),
    });
    const stdio = overhead(await sample('stdio__echo', '{"text":"12 * (3 + 4)"}'));
    const overHttp = overhead(await sample('http__echo', '{"text":"12 * (3 + 4)"}'));
    return { calls, builtIn, stdio, http: overHttp };
  } finally {
    await Promise.all(connections.map((connection) => connection.close()));
    await http.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  Logger.overrideLogger(['error', 'warn']);
  const result = await measureMcpToolOverhead(process.argv.includes('--quick'));
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
