import { z } from 'zod';
import type { AppConfig } from './app-config.js';

/** Used when `JWT_SECRET` is unset outside production; loading the config warns about it. */
export const DEVELOPMENT_JWT_SECRET = 'agent-gateway-development-secret-not-for-production-use';
const PRODUCTION_MIN_SECRET_LENGTH = 32;

/**
 * Rules across variables, checked on the raw values so that they are reported together with the
 * per-variable problems (a failed schema would otherwise hide them).
 */
export function crossFieldProblems(env: Readonly<Record<string, string | undefined>>): string[] {
  const secret = env.JWT_SECRET?.trim() ?? '';
  if (env.NODE_ENV === 'production' && secret.length < PRODUCTION_MIN_SECRET_LENGTH) {
    return [
      `JWT_SECRET: is required with NODE_ENV=production and must be at least ${PRODUCTION_MIN_SECRET_LENGTH} characters`,
    ];
  }
  return [];
}

const milliseconds = (defaultValue: number, min = 0) =>
  z.coerce.number().int('must be a whole number of milliseconds').min(min).default(defaultValue);

const optionalText = z.string().trim().min(1).optional();

/**
 * Every environment variable the service reads, with its default. The README's configuration
 * table repeats these defaults; change both together.
 */
export const environmentSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().trim().min(1).default('0.0.0.0'),
  JWT_SECRET: optionalText,
  JWT_ISSUER: optionalText,
  JWT_AUDIENCE: optionalText,
  STARTUP_TIMEOUT_MS: milliseconds(60_000, 1),
  WS_READY_WAIT_MS: milliseconds(10_000),
  WS_MAX_PAYLOAD_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(16 * 1024 * 1024)
    .default(262_144),
  WS_HEARTBEAT_MS: milliseconds(25_000, 100),
  WS_ALLOWED_ORIGINS: z.string().optional(),
  LOCAL_LLM_WARMUP_MS: milliseconds(0),
  LOCAL_LLM_TOKEN_DELAY_MS: milliseconds(0),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'log', 'debug', 'verbose']).default('log'),
  LOG_FORMAT: z.enum(['json', 'text']).default('json'),
});

export type Environment = z.infer<typeof environmentSchema>;

export function toAppConfig(env: Environment): AppConfig {
  return {
    env: env.NODE_ENV,
    http: { port: env.PORT, host: env.HOST },
    auth: {
      jwtSecret: env.JWT_SECRET ?? DEVELOPMENT_JWT_SECRET,
      usingDevelopmentSecret: env.JWT_SECRET === undefined,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
    },
    readiness: { startupTimeoutMs: env.STARTUP_TIMEOUT_MS },
    ws: {
      readyWaitMs: env.WS_READY_WAIT_MS,
      maxPayloadBytes: env.WS_MAX_PAYLOAD_BYTES,
      heartbeatMs: env.WS_HEARTBEAT_MS,
      allowedOrigins: (env.WS_ALLOWED_ORIGINS ?? '')
        .split(',')
        .map((origin) => origin.trim())
        .filter((origin) => origin.length > 0),
    },
    llm: {
      local: { warmupMs: env.LOCAL_LLM_WARMUP_MS, tokenDelayMs: env.LOCAL_LLM_TOKEN_DELAY_MS },
    },
    log: { level: env.LOG_LEVEL, format: env.LOG_FORMAT },
  };
}
