import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { DatabaseService } from '../../src/database/database.service.js';
import type { TestingModuleBuilder } from '@nestjs/testing';
import { FleetBus } from '../../src/fleet/fleet-bus.service.js';
import { RunStreams } from '../../src/fleet/run-streams.js';
import type { RunFrame } from '../../src/protocol/events.js';
import { LLM_PROVIDER } from '../../src/llm/llm.constants.js';
import { ThreadsService } from '../../src/threads/threads.service.js';
import { createTestDatabase, POSTGRES_SKIP_REASON, POSTGRES_URL, type TestDatabase } from '../support/databases.js';
import { createFleetEnvironment, FLEET_AVAILABLE, FLEET_SKIP_REASON, type FleetEnvironment } from '../support/fleet.js';
import { type ScriptedCall, ScriptedModel } from '../support/scripted-model.js';
import { freePort } from '../support/server-process.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';
import type { ReceivedFrame, TestClient } from '../support/ws-client.js';

/** An instance of the fleet under test and the model it calls. */
interface Replica {
  readonly app: TestApp;
  readonly model: ScriptedModel;
}

let fleet: FleetEnvironment | undefined;
const replicas: Replica[] = [];
let proxy: TcpProxy | undefined;

async function replica(
  env: Record<string, string> = {},
  override: (builder: TestingModuleBuilder) => TestingModuleBuilder = (builder) => builder,
): Promise<Replica> {
  if (fleet === undefined) throw new Error('no fleet environment');
  const model = new ScriptedModel();
  const app = await startTestApp({
    ready: true,
    env: { ...fleet.env, ...env },
    override: (builder) => override(builder.overrideProvider(LLM_PROVIDER).useValue(model)),
  });
  const started = { app, model };
  replicas.push(started);
  return started;
}

async function startedRun(client: TestClient, requestId: string): Promise<ReceivedFrame> {
  client.send('agent_request', { requestId, message: 'hello' });
  return client.waitFor('agent_started', (data) => data.requestId === requestId);
}

/** `promise`, or a failure naming `what` after `ms` (so that the cleanup after it still runs). */
async function withinMs<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A way to Redis that the test can cut: the instances get `viaProxy` as their `REDIS_URL`. */
async function redisBehindProxy(): Promise<{ redis: TcpProxy; viaProxy: string }> {
  const target = new URL(process.env.TEST_REDIS_URL ?? '');
  const redis = new TcpProxy(await freePort(), { host: target.hostname, port: Number(target.port || 6379) });
  proxy = redis;
  await redis.up();
  return { redis, viaProxy: `redis://127.0.0.1:${redis.port}${target.pathname}` };
}

/** A run of `user` started on `home` (request `r1`), its model call not answered yet. */
async function runOn(
  home: Replica,
  user = 'alice',
): Promise<{ owner: TestClient; runId: unknown; call: ScriptedCall }> {
  const owner = await home.app.connectAs(user);
  const started = await startedRun(owner, 'r1');
  return { owner, runId: started.data.runId, call: await home.model.nextCall() };
}

/** The seqs of one run's events as a client received them. */
const seqs = (client: TestClient, runId: unknown): number[] => client.runFrames(runId).map((f) => Number(f.data.seq));

const upTo = (n: number): number[] => Array.from({ length: n }, (_, index) => index + 1);

async function readyBody(app: TestApp): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${app.url}/health/ready`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function metricsOf(app: TestApp): Promise<string> {
  return (await fetch(`${app.url}/metrics`)).text();
}

const postgresDescribe = POSTGRES_URL === undefined || POSTGRES_URL === '' ? describe.skip : describe;

if (POSTGRES_URL === undefined || POSTGRES_URL === '') {
  describe('several instances on PostgreSQL without REDIS_URL', () => {
    it.skip(POSTGRES_SKIP_REASON, () => {});
  });
}

postgresDescribe('several instances on PostgreSQL without REDIS_URL', () => {
  let database: TestDatabase | undefined;
  const apps: TestApp[] = [];

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    await database?.drop();
    database = undefined;
  });

  it('warns that runs are per instance as soon as it sees another live instance', async () => {
    database = await createTestDatabase('postgres');
    apps.push(await startTestApp({ ready: true, env: { ...database.env } }));
    const second = await startTestApp({ ready: true, env: { ...database.env } });
    apps.push(second);
    expect(second.logs.messages('warn').some((line) => line.includes('REDIS_URL is not set'))).toBe(true);
  });
});

const fleetDescribe = FLEET_AVAILABLE ? describe : describe.skip;

if (!FLEET_AVAILABLE) {
  describe('fleet mode', () => {
    it.skip(FLEET_SKIP_REASON, () => {});
  });
}

fleetDescribe('fleet mode (two instances, one PostgreSQL schema, one Redis)', () => {
  beforeEach(async () => {
    fleet = await createFleetEnvironment();
  });

  afterEach(async () => {
    try {
      const closing = Promise.all(replicas.splice(0).map(({ app }) => app.close()));
      await withinMs(closing, 12_000, 'closing the instances');
      await proxy?.down();
    } finally {
      // Whatever happened above, the schema and the keys go: a leftover outlives the test run.
      proxy = undefined;
      await fleet?.drop();
      fleet = undefined;
    }
  });

  it('follows a run from the other instance: stored events, then live ones, each once and in order', async () => {
    const a = await replica();
    const b = await replica();
    const { owner, runId, call } = await runOn(a);
    call.text('one ', 'two ');
    await owner.waitFor('agent_message_delta', (data) => data.text === 'two ');

    const follower = await b.app.connectAs('alice');
    follower.send('resume', { requestId: 'x1', runId, afterSeq: 0 });
    const resumed = await follower.waitFor('resumed');
    const sent = owner.runFrames(runId).length;
    expect(resumed.data).toMatchObject({ recovered: true, status: 'running', replayed: sent });
    await follower.waitFor('agent_message_delta', (data) => data.text === 'two ');
    const during = await metricsOf(b.app);
    expect(during).toMatch(/^agent_gateway_fleet_lease_held 1$/mu);
    expect(during).toMatch(/^agent_gateway_fleet_bus_up 1$/mu);

    call.text('three').finish();
    const end = await follower.runEnd('r1');
    expect(end.event).toBe('agent_completed');
    const after = await metricsOf(b.app);
    expect(after).toMatch(/^agent_gateway_fleet_followers 0$/mu);
    expect(Number(/^agent_gateway_fleet_deliveries_total (\d+)$/mu.exec(after)?.[1])).toBeGreaterThan(0);
    await owner.runEnd('r1');
    expect(seqs(follower, runId)).toEqual(upTo(owner.runFrames(runId).length));
    expect(follower.runFrames(runId)).toEqual(owner.runFrames(runId));
  });

  it('joins a run mid-stream with the replay and the live events overlapping, without a gap or a duplicate', async () => {
    const a = await replica();
    const b = await replica();
    const { owner, runId, call } = await runOn(a);
    const followers = await Promise.all([b.app.connectAs('alice'), b.app.connectAs('alice')]);
    // The model keeps streaming while the followers replay: their replay meets the live stream.
    for (let index = 0; index < 300; index += 1) call.text(`w${index} `);
    followers[0]?.send('resume', { runId, afterSeq: 0 });
    followers[1]?.send('resume', { runId, afterSeq: 5 });
    for (let index = 300; index < 600; index += 1) call.text(`w${index} `);
    call.finish();
    await owner.runEnd('r1');
    const expected = owner.runFrames(runId);
    for (const [index, follower] of followers.entries()) {
      await follower.runEnd('r1');
      const afterSeq = index === 0 ? 0 : 5;
      expect(follower.runFrames(runId)).toEqual(expected.slice(afterSeq));
    }
  });

  it('cancels a run from the other instance: every follower gets agent_cancelled', async () => {
    const a = await replica();
    const b = await replica();
    const { owner, runId, call } = await runOn(a);
    call.text('partial ');
    const other = await b.app.connectAs('alice');
    other.send('resume', { runId, afterSeq: 0 });
    await other.waitFor('agent_message_delta');

    other.send('agent_cancel', { requestId: 'c1', runId });
    await call.aborted.promise;
    expect((await owner.runEnd('r1')).event).toBe('agent_cancelled');
    expect((await other.runEnd('r1')).event).toBe('agent_cancelled');
    const stored = await a.app.app.get(ThreadsService).findRun('alice', String(runId));
    expect(stored.status).toBe('cancelled');
  });

  it('refuses to cancel a run of another user on another instance as if it did not exist', async () => {
    const a = await replica();
    const b = await replica();
    const owner = await a.app.connectAs('alice');
    const started = await startedRun(owner, 'r1');
    await a.model.nextCall();
    const mallory = await b.app.connectAs('mallory');
    mallory.send('agent_cancel', { requestId: 'c1', runId: started.data.runId });
    const error = await mallory.waitFor('error', (data) => data.requestId === 'c1');
    expect(error.data.code).toBe('RUN_NOT_FOUND');
  });

  it('takes a tool_approval sent to the other instance to the run waiting for it; refuses a wrong call or user there', async () => {
    const a = await replica({ AGENT_APPROVAL_TOOLS: 'calculator' });
    const b = await replica({ AGENT_APPROVAL_TOOLS: 'calculator' });
    const { owner, runId, call } = await runOn(a);
    call.toolCall({ id: 'c1', name: 'calculator', arguments: '{"expression":"6 * 7"}' }).finish();
    await owner.waitFor('tool_approval_required', (data) => data.toolCallId === 'c1');
    const other = await b.app.connectAs('alice');
    other.send('resume', { runId, afterSeq: 0 });
    await other.waitFor('tool_approval_required', (data) => data.toolCallId === 'c1');

    other.send('tool_approval', { requestId: 'wrong', runId, toolCallId: 'c9', approved: true });
    expect((await other.waitFor('error', (data) => data.requestId === 'wrong')).data.code).toBe(
      'TOOL_CALL_NOT_PENDING',
    );
    const mallory = await b.app.connectAs('mallory');
    mallory.send('tool_approval', { requestId: 'steal', runId, toolCallId: 'c1', approved: false });
    expect((await mallory.waitFor('error', (data) => data.requestId === 'steal')).data.code).toBe('RUN_NOT_FOUND');

    other.send('tool_approval', { runId, toolCallId: 'c1', approved: true });
    await owner.waitFor('tool_completed', (data) => data.callId === 'c1');
    (await a.model.nextCall()).text('42.').finish();
    expect((await other.runEnd('r1')).event).toBe('agent_completed');
    await owner.runEnd('r1');
    expect(other.runFrames(runId)).toEqual(owner.runFrames(runId));
    expect(owner.runFrames(runId).map((frame) => frame.event)).toContain('tool_executing');
  });

  it('holds the per-user limits across the fleet', async () => {
    const a = await replica({ WS_MAX_CONNECTIONS_PER_USER: '2', AGENT_MAX_RUNS_PER_USER: '1' });
    const b = await replica({ WS_MAX_CONNECTIONS_PER_USER: '2', AGENT_MAX_RUNS_PER_USER: '1' });
    const first = await a.app.connectAs('alice');
    const onB = await b.app.connectAs('alice');
    const third = a.app.connect({ token: signToken({ sub: 'alice' }) });
    const refusal = await third.waitFor('error');
    expect(refusal.data.code).toBe('TOO_MANY_CONNECTIONS');
    expect((await third.closed).code).toBe(1008);
    // Someone else is not limited by alice's connections.
    await b.app.connectAs('bob');
    // A closed connection frees its place on every instance.
    await onB.close();
    const again = await b.app.connectAs('alice');

    await startedRun(first, 'r1');
    await a.model.nextCall();
    again.send('agent_request', { requestId: 'r2', message: 'hello' });
    const refused = await again.waitFor('agent_error', (data) => data.requestId === 'r2');
    expect(refused.data.code).toBe('RATE_LIMITED');
  });

  it('counts the connections of an instance that died only until its lease expires', async () => {
    const a = await replica({ WS_MAX_CONNECTIONS_PER_USER: '1', FLEET_LEASE_TTL_MS: '600' });
    const b = await replica({ WS_MAX_CONNECTIONS_PER_USER: '1', FLEET_LEASE_TTL_MS: '600' });
    await a.app.connectAs('alice');
    const refused = b.app.connect({ token: signToken({ sub: 'alice' }) });
    expect((await refused.waitFor('error')).data.code).toBe('TOO_MANY_CONNECTIONS');
    // A freezes: its count of alice's connection stays in Redis, but its lease runs out.
    const dead = a.app.app.get(DatabaseService);
    dead.lease?.stop();
    await dead.db.deleteFrom('instances').where('id', '=', dead.instanceId).execute();
    // B learns who is alive within a third of a lease; a client retries as the SDK would, each
    // attempt answered (established, or refused with TOO_MANY_CONNECTIONS) before the next.
    let attempts = 0;
    for (;;) {
      attempts += 1;
      const client = b.app.connect({ token: signToken({ sub: 'alice' }) });
      const answer = await client.waitFor(['connection_established', 'error']);
      if (answer.event === 'connection_established') break;
      expect(answer.data.code).toBe('TOO_MANY_CONNECTIONS');
      await client.closed;
    }
    expect(attempts).toBeGreaterThanOrEqual(1);
  });

  it('marks the runs of an instance whose lease expired interrupted, and tells their followers', async () => {
    const a = await replica({ FLEET_LEASE_TTL_MS: '600' });
    const b = await replica({ FLEET_LEASE_TTL_MS: '600' });
    const owner = await a.app.connectAs('alice');
    const started = await startedRun(owner, 'r1');
    const runId = String(started.data.runId);
    (await a.model.nextCall()).text('sent before the end ');
    const follower = await b.app.connectAs('alice');
    follower.send('resume', { runId, afterSeq: 0 });
    await follower.waitFor('agent_message_delta');

    // A stops renewing as a frozen or partitioned process would: B must decide it is dead.
    const sent = owner.runFrames(runId).length;
    a.app.app.get(DatabaseService).lease?.stop();
    const end = await follower.runEnd('r1');
    expect(end.data).toMatchObject({ code: 'RUN_INTERRUPTED', seq: sent + 1 });
    const threads = b.app.app.get(ThreadsService);
    expect((await threads.findRun('alice', runId)).status).toBe('interrupted');
    // What A had sent through the bus is stored, up to the interruption.
    const stored = await threads.runEventsAfter(runId, 0);
    const events = owner
      .runFrames(runId)
      .slice(0, sent)
      .map((frame) => frame.event);
    expect(stored.map((event) => event.event)).toEqual([...events, 'agent_error']);
    expect(events).toContain('agent_message_delta');
  });

  it("ends a dead instance's run for a client that had more of it than ever reached Redis", async () => {
    // The last events an instance sends to its own clients reach Redis a moment later; killed in
    // between, it leaves clients ahead of everything stored. This instance never gets them there.
    class LossyStreams extends RunStreams {
      override append(runId: string, frames: readonly RunFrame[], final = false): Promise<void> {
        return super.append(
          runId,
          frames.filter((frame) => (frame.data.seq ?? 0) <= 2),
          final,
        );
      }
    }
    const a = await replica({ FLEET_LEASE_TTL_MS: '600' }, (builder) =>
      builder.overrideProvider(RunStreams).useClass(LossyStreams),
    );
    const b = await replica({ FLEET_LEASE_TTL_MS: '600' });
    const owner = await a.app.connectAs('alice');
    const started = await startedRun(owner, 'r1');
    const runId = started.data.runId;
    (await a.model.nextCall()).text('one ', 'two ', 'three ');
    await owner.waitFor('agent_message_delta', (data) => data.text === 'three ');
    const had = Math.max(...seqs(owner, runId));
    expect(had).toBeGreaterThan(3);

    a.app.app.get(DatabaseService).lease?.stop();
    const again = await b.app.connectAs('alice');
    again.send('resume', { requestId: 'x', runId, afterSeq: had });
    const resumed = await again.waitFor('resumed');
    // Resumed before the reaper ended it: followed, and its end arrives after what the client has.
    // Resumed after: the answer says so at once.
    if (resumed.data.status === 'running') {
      const end = await again.runEnd('r1');
      expect(end.data).toMatchObject({ code: 'RUN_INTERRUPTED', seq: had + 1 });
    } else {
      expect(resumed.data).toMatchObject({ status: 'interrupted', error: { code: 'RUN_INTERRUPTED' } });
    }
  });

  it('stops starting runs while its own lease is lost, interrupts the runs it had, and takes a new lease', async () => {
    const a = await replica({ FLEET_LEASE_TTL_MS: '3000' });
    const owner = await a.app.connectAs('alice');
    await startedRun(owner, 'r1');
    await a.model.nextCall();
    const database = a.app.app.get(DatabaseService);
    // Another replica judged it dead: its lease is gone from the database.
    await database.db.deleteFrom('instances').where('id', '=', database.instanceId).execute();
    const end = await owner.runEnd('r1');
    expect(end.data).toMatchObject({ code: 'RUN_INTERRUPTED', retryable: true });
    expect(a.app.logs.messages().some((line) => line.includes('instance lease expired'))).toBe(true);
    // Held again: runs start again.
    owner.send('agent_request', { requestId: 'r2', message: 'hello' });
    expect((await owner.waitFor(['agent_started', 'agent_error'], (data) => data.requestId === 'r2')).event).toBe(
      'agent_started',
    );
  });

  it('keeps serving through a Redis outage from PostgreSQL alone, and recovers by itself', async () => {
    if (fleet === undefined) throw new Error('no fleet environment');
    const { redis, viaProxy } = await redisBehindProxy();
    const a = await replica({ REDIS_URL: viaProxy });
    const b = await replica({ REDIS_URL: viaProxy });
    const { owner, runId, call } = await runOn(a);
    call.text('before ');
    const follower = await b.app.connectAs('alice');
    follower.send('resume', { runId, afterSeq: 0 });
    await follower.waitFor('agent_message_delta', (data) => data.text === 'before ');

    await redis.down();
    call.text('during ', 'the ', 'outage ');
    await follower.waitFor('agent_message_delta', (data) => data.text === 'outage ');
    const health = await readyBody(b.app);
    expect(health.status).toBe(200);
    expect(health.body.details).toMatchObject({ bus: { status: 'up', degraded: true } });

    // Cancel and follow still work across instances, through PostgreSQL.
    await redis.up();
    call.text('after').finish();
    expect((await follower.runEnd('r1')).event).toBe('agent_completed');
    await owner.runEnd('r1');
    expect(follower.runFrames(runId)).toEqual(owner.runFrames(runId));
    const threads = a.app.app.get(ThreadsService);
    expect((await threads.runEventsAfter(String(runId), 0)).length).toBe(owner.runFrames(runId).length);

    // Back by itself: the bus reports up again and a new run is followed through it.
    const bus = b.app.app.get(FleetBus);
    await new Promise<void>((resolve) => {
      const subscription = bus.health$.subscribe((state) => {
        if (state.status === 'up' && bus.up) {
          resolve();
          queueMicrotask(() => subscription.unsubscribe());
        }
      });
    });
    expect((await readyBody(b.app)).body.details).toMatchObject({ bus: { status: 'up', bus: 'redis' } });
  });

  it('cancels across instances while Redis is down, through PostgreSQL', async () => {
    const { redis, viaProxy } = await redisBehindProxy();
    const a = await replica({ REDIS_URL: viaProxy });
    const b = await replica({ REDIS_URL: viaProxy });
    const owner = await a.app.connectAs('alice');
    const started = await startedRun(owner, 'r1');
    const call = await a.model.nextCall();
    await redis.down();
    const other = await b.app.connectAs('alice');
    other.send('agent_cancel', { requestId: 'c1', runId: started.data.runId });
    await call.aborted.promise;
    expect((await owner.runEnd('r1')).event).toBe('agent_cancelled');
  });

  it('rides out a blip of PostgreSQL and Redis mid-run: no live run is interrupted, all complete and are stored completed', async () => {
    if (fleet === undefined) throw new Error('no fleet environment');
    const a = await replica({ FLEET_LEASE_TTL_MS: '3000' });
    const b = await replica({ FLEET_LEASE_TTL_MS: '3000' });
    const runs: Array<{ owner: TestClient; follower: TestClient; runId: unknown; call: ScriptedCall }> = [];
    for (const [index, [home, away]] of [
      [a, b],
      [a, b],
      [b, a],
      [b, a],
    ].entries()) {
      if (home === undefined || away === undefined) throw new Error('unreachable');
      const user = `user-${index}`;
      const owner = await home.app.connectAs(user);
      const started = await startedRun(owner, 'r1');
      const call = await home.model.nextCall();
      call.text('before ');
      const follower = await away.app.connectAs(user);
      follower.send('resume', { runId: started.data.runId, afterSeq: 0 });
      await follower.waitFor('agent_message_delta', (data) => data.text === 'before ');
      runs.push({ owner, follower, runId: started.data.runId, call });
    }

    // Every session of both instances cut at once, as a PostgreSQL restart or failover does…
    const ids = [a, b].map(({ app }) => `agent-gateway:${app.app.get(DatabaseService).instanceId}`);
    const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
    await admin.connect();
    const { rows } = await admin
      .query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = any($1)', [ids])
      .finally(() => admin.end());
    expect(rows.length).toBeGreaterThan(0);
    // …and every Redis connection of both.
    const clients = (await fleet.redis.client('LIST')) as string;
    const killed = clients
      .split('\n')
      .filter((line) => ids.some((id) => line.includes(`name=${id}`)))
      .map((line) => /\bid=(\d+)/u.exec(line)?.[1]);
    expect(killed.length).toBe(4);
    for (const id of killed) await fleet.redis.client('KILL', 'ID', String(id));

    for (const { call } of runs) call.text('after ', 'the ', 'blip').finish();
    const threads = a.app.app.get(ThreadsService);
    for (const [index, { owner, follower, runId }] of runs.entries()) {
      expect((await owner.runEnd('r1')).event).toBe('agent_completed');
      expect((await follower.runEnd('r1')).event).toBe('agent_completed');
      expect(follower.runFrames(runId)).toEqual(owner.runFrames(runId));
      expect((await threads.findRun(`user-${index}`, String(runId))).status).toBe('completed');
    }
    for (const replica of [a, b]) {
      expect(replica.app.logs.messages().filter((line) => /interrupted|lease lost|lease expired/u.test(line))).toEqual(
        [],
      );
    }
  });

  it('names every key it writes under its prefix, one hash tag per run and per user, and lets run streams expire', async () => {
    if (fleet === undefined) throw new Error('no fleet environment');
    const a = await replica();
    const owner = await a.app.connectAs('alice');
    await startedRun(owner, 'r1');
    (await a.model.nextCall()).text('hi').finish();
    const end = await owner.runEnd('r1');
    const keys = await fleet.keys();
    const pattern = new RegExp(`^${fleet.prefix}:\\{(run|user):[^}]+\\}:(events|connections|runs)$`, 'u');
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key).toMatch(pattern);
    const stream = `${fleet.prefix}:{run:${String(end.data.runId)}}:events`;
    const ttl = await fleet.redis.pttl(stream);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(5 * 60_000);
  });
});
