import { describe, expect, it } from '@jest/globals';
import { appDependencies } from '../app.dependencies.js';
import { ConfigError, loadConfig } from './load-config.js';

const load = (servers: string) => loadConfig({ NODE_ENV: 'test', MCP_SERVERS: servers }).config;

function problemsOf(servers: string): readonly string[] {
  try {
    load(servers);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected MCP_SERVERS to be refused');
}

describe('MCP_SERVERS', () => {
  it('reads stdio and Streamable HTTP servers in the shape MCP clients use, required defaulting to false', () => {
    const config = load(
      JSON.stringify({
        files: { command: 'node', args: ['server.mjs'], env: { ROOT: '/srv' }, required: true },
        'web-search': {
          url: 'https://search.example/mcp',
          headers: { Authorization: 'Bearer t' },
          requireApproval: true,
        },
      }),
    );
    expect(config.mcp.servers).toEqual([
      {
        name: 'files',
        transport: 'stdio',
        command: 'node',
        args: ['server.mjs'],
        env: { ROOT: '/srv' },
        required: true,
        requireApproval: false,
      },
      {
        name: 'web-search',
        transport: 'http',
        url: 'https://search.example/mcp',
        headers: { Authorization: 'Bearer t' },
        required: false,
        requireApproval: true,
      },
    ]);
  });

  it('declares each server as mcp:<name> before any module starts, the agent waiting for the required ones only', () => {
    const config = load(
      JSON.stringify({ files: { command: 'node', required: true }, search: { url: 'http://127.0.0.1:1/mcp' } }),
    );
    expect(appDependencies(config)).toEqual([
      { name: 'llm' },
      { name: 'threads' },
      { name: 'mcp:files' },
      { name: 'mcp:search' },
      { name: 'agent', dependsOn: ['llm', 'threads', 'mcp:files'] },
    ]);
  });

  it('is empty when unset', () => {
    expect(loadConfig({ NODE_ENV: 'test' }).config.mcp.servers).toEqual([]);
  });

  it.each([
    ['text that is not JSON', '{files:', /^MCP_SERVERS: is not valid JSON/u],
    ['an array', '[]', /^MCP_SERVERS: must be a JSON object keyed by server name/u],
    [
      'both command and url',
      '{"a": {"command": "x", "url": "http://h/mcp"}}',
      /^MCP_SERVERS\.a: set either "command"/u,
    ],
    ['neither command nor url', '{"a": {"required": true}}', /^MCP_SERVERS\.a: set either "command"/u],
    ['a name with __', '{"a__b": {"command": "x"}}', /^MCP_SERVERS\.a__b: server names are 1-32 letters/u],
    ['a name ending with _', '{"a_": {"command": "x"}}', /server names are 1-32 letters/u],
    ['a name with a dot', '{"a.b": {"command": "x"}}', /server names are 1-32 letters/u],
    ['an unknown key', '{"a": {"command": "x", "timeout": 5}}', /^MCP_SERVERS\.a: Unrecognized key/u],
    ['headers on a stdio server', '{"a": {"command": "x", "headers": {}}}', /"headers" are for Streamable HTTP/u],
    ['args on an HTTP server', '{"a": {"url": "http://h/mcp", "args": []}}', /"args", "env" and "cwd" are for stdio/u],
    ['a URL that is not http(s)', '{"a": {"url": "ftp://h/mcp"}}', /^MCP_SERVERS\.a\.url: must be an http\(s\) URL/u],
    ['a non-boolean required', '{"a": {"command": "x", "required": "yes"}}', /^MCP_SERVERS\.a\.required:/u],
  ])('refuses %s with a message naming the server', (_case, servers, expected) => {
    expect(problemsOf(servers)).toEqual([expect.stringMatching(expected)]);
  });

  it('never echoes the value, whose headers or env may hold secrets', () => {
    const [problem] = problemsOf(
      '{"a": {"url": "http://h/mcp", "headers": {"Authorization": 7}}, "x": "Bearer secret"',
    );
    expect(problem).not.toContain('secret');
  });
});
