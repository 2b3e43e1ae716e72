import { afterEach, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import WebSocket from 'ws';
import { type AgentRun, type ConnectionState, GatewayClient, type RunResult } from '../../src/client/index.js';
import { FleetKeys } from '../../src/fleet/fleet.keys.js';
import type { RunEventName, RunFrame } from '../../src/protocol/events.js';
import { POSTGRES_URL } from '../support/databases.js';
import { deferred } from '../support/deferred.js';
import { createFleetEnvironment, FLEET_AVAILABLE, FLEET_SKIP_REASON, type FleetEnvironment } from '../support/fleet.js';
import { RoundRobinProxy } from '../support/round-robin-proxy.js';
import { ServerProcess } from '../support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../support/tokens.js';

/**
 * The fleet as production runs it: three replicas spawned from `dist/bundle/main.mjs` on one PostgreSQL
 * schema and one Redis prefix, behind a round-robin TCP balancer, and 50 SDK clients (one user
 * each) with runs in flight. The balancer cuts every connection twice, then the replicas are
 * replaced one by one (start a new one, put it in the balancer, take the old one out, SIGTERM it):
 * every run completes and every client sees each of its run's events exactly once, never a 1011.
 * Then one replica is SIGKILLed while 50 new runs stream: the followers of its runs learn they
 * were interrupted within 20 s, and the runs of the other replicas complete.
 */

const CLIENTS = 50;
const TOKEN_DELAY_MS = 100;
/**
 * Words of a phase-one message: a run of ~28 s (a word every 100 ms, and the model's own 19), so
 * that it outlasts two cuts and the rolling restart, in which two replicas start one after the other.
 */
const LONG_RUN_WORDS = 260;
/** Words of a phase-two message (~7 s): the survivors' runs complete soon after the kill. */
const SHORT_RUN_WORDS = 50;
const LEASE_TTL_MS = 3_000;
const INTERRUPTED_WITHIN_MS = 20_000;

const REPLICA_ENV = {
  JWT_SECRET: TEST_JWT_SECRET,
  LOCAL_LLM_TOKEN_DELAY_MS: String(TOKEN_DELAY_MS),
  // A dead replica's runs are reaped a lease (and a third of one) after it died: well inside 20 s.
  FLEET_LEASE_TTL_MS: String(LEASE_TTL_MS),
  // The balancer sends nothing new to a replica it took out: no need to wait for endpoint updates.
  SHUTDOWN_DELAY_MS: '200',
  // Runs in flight on a draining replica must complete, never be interrupted.
  SHUTDOWN_TIMEOUT_MS: '40000',
  TERMINATION_GRACE_PERIOD_SECONDS: '45',
  // Never queued, however the balancer spreads the 50 runs.
  AGENT_MAX_CONCURRENT_RUNS: '64',
};

const RUN_EVENTS = Object.keys({
  agent_started: true,
  agent_queued: true,
  agent_thinking: true,
  tool_approval_required: true,
  tool_executing: true,
  tool_completed: true,
  tool_failed: true,
  agent_message_delta: true,
  agent_completed: true,
  agent_cancelled: true,
  agent_error: true,
} satisfies Record<RunEventName, true>) as RunEventName[];

/** A message the embedded model quotes back word by word (no digits, no "time": it calls no tool). */
function message(user: string, words: number): string {
  const vocabulary = ['replica', 'lease', 'stream', 'balancer', 'drain', 'resume', 'follower', 'quota'];
  return `${user} asks: ${Array.from({ length: words }, (_, index) => vocabulary[index % vocabulary.length]).join(' ')}`;
}

/** Rejects, naming what was awaited (and what `explain` says is missing), unless `promise` settles within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string, explain?: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms\n${explain?.() ?? ''}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const histogram = (codes: readonly number[]): Record<number, number> => {
  const counts: Record<number, number> = {};
  for (const code of codes) counts[code] = (counts[code] ?? 0) + 1;
  return counts;
};

/** One run as the SDK delivered it to the application. */
class RunView {
  readonly frames: RunFrame[] = [];
  readonly consumed: Promise<void>;
  result: RunResult | undefined;
  /** `performance.now()` when the SDK settled the run's result. */
  settledAt: number | undefined;
  private waiters: Array<{ readonly above: number; readonly resolve: () => void }> = [];

  constructor(readonly run: AgentRun) {
    void run.result.then((result) => {
      this.result = result;
      this.settledAt = performance.now();
    });
    this.consumed = (async () => {
      for await (const frame of run) {
        this.frames.push(frame);
        this.wake();
      }
      this.wake();
    })();
  }

  /** Resolves once a frame with a `seq` above `seq` was delivered, or the run ended. */
  progressedPast(seq: number): Promise<void> {
    const waiter = deferred();
    this.waiters.push({ above: seq, resolve: () => waiter.resolve() });
    this.wake();
    return waiter.promise;
  }

  /** The delivered `seq`s against 1, 2, 3, …: repeated ones and missing ones. */
  tally(): { readonly duplicates: number; readonly gaps: number; readonly last: number } {
    let last = 0;
    let duplicates = 0;
    let gaps = 0;
    for (const frame of this.frames) {
      const seq = frame.data.seq ?? 0;
      if (seq <= last) {
        duplicates += 1;
        continue;
      }
      gaps += seq - last - 1;
      last = seq;
    }
    return { duplicates, gaps, last };
  }

  /** The deltas' texts, joined: the stored answer when none was lost, repeated or reordered. */
  answer(): string {
    return this.frames.map((frame) => (frame.event === 'agent_message_delta' ? frame.data.text : '')).join('');
  }

  private wake(): void {
    const last = this.frames.at(-1)?.data.seq ?? 0;
    this.waiters = this.waiters.filter((waiter) => {
      if (!this.run.done && last <= waiter.above) return true;
      waiter.resolve();
      return false;
    });
  }
}

/** One user's SDK client, with every close its sockets and the SDK saw and every run frame on the wire. */
class Follower {
  readonly client: GatewayClient;
  /** Close codes of the raw sockets (the SDK's `WebSocket` is a recording `ws`). */
  readonly socketCloses: number[] = [];
  /** Close codes the SDK reported (`reconnecting`, `closed`). */
  readonly sdkCloses: number[] = [];
  reconnects = 0;
  /** Run frames received again on the wire (same run, same `seq`): the SDK drops them. */
  wireDuplicates = 0;
  readonly runs: RunView[] = [];
  private readonly wireSeen = new Set<string>();
  /** The last frames received, for a timeout's message. */
  private readonly recent: string[] = [];

  constructor(
    readonly user: string,
    url: string,
  ) {
    const closes = this.socketCloses;
    class RecordingWebSocket extends WebSocket {
      constructor(address: string) {
        super(address);
        this.on('close', (code: number) => closes.push(code));
      }
    }
    this.client = new GatewayClient({
      url,
      token: signToken({ sub: user }),
      WebSocket: RecordingWebSocket,
      reconnect: { initialDelayMs: 50, maxDelayMs: 500, maxAttempts: 100 },
    });
    this.client.onState((state) => {
      if (state.status === 'reconnecting') {
        this.reconnects += 1;
        this.sdkCloses.push(state.lastClose.code);
      }
      if (state.status === 'closed' && 'close' in state.reason) this.sdkCloses.push(state.reason.close.code);
    });
    for (const event of ['connection_established', 'resumed', 'error'] as const) {
      this.client.on(event, (data) => this.remember(`${event} ${JSON.stringify(data)}`));
    }
    for (const event of RUN_EVENTS) {
      this.client.on(event, (data) => {
        this.remember(`${event} ${String(data.seq)}`);
        if (data.runId === undefined || data.seq === undefined) return;
        const key = `${data.runId}/${data.seq}`;
        if (this.wireSeen.has(key)) this.wireDuplicates += 1;
        this.wireSeen.add(key);
      });
    }
  }

  start(words: number): RunView {
    const view = new RunView(this.client.run(message(this.user, words)));
    this.runs.push(view);
    return view;
  }

  /** The first state (now or later) with `status`. */
  reaches(status: ConnectionState['status']): Promise<void> {
    const reached = deferred();
    const stop = this.client.onState((state) => {
      if (state.status === status) reached.resolve();
    });
    return reached.promise.finally(stop);
  }

  /** Where the client and its unfinished runs are ('' when every run ended). */
  explain(): string {
    const open = this.runs.filter((view) => !view.run.done);
    if (open.length === 0) return '';
    const runs = open.map((view) => `${view.run.runId ?? view.run.requestId} at seq ${view.run.lastSeq}`);
    return `${this.user} (${this.client.state.status}): ${runs.join(', ')}; last frames: ${this.recent.join(' | ')}`;
  }

  private remember(line: string): void {
    this.recent.push(line);
    if (this.recent.length > 8) this.recent.shift();
  }
}

/** The fleet's PostgreSQL schema, as the test reads it. */
class FleetRecords {
  constructor(
    private readonly sql: pg.Client,
    private readonly schema: string,
  ) {}

  /** Every `instances` row (none before the first replica has migrated the schema). */
  async instanceIds(): Promise<string[]> {
    const { rows } = await this.sql.query<{ found: string | null }>('select to_regclass($1) as found', [
      this.table('instances'),
    ]);
    if (rows[0]?.found === null) return [];
    return (await this.sql.query<{ id: string }>(`select id from ${this.table('instances')}`)).rows.map((r) => r.id);
  }

  /** The ids of the runs still running, by instance. */
  async runningByInstance(): Promise<Map<string, string[]>> {
    const { rows } = await this.sql.query<{ id: string; instance_id: string }>(
      `select id, instance_id from ${this.table('runs')} where status = 'running'`,
    );
    const byInstance = new Map<string, string[]>();
    for (const row of rows) byInstance.set(row.instance_id, [...(byInstance.get(row.instance_id) ?? []), row.id]);
    return byInstance;
  }

  /** Each run's status, and its last stored event (stored events are always a prefix of the run's). */
  async outcomes(runIds: readonly string[]): Promise<Map<string, { status: string; lastSeq: number; last: string }>> {
    const { rows } = await this.sql.query<{ id: string; status: string; last_seq: number | null; last: string | null }>(
      `select r.id, r.status, e.seq as last_seq, e.event as last from ${this.table('runs')} r
         left join lateral (select seq, event from ${this.table('run_events')} where run_id = r.id
                             order by seq desc limit 1) e on true
        where r.id = any($1)`,
      [runIds],
    );
    return new Map(
      rows.map((row) => [row.id, { status: row.status, lastSeq: Number(row.last_seq ?? 0), last: row.last ?? '' }]),
    );
  }

  private table(name: string): string {
    return `"${this.schema}".${name}`;
  }
}

interface Replica {
  readonly name: string;
  readonly server: ServerProcess;
  /** Its `instances` row: the `runs.instance_id` of the runs it executes. */
  readonly instanceId: string;
}

let fleet: FleetEnvironment | undefined;
let sql: pg.Client | undefined;
let proxy: RoundRobinProxy | undefined;
const servers: ServerProcess[] = [];
const followers: Follower[] = [];

if (!FLEET_AVAILABLE) {
  describe('the fleet, end to end', () => {
    it.skip(FLEET_SKIP_REASON, () => {});
  });
} else {
  describe('the fleet, end to end: three replicas behind a round-robin balancer, 50 SDK clients', () => {
    afterEach(async () => {
      for (const follower of followers.splice(0)) follower.client.close();
      await proxy?.close();
      proxy = undefined;
      await Promise.all(servers.splice(0).map((server) => server.stop()));
      await sql?.end();
      sql = undefined;
      await fleet?.drop();
      fleet = undefined;
    });

    it('two cuts and a rolling restart: every run completes, each event delivered once, no 1011; then a SIGKILL: its runs interrupted for their followers within 20 s', async () => {
      const began = performance.now();
      const environment = await createFleetEnvironment(REPLICA_ENV);
      fleet = environment;
      sql = new pg.Client({ connectionString: POSTGRES_URL });
      await sql.connect();
      const records = new FleetRecords(sql, environment.env.DATABASE_SCHEMA ?? '');

      /** Starts a replica and learns its instance id: the one `instances` row that was not there before. */
      async function startReplica(name: string): Promise<Replica> {
        const before = new Set(await records.instanceIds());
        const server = await ServerProcess.start(environment.env);
        servers.push(server);
        const exitedEarly = server.exited.then((exit) => {
          throw new Error(`${name} exited before it was ready: ${JSON.stringify(exit)}\n${server.output.join('\n')}`);
        });
        await within(Promise.race([server.ready(), exitedEarly]), 30_000, `${name} ready`);
        const fresh = (await records.instanceIds()).filter((id) => !before.has(id));
        expect(fresh).toHaveLength(1);
        return { name, server, instanceId: fresh[0] ?? '' };
      }
      const whereRunsStand = (): string =>
        followers
          .map((follower) => follower.explain())
          .filter((line) => line !== '')
          .join('\n');

      const initial: Replica[] = [];
      for (const name of ['replica-1', 'replica-2', 'replica-3']) initial.push(await startReplica(name));
      const balancer = new RoundRobinProxy(initial.map((replica) => replica.server.port));
      proxy = balancer;
      await balancer.listen();
      for (let index = 0; index < CLIENTS; index += 1) {
        followers.push(new Follower(`fleet-user-${index}`, `ws://127.0.0.1:${balancer.port}/ws`));
      }
      await within(Promise.all(followers.map((f) => f.client.connect())), 15_000, 'every client connected');

      // Phase one: 50 long runs, streaming before anything happens to them.
      const longRuns = followers.map((follower) => follower.start(LONG_RUN_WORDS));
      const phaseOneStarted = performance.now();
      await within(Promise.all(longRuns.map((view) => view.progressedPast(3))), 15_000, 'every run streaming');

      /** Cuts every connection; resolves once every run has streamed again (reconnected and resumed). */
      const cutEverything = async (): Promise<number> => {
        const marks = longRuns.map((view) => view.run.lastSeq);
        const cut = balancer.cutAll();
        await within(
          Promise.all(longRuns.map((view, index) => view.progressedPast(marks[index] ?? 0))),
          15_000,
          'every run streaming again after the cut',
          whereRunsStand,
        );
        return cut;
      };
      const cuts = [await cutEverything(), await cutEverything()];

      // The rolling restart, one replica at a time: out of the balancer, SIGTERM (it drains while its
      // runs finish), and a new one in its place, ready before the next replica goes.
      const current: Replica[] = [];
      const inFlightAtSigterm: number[] = [];
      for (const [index, old] of initial.entries()) {
        balancer.remove(old.server.port);
        inFlightAtSigterm.push((await records.runningByInstance()).get(old.instanceId)?.length ?? 0);
        old.server.child.kill('SIGTERM');
        const fresh = await startReplica(`replica-${index + 4}`);
        current.push(fresh);
        balancer.add(fresh.server.port);
      }
      const restartedAfterMs = performance.now() - phaseOneStarted;
      await within(
        Promise.all(longRuns.map((view) => view.consumed)),
        45_000,
        'every run of phase one ended',
        whereRunsStand,
      );
      const oldExits = await within(
        Promise.all(initial.map((replica) => replica.server.exited)),
        15_000,
        'the old replicas exited',
      );

      // Phase two: 50 shorter runs on the new replicas; the one with the most runs is killed mid-stream.
      await within(Promise.all(followers.map((f) => f.reaches('open'))), 15_000, 'every client open again');
      const shortRuns = followers.map((follower) => follower.start(SHORT_RUN_WORDS));
      await within(Promise.all(shortRuns.map((view) => view.progressedPast(3))), 15_000, 'every run streaming');
      const running = await records.runningByInstance();
      const runsOf = (replica: Replica): number => running.get(replica.instanceId)?.length ?? 0;
      const victim = [...current].sort((a, b) => runsOf(b) - runsOf(a))[0];
      const victimRuns = new Set(running.get(victim.instanceId));
      const survivorRuns = current.filter((replica) => replica !== victim).reduce((sum, r) => sum + runsOf(r), 0);
      // Left in the balancer, as when its endpoint is not removed yet: new connections must skip it.
      const killedAt = performance.now();
      victim.server.child.kill('SIGKILL');
      // Bounded, not failed at once: what never ended is reported below, with the summary.
      await within(
        Promise.all(shortRuns.map((view) => view.consumed)),
        INTERRUPTED_WITHIN_MS + 5_000,
        'every run of phase two ended',
      ).catch(() => undefined);

      const allRuns = [...longRuns, ...shortRuns];
      const stored = await records.outcomes(allRuns.map((view) => view.run.runId ?? ''));
      const tallies = allRuns.map((view) => view.tally());
      const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);
      const duplicates = sum(tallies.map((tally) => tally.duplicates));
      const gaps = sum(tallies.map((tally) => tally.gaps));
      const closes = followers.flatMap((follower) => [...follower.socketCloses, ...follower.sdkCloses]);
      const closed1011 = closes.filter((code) => code === 1011).length;
      const interrupted = shortRuns.filter((view) => view.result?.status === 'interrupted');
      const maxInterruptionMs = Math.max(0, ...interrupted.map((view) => (view.settledAt ?? Infinity) - killedAt));
      const keys = new FleetKeys(environment.prefix);
      const neverEnded = await Promise.all(
        shortRuns
          .filter((view) => !view.run.done)
          .map(async (view) => {
            const runId = view.run.runId ?? '';
            const [onBus] = await environment.redis.xrevrange(keys.runEvents(runId), '+', '-', 'COUNT', 1);
            return {
              runId,
              owner: victimRuns.has(runId) ? 'killed' : 'survivor',
              client: { lastSeq: view.run.lastSeq, last: view.frames.at(-1)?.event },
              stored: stored.get(runId),
              lastOnBus: onBus?.[0],
            };
          }),
      );
      const serverErrors = servers.flatMap((server) =>
        server.output.filter((line) => /"level":"(error|fatal)"/u.test(line)),
      );
      process.stdout.write(
        `fleet e2e: runs ${allRuns.length} (phase one: ${longRuns.filter((v) => v.result?.status === 'completed').length}/${longRuns.length} completed; ` +
          `phase two: ${victimRuns.size} on the killed replica, ${survivorRuns} on the others), ` +
          `events ${sum(allRuns.map((view) => view.frames.length))}, cuts ${cuts.join('+')}, in flight at each SIGTERM ${inFlightAtSigterm.join('/')} (last one ${Math.round(restartedAfterMs)} ms after the runs started), ` +
          `reconnects ${sum(followers.map((f) => f.reconnects))}, duplicates ${duplicates}, gaps ${gaps}, ` +
          `wire duplicates ${sum(followers.map((f) => f.wireDuplicates))}, 1011 ${closed1011}, ` +
          `socket closes ${JSON.stringify(histogram(followers.flatMap((f) => f.socketCloses)))}, balancer refused ${balancer.refused}, ` +
          `interrupted after SIGKILL ${interrupted.length}/${victimRuns.size} (max ${Math.round(maxInterruptionMs)} ms), never ended ${neverEnded.length}, ` +
          `server error lines ${serverErrors.length}, wall ${Math.round(performance.now() - began)} ms\n`,
      );

      // The cuts and the restart really happened under the runs.
      expect(cuts).toEqual([CLIENTS, CLIENTS]);
      for (const follower of followers) expect(follower.reconnects).toBeGreaterThanOrEqual(2);
      for (const count of inFlightAtSigterm) expect(count).toBeGreaterThan(0);
      expect(oldExits).toEqual(initial.map(() => ({ code: 0, signal: null })));

      // Phase one: every run completed, its events delivered 1..N once each, N what it stored.
      for (const view of longRuns) {
        expect(view.result?.status).toBe('completed');
        expect(view.frames.at(-1)?.event).toBe('agent_completed');
        expect(stored.get(view.run.runId ?? '')).toMatchObject({ status: 'completed', lastSeq: view.tally().last });
        expect(view.answer()).toBe(view.result?.status === 'completed' ? view.result.message.content : null);
      }
      expect({ duplicates, gaps, closed1011 }).toEqual({ duplicates: 0, gaps: 0, closed1011: 0 });
      for (const follower of followers) expect(follower.client.state.status).not.toBe('closed');

      // Phase two: exactly the killed replica's runs interrupted, within 20 s; the others completed.
      expect(victimRuns.size).toBeGreaterThan(0);
      expect(survivorRuns).toBeGreaterThan(0);
      // A run listed here never ended for its client. `stored.lastSeq` at or below `client.lastSeq`
      // means the final event was numbered over one the client already had.
      expect(neverEnded).toEqual([]);
      expect(new Set(interrupted.map((view) => view.run.runId))).toEqual(victimRuns);
      expect(maxInterruptionMs).toBeLessThanOrEqual(INTERRUPTED_WITHIN_MS);
      for (const view of shortRuns) {
        const runId = view.run.runId ?? '';
        if (victimRuns.has(runId)) {
          expect(view.result).toMatchObject({ status: 'interrupted', error: { code: 'RUN_INTERRUPTED' } });
          expect(stored.get(runId)?.status).toBe('interrupted');
          continue;
        }
        expect(view.result?.status).toBe('completed');
        expect(view.frames.at(-1)?.event).toBe('agent_completed');
        expect(stored.get(runId)).toMatchObject({ status: 'completed', lastSeq: view.tally().last });
        expect(view.answer()).toBe(view.result?.status === 'completed' ? view.result.message.content : null);
      }
      expect(serverErrors).toEqual([]);
    }, 150_000);
  });
}
