import { describe, expect, it } from '@jest/globals';
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
      http: { port: 3000, host: '0.0.0.0' },
      auth: { jwtSecret: DEVELOPMENT_JWT_SECRET, usingDevelopmentSecret: true, issuer: undefined, audience: undefined },
      readiness: { startupTimeoutMs: 60_000 },
      ws: { readyWaitMs: 10_000, maxPayloadBytes: 262_144, heartbeatMs: 25_000, allowedOrigins: [] },
      llm: { local: { warmupMs: 0, tokenDelayMs: 0 } },
      log: { level: 'log', format: 'json' },
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
      WS_ALLOWED_ORIGINS: ' https://a.example.com ,https://b.example.com,, ',
      LOCAL_LLM_WARMUP_MS: '1500',
      LOCAL_LLM_TOKEN_DELAY_MS: '20',
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'text',
    });
    expect(warnings).toEqual([]);
    expect(config.http).toEqual({ port: 8080, host: '127.0.0.1' });
    expect(config.auth).toEqual({
      jwtSecret: 'a'.repeat(32),
      usingDevelopmentSecret: false,
      issuer: 'https://auth.example.com',
      audience: 'agent-gateway',
    });
    expect(config.ws).toEqual({
      readyWaitMs: 0,
      maxPayloadBytes: 65_536,
      heartbeatMs: 10_000,
      allowedOrigins: ['https://a.example.com', 'https://b.example.com'],
    });
    expect(config.llm.local).toEqual({ warmupMs: 1500, tokenDelayMs: 20 });
    expect(config.log).toEqual({ level: 'debug', format: 'text' });
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

  it('requires a JWT_SECRET of at least 32 characters in production, without echoing it', () => {
    expect(problemsOf({ NODE_ENV: 'production' })).toEqual([expect.stringMatching(/^JWT_SECRET: is required/u)]);
    const short = problemsOf({ NODE_ENV: 'production', JWT_SECRET: 'hunter2' });
    expect(short.join()).not.toContain('hunter2');
    expect(problemsOf({ NODE_ENV: 'production', PORT: 'x' })).toHaveLength(2);
  });
});
