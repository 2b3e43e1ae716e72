import type { AppConfig } from './app-config.js';
import { crossFieldProblems, environmentSchema, toAppConfig } from './config.schema.js';

/**
 * Never echoed in problems: they are, or may contain (a password in the URL, a token in MCP headers), secrets.
 * The system prompt is not a secret as such, but it is long and often proprietary.
 */
const SECRETS = new Set([
  'JWT_SECRET',
  'LLM_API_KEY',
  'DATABASE_URL',
  'REDIS_URL',
  'MCP_SERVERS',
  'AGENT_SYSTEM_PROMPT',
]);

/** Thrown by {@link loadConfig}; `problems` names every bad variable, not just the first. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  readonly config: AppConfig;
  /** Things that are allowed but worth a line in the log (e.g. the development JWT secret). */
  readonly warnings: readonly string[];
}

/**
 * Parses and validates the environment once. Nothing else in the service reads `process.env`.
 * Empty strings count as unset, so `FOO=` in a manifest means "use the default".
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): LoadedConfig {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const result = environmentSchema.safeParse(present);
  const problems = [
    ...(result.error?.issues ?? []).map((issue) => {
      const name = issue.path.join('.');
      const value = present[name];
      return `${name}: ${issue.message}${value === undefined || SECRETS.has(name) ? '' : ` (got "${value}")`}`;
    }),
    ...crossFieldProblems(present),
  ];
  if (!result.success || problems.length > 0) throw new ConfigError(problems);
  const config = toAppConfig(result.data);
  const warnings: string[] = [];
  if (config.auth.usingDevelopmentSecret) {
    warnings.push('JWT_SECRET is not set: using the built-in development secret. Never do this in production.');
    if (!isLoopbackHost(config.http.host)) {
      warnings.push(
        `HOST=${config.http.host} with the built-in development secret: that secret is public, so anyone who can reach this port can sign a token for any user. Set JWT_SECRET, or leave HOST unset (127.0.0.1).`,
      );
    }
  }
  const jwks = config.auth.jwks;
  const keysUrl = jwks?.jwksUrl ?? jwks?.issuerUrl;
  if (config.env === 'production' && keysUrl !== undefined && keysUrl.startsWith('http:')) {
    warnings.push(
      `${jwks?.jwksUrl === undefined ? 'AUTH_ISSUER_URL' : 'AUTH_JWKS_URL'} is plain http: whoever can change that answer on the way can sign tokens for any user. Use https unless the provider is on this host or a private network you trust.`,
    );
  }
  return { config, warnings };
}

/** Whether only this machine can reach `host` (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^(?:::ffff:)?127(?:\.\d{1,3}){3}$/u.test(host);
}
