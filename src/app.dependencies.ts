import type { AppConfig } from './config/app-config.js';
import type { DependencyDeclaration } from './readiness/readiness.types.js';

/** Every dependency this service can declare; which ones it does depends on the configuration. */
export const APP_DEPENDENCY_NAMES = ['llm', 'threads', 'bus', 'auth', 'agent'] as const;

/** The fixed dependencies, and one `mcp:<name>` per configured MCP server. */
export type AppDependency = (typeof APP_DEPENDENCY_NAMES)[number] | McpDependency;
export type McpDependency = `mcp:${string}`;

/** The readiness dependency of the MCP server `name` (`MCP_SERVERS`). */
export function mcpDependency(name: string): McpDependency {
  return `mcp:${name}`;
}

/**
 * What must be initialised before this instance may serve chat, declared statically so readiness
 * knows the full list before any module starts. The agent needs the model and the thread store;
 * fleet mode (`REDIS_URL`) adds the bus, through which its runs are followed from the first one;
 * an identity provider (`AUTH_JWKS_URL`/`AUTH_ISSUER_URL`) adds its keys, without which no token
 * of its users can be checked. Each MCP server (`MCP_SERVERS`) adds `mcp:<name>`; the agent waits
 * for the required ones only: an optional server that is down leaves the instance ready without
 * its tools.
 */
export function appDependencies(config: AppConfig): readonly DependencyDeclaration[] {
  const fleet = config.fleet !== undefined;
  const declarations: Array<DependencyDeclaration & { name: AppDependency }> = [
    { name: 'llm' },
    { name: 'threads' },
    ...(fleet ? [{ name: 'bus' as const }] : []),
    ...(config.auth.jwks === undefined ? [] : [{ name: 'auth' as const }]),
    ...config.mcp.servers.map((server) => ({ name: mcpDependency(server.name) })),
    {
      name: 'agent',
      dependsOn: [
        'llm',
        'threads',
        ...(fleet ? ['bus'] : []),
        ...config.mcp.servers.filter((server) => server.required).map((server) => mcpDependency(server.name)),
      ],
    },
  ];
  return declarations;
}
