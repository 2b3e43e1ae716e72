import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { DEVELOPMENT_JWT_SECRET } from './config.schema.js';
import { ConfigError, loadConfig } from './load-config.js';

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('gives every documented default for an empty environment, with a warning about the development secret', () => {
    const { config, warnings } = loadConfig({});
    expect(config).toEqual({
      env: 'development',
      http: { port: 3000, host: '127.0.0.1' },
      auth: {
        jwtSecret: DEVELOPMENT_JWT_SECRET,
        usingDevelopmentSecret: true,
        issuer: undefined,
        audience: undefined,
        userClaim: 'sub',
      },
      httpEdge: {
        allowedOrigins: [],
        anyOrigin: true,
        requestsPerSecond: 10,
        requestBurst: 20,
        anonymousRequestsPerMinute: 30,
        hsts: false,
      },
      readiness: { startupTimeoutMs: 60_000 },
      ws: {
        readyWaitMs: 10_000,
        maxPayloadBytes: 262_144,
        heartbeatMs: 25_000,
        messagesPerSecond: 50,
        messageBurst: 100,
        maxBufferedBytes: 8 * 1024 * 1024,
        maxConnectionsPerUser: 20,
        replayEventsPerSecond: 10_000,
        allowedOrigins: [],
      },
      database: {
        url: 'sqlite:./data/agent-gateway.db',
        poolSize: 10,
        schema: undefined,
        migrationLockWaitMs: 15_000,
        leaseTtlMs: 10_000,
      },
      llm: {
        provider: 'local',
        local: { warmupMs: 0, tokenDelayMs: 0 },
        openai: {
          baseUrl: 'https://api.openai.com/v1',
          model: '',
          timeoutMs: 30_000,
          maxRetries: 2,
        },
      },
      agent: {
        messageMaxChars: 8_000,
        maxRunsPerUser: 2,
        maxConcurrentRuns: 16,
        queueSize: 64,
        runTimeoutMs: 120_000,
        maxSteps: 5,
        toolTimeoutMs: 5_000,
        historyMessages: 40,
        historyChars: 100_000,
        approvalTools: [],
        approvalTimeoutMs: 300_000,
      },
      mcp: { servers: [], toolTimeoutMs: 30_000, connectTimeoutMs: 10_000, maxResultChars: 100_000 },
      shutdown: { delayMs: 0, timeoutMs: 20_000, gracePeriodMs: 30_000 },
      log: { level: 'log', format: 'auto' },
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('JWT_SECRET');
  });

  it('parses every variable into the typed config', () => {
    const { config, warnings } = loadConfig({
      NODE_ENV: 'production',
      PORT: '8080',
      HOST: '127.0.0.1',
      JWT_SECRET: 'a'.repeat(32),
      JWT_ISSUER: 'https://auth.example.com',
      JWT_AUDIENCE: 'agent-gateway',
      STARTUP_TIMEOUT_MS: '30000',
      WS_READY_WAIT_MS: '0',
      WS_MAX_PAYLOAD_BYTES: '65536',
      WS_HEARTBEAT_MS: '10000',
      WS_MAX_MESSAGES_PER_SECOND: '10',
      WS_MESSAGE_BURST: '30',
      WS_MAX_BUFFERED_BYTES: '1048576',
      WS_MAX_CONNECTIONS_PER_USER: '3',
      WS_ALLOWED_ORIGINS: ' https://a.example.com ,https://b.example.com,, ',
      LOCAL_LLM_WARMUP_MS: '1500',
      LOCAL_LLM_TOKEN_DELAY_MS: '20',
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'text',
      DATABASE_URL: 'postgres://app@db.internal:5432/chat',
      DATABASE_POOL_SIZE: '25',
      DATABASE_SCHEMA: 'agent_gateway',
      DATABASE_MIGRATION_LOCK_WAIT_MS: '60000',
      REDIS_URL: 'redis://redis.internal:6379/2',
      REDIS_KEY_PREFIX: 'chat-prod',
      FLEET_LEASE_TTL_MS: '15000',
      LLM_PROVIDER: 'openai',
      LLM_BASE_URL: 'http://vllm.internal:8000/v1',
      LLM_API_KEY: 'sk-test',
      LLM_MODEL: 'qwen2.5-7b-instruct',
      LLM_TIMEOUT_MS: '15000',
      LLM_MAX_RETRIES: '4',
      AGENT_MESSAGE_MAX_CHARS: '2000',
      AGENT_MAX_RUNS_PER_USER: '3',
      AGENT_MAX_CONCURRENT_RUNS: '50',
      AGENT_QUEUE_SIZE: '0',
      AGENT_RUN_TIMEOUT_MS: '60000',
      AGENT_MAX_STEPS: '8',
      AGENT_TOOL_TIMEOUT_MS: '2000',
      AGENT_HISTORY_MESSAGES: '20',
      AGENT_HISTORY_CHARS: '5000',
      AGENT_SYSTEM_PROMPT: 'You are terse.',
      LLM_TEMPERATURE: '0.2',
      LLM_MAX_TOKENS: '512',
      AGENT_APPROVAL_TOOLS: 'calculator,files__*',
      AGENT_APPROVAL_TIMEOUT_MS: '60000',
      MCP_TOOL_TIMEOUT_MS: '9000',
      MCP_CONNECT_TIMEOUT_MS: '3000',
      MCP_MAX_RESULT_CHARS: '5000',
    });
    expect(warnings).toEqual([]);
    expect(config.database).toEqual({
      url: 'postgres://app@db.internal:5432/chat',
      poolSize: 25,
      schema: 'agent_gateway',
      migrationLockWaitMs: 60_000,
      leaseTtlMs: 15_000,
    });
    expect(config.fleet).toEqual({ redisUrl: 'redis://redis.internal:6379/2', keyPrefix: 'chat-prod' });
    expect(config.llm.provider).toBe('openai');
    expect(config.llm.openai).toEqual({
      baseUrl: 'http://vllm.internal:8000/v1',
      apiKey: 'sk-test',
      model: 'qwen2.5-7b-instruct',
      timeoutMs: 15_000,
      maxRetries: 4,
      temperature: 0.2,
      maxTokens: 512,
    });
    expect(config.agent).toEqual({
      messageMaxChars: 2000,
      maxRunsPerUser: 3,
      maxConcurrentRuns: 50,
      queueSize: 0,
      runTimeoutMs: 60_000,
      maxSteps: 8,
      toolTimeoutMs: 2000,
      historyMessages: 20,
      historyChars: 5000,
      systemPrompt: { text: 'You are terse.', source: 'AGENT_SYSTEM_PROMPT' },
      approvalTools: ['calculator', 'files__*'],
      approvalTimeoutMs: 60_000,
    });
    expect(config.mcp).toEqual({ servers: [], toolTimeoutMs: 9000, connectTimeoutMs: 3000, maxResultChars: 5000 });
    expect(config.http).toEqual({ port: 8080, host: '127.0.0.1' });
    expect(config.auth).toEqual({
      jwtSecret: 'a'.repeat(32),
      usingDevelopmentSecret: false,
      issuer: 'https://auth.example.com',
      audience: 'agent-gateway',
      userClaim: 'sub',
    });
    expect(config.ws).toEqual({
      readyWaitMs: 0,
      maxPayloadBytes: 65_536,
      heartbeatMs: 10_000,
      messagesPerSecond: 10,
      messageBurst: 30,
      maxBufferedBytes: 1_048_576,
      maxConnectionsPerUser: 3,
      replayEventsPerSecond: 10_000,
      allowedOrigins: ['https://a.example.com', 'https://b.example.com'],
    });
    expect(config.llm.local).toEqual({ warmupMs: 1500, tokenDelayMs: 20 });
    expect(config.log).toEqual({ level: 'debug', format: 'text' });
  });

  it('listens on loopback only outside production unless HOST says otherwise, and on every interface in production', () => {
    expect(loadConfig({}).config.http.host).toBe('127.0.0.1');
    expect(loadConfig({ NODE_ENV: 'test' }).config.http.host).toBe('127.0.0.1');
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'a'.repeat(32) }).config.http.host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '0.0.0.0', JWT_SECRET: 'a'.repeat(32) }).config.http.host).toBe('0.0.0.0');
  });

  it('warns that the built-in secret is public when the development defaults listen beyond loopback', () => {
    const { warnings } = loadConfig({ HOST: '0.0.0.0' });
    expect(warnings).toEqual([
      expect.stringContaining('JWT_SECRET is not set'),
      expect.stringMatching(/HOST=0\.0\.0\.0 .*public.*sign a token for any user/u),
    ]);
    expect(loadConfig({ HOST: '127.0.0.2' }).warnings).toHaveLength(1);
    expect(loadConfig({ HOST: '::1' }).warnings).toHaveLength(1);
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ PORT: '', JWT_SECRET: '' }).config.http.port).toBe(3000);
  });

  it('lists every bad variable in one error, with the offending value', () => {
    const problems = problemsOf({
      PORT: '70000',
      STARTUP_TIMEOUT_MS: '1.5',
      LOG_FORMAT: 'xml',
      WS_HEARTBEAT_MS: 'soon',
    });
    expect(problems).toHaveLength(4);
    expect(problems.find((line) => line.startsWith('PORT:'))).toContain('(got "70000")');
    expect(problems.find((line) => line.startsWith('STARTUP_TIMEOUT_MS:'))).toContain('whole number');
    expect(problems.some((line) => line.startsWith('LOG_FORMAT:'))).toBe(true);
    expect(problems.some((line) => line.startsWith('WS_HEARTBEAT_MS:'))).toBe(true);
  });

  it('reads AGENT_APPROVAL_TOOLS as tool names, <server>__* or *, and refuses anything else', () => {
    expect(loadConfig({ AGENT_APPROVAL_TOOLS: ' calculator, files__* ,*' }).config.agent.approvalTools).toEqual([
      'calculator',
      'files__*',
      '*',
    ]);
    expect(problemsOf({ AGENT_APPROVAL_TOOLS: 'calculator,files*', AGENT_APPROVAL_TIMEOUT_MS: '5' })).toEqual([
      expect.stringMatching(/^AGENT_APPROVAL_TOOLS\.1: must list tool names, <server>__\* or \*/u),
      expect.stringMatching(/^AGENT_APPROVAL_TIMEOUT_MS:/u),
    ]);
  });

  it('requires a JWT_SECRET of at least 32 characters in production, without echoing it', () => {
    expect(problemsOf({ NODE_ENV: 'production' })).toEqual([expect.stringMatching(/^JWT_SECRET: is required/u)]);
    const short = problemsOf({ NODE_ENV: 'production', JWT_SECRET: 'hunter2' });
    expect(short.join()).not.toContain('hunter2');
    expect(problemsOf({ NODE_ENV: 'production', PORT: 'x' })).toHaveLength(2);
  });

  it('accepts SQLite and PostgreSQL URLs only, without echoing a URL that may hold a password', () => {
    expect(loadConfig({ DATABASE_URL: 'sqlite::memory:' }).config.database.url).toBe('sqlite::memory:');
    expect(loadConfig({ DATABASE_URL: 'postgresql://u@h/db' }).config.database.url).toBe('postgresql://u@h/db');
    const problems = problemsOf({ DATABASE_URL: 'mysql://root:hunter2@db/app' });
    expect(problems).toEqual([expect.stringMatching(/^DATABASE_URL: must be sqlite:<path> or postgres:/u)]);
    expect(problems.join()).not.toContain('hunter2');
  });

  it('runs in fleet mode only with REDIS_URL and PostgreSQL, and single-instance without REDIS_URL', () => {
    expect(loadConfig({}).config.fleet).toBeUndefined();
    expect(problemsOf({ REDIS_URL: 'redis://r:6379' })).toEqual([
      expect.stringMatching(/^REDIS_URL: fleet mode needs/u),
    ]);
    expect(problemsOf({ REDIS_URL: 'http://r:6379', DATABASE_URL: 'postgres://u@h/db' })).toEqual([
      expect.stringMatching(/^REDIS_URL: must be redis:/u),
    ]);
    expect(problemsOf({ REDIS_KEY_PREFIX: 'has space', FLEET_LEASE_TTL_MS: '10' }).map((p) => p.split(':')[0])).toEqual(
      ['REDIS_KEY_PREFIX', 'FLEET_LEASE_TTL_MS'],
    );
    const fleet = loadConfig({ REDIS_URL: 'rediss://r:6380/1', DATABASE_URL: 'postgres://u@h/db' }).config.fleet;
    expect(fleet).toEqual({ redisUrl: 'rediss://r:6380/1', keyPrefix: 'agw' });
  });

  it('requires LLM_MODEL with LLM_PROVIDER=openai, and an http(s) LLM_BASE_URL', () => {
    expect(problemsOf({ LLM_PROVIDER: 'openai' })).toEqual([expect.stringMatching(/^LLM_MODEL: is required/u)]);
    expect(problemsOf({ LLM_PROVIDER: 'openai', LLM_MODEL: 'm', LLM_BASE_URL: 'ftp://x' })).toEqual([
      expect.stringMatching(/^LLM_BASE_URL:/u),
    ]);
    expect(problemsOf({ LLM_PROVIDER: 'anthropic' })).toEqual([expect.stringMatching(/^LLM_PROVIDER:/u)]);
  });

  it('rejects agent limits out of range', () => {
    const problems = problemsOf({
      AGENT_MAX_RUNS_PER_USER: '0',
      AGENT_MAX_STEPS: '500',
      AGENT_MESSAGE_MAX_CHARS: 'lots',
    });
    expect(problems.map((line) => line.split(':')[0]).sort()).toEqual([
      'AGENT_MAX_RUNS_PER_USER',
      'AGENT_MAX_STEPS',
      'AGENT_MESSAGE_MAX_CHARS',
    ]);
  });

  describe('model settings', () => {
    const directory = mkdtempSync(join(tmpdir(), 'agent-gateway-prompt-'));
    const promptFile = join(directory, 'prompt.md');
    const blankFile = join(directory, 'blank.md');
    writeFileSync(promptFile, 'You answer in French.\nNever guess.\n');
    writeFileSync(blankFile, ' \n');

    afterAll(() => rmSync(directory, { recursive: true, force: true }));

    it('reads AGENT_SYSTEM_PROMPT_FILE once, exactly as written, and names it as the source', () => {
      expect(loadConfig({ AGENT_SYSTEM_PROMPT_FILE: promptFile }).config.agent.systemPrompt).toEqual({
        text: 'You answer in French.\nNever guess.\n',
        source: `AGENT_SYSTEM_PROMPT_FILE (${promptFile})`,
      });
      expect(loadConfig({}).config.agent.systemPrompt).toBeUndefined();
    });

    it('refuses AGENT_SYSTEM_PROMPT and AGENT_SYSTEM_PROMPT_FILE together, without echoing the prompt', () => {
      const problems = problemsOf({
        AGENT_SYSTEM_PROMPT: 'Top secret instructions',
        AGENT_SYSTEM_PROMPT_FILE: promptFile,
      });
      expect(problems).toEqual([expect.stringMatching(/^AGENT_SYSTEM_PROMPT, AGENT_SYSTEM_PROMPT_FILE: set one/u)]);
      expect(problems.join('\n')).not.toContain('Top secret');
    });

    it('refuses a prompt file that cannot be read or is blank, and a blank or oversized prompt, naming each', () => {
      const missing = join(directory, 'missing.md');
      expect(problemsOf({ AGENT_SYSTEM_PROMPT_FILE: missing })).toEqual([
        `AGENT_SYSTEM_PROMPT_FILE: cannot read the file (ENOENT) (got "${missing}")`,
      ]);
      expect(problemsOf({ AGENT_SYSTEM_PROMPT_FILE: directory })).toEqual([
        expect.stringMatching(/^AGENT_SYSTEM_PROMPT_FILE: cannot read the file \(EISDIR\)/u),
      ]);
      expect(problemsOf({ AGENT_SYSTEM_PROMPT_FILE: blankFile })).toEqual([
        expect.stringMatching(/^AGENT_SYSTEM_PROMPT_FILE: the file is empty/u),
      ]);
      const oversized = problemsOf({ AGENT_SYSTEM_PROMPT: 'x'.repeat(100_001) });
      expect(oversized).toEqual(['AGENT_SYSTEM_PROMPT: must be at most 100000 characters']);
      expect(problemsOf({ AGENT_SYSTEM_PROMPT: '   ' })).toEqual(['AGENT_SYSTEM_PROMPT: must not be blank']);
    });

    it('accepts LLM_TEMPERATURE from 0 to 2 and a positive whole LLM_MAX_TOKENS, and sends neither by default', () => {
      const { openai } = loadConfig({ LLM_TEMPERATURE: '0', LLM_MAX_TOKENS: '1' }).config.llm;
      expect(openai).toMatchObject({ temperature: 0, maxTokens: 1 });
      expect(loadConfig({ LLM_TEMPERATURE: '2' }).config.llm.openai.temperature).toBe(2);
      const defaults = loadConfig({}).config.llm.openai;
      expect(defaults.temperature).toBeUndefined();
      expect(defaults.maxTokens).toBeUndefined();
      for (const [name, value] of [
        ['LLM_TEMPERATURE', '2.5'],
        ['LLM_TEMPERATURE', '-0.1'],
        ['LLM_TEMPERATURE', 'warm'],
        ['LLM_MAX_TOKENS', '0'],
        ['LLM_MAX_TOKENS', '12.5'],
      ] as const) {
        expect(problemsOf({ [name]: value })).toEqual([
          expect.stringMatching(new RegExp(`^${name}: .*\\(got "${value}"\\)$`, 'u')),
        ]);
      }
    });

    it('sets no API key when LLM_API_KEY is unset (requests then carry no Authorization header)', () => {
      expect(loadConfig({}).config.llm.openai.apiKey).toBeUndefined();
      expect(loadConfig({ LLM_API_KEY: 'sk-live' }).config.llm.openai.apiKey).toBe('sk-live');
    });

    it('bounds the history by AGENT_HISTORY_CHARS, a positive whole number', () => {
      expect(loadConfig({ AGENT_HISTORY_CHARS: '2500' }).config.agent.historyChars).toBe(2500);
      expect(problemsOf({ AGENT_HISTORY_CHARS: '0' })).toEqual([expect.stringMatching(/^AGENT_HISTORY_CHARS:/u)]);
    });
  });

  it('waits SHUTDOWN_DELAY_MS = 5 s after SIGTERM in production, and not at all elsewhere unless it is set', () => {
    const production = { NODE_ENV: 'production', JWT_SECRET: 'a'.repeat(32) };
    expect(loadConfig(production).config.shutdown.delayMs).toBe(5_000);
    expect(loadConfig({ ...production, SHUTDOWN_DELAY_MS: '0' }).config.shutdown.delayMs).toBe(0);
    expect(loadConfig({}).config.shutdown.delayMs).toBe(0);
    expect(loadConfig({ NODE_ENV: 'test' }).config.shutdown.delayMs).toBe(0);
    expect(loadConfig({ SHUTDOWN_DELAY_MS: '3000' }).config.shutdown.delayMs).toBe(3_000);
    expect(problemsOf({ SHUTDOWN_DELAY_MS: '-1' })).toEqual([expect.stringMatching(/^SHUTDOWN_DELAY_MS:/u)]);
    // The grace-period check counts the same default: 5 s + 24 s + 2 s is over 30 s in production only.
    expect(problemsOf({ ...production, SHUTDOWN_TIMEOUT_MS: '24000' })).toEqual([
      expect.stringMatching(/\(31000 ms\) must fit in TERMINATION_GRACE_PERIOD_SECONDS \(30 s\)/u),
    ]);
    expect(loadConfig({ SHUTDOWN_TIMEOUT_MS: '24000' }).config.shutdown.timeoutMs).toBe(24_000);
  });

  it('logs JSON in production, and leaves the choice to the logger (coloured on a terminal) elsewhere', () => {
    const production = { NODE_ENV: 'production', JWT_SECRET: 'a'.repeat(32) };
    expect(loadConfig(production).config.log.format).toBe('json');
    expect(loadConfig({ ...production, LOG_FORMAT: 'auto' }).config.log.format).toBe('json');
    expect(loadConfig({ ...production, LOG_FORMAT: 'text' }).config.log.format).toBe('text');
    expect(loadConfig({}).config.log.format).toBe('auto');
    expect(loadConfig({ LOG_FORMAT: 'json' }).config.log.format).toBe('json');
  });

  it('requires SHUTDOWN_DELAY_MS + SHUTDOWN_TIMEOUT_MS + 2 s to fit in TERMINATION_GRACE_PERIOD_SECONDS', () => {
    expect(loadConfig({ SHUTDOWN_DELAY_MS: '5000' }).config.shutdown).toEqual({
      delayMs: 5_000,
      timeoutMs: 20_000,
      gracePeriodMs: 30_000,
    });
    // Cloud Run gives 10 s between SIGTERM and SIGKILL.
    const cloudRun = { TERMINATION_GRACE_PERIOD_SECONDS: '10', SHUTDOWN_DELAY_MS: '1000', SHUTDOWN_TIMEOUT_MS: '7000' };
    expect(loadConfig(cloudRun).config.shutdown.gracePeriodMs).toBe(10_000);
    expect(problemsOf({ ...cloudRun, SHUTDOWN_TIMEOUT_MS: '7001' })).toEqual([
      expect.stringMatching(/must fit in TERMINATION_GRACE_PERIOD_SECONDS \(10 s\)/u),
    ]);
    expect(problemsOf({ SHUTDOWN_TIMEOUT_MS: '60000' })).toHaveLength(1);
  });

  it('trusts an identity provider with AUTH_JWKS_URL or AUTH_ISSUER_URL, JWT_ISSUER and JWT_AUDIENCE required', () => {
    const provider = { JWT_ISSUER: 'https://id.example.com/', JWT_AUDIENCE: 'chat' };
    const { config, warnings } = loadConfig({ ...provider, AUTH_JWKS_URL: 'https://id.example.com/jwks' });
    expect(config.auth).toEqual({
      usingDevelopmentSecret: false,
      issuer: 'https://id.example.com/',
      audience: 'chat',
      userClaim: 'sub',
      jwks: {
        jwksUrl: 'https://id.example.com/jwks',
        algorithms: ['RS256', 'ES256', 'EdDSA'],
        refreshMs: 600_000,
        cooldownMs: 30_000,
      },
    });
    // No JWT_SECRET beside a provider: HS256 is off, and the development secret is not used.
    expect(config.auth.jwtSecret).toBeUndefined();
    expect(warnings).toEqual([]);
    const discovery = loadConfig({
      ...provider,
      AUTH_ISSUER_URL: 'https://id.example.com/',
      AUTH_ALGORITHMS: 'ES256, PS256',
      AUTH_USER_CLAIM: 'email',
      JWT_SECRET: 'b'.repeat(32),
    }).config.auth;
    expect(discovery.jwks).toMatchObject({ issuerUrl: 'https://id.example.com/', algorithms: ['ES256', 'PS256'] });
    expect(discovery).toMatchObject({ jwtSecret: 'b'.repeat(32), userClaim: 'email' });

    expect(problemsOf({ AUTH_JWKS_URL: 'https://id.example.com/jwks' }).map((p) => p.split(':')[0])).toEqual([
      'JWT_ISSUER',
      'JWT_AUDIENCE',
    ]);
    expect(
      problemsOf({ ...provider, AUTH_JWKS_URL: 'https://a/jwks', AUTH_ISSUER_URL: 'https://a' }).map(
        (p) => p.split(':')[0],
      ),
    ).toEqual(['AUTH_JWKS_URL, AUTH_ISSUER_URL']);
    expect(problemsOf({ ...provider, AUTH_JWKS_URL: 'ftp://a/jwks', AUTH_ALGORITHMS: 'RS256,HS256' })).toEqual([
      expect.stringMatching(/^AUTH_JWKS_URL: must be an http\(s\) URL/u),
      expect.stringMatching(
        /^AUTH_ALGORITHMS\.1: must list algorithms among RS256.*\(HS256 is enabled by JWT_SECRET\)/u,
      ),
    ]);
  });

  it('needs no JWT_SECRET in production with an identity provider, and warns about a plain-http one', () => {
    const provider = { NODE_ENV: 'production', JWT_ISSUER: 'https://id', JWT_AUDIENCE: 'chat' };
    expect(loadConfig({ ...provider, AUTH_JWKS_URL: 'https://id/jwks' }).warnings).toEqual([]);
    expect(loadConfig({ ...provider, AUTH_JWKS_URL: 'http://keycloak:8080/jwks' }).warnings).toEqual([
      expect.stringMatching(/^AUTH_JWKS_URL is plain http/u),
    ]);
    expect(problemsOf({ ...provider, AUTH_JWKS_URL: 'https://id/jwks', JWT_SECRET: 'short' })).toEqual([
      expect.stringMatching(/^JWT_SECRET: must be at least 32 characters/u),
    ]);
  });

  it('shares one origin allow-list between WebSocket and HTTP, and allows no cross-origin page by default in production', () => {
    const shared = loadConfig({ ALLOWED_ORIGINS: 'https://app.example.com' }).config;
    expect(shared.ws.allowedOrigins).toEqual(['https://app.example.com']);
    expect(shared.httpEdge).toMatchObject({ allowedOrigins: ['https://app.example.com'], anyOrigin: false });
    expect(loadConfig({ WS_ALLOWED_ORIGINS: 'https://b.example.com' }).config.httpEdge.allowedOrigins).toEqual([
      'https://b.example.com',
    ]);
    expect(loadConfig({}).config.httpEdge.anyOrigin).toBe(true);
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'a'.repeat(32) }).config.httpEdge).toMatchObject({
      allowedOrigins: [],
      anyOrigin: false,
      hsts: true,
    });
    expect(problemsOf({ ALLOWED_ORIGINS: 'https://a', WS_ALLOWED_ORIGINS: 'https://b' })).toEqual([
      expect.stringMatching(/^ALLOWED_ORIGINS, WS_ALLOWED_ORIGINS: set one/u),
    ]);
  });
});
