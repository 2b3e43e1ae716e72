import * as z from 'zod';
import type { AppConfig } from './app-config.js';
import { mcpServersVariable } from './mcp-servers.schema.js';
import { systemPromptFileVariable, systemPromptVariable } from './system-prompt.schema.js';

/** Used when `JWT_SECRET` is unset outside production; loading the config warns about it. */
export const DEVELOPMENT_JWT_SECRET = 'agent-gateway-development-secret-not-for-production-use';
const PRODUCTION_MIN_SECRET_LENGTH = 32;

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 20_000;
const DEFAULT_GRACE_PERIOD_SECONDS = 30;
/** What the last steps of a drain (closing sockets and stores) may take after the runs are done. */
export const SHUTDOWN_EXIT_MARGIN_MS = 2_000;

/**
 * `SHUTDOWN_DELAY_MS` when unset: 5 s in production, for load balancers and endpoint lists to stop
 * routing here; none elsewhere, where nothing routes by readiness and the delay only makes Ctrl-C
 * (or a `npm run dev` restart) wait.
 */
export function defaultShutdownDelayMs(nodeEnv: string | undefined): number {
  return nodeEnv === 'production' ? 5_000 : 0;
}

/**
 * Rules across variables, checked on the raw values so that they are reported together with the
 * per-variable problems (a failed schema would otherwise hide them).
 */
export function crossFieldProblems(env: Readonly<Record<string, string | undefined>>): string[] {
  const secret = env.JWT_SECRET?.trim() ?? '';
  const set = (name: string): boolean => (env[name]?.trim() ?? '') !== '';
  const jwks = set('AUTH_JWKS_URL') || set('AUTH_ISSUER_URL');
  const problems: string[] = [];
  if (env.NODE_ENV === 'production' && !jwks && secret.length < PRODUCTION_MIN_SECRET_LENGTH) {
    problems.push(
      `JWT_SECRET: is required with NODE_ENV=production unless AUTH_JWKS_URL or AUTH_ISSUER_URL is set, and must be at least ${PRODUCTION_MIN_SECRET_LENGTH} characters`,
    );
  }
  if (env.NODE_ENV === 'production' && jwks && secret !== '' && secret.length < PRODUCTION_MIN_SECRET_LENGTH) {
    problems.push(`JWT_SECRET: must be at least ${PRODUCTION_MIN_SECRET_LENGTH} characters with NODE_ENV=production`);
  }
  if (set('AUTH_JWKS_URL') && set('AUTH_ISSUER_URL')) {
    problems.push(
      'AUTH_JWKS_URL, AUTH_ISSUER_URL: set one (the JWKS itself, or the issuer whose discovery document names it)',
    );
  }
  if (jwks) {
    for (const name of ['JWT_ISSUER', 'JWT_AUDIENCE']) {
      if (!set(name)) {
        problems.push(
          `${name}: is required with AUTH_JWKS_URL or AUTH_ISSUER_URL (a provider signs tokens for many applications: the service accepts only those issued by yours, for it)`,
        );
      }
    }
  }
  if (
    set('ALLOWED_ORIGINS') &&
    set('WS_ALLOWED_ORIGINS') &&
    env.ALLOWED_ORIGINS?.trim() !== env.WS_ALLOWED_ORIGINS?.trim()
  ) {
    problems.push('ALLOWED_ORIGINS, WS_ALLOWED_ORIGINS: set one (ALLOWED_ORIGINS covers WebSocket and HTTP)');
  }
  if (set('AGENT_SYSTEM_PROMPT') && set('AGENT_SYSTEM_PROMPT_FILE')) {
    problems.push('AGENT_SYSTEM_PROMPT, AGENT_SYSTEM_PROMPT_FILE: set one (the prompt itself, or a file holding it)');
  }
  if (env.LLM_PROVIDER === 'openai' && (env.LLM_MODEL?.trim() ?? '') === '') {
    problems.push(
      'LLM_MODEL: is required with LLM_PROVIDER=openai (for example gpt-4o-mini, or the model your server serves)',
    );
  }
  if ((env.REDIS_URL?.trim() ?? '') !== '' && !/^postgres(ql)?:\/\//u.test(env.DATABASE_URL?.trim() ?? '')) {
    problems.push(
      'REDIS_URL: fleet mode needs a shared database: set DATABASE_URL=postgres://… (SQLite is single-instance)',
    );
  }
  const delay = Number(env.SHUTDOWN_DELAY_MS ?? defaultShutdownDelayMs(env.NODE_ENV));
  const timeout = Number(env.SHUTDOWN_TIMEOUT_MS ?? DEFAULT_SHUTDOWN_TIMEOUT_MS);
  const grace = Number(env.TERMINATION_GRACE_PERIOD_SECONDS ?? DEFAULT_GRACE_PERIOD_SECONDS) * 1000;
  if ([delay, timeout, grace].every(Number.isFinite) && delay + timeout + SHUTDOWN_EXIT_MARGIN_MS > grace) {
    problems.push(
      `SHUTDOWN_DELAY_MS + SHUTDOWN_TIMEOUT_MS + ${SHUTDOWN_EXIT_MARGIN_MS} ms (${delay + timeout + SHUTDOWN_EXIT_MARGIN_MS} ms) must fit in TERMINATION_GRACE_PERIOD_SECONDS (${grace / 1000} s), or the orchestrator kills the process mid-drain`,
    );
  }
  return problems;
}

/** `sqlite:<path>` (a file, created on first start; `sqlite::memory:` for throwaway use) or `postgres://…`. */
const databaseUrl = z
  .string()
  .trim()
  .refine(
    (url) => /^sqlite:.+/u.test(url) || /^postgres(ql)?:\/\/.+/u.test(url),
    'must be sqlite:<path> or postgres://user@host:port/database',
  );

const count = (defaultValue: number, min = 1, max = 100_000) =>
  z.coerce.number().int('must be a whole number').min(min).max(max).default(defaultValue);

const milliseconds = (defaultValue: number, min = 0) =>
  z.coerce.number().int('must be a whole number of milliseconds').min(min).default(defaultValue);

const optionalText = z.string().trim().min(1).optional();

/** A comma-separated list, its items trimmed and empty ones dropped. */
const commaList = (defaultValue: string) =>
  z
    .string()
    .default(defaultValue)
    .transform((list) =>
      list
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== ''),
    );

/**
 * `AGENT_APPROVAL_TOOLS`: the tools whose calls wait for a person, comma-separated: a tool's name
 * (`calculator`, `files__delete`), `<server>__*` (every tool of that MCP server) or `*` (all).
 */
const approvalToolList = commaList('').pipe(
  z.array(
    z
      .string()
      .regex(
        /^(\*|[A-Za-z0-9_-]{1,64}|[A-Za-z0-9_-]{1,32}__\*)$/u,
        'must list tool names, <server>__* or *, separated by commas',
      ),
  ),
);

/** The asymmetric algorithms a JWKS key may sign with (`AUTH_ALGORITHMS`); HS256 is `JWT_SECRET`'s. */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];
const DEFAULT_ALGORITHMS = 'RS256,ES256,EdDSA';

const httpUrl = z.url({ protocol: /^https?$/u, error: 'must be an http(s) URL' });

const algorithmList = commaList(DEFAULT_ALGORITHMS).pipe(
  z
    .array(
      z.enum(ASYMMETRIC_ALGORITHMS, {
        error: `must list algorithms among ${ASYMMETRIC_ALGORITHMS.join(', ')} (HS256 is enabled by JWT_SECRET)`,
      }),
    )
    .min(1, 'must name at least one algorithm'),
);

const originList = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin.length > 0);

/**
 * Every environment variable the service reads, with its default. The README's configuration
 * table repeats these defaults; change both together.
 */
export const environmentSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** Unset: 0.0.0.0 with NODE_ENV=production, 127.0.0.1 otherwise (see `toAppConfig`). */
  HOST: z.string().trim().min(1).optional(),
  JWT_SECRET: optionalText,
  JWT_ISSUER: optionalText,
  JWT_AUDIENCE: optionalText,
  AUTH_JWKS_URL: httpUrl.optional(),
  AUTH_ISSUER_URL: httpUrl.optional(),
  AUTH_ALGORITHMS: algorithmList,
  AUTH_USER_CLAIM: z
    .string()
    .trim()
    .regex(/^[\x21-\x7e]{1,100}$/u, 'must be a claim name (1-100 printable ASCII characters)')
    .default('sub'),
  AUTH_JWKS_REFRESH_MS: milliseconds(600_000, 1_000),
  AUTH_JWKS_COOLDOWN_MS: milliseconds(30_000, 0),
  ALLOWED_ORIGINS: z.string().optional(),
  HTTP_MAX_REQUESTS_PER_SECOND: count(10, 1, 1_000_000),
  HTTP_REQUEST_BURST: count(20, 1, 1_000_000),
  HTTP_MAX_ANONYMOUS_REQUESTS_PER_MINUTE: count(30, 1, 1_000_000),
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
  WS_MAX_MESSAGES_PER_SECOND: count(50, 1, 1_000_000),
  WS_MESSAGE_BURST: count(100, 1, 1_000_000),
  WS_MAX_BUFFERED_BYTES: count(8 * 1024 * 1024, 65_536, 1024 * 1024 * 1024),
  WS_MAX_CONNECTIONS_PER_USER: count(20, 1, 100_000),
  WS_REPLAY_EVENTS_PER_SECOND: count(10_000, 1, 10_000_000),
  LOCAL_LLM_WARMUP_MS: milliseconds(0),
  LOCAL_LLM_TOKEN_DELAY_MS: milliseconds(0),
  DATABASE_URL: databaseUrl.default('sqlite:./data/agent-gateway.db'),
  DATABASE_POOL_SIZE: count(10, 1, 1000),
  DATABASE_SCHEMA: z
    .string()
    .trim()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/u, 'must be a lower-case SQL identifier')
    .optional(),
  DATABASE_MIGRATION_LOCK_WAIT_MS: milliseconds(15_000, 100),
  REDIS_URL: z
    .string()
    .trim()
    .regex(/^rediss?:\/\/.+/u, 'must be redis://host:port[/db] or rediss://…')
    .optional(),
  REDIS_KEY_PREFIX: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/u, 'must be 1-64 letters, digits, _ . or -')
    .default('agw'),
  FLEET_LEASE_TTL_MS: milliseconds(10_000, 300),
  LLM_PROVIDER: z.enum(['local', 'openai']).default('local'),
  LLM_BASE_URL: z.url({ protocol: /^https?$/u }).default('https://api.openai.com/v1'),
  LLM_API_KEY: optionalText,
  LLM_MODEL: optionalText,
  LLM_TIMEOUT_MS: milliseconds(30_000, 100),
  LLM_MAX_RETRIES: count(2, 0, 10),
  /** Unset: not sent (the server's default). */
  LLM_TEMPERATURE: z.coerce.number('must be a number').min(0).max(2).optional(),
  /** Unset: not sent (the server's default). */
  LLM_MAX_TOKENS: z.coerce.number().int('must be a whole number').min(1).max(10_000_000).optional(),
  AGENT_MESSAGE_MAX_CHARS: count(8_000, 1, 1_000_000),
  AGENT_MAX_RUNS_PER_USER: count(2, 1, 1000),
  AGENT_MAX_CONCURRENT_RUNS: count(16, 1, 10_000),
  AGENT_QUEUE_SIZE: count(64, 0, 100_000),
  AGENT_RUN_TIMEOUT_MS: milliseconds(120_000, 100),
  AGENT_MAX_STEPS: count(5, 1, 50),
  AGENT_TOOL_TIMEOUT_MS: milliseconds(5_000, 10),
  AGENT_HISTORY_MESSAGES: count(40, 1, 1000),
  AGENT_HISTORY_CHARS: count(100_000, 1, 100_000_000),
  AGENT_SYSTEM_PROMPT: systemPromptVariable,
  AGENT_SYSTEM_PROMPT_FILE: systemPromptFileVariable,
  AGENT_APPROVAL_TOOLS: approvalToolList,
  AGENT_APPROVAL_TIMEOUT_MS: milliseconds(300_000, 10),
  /** MCP servers whose tools join the built-in ones (see `mcp-servers.schema.ts`). */
  MCP_SERVERS: mcpServersVariable,
  MCP_TOOL_TIMEOUT_MS: milliseconds(30_000, 10),
  MCP_CONNECT_TIMEOUT_MS: milliseconds(10_000, 100),
  MCP_MAX_RESULT_CHARS: count(100_000, 100, 10_000_000),
  /** Unset: {@link defaultShutdownDelayMs} (see `toAppConfig`). */
  SHUTDOWN_DELAY_MS: z.coerce.number().int('must be a whole number of milliseconds').min(0).optional(),
  SHUTDOWN_TIMEOUT_MS: milliseconds(DEFAULT_SHUTDOWN_TIMEOUT_MS),
  TERMINATION_GRACE_PERIOD_SECONDS: count(DEFAULT_GRACE_PERIOD_SECONDS, 1, 86_400),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'log', 'debug', 'verbose']).default('log'),
  /** `auto`: `json` with NODE_ENV=production; elsewhere the logger picks (see `createAppLogger`). */
  LOG_FORMAT: z.enum(['auto', 'json', 'text']).default('auto'),
});

export type Environment = z.infer<typeof environmentSchema>;

function authConfig(env: Environment): AppConfig['auth'] {
  const jwks =
    env.AUTH_JWKS_URL === undefined && env.AUTH_ISSUER_URL === undefined
      ? undefined
      : {
          ...(env.AUTH_JWKS_URL === undefined ? {} : { jwksUrl: env.AUTH_JWKS_URL }),
          ...(env.AUTH_ISSUER_URL === undefined ? {} : { issuerUrl: env.AUTH_ISSUER_URL }),
          algorithms: env.AUTH_ALGORITHMS,
          refreshMs: env.AUTH_JWKS_REFRESH_MS,
          cooldownMs: env.AUTH_JWKS_COOLDOWN_MS,
        };
  // With an identity provider and no JWT_SECRET, HS256 is off: the public development secret would
  // let anyone sign a token beside the provider's.
  const jwtSecret = env.JWT_SECRET ?? (jwks === undefined ? DEVELOPMENT_JWT_SECRET : undefined);
  return {
    ...(jwtSecret === undefined ? {} : { jwtSecret }),
    usingDevelopmentSecret: env.JWT_SECRET === undefined && jwks === undefined,
    issuer: env.JWT_ISSUER,
    audience: env.JWT_AUDIENCE,
    userClaim: env.AUTH_USER_CLAIM,
    ...(jwks === undefined ? {} : { jwks }),
  };
}

export function toAppConfig(env: Environment): AppConfig {
  return {
    env: env.NODE_ENV,
    // Outside production the defaults (a built-in JWT secret, the development token route) are not
    // fit for a shared network: unless told otherwise, only this machine can connect.
    http: { port: env.PORT, host: env.HOST ?? (env.NODE_ENV === 'production' ? '0.0.0.0' : '127.0.0.1') },
    auth: authConfig(env),
    readiness: { startupTimeoutMs: env.STARTUP_TIMEOUT_MS },
    ws: {
      readyWaitMs: env.WS_READY_WAIT_MS,
      maxPayloadBytes: env.WS_MAX_PAYLOAD_BYTES,
      heartbeatMs: env.WS_HEARTBEAT_MS,
      messagesPerSecond: env.WS_MAX_MESSAGES_PER_SECOND,
      messageBurst: env.WS_MESSAGE_BURST,
      maxBufferedBytes: env.WS_MAX_BUFFERED_BYTES,
      maxConnectionsPerUser: env.WS_MAX_CONNECTIONS_PER_USER,
      replayEventsPerSecond: env.WS_REPLAY_EVENTS_PER_SECOND,
      allowedOrigins: originList(env.ALLOWED_ORIGINS ?? env.WS_ALLOWED_ORIGINS),
    },
    httpEdge: {
      allowedOrigins: originList(env.ALLOWED_ORIGINS ?? env.WS_ALLOWED_ORIGINS),
      // Outside production, no list means any origin may read the API (bearer tokens, no cookies):
      // a front-end on its own dev server works at once. In production, no list means none.
      anyOrigin:
        env.ALLOWED_ORIGINS === undefined && env.WS_ALLOWED_ORIGINS === undefined && env.NODE_ENV !== 'production',
      requestsPerSecond: env.HTTP_MAX_REQUESTS_PER_SECOND,
      requestBurst: env.HTTP_REQUEST_BURST,
      anonymousRequestsPerMinute: env.HTTP_MAX_ANONYMOUS_REQUESTS_PER_MINUTE,
      hsts: env.NODE_ENV === 'production',
    },
    database: {
      url: env.DATABASE_URL,
      poolSize: env.DATABASE_POOL_SIZE,
      schema: env.DATABASE_SCHEMA,
      migrationLockWaitMs: env.DATABASE_MIGRATION_LOCK_WAIT_MS,
      leaseTtlMs: env.FLEET_LEASE_TTL_MS,
    },
    ...(env.REDIS_URL === undefined ? {} : { fleet: { redisUrl: env.REDIS_URL, keyPrefix: env.REDIS_KEY_PREFIX } }),
    llm: {
      provider: env.LLM_PROVIDER,
      local: { warmupMs: env.LOCAL_LLM_WARMUP_MS, tokenDelayMs: env.LOCAL_LLM_TOKEN_DELAY_MS },
      openai: {
        baseUrl: env.LLM_BASE_URL,
        // Unset: no Authorization header at all (local servers such as Ollama or llama.cpp need none).
        apiKey: env.LLM_API_KEY,
        model: env.LLM_MODEL ?? '',
        timeoutMs: env.LLM_TIMEOUT_MS,
        maxRetries: env.LLM_MAX_RETRIES,
        temperature: env.LLM_TEMPERATURE,
        maxTokens: env.LLM_MAX_TOKENS,
      },
    },
    agent: {
      messageMaxChars: env.AGENT_MESSAGE_MAX_CHARS,
      maxRunsPerUser: env.AGENT_MAX_RUNS_PER_USER,
      maxConcurrentRuns: env.AGENT_MAX_CONCURRENT_RUNS,
      queueSize: env.AGENT_QUEUE_SIZE,
      runTimeoutMs: env.AGENT_RUN_TIMEOUT_MS,
      maxSteps: env.AGENT_MAX_STEPS,
      toolTimeoutMs: env.AGENT_TOOL_TIMEOUT_MS,
      historyMessages: env.AGENT_HISTORY_MESSAGES,
      historyChars: env.AGENT_HISTORY_CHARS,
      // Both set is refused by crossFieldProblems.
      systemPrompt: env.AGENT_SYSTEM_PROMPT ?? env.AGENT_SYSTEM_PROMPT_FILE,
      approvalTools: env.AGENT_APPROVAL_TOOLS,
      approvalTimeoutMs: env.AGENT_APPROVAL_TIMEOUT_MS,
    },
    mcp: {
      servers: env.MCP_SERVERS,
      toolTimeoutMs: env.MCP_TOOL_TIMEOUT_MS,
      connectTimeoutMs: env.MCP_CONNECT_TIMEOUT_MS,
      maxResultChars: env.MCP_MAX_RESULT_CHARS,
    },
    shutdown: {
      delayMs: env.SHUTDOWN_DELAY_MS ?? defaultShutdownDelayMs(env.NODE_ENV),
      timeoutMs: env.SHUTDOWN_TIMEOUT_MS,
      gracePeriodMs: env.TERMINATION_GRACE_PERIOD_SECONDS * 1000,
    },
    // Log shippers read production's output: JSON there, whatever stdout is.
    log: {
      level: env.LOG_LEVEL,
      format: env.LOG_FORMAT === 'auto' && env.NODE_ENV === 'production' ? 'json' : env.LOG_FORMAT,
    },
  };
}
