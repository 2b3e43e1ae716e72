import type { Readable } from 'node:stream';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { McpServerConfig } from '../config/mcp-servers.schema.js';

export interface TransportOptions {
  /** A JSON-RPC message (stdio line, HTTP response body) longer than this ends the connection. */
  readonly maxMessageBytes: number;
  /** Where a stdio server's stderr goes, one line at a time (cut to 500 characters). */
  readonly onStderr: (line: string) => void;
}

/**
 * The SDK's transport for one server: a child process speaking over stdin/stdout, or Streamable
 * HTTP. Both bound what one message may hold, so a hostile or broken server cannot make this
 * process buffer without limit.
 */
export function createTransport(server: McpServerConfig, options: TransportOptions): Transport {
  switch (server.transport) {
    case 'stdio': {
      const transport = new StdioClientTransport({
        command: server.command,
        args: [...server.args],
        env: { ...server.env },
        ...(server.cwd === undefined ? {} : { cwd: server.cwd }),
        // Not `inherit`: a server's own logging would land in the middle of this service's JSON logs.
        stderr: 'pipe',
        maxBufferSize: options.maxMessageBytes,
      });
      forwardLines(transport.stderr as Readable | null, options.onStderr);
      return transport;
    }
    case 'http':
      return new StreamableHTTPClientTransport(new URL(server.url), {
        requestInit: { headers: { ...server.headers } },
        fetch: boundedFetch(options.maxMessageBytes),
        // Reconnecting is the connection's business (with its own backoff), not the transport's.
        reconnectionOptions: {
          initialReconnectionDelay: 1_000,
          maxReconnectionDelay: 1_000,
          reconnectionDelayGrowFactor: 1,
          maxRetries: 0,
        },
      });
    default: {
      const exhaustive: never = server;
      return exhaustive;
    }
  }
}

/**
 * Why a stdio server's command cannot be started at all, when `error` (from starting the transport)
 * says so: no such executable (or `cwd`), or not executable. Retrying cannot help; anything else
 * (the process starts, then exits or never answers) may.
 */
export function spawnFailure(server: McpServerConfig, error: unknown): string | undefined {
  // Not `instanceof Error`: a system error may come from another realm (Jest's VM contexts).
  if (server.transport !== 'stdio' || typeof error !== 'object' || error === null) return undefined;
  const { code, syscall } = error as NodeJS.ErrnoException;
  if (syscall?.startsWith('spawn') !== true) return undefined;
  const cwd = server.cwd === undefined ? '' : ` (cwd "${server.cwd}")`;
  switch (code) {
    case 'ENOENT':
      return `cannot start its command "${server.command}"${cwd}: no such file or directory (spawn ENOENT)`;
    case 'EACCES':
      return `cannot start its command "${server.command}"${cwd}: permission denied, not executable (spawn EACCES)`;
    default:
      return undefined;
  }
}

/**
 * `fetch` whose answers to POSTs (the responses to this client's requests) end in an error past
 * `maxBytes`. The long-lived GET stream of server notifications is left alone: it is read one event
 * at a time.
 */
function boundedFetch(maxBytes: number): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    if (init?.method !== 'POST' || response.body === null) return response;
    let seen = 0;
    const limit = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > maxBytes) controller.error(new Error(`the server's answer is over ${maxBytes} bytes`));
        else controller.enqueue(chunk);
      },
    });
    return new Response(response.body.pipeThrough(limit), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

function forwardLines(stream: Readable | null, onLine: (line: string) => void): void {
  if (stream === null) return;
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    // A line with no end in sight is cut, never buffered without bound.
    pending = (lines.pop() ?? '').slice(0, 500);
    for (const line of lines) if (line.trim() !== '') onLine(line.slice(0, 500));
  });
}
