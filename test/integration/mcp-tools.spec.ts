import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { filter, firstValueFrom } from 'rxjs';
import { AGENT_TOOLS } from '../../src/agent/agent.constants.js';
import { calculatorTool } from '../../src/agent/tools/calculator.tool.js';
import { ToolRegistry } from '../../src/agent/tools/tool.registry.js';
import { LLM_PROVIDER } from '../../src/llm/llm.constants.js';
import { McpCommandError } from '../../src/mcp/mcp-connection.js';
import { McpServers } from '../../src/mcp/mcp-servers.service.js';
import { startFakeOpenAi, textStream, toolCallStream, type FakeOpenAi } from '../support/fake-openai-server.js';
import { startMcpHttpServer, STDIO_TEST_SERVER, type McpHttpServer } from '../support/mcp-test-server.js';
import { ScriptedModel } from '../support/scripted-model.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

let app: TestApp | undefined;
let mcpHttp: McpHttpServer | undefined;
let openai: FakeOpenAi | undefined;
let scratch: string | undefined;

afterEach(async () => {
  await app?.close();
  await mcpHttp?.close();
  await openai?.close();
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  app = undefined;
  mcpHttp = undefined;
  openai = undefined;
  scratch = undefined;
});

const stdio = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  command: STDIO_TEST_SERVER.command,
  args: [...STDIO_TEST_SERVER.args],
  ...extra,
});

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function readyBody(url: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${url}/health/ready`);
  return { status: response.status, body: await response.json() };
}

function toolNames(target: TestApp): string[] {
  return target.app.get(ToolRegistry).specs.map((spec) => spec.name);
}

/** Resolves once the MCP tools offered include `name`. */
async function toolOffered(target: TestApp, name: string): Promise<void> {
  await firstValueFrom(
    target.app.get(McpServers).tools$.pipe(filter((tools) => tools.some((tool) => tool.spec.name === name))),
  );
}

/** Resolves once the MCP tools offered no longer include `name`. */
async function toolWithdrawn(target: TestApp, name: string): Promise<void> {
  await firstValueFrom(
    target.app.get(McpServers).tools$.pipe(filter((tools) => tools.every((tool) => tool.spec.name !== name))),
  );
}

describe('MCP servers as readiness dependencies', () => {
  it('keeps the instance unready while a required server cannot be reached, naming mcp:<name> in /health/ready', async () => {
    const port = await closedPort();
    app = await startTestApp({
      env: { MCP_SERVERS: JSON.stringify({ search: { url: `http://127.0.0.1:${port}/mcp`, required: true } }) },
    });
    await firstValueFrom(
      app.readiness.snapshot$.pipe(
        filter((snapshot) =>
          snapshot.dependencies.some((dep) => dep.name === 'mcp:search' && dep.lastError !== undefined),
        ),
      ),
    );
    const { status, body } = await readyBody(app.url);
    expect(status).toBe(503);
    expect(body.details['mcp:search']).toMatchObject({ status: 'down', transport: 'http', required: true });
    expect(body.details['mcp:search'].lastError).toEqual(expect.any(String));
    expect(body.details.agent).toMatchObject({ status: 'down', state: 'pending' });
    expect(app.readiness.snapshot.dependencies.find((dep) => dep.name === 'agent')?.dependsOn).toContain('mcp:search');
  });

  it('is ready without an optional server that is down, shows it degraded with its tools absent, and offers them once it comes back', async () => {
    const port = await closedPort();
    app = await startTestApp({
      ready: true,
      env: { MCP_SERVERS: JSON.stringify({ search: { url: `http://127.0.0.1:${port}/mcp` } }) },
    });
    const before = await readyBody(app.url);
    expect(before.status).toBe(200);
    expect(before.body.details['mcp:search']).toMatchObject({
      status: 'up',
      server: 'down',
      degraded: true,
      tools: 0,
      mcpError: expect.any(String),
    });
    expect(toolNames(app)).toEqual(['calculator', 'current_time']);
    expect(await (await fetch(`${app.url}/metrics`)).text()).toContain(
      'agent_gateway_mcp_server_up{server="search"} 0',
    );

    mcpHttp = await startMcpHttpServer(port);
    await toolOffered(app, 'search__echo');
    expect(toolNames(app)).toEqual(expect.arrayContaining(['calculator', 'search__echo', 'search__slow']));
    const after = await readyBody(app.url);
    expect(after.body.details['mcp:search']).toMatchObject({ status: 'up', server: 'connected', connections: 1 });
    expect(after.body.details['mcp:search']).not.toHaveProperty('degraded');
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toContain('agent_gateway_mcp_server_up{server="search"} 1');
    expect(metrics).toContain('agent_gateway_mcp_tools{server="search"} 9');

    const alice = await app.connectAs();
    const frames = await alice.request('r1', '/tool search__echo {"text": "back again"}');
    expect(frames.find((frame) => frame.event === 'tool_completed')?.data).toMatchObject({
      tool: 'search__echo',
      result: 'echo: back again',
    });
  });
});

describe('MCP servers whose command cannot be started', () => {
  it('fails a required stdio server whose command does not exist at once, naming the server and the command, without retrying until STARTUP_TIMEOUT_MS', async () => {
    app = await startTestApp({
      env: {
        STARTUP_TIMEOUT_MS: '600000',
        MCP_SERVERS: JSON.stringify({ files: { command: '/nonexistent/mcp-server', required: true } }),
      },
    });
    const failed = await firstValueFrom(
      app.readiness.snapshot$.pipe(filter((snapshot) => snapshot.phase === 'failed')),
    );
    const dependency = failed.dependencies.find((dep) => dep.name === 'mcp:files');
    expect(dependency).toMatchObject({ state: 'failed', attempts: 1 });
    expect(dependency?.lastError).toContain('MCP server "files"');
    expect(dependency?.lastError).toContain('"/nonexistent/mcp-server"');
    expect(dependency?.lastError).toContain('ENOENT');
    const { status, body } = await readyBody(app.url);
    expect(status).toBe(503);
    expect(body.details['mcp:files']).toMatchObject({ status: 'down', server: 'failed', required: true });
  });

  it('leaves the instance ready with an optional stdio server whose command is not executable: degraded, failed, logged once and never tried again', async () => {
    scratch = await mkdtemp(join(tmpdir(), 'mcp-command-'));
    const command = join(scratch, 'server.sh');
    await writeFile(command, '#!/bin/sh\n');
    await chmod(command, 0o644);
    app = await startTestApp({ ready: true, env: { MCP_SERVERS: JSON.stringify({ files: { command } }) } });

    const { status, body } = await readyBody(app.url);
    expect(status).toBe(200);
    expect(body.details['mcp:files']).toMatchObject({
      status: 'up',
      server: 'failed',
      degraded: true,
      tools: 0,
      connections: 0,
      mcpError: expect.stringContaining(`"${command}"`),
    });
    expect(body.details['mcp:files'].mcpError).toContain('EACCES');
    expect(toolNames(app)).toEqual(['calculator', 'current_time']);

    // A later attempt (a call reaching the server) fails at once with the same reason, starting nothing.
    const connection = app.app.get(McpServers).connections[0];
    await expect(connection?.connect()).rejects.toBeInstanceOf(McpCommandError);
    expect(connection?.current.state).toBe('failed');
    const logged = app.logs.entries.filter((entry) => entry.context === 'MCP files' && entry.level !== 'debug');
    expect(logged.map((entry) => entry.level)).toEqual(['error']);
    expect(logged[0]?.message).toContain('not retried');
  });
});

describe('MCP tool list changes', () => {
  it('offers the tools a server adds at run time without a reconnect, lists them once more for a burst of announcements, and withdraws one it removes', async () => {
    app = await startTestApp({
      ready: true,
      env: { MCP_SERVERS: JSON.stringify({ files: stdio({ required: true }) }) },
    });
    const alice = await app.connectAs();
    const completed = async (requestId: string, message: string): Promise<any> => {
      const frames = await alice.request(requestId, message);
      expect(frames.at(-1)?.event).toBe('agent_completed');
      return frames.find((frame) => frame.event === 'tool_completed' || frame.event === 'tool_failed')?.data;
    };

    // Three tools registered in one call: three notifications, the last two while the first listing is in flight.
    await completed('add', '/tool files__add_tools {"names": ["alpha", "beta", "gamma"]}');
    await toolOffered(app, 'files__gamma');
    expect(toolNames(app)).toEqual(expect.arrayContaining(['files__alpha', 'files__beta', 'files__gamma']));
    expect(await completed('gamma', '/tool files__gamma')).toMatchObject({ result: 'gamma was added at run time' });
    // The listing at connection, one for the first announcement, one for the two folded together.
    expect(await completed('lists', '/tool files__tool_lists')).toMatchObject({ result: { toolLists: 3 } });

    const { body } = await readyBody(app.url);
    expect(body.details['mcp:files']).toMatchObject({ server: 'connected', tools: 12, connections: 1 });
    expect(await (await fetch(`${app.url}/metrics`)).text()).toContain('agent_gateway_mcp_tools{server="files"} 12');

    await completed('remove', '/tool files__remove_tool {"name": "beta"}');
    await toolWithdrawn(app, 'files__beta');
    expect(toolNames(app)).not.toContain('files__beta');
    // The model is no longer offered it, so it does not call it.
    expect(await completed('beta', '/tool files__beta')).toBeUndefined();
    expect(app.app.get(McpServers).connections[0]?.current).toMatchObject({ state: 'connected', connections: 1 });
    expect(app.app.get(McpServers).connections[0]?.current.tools).toHaveLength(11);
  });
});

describe('MCP tool names', () => {
  it("refuses to start when a built-in tool is named like a server's tools, naming both", async () => {
    const shadow = { ...calculatorTool, spec: { ...calculatorTool.spec, name: 'files__echo' } };
    await expect(
      startTestApp({
        env: { MCP_SERVERS: JSON.stringify({ files: stdio() }) },
        override: (builder) => builder.overrideProvider(AGENT_TOOLS).useValue([shadow]),
      }),
    ).rejects.toThrow('the built-in tool "files__echo" collides with the tools of the MCP server "files"');
  });
});

describe('MCP tools in runs', () => {
  it('calls a stdio server tool end to end with the embedded model', async () => {
    app = await startTestApp({
      ready: true,
      env: { MCP_SERVERS: JSON.stringify({ files: stdio({ required: true }) }) },
    });
    expect(toolNames(app)).toEqual([
      'calculator',
      'current_time',
      'files__echo',
      'files__slow',
      'files__big',
      'files__fail',
      'files__pid',
      'files__exit',
      'files__add_tools',
      'files__remove_tool',
      'files__tool_lists',
    ]);
    const alice = await app.connectAs();
    const frames = await alice.request('r1', '/tool files__echo {"text": "hello"}');
    expect(frames.find((frame) => frame.event === 'tool_executing')?.data).toMatchObject({
      tool: 'files__echo',
      args: { text: 'hello' },
    });
    expect(frames.find((frame) => frame.event === 'tool_completed')?.data).toMatchObject({ result: 'echo: hello' });
    const end = frames.at(-1);
    expect(end?.event).toBe('agent_completed');
    expect((end?.data.message as { content: string }).content).toContain('echo: hello');
  });

  it('offers a Streamable HTTP server tool to an OpenAI-compatible model with its schema, and feeds the result back', async () => {
    mcpHttp = await startMcpHttpServer();
    openai = await startFakeOpenAi();
    openai.script(
      toolCallStream({ id: 'call_1', name: 'search__echo', argumentFragments: ['{"text":', '"over http"}'] }),
      textStream(['It said so.']),
    );
    app = await startTestApp({
      ready: true,
      env: {
        LLM_PROVIDER: 'openai',
        LLM_BASE_URL: openai.url,
        LLM_MODEL: 'test-model',
        LLM_API_KEY: 'test-key',
        MCP_SERVERS: JSON.stringify({ search: { url: mcpHttp.url, required: true } }),
      },
    });
    const alice = await app.connectAs();
    const frames = await alice.request('r1', 'say it over http');
    expect(frames.at(-1)?.event).toBe('agent_completed');
    const first = (await openai.received(0)).body;
    expect(first.tools).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          type: 'function',
          function: expect.objectContaining({
            name: 'search__echo',
            parameters: expect.objectContaining({ properties: { text: expect.objectContaining({ type: 'string' }) } }),
          }),
        }),
      ]),
    );
    const second = (await openai.received(1)).body;
    const toolMessage = (second.messages as any[]).find((message) => message.role === 'tool');
    expect(toolMessage).toMatchObject({ tool_call_id: 'call_1' });
    expect(String(toolMessage.content)).toContain('echo: over http');
  });

  it('ends a call past MCP_TOOL_TIMEOUT_MS, an oversized result, a tool error and a protocol error as coded tool_failed events, and the run completes', async () => {
    app = await startTestApp({
      ready: true,
      env: {
        MCP_SERVERS: JSON.stringify({ files: stdio({ required: true }) }),
        MCP_TOOL_TIMEOUT_MS: '300',
        MCP_MAX_RESULT_CHARS: '1000',
      },
    });
    const alice = await app.connectAs();
    const failureOf = async (requestId: string, message: string): Promise<unknown> => {
      const frames = await alice.request(requestId, message);
      expect(frames.at(-1)?.event).toBe('agent_completed');
      return frames.find((frame) => frame.event === 'tool_failed')?.data.error;
    };
    expect(await failureOf('slow', '/tool files__slow {"ms": 60000}')).toEqual({
      code: 'TOOL_TIMEOUT',
      message: 'timed out after 300 ms',
    });
    expect(await failureOf('big', '/tool files__big {"chars": 5000}')).toMatchObject({
      code: 'TOOL_RESULT_TOO_LARGE',
      message: expect.stringContaining('MCP_MAX_RESULT_CHARS'),
    });
    expect(await failureOf('fail', '/tool files__fail')).toEqual({
      code: 'TOOL_FAILED',
      message: 'it failed on purpose',
    });
    expect(await failureOf('bad', '/tool files__echo {"text": 42}')).toMatchObject({ code: 'TOOL_FAILED' });
    expect(await failureOf('array', '/tool files__echo [1]')).toMatchObject({ code: 'INVALID_TOOL_ARGUMENTS' });
    // The server is still serving after all that.
    const frames = await alice.request('ok', '/tool files__echo {"text": "still here"}');
    expect(frames.find((frame) => frame.event === 'tool_completed')?.data).toMatchObject({
      result: 'echo: still here',
    });
  });

  it('reconnects a stdio server that died in the middle of a run for the next call of the same run', async () => {
    const model = new ScriptedModel();
    app = await startTestApp({
      ready: true,
      env: { MCP_SERVERS: JSON.stringify({ files: stdio() }) },
      override: (builder) => builder.overrideProvider(LLM_PROVIDER).useValue(model),
    });
    const alice = await app.connectAs();
    alice.send('agent_request', { requestId: 'r1', message: 'use the server, kill it, use it again' });
    (await model.nextCall())
      .toolCall({ id: 'c1', name: 'files__pid', arguments: '{}' })
      .toolCall({ id: 'c2', name: 'files__exit', arguments: '{}' })
      .finish();
    const second = await model.nextCall();
    expect(second.request.tools?.map((tool) => tool.name)).toContain('files__pid');
    second.toolCall({ id: 'c3', name: 'files__pid', arguments: '{}' }).finish();
    (await model.nextCall()).text('done').finish();

    const end = await alice.runEnd('r1');
    expect(end.event).toBe('agent_completed');
    const frames = alice.runFrames(end.data.runId);
    const result = (callId: string): any =>
      frames.find((frame) => frame.data.callId === callId && frame.event !== 'tool_executing')?.data;
    expect(result('c2')).toMatchObject({ error: { code: 'TOOL_UNAVAILABLE' } });
    const firstPid = (result('c1').result as { pid: number }).pid;
    const secondPid = (result('c3').result as { pid: number }).pid;
    expect(secondPid).toEqual(expect.any(Number));
    expect(secondPid).not.toBe(firstPid);
    expect(app.app.get(McpServers).connections[0]?.current).toMatchObject({ state: 'connected', connections: 2 });
  });
});
