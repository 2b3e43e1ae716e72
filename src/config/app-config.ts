import type { LogLevel } from '@nestjs/common';
import type { AsymmetricAlgorithm } from './config.schema.js';
import type { McpServerConfig } from './mcp-servers.schema.js';
import type { SystemPrompt } from './system-prompt.schema.js';

/** The whole configuration, parsed and validated once at boot from the environment. */
export interface AppConfig {
  readonly env: 'development' | 'production' | 'test';
  readonly http: { readonly port: number; readonly host: string };
  readonly auth: {
    /** HS256's secret; unset when an identity provider is configured without `JWT_SECRET` (HS256 off). */
    readonly jwtSecret?: string;
    /** True when `JWT_SECRET` was not set and the development default is in use. */
    readonly usingDevelopmentSecret: boolean;
    readonly issuer?: string;
    readonly audience?: string;
    /** The claim that holds the user id (`AUTH_USER_CLAIM`, default `sub`). */
    readonly userClaim: string;
    /** An identity provider's keys (`AUTH_JWKS_URL` or `AUTH_ISSUER_URL`): the readiness dependency `auth`. */
    readonly jwks?: {
      /** The JWKS itself… */
      readonly jwksUrl?: string;
      /** …or the issuer whose `/.well-known/openid-configuration` names it (`jwks_uri`). */
      readonly issuerUrl?: string;
      /** The allow-list of token algorithms for these keys. */
      readonly algorithms: readonly AsymmetricAlgorithm[];
      /** Background refresh: the provider's `Cache-Control` max-age, at most this. */
      readonly refreshMs: number;
      /** A token naming an unknown key refetches the set at most once per this. */
      readonly cooldownMs: number;
    };
  };
  readonly readiness: { readonly startupTimeoutMs: number };
  readonly ws: {
    readonly readyWaitMs: number;
    readonly maxPayloadBytes: number;
    readonly heartbeatMs: number;
    /** Frames per second a connection may send on average (a token bucket)… */
    readonly messagesPerSecond: number;
    /** …and at once. */
    readonly messageBurst: number;
    /** A client that lets more than this wait to be sent (it stopped reading) is cut off. */
    readonly maxBufferedBytes: number;
    /** Connections one user may hold at once, held (before readiness) or established. */
    readonly maxConnectionsPerUser: number;
    /** Replayed events (`resume`) per second for one user, all their connections together; also the burst. */
    readonly replayEventsPerSecond: number;
    /** Empty: every origin is allowed. */
    readonly allowedOrigins: readonly string[];
  };
  /** The HTTP API's edge: CORS, rate limits, security headers. */
  readonly httpEdge: {
    /** Origins whose pages may call the API (`ALLOWED_ORIGINS`, or `WS_ALLOWED_ORIGINS`). */
    readonly allowedOrigins: readonly string[];
    /** No list, outside production: any origin may. */
    readonly anyOrigin: boolean;
    /** Requests per second one user may make on average (a token bucket)… */
    readonly requestsPerSecond: number;
    /** …and at once. */
    readonly requestBurst: number;
    /** Requests per minute one address may make to the routes without a token (`/dev/token`). */
    readonly anonymousRequestsPerMinute: number;
    /** `Strict-Transport-Security` on every answer (production). */
    readonly hsts: boolean;
  };
  readonly database: {
    /** `sqlite:<path>` or `postgres://…`. */
    readonly url: string;
    /** PostgreSQL pool size (SQLite uses one connection). */
    readonly poolSize: number;
    /** PostgreSQL schema to use (created if missing); unset: the server's default search_path. */
    readonly schema?: string;
    /** PostgreSQL: how long a replica waits for another one's migration before retrying. */
    readonly migrationLockWaitMs: number;
    /**
     * PostgreSQL: how long an instance's lease lasts without renewal (renewed every third of it).
     * An instance whose lease expired is dead: its runs are marked interrupted.
     */
    readonly leaseTtlMs: number;
  };
  /** Fleet mode (`REDIS_URL` set, PostgreSQL required): live runs shared through Redis. Unset: single instance. */
  readonly fleet?: {
    readonly redisUrl: string;
    /** Every Redis key and channel the service uses starts with this (see `fleet.keys.ts`). */
    readonly keyPrefix: string;
  };
  readonly llm: {
    readonly provider: 'local' | 'openai';
    readonly local: { readonly warmupMs: number; readonly tokenDelayMs: number };
    readonly openai: {
      readonly baseUrl: string;
      /** Unset: requests carry no `Authorization` header (local servers need none). */
      readonly apiKey?: string;
      readonly model: string;
      readonly timeoutMs: number;
      readonly maxRetries: number;
      /** `temperature` of every request (`LLM_TEMPERATURE`, 0–2); unset: not sent, the server's default. */
      readonly temperature?: number;
      /** `max_tokens` of every request (`LLM_MAX_TOKENS`); unset: not sent, the server's default. */
      readonly maxTokens?: number;
    };
  };
  readonly agent: {
    readonly messageMaxChars: number;
    readonly maxRunsPerUser: number;
    readonly maxConcurrentRuns: number;
    readonly queueSize: number;
    readonly runTimeoutMs: number;
    readonly maxSteps: number;
    readonly toolTimeoutMs: number;
    /** How many of the thread's latest messages the model sees. */
    readonly historyMessages: number;
    /** …and how many characters of them at most (`AGENT_HISTORY_CHARS`): the oldest turns are dropped first. */
    readonly historyChars: number;
    /** The first message of every model call (`AGENT_SYSTEM_PROMPT` or `AGENT_SYSTEM_PROMPT_FILE`); unset: none. */
    readonly systemPrompt?: SystemPrompt;
    /**
     * Calls of these tools wait for a person's `tool_approval` (`AGENT_APPROVAL_TOOLS`): names,
     * `<server>__*` or `*`. Tools marked `requiresApproval` wait too.
     */
    readonly approvalTools: readonly string[];
    /** A call nobody answered within this is refused (`AGENT_APPROVAL_TIMEOUT_MS`). */
    readonly approvalTimeoutMs: number;
  };
  /** Tools from MCP servers (`MCP_SERVERS`), each server the readiness dependency `mcp:<name>`. */
  readonly mcp: {
    readonly servers: readonly McpServerConfig[];
    /** One call of an MCP tool taking longer is `tool_failed TOOL_TIMEOUT` (`MCP_TOOL_TIMEOUT_MS`). */
    readonly toolTimeoutMs: number;
    /** One attempt to start or reach a server and list its tools (`MCP_CONNECT_TIMEOUT_MS`). */
    readonly connectTimeoutMs: number;
    /** A result longer than this, as JSON, is `tool_failed TOOL_RESULT_TOO_LARGE` (`MCP_MAX_RESULT_CHARS`). */
    readonly maxResultChars: number;
  };
  readonly shutdown: {
    /** Time between SIGTERM and the first close, for load balancers to stop routing here. */
    readonly delayMs: number;
    /** How long runs in flight may take to finish before they are interrupted. */
    readonly timeoutMs: number;
    /** The orchestrator's grace period; delay + timeout + the exit margin must fit in it. */
    readonly gracePeriodMs: number;
  };
  readonly log: {
    readonly level: LogLevel;
    /**
     * `json`: one object per line. `text`: Nest's lines, coloured on a terminal. `auto` (the default
     * outside production; production's is `json`): `text` when stdout is a terminal, else `json`.
     */
    readonly format: 'auto' | 'json' | 'text';
  };
}
