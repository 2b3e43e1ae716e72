import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { SmokeReport } from '../../src/smoke/smoke-check.js';
import { SMOKE_STEPS } from '../../src/smoke/smoke-check.js';
import { freePort, ServerProcess } from '../support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../support/tokens.js';

/** The command as the image runs it: compiled, no loader, no npm. */
const SMOKE_COMMAND = fileURLToPath(new URL('../../dist/smoke/smoke.command.js', import.meta.url));
const run = promisify(execFile);

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function smoke(
  args: readonly string[],
  env: Record<string, string> = { JWT_SECRET: TEST_JWT_SECRET },
): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(process.execPath, [SMOKE_COMMAND, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

async function smokeJson(
  args: readonly string[],
  env?: Record<string, string>,
): Promise<{ code: number; report: SmokeReport }> {
  const { code, stdout } = await smoke([...args, '--json'], env);
  return { code, report: JSON.parse(stdout) as SmokeReport };
}

describe('the smoke command against a spawned instance', () => {
  const servers: ServerProcess[] = [];
  const start = async (env: Record<string, string>): Promise<ServerProcess> => {
    const server = await ServerProcess.start({ JWT_SECRET: TEST_JWT_SECRET, ...env });
    servers.push(server);
    await server.waitForLine((line) => line.includes('listening on'));
    return server;
  };
  let healthy: ServerProcess;

  beforeAll(async () => {
    healthy = await start({});
    await healthy.ready();
  });

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
  });

  it('passes every step against a healthy instance, the tool call included, and exits 0', async () => {
    const { code, report } = await smokeJson(['--url', healthy.url, '--user', 'smoke-healthy']);
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.failedStep).toBeUndefined();
    expect(report.steps.map((step) => [step.step, step.ok])).toEqual(SMOKE_STEPS.map((step) => [step, true]));
    expect(report.run?.tools).toEqual(['calculator']);
    for (const step of report.steps) expect(step.ms).toBeGreaterThanOrEqual(0);
    const established = report.steps.find((step) => step.step === 'established');
    expect(established).toMatchObject({ limitMs: 2_000, detail: 'user smoke-healthy, protocol 1' });
    // The thread it listed is the user's, in the instance's own history.
    const response = await fetch(`${healthy.url}/threads`, {
      headers: { authorization: `Bearer ${signToken({ sub: 'smoke-healthy' })}` },
    });
    const threads = (await response.json()) as { threads: Array<{ id: string }> };
    expect(threads.threads.map((thread) => thread.id)).toContain(report.run?.threadId);
  });

  it('prints one line per step for a person, and the verdict last', async () => {
    const { code, stdout } = await smoke(['--url', healthy.url, '--user', 'smoke-text']);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toBe(`smoke check of ${healthy.url}/`);
    expect(lines.slice(1, -1).map((line) => line.trim().split(/\s+/u).slice(0, 2))).toEqual(
      SMOKE_STEPS.map((step) => ['ok', step]),
    );
    expect(lines.at(-1)).toMatch(/^passed: 8 steps in [\d.]+ ms$/u);
  });

  it('names the failing step and the error frame when the model is down, and exits 1', async () => {
    const deadModel = await start({
      LLM_PROVIDER: 'openai',
      LLM_MODEL: 'gpt-test',
      LLM_API_KEY: 'test-key',
      LLM_BASE_URL: `http://127.0.0.1:${await freePort()}/v1`,
      LLM_MAX_RETRIES: '0',
    });
    await deadModel.ready();
    const { code, report } = await smokeJson(['--url', deadModel.url, '--user', 'smoke-dead-model']);
    expect(code).toBe(1);
    expect(report.failedStep).toBe('first_delta');
    expect(report.steps.map((step) => [step.step, step.ok])).toEqual([
      ['live', true],
      ['ready', true],
      ['connect', true],
      ['established', true],
      ['first_delta', false],
    ]);
    expect(report.steps.at(-1)).toMatchObject({
      detail: expect.stringMatching(/^agent_error LLM_UNAVAILABLE: /u),
      received: { event: 'agent_error', data: expect.objectContaining({ code: 'LLM_UNAVAILABLE', retryable: true }) },
    });
  });

  it('stops at ready with the 503 body that names what is missing', async () => {
    const warmingUp = await start({ LOCAL_LLM_WARMUP_MS: '600000' });
    const { code, report } = await smokeJson(['--url', warmingUp.url, '--user', 'smoke-not-ready']);
    expect(code).toBe(1);
    expect(report.failedStep).toBe('ready');
    expect(report.steps.at(-1)).toMatchObject({
      detail: 'GET /health/ready answered 503',
      received: {
        status: 503,
        body: expect.objectContaining({
          status: 'error',
          details: expect.objectContaining({ llm: expect.objectContaining({ state: 'initializing' }) }),
        }),
      },
    });
  });

  it('reports the close code and the error frame of a refused token at established', async () => {
    const { code, report } = await smokeJson(['--url', healthy.url, '--token', 'not-a-token']);
    expect(code).toBe(1);
    expect(report.failedStep).toBe('established');
    expect(report.steps.at(-1)?.received).toMatchObject({ event: 'error', data: { code: 'UNAUTHORIZED' } });
  });

  it('fails a step over its limit, and the whole check at --timeout', async () => {
    const slow = await start({ LOCAL_LLM_TOKEN_DELAY_MS: '50' });
    await slow.ready();
    const overLimit = await smokeJson(['--url', slow.url, '--user', 'smoke-slow', '--max-first-delta-ms', '1']);
    expect(overLimit.code).toBe(1);
    expect(overLimit.report.failedStep).toBe('first_delta');
    expect(overLimit.report.steps.at(-1)?.detail).toMatch(/^took [\d.]+ ms, over the limit of 1 ms$/u);

    // The embedded model answers this with 33 deltas, 50 ms apart: not within 500 ms.
    const timedOut = await smokeJson([
      '--url',
      slow.url,
      '--user',
      'smoke-slow-2',
      '--timeout',
      '500ms',
      '--message',
      'Please summarise what a readiness probe is for, in a few short sentences of plain words.',
    ]);
    expect(timedOut.code).toBe(1);
    expect(timedOut.report.failedStep).toBe('completed');
    expect(timedOut.report.steps.at(-1)).toMatchObject({ detail: 'no answer within --timeout' });
  });

  it('fails at live when nothing listens', async () => {
    const { code, report } = await smokeJson(['--url', `http://127.0.0.1:${await freePort()}`, '--user', 'x']);
    expect(code).toBe(1);
    expect(report.failedStep).toBe('live');
    expect(report.steps).toHaveLength(1);
    expect(report.steps[0]?.detail).toMatch(/^GET \/health\/live failed: .*ECONNREFUSED/u);
  });

  it('exits 2 with its usage for bad arguments, and 0 for --help', async () => {
    const bad = await smoke(['--url', 'ftp://x']);
    expect(bad).toMatchObject({ code: 2, stdout: '' });
    expect(bad.stderr).toMatch(
      /^smoke: --url: http:\/\/ or https:\/\/ \(got ftp:\)\nsmoke: --token \(or SMOKE_TOKEN\) or --user is required\n\nusage: /u,
    );
    const help = await smoke(['--help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^usage: npm run --silent smoke -- --url/u);
  });
});
