import { Gauge, type Registry } from 'prom-client';
import type { Observable, Subscription } from 'rxjs';
import type { McpServerStatus } from '../mcp/mcp-connection.js';
import { METRIC_PREFIX } from './metrics.constants.js';

/**
 * Each MCP server (`MCP_SERVERS`, only when some are configured): whether it is connected and how
 * many tools it offers now. An optional server that is down leaves the instance ready: alert on
 * `mcp_server_up == 0`, not on readiness.
 */
export function recordMcpServers(
  registry: Registry,
  names: readonly string[],
  status$: Observable<McpServerStatus>,
): Subscription {
  const up = new Gauge({
    name: `${METRIC_PREFIX}mcp_server_up`,
    help: 'Whether the MCP server is connected and its tools listed (1), or down or reconnecting (0).',
    labelNames: ['server'],
    registers: [registry],
  });
  const tools = new Gauge({
    name: `${METRIC_PREFIX}mcp_tools`,
    help: 'Tools the MCP server offers the model now (0 while it is down).',
    labelNames: ['server'],
    registers: [registry],
  });
  for (const server of names) {
    up.set({ server }, 0);
    tools.set({ server }, 0);
  }
  return status$.subscribe((status) => {
    up.set({ server: status.name }, status.state === 'connected' ? 1 : 0);
    tools.set({ server: status.name }, status.state === 'down' ? 0 : status.tools.length);
  });
}
