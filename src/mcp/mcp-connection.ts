import { Logger } from '@nestjs/common';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  type CallToolResult,
  ErrorCode,
  McpError,
  type Tool as McpToolListing,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { BehaviorSubject, type Observable } from 'rxjs';
import { ToolError } from '../agent/tools/tool.js';
import type { McpServerConfig } from '../config/mcp-servers.schema.js';
import { createTransport, spawnFailure } from './mcp-transport.js';

export type { McpToolListing };

/**
 * `connecting`: an attempt is in flight (the tools of the last listing stay offered meanwhile, so a
 * server that restarts between two calls of a run is simply used again); `connected`: its tools are
 * offered (re-listed when the server says they changed); `down`: the last attempt failed, its tools
 * are absent, the next attempt is scheduled; `failed` (terminal): a stdio server whose command could
 * never be started (see {@link McpCommandError}): no further attempt, its tools stay absent.
 */
export type McpServerState = 'connecting' | 'connected' | 'down' | 'failed';

export interface McpServerStatus {
  readonly name: string;
  readonly state: McpServerState;
  /** The tools of the last successful listing while it is connected (or reconnecting); empty when down. */
  readonly tools: readonly McpToolListing[];
  /** Epoch milliseconds of the last state change. */
  readonly since: number;
  readonly lastError?: string;
  /** Successful connections so far (1 after start-up; more after reconnections). */
  readonly connections: number;
}

export interface McpConnectionOptions {
  readonly connectTimeoutMs: number;
  /** Bound on one JSON-RPC message from the server (see `createTransport`). */
  readonly maxMessageBytes: number;
}

/** After a failed attempt, the next comes after 250 ms, 500 ms, 1 s… at most this. */
const MAX_RETRY_MS = 30_000;
const FIRST_RETRY_MS = 250;
/** A listing longer than this is cut: every tool is sent to the model on every call. */
export const MAX_TOOLS_PER_SERVER = 128;
const MAX_LIST_PAGES = 16;

/**
 * A stdio server's command cannot be started at all (no such executable, not executable): a
 * configuration error that no retry can fix. Only for a server that never started; one that ran
 * before and cannot be started again is retried like any other failure (say, mid-upgrade).
 */
export class McpCommandError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'McpCommandError';
  }
}

/**
 * One MCP server: start or reach it, list its tools, call them, and keep it connected. A call on a
 * server that is down tries one connection first (a stdio server that died is started again for
 * the next call); after {@link keepConnected}, a lost connection or a failed attempt schedules the
 * next one with backoff, forever (the server may come back at any time).
 */
export class McpConnection {
  private readonly logger: Logger;
  private readonly status: BehaviorSubject<McpServerStatus>;
  private client: Client | undefined;
  private attempt: Promise<void> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private failuresInARow = 0;
  /** Set once the command turned out impossible to start; every later attempt fails with it. */
  private unstartable: McpCommandError | undefined;
  /** A re-listing after `notifications/tools/list_changed` is in flight / another one is owed. */
  private relisting = false;
  private relistAgain = false;
  private keep = false;
  private closed = false;
  readonly status$: Observable<McpServerStatus>;

  constructor(
    readonly server: McpServerConfig,
    private readonly options: McpConnectionOptions,
  ) {
    this.logger = new Logger(`MCP ${server.name}`);
    this.status = new BehaviorSubject<McpServerStatus>({
      name: server.name,
      state: 'connecting',
      tools: [],
      since: Date.now(),
      connections: 0,
    });
    this.status$ = this.status.asObservable();
  }

  get current(): McpServerStatus {
    return this.status.getValue();
  }

  /** One attempt (or the one in flight): connected and its tools listed, or rejects with why not. */
  connect(signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the connection is closed'));
    if (this.unstartable !== undefined) return Promise.reject(this.unstartable);
    if (this.client !== undefined && this.current.state === 'connected') return Promise.resolve();
    this.attempt ??= this.open(signal).finally(() => {
      this.attempt = undefined;
    });
    return this.attempt;
  }

  /** From now on a lost connection or a failed attempt is retried with backoff until {@link close}. */
  keepConnected(): void {
    this.keep = true;
    if (this.current.state === 'down' && this.attempt === undefined) this.scheduleRetry();
  }

  /**
   * Calls `tool` (its name on the server). Its own failures (`isError`) come back as the result;
   * a server that cannot be reached is `TOOL_UNAVAILABLE`, the SDK's timeout `TOOL_TIMEOUT`, a
   * protocol error `TOOL_FAILED`. Rejects with the signal's reason when `signal` aborts.
   */
  async call(
    tool: string,
    args: Record<string, unknown>,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<CallToolResult> {
    try {
      await this.connect(signal);
    } catch (error) {
      signal.throwIfAborted();
      throw new ToolError('TOOL_UNAVAILABLE', `MCP server "${this.server.name}" is unavailable: ${describe(error)}`);
    }
    const client = this.client;
    if (client === undefined)
      throw new ToolError('TOOL_UNAVAILABLE', `MCP server "${this.server.name}" is unavailable`);
    try {
      return (await client.callTool({ name: tool, arguments: args }, undefined, {
        signal,
        timeout: timeoutMs,
      })) as CallToolResult;
    } catch (error) {
      signal.throwIfAborted();
      if (error instanceof McpError && error.code === (ErrorCode.RequestTimeout as number)) {
        throw new ToolError('TOOL_TIMEOUT', `timed out after ${timeoutMs} ms`);
      }
      // An answer of the server's (unknown tool, invalid arguments, its own crash handling a request).
      if (error instanceof McpError && error.code !== (ErrorCode.ConnectionClosed as number)) {
        throw new ToolError('TOOL_FAILED', `MCP server "${this.server.name}": ${error.message}`);
      }
      // The connection itself failed: whatever the server was doing is lost; start over.
      this.lost(client, describe(error));
      throw new ToolError('TOOL_UNAVAILABLE', `MCP server "${this.server.name}" is unavailable: ${describe(error)}`);
    }
  }

  /** Closes the client (a stdio server's process is stopped) and stops reconnecting. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.close().catch(() => undefined);
    this.status.complete();
  }

  private async open(signal: AbortSignal | undefined): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.update({ state: 'connecting' });
    const client = new Client({ name: 'agent-gateway', version: '1' });
    // A change announced while this attempt lists the tools may be missing from that listing.
    let changedWhileOpening = false;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      if (client === this.client) this.toolsChanged();
      else changedWhileOpening = true;
    });
    const timeout = AbortSignal.timeout(this.options.connectTimeoutMs);
    const both = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    try {
      const transport = createTransport(this.server, {
        maxMessageBytes: this.options.maxMessageBytes,
        onStderr: (line) => this.logger.debug(`stderr: ${line}`),
      });
      await client.connect(transport, { signal: both, timeout: this.options.connectTimeoutMs });
      const tools = await this.listTools(client, both);
      if (this.closed) {
        await client.close();
        return;
      }
      // Only the current client's end counts: closing an old one on purpose is not a loss.
      client.onclose = () => this.lost(client, 'the connection closed');
      const previous = this.client;
      this.client = client;
      if (previous !== undefined && previous !== client) void previous.close().catch(() => undefined);
      this.failuresInARow = 0;
      const { connections } = this.current;
      this.update({ state: 'connected', tools, connections: connections + 1 });
      this.logger.log(`${connections === 0 ? 'connected' : 'reconnected'}: ${describeTools(tools)}`);
      if (changedWhileOpening) this.toolsChanged();
    } catch (error) {
      await client.close().catch(() => undefined);
      const reason = timeout.aborted ? `no answer within ${this.options.connectTimeoutMs} ms` : describe(error);
      this.failuresInARow += 1;
      const cannotStart = this.current.connections === 0 ? spawnFailure(this.server, error) : undefined;
      if (cannotStart !== undefined && !this.closed) {
        this.unstartable = new McpCommandError(`MCP server "${this.server.name}": ${cannotStart}`, { cause: error });
        this.logger.error(`${cannotStart}; not retried: fix MCP_SERVERS and restart`);
        this.update({ state: 'failed', tools: [], lastError: cannotStart });
        throw this.unstartable;
      }
      if (!this.closed) {
        if (this.current.state !== 'down') this.logger.warn(`cannot connect: ${reason}`);
        this.update({ state: 'down', tools: [], lastError: reason });
        if (this.keep) this.scheduleRetry();
      }
      throw new Error(reason, { cause: error });
    }
  }

  private async listTools(client: Client, signal: AbortSignal): Promise<McpToolListing[]> {
    const tools: McpToolListing[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page += 1) {
      const listed = await client.listTools(cursor === undefined ? {} : { cursor }, {
        signal,
        timeout: this.options.connectTimeoutMs,
      });
      tools.push(...listed.tools);
      cursor = listed.nextCursor;
      if (cursor === undefined || tools.length >= MAX_TOOLS_PER_SERVER) break;
    }
    if (tools.length > MAX_TOOLS_PER_SERVER || cursor !== undefined) {
      this.logger.warn(
        `lists more than ${MAX_TOOLS_PER_SERVER} tools: only the first ${MAX_TOOLS_PER_SERVER} are offered`,
      );
    }
    return tools.slice(0, MAX_TOOLS_PER_SERVER);
  }

  /**
   * The server announced that its tools changed: list them again on the current connection. At
   * most one listing is in flight; announcements meanwhile are folded into one more listing after
   * it, so a server that announces in a burst costs two listings, not one per announcement.
   */
  private toolsChanged(): void {
    const client = this.client;
    if (this.closed || client === undefined) return;
    if (this.relisting) {
      this.relistAgain = true;
      return;
    }
    this.relisting = true;
    void this.relist(client).finally(() => {
      this.relisting = false;
      if (!this.relistAgain) return;
      this.relistAgain = false;
      this.toolsChanged();
    });
  }

  /** Never rejects: a listing that fails keeps the previous tools (a lost connection is handled apart). */
  private async relist(client: Client): Promise<void> {
    try {
      const tools = await this.listTools(client, AbortSignal.timeout(this.options.connectTimeoutMs));
      if (this.closed || client !== this.client) return;
      this.update({ tools });
      this.logger.log(`tools changed: ${describeTools(tools)}`);
    } catch (error) {
      if (this.closed || client !== this.client) return;
      this.logger.warn(`cannot list the changed tools (${describe(error)}); the previous ones stay offered`);
    }
  }

  /** `client`'s connection ended (the process died, the server went away): reconnect at once. */
  private lost(client: Client, reason: string): void {
    if (this.closed || client !== this.client) return;
    this.client = undefined;
    void client.close().catch(() => undefined);
    this.logger.warn(`connection lost (${reason}); reconnecting`);
    this.update({ lastError: reason });
    // The first attempt starts now; the tools stay offered while it runs (see McpServerState).
    this.connect().catch(() => undefined);
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer !== undefined) return;
    const delayMs = Math.min(FIRST_RETRY_MS * 2 ** Math.max(this.failuresInARow - 1, 0), MAX_RETRY_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect().catch(() => undefined);
    }, delayMs);
    this.retryTimer.unref();
  }

  private update(change: Partial<Omit<McpServerStatus, 'name'>>): void {
    if (this.closed) return;
    const current = this.current;
    const next = { ...current, ...change };
    this.status.next(Object.freeze({ ...next, since: next.state === current.state ? current.since : Date.now() }));
  }
}

function describeTools(tools: readonly McpToolListing[]): string {
  return `${tools.length} tool(s) (${tools.map((tool) => tool.name).join(', ') || 'none'})`;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
