import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { combineLatest, distinctUntilChanged, map, merge, type Observable, of, shareReplay } from 'rxjs';
import { mcpDependency } from '../app.dependencies.js';
import type { Tool } from '../agent/tools/tool.js';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import { FatalInitError } from '../readiness/readiness.errors.js';
import { ReadinessService } from '../readiness/readiness.service.js';
import { McpCommandError, McpConnection, type McpServerStatus } from './mcp-connection.js';
import { toAgentTool } from './mcp-tool.js';

/** A JSON-RPC message from a server may be this much larger than the largest result the model may read. */
const MESSAGE_MARGIN_BYTES = 1024 * 1024;

/**
 * The MCP servers of `MCP_SERVERS`, each the readiness dependency `mcp:<name>`. A required server
 * is ready once it is connected and has listed its tools (its failures are retried by readiness
 * until `STARTUP_TIMEOUT_MS`); an optional one is ready after its first attempt, whatever its
 * outcome: when it is down, `/health/ready` shows it `degraded` and its tools are absent until it
 * comes back. After start-up every server is kept connected (reconnected with backoff).
 *
 * A stdio server whose command cannot be started at all ({@link McpCommandError}) is a configuration
 * error: a required one fails its dependency at once (no retries until the deadline); an optional
 * one is left `failed`, degraded, and never tried again.
 *
 * {@link tools$} is what the agent offers from them: the tools of the servers that are up now,
 * following each server's `notifications/tools/list_changed`.
 */
@Injectable()
export class McpServers implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('MCP');
  readonly connections: readonly McpConnection[];
  /** The tools of every server that is up, as agent tools; emits on every change. */
  readonly tools$: Observable<readonly Tool[]>;
  /** Every status change of every server. */
  readonly status$: Observable<McpServerStatus>;

  constructor(
    @InjectConfig() config: AppConfig,
    private readonly readiness: ReadinessService,
  ) {
    const { servers, toolTimeoutMs, maxResultChars, connectTimeoutMs } = config.mcp;
    const maxMessageBytes = maxResultChars * 4 + MESSAGE_MARGIN_BYTES;
    this.connections = servers.map((server) => new McpConnection(server, { connectTimeoutMs, maxMessageBytes }));
    this.status$ = merge(...this.connections.map((connection) => connection.status$));
    const offered = this.connections.map((connection) =>
      connection.status$.pipe(
        map((status) => (status.state === 'down' ? [] : status.tools)),
        distinctUntilChanged(),
        map((listings) => {
          const tools: Tool[] = [];
          const names = new Set<string>();
          for (const listing of listings) {
            const tool = toAgentTool(connection, listing, { timeoutMs: toolTimeoutMs, maxResultChars });
            if ('skipped' in tool) {
              this.logger.warn(`MCP server "${connection.server.name}": tool ${tool.skipped}; left out`);
            } else if (names.has(tool.spec.name)) {
              this.logger.warn(
                `MCP server "${connection.server.name}" lists "${tool.spec.name}" twice; the first is kept`,
              );
            } else {
              names.add(tool.spec.name);
              tools.push(tool);
            }
          }
          return tools;
        }),
      ),
    );
    this.tools$ = (offered.length === 0 ? of([]) : combineLatest(offered).pipe(map((lists) => lists.flat()))).pipe(
      shareReplay({ bufferSize: 1, refCount: false }),
    );
  }

  onApplicationBootstrap(): void {
    for (const connection of this.connections) {
      const { server } = connection;
      this.readiness.track(
        mcpDependency(server.name),
        async (signal) => {
          try {
            await connection.connect(signal);
          } catch (error) {
            if (server.required) {
              throw error instanceof McpCommandError ? new FatalInitError(error.message, { cause: error }) : error;
            }
            // One attempt, whatever its outcome: an optional server never holds the instance back.
            // An unstartable one was logged once by its connection and is not retried.
            if (error instanceof McpCommandError) return;
          }
          connection.keepConnected();
        },
        { details: () => this.details(connection) },
      );
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.connections.map((connection) => connection.close()));
  }

  /** The `mcp:<name>` entry of `/health/ready`. */
  private details(connection: McpConnection): Record<string, unknown> {
    const { server } = connection;
    const status = connection.current;
    return {
      transport: server.transport,
      required: server.required,
      server: status.state,
      tools: status.state === 'down' ? 0 : status.tools.length,
      connections: status.connections,
      ...(status.state === 'connected'
        ? {}
        : {
            degraded: true,
            degradedSince: new Date(status.since).toISOString(),
            ...(status.lastError === undefined ? {} : { mcpError: status.lastError }),
          }),
    };
  }
}
