import { afterEach, describe, expect, it } from '@jest/globals';
import { firstValueFrom, take, toArray } from 'rxjs';
import { ConnectionRegistry } from '../../src/gateway/connection.registry.js';
import { LLM_PROVIDER } from '../../src/llm/llm.constants.js';
import { LlmUnavailableError } from '../../src/llm/llm.errors.js';
import { scrape, type Scrape } from '../support/prometheus.js';
import { ScriptedModel } from '../support/scripted-model.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';

const PHASES = ['starting', 'ready', 'failed', 'draining'];
const REFUSALS = [
  'unauthorized',
  'token_expired',
  'origin_not_allowed',
  'not_ready',
  'shutting_down',
  'internal_error',
] as const;

/** How much a series moved between two scrapes (an absent series counts as 0). */
function moved(before: Scrape, after: Scrape, name: string, labels?: Record<string, string>): number {
  return (after.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0);
}

function phases(metrics: Scrape): Record<string, number | undefined> {
  return Object.fromEntries(PHASES.map((phase) => [phase, metrics.value('agent_gateway_readiness_phase', { phase })]));
}

const apps: TestApp[] = [];

async function start(options: Parameters<typeof startTestApp>[0]): Promise<TestApp> {
  const app = await startTestApp(options);
  apps.push(app);
  return app;
}

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

describe('GET /metrics', () => {
  it('answers before ready with phase starting, counts a held connection and its early frames, then shows ready and how long each dependency took', async () => {
    const app = await start({ gated: ['llm'] });
    await app.gates.reached('llm');

    const starting = await scrape(app.url);
    expect(starting.status).toBe(200);
    expect(starting.contentType).toMatch(/^text\/plain; version=0\.0\.4/u);
    expect(starting.cacheControl).toBe('no-store');
    expect(phases(starting)).toEqual({ starting: 1, ready: 0, failed: 0, draining: 0 });
    expect(starting.value('agent_gateway_dependency_init_duration_seconds', { dependency: 'llm' })).toBeUndefined();

    const held = firstValueFrom(app.app.get(ConnectionRegistry).earlyFrames$.pipe(take(2), toArray()));
    const client = app.connect({
      token: signToken({ sub: 'alice' }),
      sendOnOpen: [
        { event: 'ping', data: { requestId: 'p1' } },
        { event: 'ping', data: { requestId: 'p2' } },
      ],
    });
    await held;
    const holding = await scrape(app.url);
    expect(holding.value('agent_gateway_ws_connections_open')).toBe(1);
    expect(holding.value('agent_gateway_ws_early_frames_total', { outcome: 'held' })).toBe(2);
    expect(holding.value('agent_gateway_ws_early_frames_total', { outcome: 'dropped' })).toBe(0);
    expect(holding.value('agent_gateway_ws_connections_total', { outcome: 'established' })).toBe(0);

    app.gates.release('llm');
    await app.readiness.whenReady(5_000);
    await client.waitFor('pong', (data) => data.requestId === 'p2');
    const ready = await scrape(app.url);
    expect(phases(ready)).toEqual({ starting: 0, ready: 1, failed: 0, draining: 0 });
    for (const dependency of ['llm', 'threads', 'agent']) {
      const seconds = ready.value('agent_gateway_dependency_init_duration_seconds', { dependency });
      const durationMs = app.readiness.snapshot.dependencies.find((dep) => dep.name === dependency)?.durationMs;
      expect(seconds).toBe((durationMs ?? Number.NaN) / 1000);
    }
    expect(ready.value('agent_gateway_ws_connections_total', { outcome: 'established' })).toBe(1);
    expect(ready.value('agent_gateway_ws_frames_received_total')).toBe(2);
    // connection_established and the two pongs.
    expect(ready.value('agent_gateway_ws_frames_sent_total')).toBe(3);
  });

  it('documents every metric and includes the process metrics with the event-loop lag', async () => {
    const app = await start({ ready: true });
    const metrics = await scrape(app.url);
    const ours = [...metrics.types.keys()].filter((name) => name.startsWith('agent_gateway_'));
    expect(ours.sort()).toEqual([
      'agent_gateway_agent_run_duration_seconds',
      'agent_gateway_agent_runs_started_total',
      'agent_gateway_agent_runs_total',
      'agent_gateway_db_statements_total',
      'agent_gateway_db_transactions_total',
      'agent_gateway_dependency_init_duration_seconds',
      // PostgreSQL only: the instance's lease (the fleet's other metrics need REDIS_URL: fleet.spec.ts).
      ...(process.env.TEST_DATABASE_ENGINE === 'postgres' ? ['agent_gateway_fleet_lease_held'] : []),
      'agent_gateway_readiness_phase',
      'agent_gateway_startup_timeout_seconds',
      'agent_gateway_ws_closes_total',
      'agent_gateway_ws_connections_open',
      'agent_gateway_ws_connections_total',
      'agent_gateway_ws_early_frames_total',
      'agent_gateway_ws_frames_received_total',
      'agent_gateway_ws_frames_sent_total',
      'agent_gateway_ws_limited_total',
    ]);
    for (const name of ours) expect(metrics.help.get(name)?.length ?? 0).toBeGreaterThan(20);
    expect(metrics.types.get('agent_gateway_agent_run_duration_seconds')).toBe('histogram');
    expect(metrics.types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
    expect(metrics.types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(metrics.value('process_start_time_seconds')).toEqual(expect.any(Number));
  });

  it('keeps the counts of each application apart', async () => {
    const [first, second] = await Promise.all([start({ ready: true }), start({ ready: true })]);
    await first.connectAs('alice');
    const [one, two] = await Promise.all([scrape(first.url), scrape(second.url)]);
    expect(one.value('agent_gateway_ws_connections_total', { outcome: 'established' })).toBe(1);
    expect(two.value('agent_gateway_ws_connections_total', { outcome: 'established' })).toBe(0);
    expect(two.value('agent_gateway_ws_connections_open')).toBe(0);
  });

  it('moves the connection, frame and run counters by exactly what one session did', async () => {
    const app = await start({ ready: true });
    const connections = app.app.get(ConnectionRegistry);
    const before = await scrape(app.url);

    const forged = app.connect({
      token: signToken({ sub: 'mallory' }, { secret: 'not-the-secret-0123456789-abcdefghij' }),
    });
    expect((await forged.closed).code).toBe(1008);
    expect(await connections.whenAllClosed(5_000)).toBe(true);

    const alice = await app.connectAs('alice');
    const run = await alice.request('r1', 'hello metrics');
    expect(run.at(-1)?.event).toBe('agent_completed');
    const during = await scrape(app.url);
    expect(during.value('agent_gateway_ws_connections_open')).toBe(1);

    expect((await alice.close()).code).toBe(1000);
    expect(await connections.whenAllClosed(5_000)).toBe(true);
    const after = await scrape(app.url);

    const delta = (name: string, labels?: Record<string, string>): number => moved(before, after, name, labels);
    expect(delta('agent_gateway_ws_connections_total', { outcome: 'established' })).toBe(1);
    expect(delta('agent_gateway_ws_connections_total', { outcome: 'unauthorized' })).toBe(1);
    for (const outcome of REFUSALS.filter((refusal) => refusal !== 'unauthorized')) {
      expect([outcome, delta('agent_gateway_ws_connections_total', { outcome })]).toEqual([outcome, 0]);
    }
    expect(delta('agent_gateway_ws_closes_total', { code: '1008' })).toBe(1);
    expect(delta('agent_gateway_ws_closes_total', { code: '1000' })).toBe(1);
    expect(after.series('agent_gateway_ws_closes_total').reduce((sum, series) => sum + series.value, 0)).toBe(2);
    expect(after.value('agent_gateway_ws_connections_open')).toBe(0);

    expect(delta('agent_gateway_ws_frames_received_total')).toBe(1);
    expect(forged.frames.map((frame) => frame.event)).toEqual(['error']);
    expect(delta('agent_gateway_ws_frames_sent_total')).toBe(forged.frames.length + alice.frames.length);

    expect(delta('agent_gateway_agent_runs_started_total')).toBe(1);
    expect(delta('agent_gateway_agent_runs_total', { status: 'completed' })).toBe(1);
    for (const status of ['failed', 'cancelled', 'interrupted']) {
      expect([status, delta('agent_gateway_agent_runs_total', { status })]).toEqual([status, 0]);
    }
    expect(delta('agent_gateway_agent_run_duration_seconds_count', { status: 'completed' })).toBe(1);
    expect(after.value('agent_gateway_agent_run_duration_seconds_bucket', { status: 'completed', le: '+Inf' })).toBe(1);
    expect(after.value('agent_gateway_agent_run_duration_seconds_sum', { status: 'completed' })).toBeGreaterThanOrEqual(
      0,
    );
  });

  it('counts cancelled and failed runs by status and error code, and refused requests by code', async () => {
    const model = new ScriptedModel();
    const app = await start({
      ready: true,
      env: { AGENT_MAX_RUNS_PER_USER: '1' },
      override: (builder) => builder.overrideProvider(LLM_PROVIDER).useValue(model),
    });
    const before = await scrape(app.url);
    const alice = await app.connectAs('alice');

    alice.send('agent_request', { requestId: 'r1', message: 'first' });
    const first = await alice.waitFor('agent_started', (data) => data.requestId === 'r1');
    alice.send('agent_request', { requestId: 'r2', message: 'one too many' });
    expect((await alice.waitFor('agent_error', (data) => data.requestId === 'r2')).data.code).toBe('RATE_LIMITED');
    await model.nextCall();
    alice.send('agent_cancel', { runId: first.data.runId });
    expect((await alice.runEnd('r1')).event).toBe('agent_cancelled');

    alice.send('agent_request', { requestId: 'r3', message: 'third' });
    (await model.nextCall()).fail(new LlmUnavailableError('endpoint unreachable'));
    expect((await alice.runEnd('r3')).data.code).toBe('LLM_UNAVAILABLE');
    const after = await scrape(app.url);

    const delta = (name: string, labels?: Record<string, string>): number => moved(before, after, name, labels);
    expect(delta('agent_gateway_agent_runs_started_total')).toBe(2);
    expect(delta('agent_gateway_agent_runs_total', { status: 'refused', code: 'RATE_LIMITED' })).toBe(1);
    expect(delta('agent_gateway_agent_runs_total', { status: 'cancelled' })).toBe(1);
    expect(delta('agent_gateway_agent_runs_total', { status: 'failed', code: 'LLM_UNAVAILABLE' })).toBe(1);
    expect(delta('agent_gateway_agent_runs_total', { status: 'completed' })).toBe(0);
    expect(delta('agent_gateway_agent_run_duration_seconds_count', { status: 'cancelled' })).toBe(1);
    expect(delta('agent_gateway_agent_run_duration_seconds_count', { status: 'failed' })).toBe(1);
  });
});
