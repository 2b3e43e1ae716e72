/**
 * Fleet mode (issue 13), side by side with one instance, in one run. Every part gets fresh
 * PostgreSQL schemas and Redis key prefixes (`harness/cluster.ts`), removed afterwards.
 *
 * 1. Delivery latency of a live event: 2 replicas in fleet mode (one per core), the embedded model
 *    at {@link TOKEN_DELAY_MS} ms per token. Per run (one user each) three clients in this process:
 *    the owner, on the replica that runs it (it sends `agent_request`), and two followers that
 *    send `resume {afterSeq: 0}` the moment `agent_started` arrives: one on the other replica
 *    (through Redis), one on the owning replica (from memory, like the owner). The servers put no
 *    time on a frame, so each follower's delivery is timed against the owner's: for each
 *    `agent_message_delta`, arrival at the follower minus arrival at the owner, on one clock.
 *    The owner's own way (owning replica → socket → this process) is in both arrivals and cancels
 *    out; what is left is what the follower's path adds. The same-replica follower is the control:
 *    the owning replica sends it each frame in the same turn as the owner's, so its numbers are the
 *    method's floor, and the cross-replica numbers above it are the bus and the other replica. A
 *    stall of the follower's replica (GC, or no CPU on a loaded machine) delays every run it
 *    follows at once, so it shows in p99 for cross-replica only. Only live events count: those
 *    past the follower's replay (`seq` > `afterSeq` + `resumed.replayed`), i.e. not yet sent when
 *    the resume was answered; the first {@link SWITCH_OVER_EVENTS} of them (the follower going from
 *    its replay to the live stream) are reported apart. A first wave of runs warms the replicas'
 *    code paths and is not counted.
 * 2. Agent runs per second: closed-loop `agent_request`s (the side-by-side scenario 7's message and
 *    threads) from the same clients (one user each, spread round-robin over the replicas), with no
 *    token delay, against one replica as a single instance on PostgreSQL, one replica in fleet mode
 *    and 3 replicas in fleet mode. Each replica gets `AGENT_MAX_CONCURRENT_RUNS` =
 *    `AGENT_QUEUE_SIZE` = the number of clients (the defaults would refuse runs and measure the
 *    limiter). The machine has 2 cores shared with PostgreSQL, Redis and the load generator, so
 *    placement is reported: `oneCore` gives every replica the server core and the load the other
 *    (1 and 3 replicas get the same CPU: it shows what the fleet path costs, not how it scales);
 *    `twoCores` lets the replicas use both cores (the load generator keeps the second).
 * 3. PostgreSQL statements and transactions per run, fleet mode (2 replicas) against a single
 *    instance: the counters of `/metrics` summed over the replicas before and after a fixed number
 *    of runs, minus the background (lease renewals every `FLEET_LEASE_TTL_MS`/3, the reaper's
 *    pass) measured on the same replicas over an idle window, per second. A short run (the
 *    message of part 2) and a long one (about 120 deltas at {@link TOKEN_DELAY_MS} ms per token,
 *    so a single instance saves its events behind the stream every 50 ms, many times per run).
 *
 * Skipped, with the reason as the result, unless `TEST_DATABASE_URL` and `TEST_REDIS_URL` answer.
 * `tsx bench/scenarios/fleet.ts [--quick]` runs it alone.
 */
import { loadavg } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { TERMINAL_RUN_EVENTS } from '../../src/protocol/events.js';
import { signToken } from '../../test/support/tokens.js';
import { type Cluster, fleetUnavailable, startCluster, type StorageCount } from '../harness/cluster.js';
import type { BenchServer } from '../harness/servers.js';
import { LOAD_CPU, pin, pinning, SERVER_CPU } from '../harness/processes.js';
import { fix, median, percentile } from '../harness/stats.js';
import { type TimedFrame, TimedClient } from '../harness/timed-client.js';
import { phase, type PhaseResult } from './side-by-side.js';
import { RUN_MESSAGE, RUNS_PER_THREAD } from './startup-side-by-side.js';

interface FleetSizes {
  /** 1. Runs followed at once (one user each), and how many times (after one more that warms up). */
  readonly latencyRuns: number;
  readonly latencyWaves: number;
  /** 2. Clients of the closed loop, its warm-up and window, the rounds, and the placements. */
  readonly clients: number;
  readonly warmupMs: number;
  readonly windowMs: number;
  readonly rounds: number;
  readonly placements: readonly Placement[];
  /** The longest wait for a quiet machine before each window. */
  readonly settleMaxMs: number;
  /** 3. Users running at once, runs of each (one thread), and the idle window. */
  readonly storageUsers: number;
  readonly storageRunsPerUser: number;
  readonly idleMs: number;
}

type Placement = 'oneCore' | 'twoCores';

export const FLEET_SIZES: Readonly<Record<'quick' | 'full', FleetSizes>> = {
  quick: {
    latencyRuns: 12,
    latencyWaves: 1,
    clients: 30,
    warmupMs: 500,
    windowMs: 2_000,
    rounds: 1,
    placements: ['oneCore'],
    settleMaxMs: 500,
    storageUsers: 10,
    storageRunsPerUser: 2,
    idleMs: 3_500,
  },
  full: {
    latencyRuns: 30,
    latencyWaves: 3,
    clients: 180,
    warmupMs: 1_000,
    windowMs: 6_000,
    rounds: 2,
    placements: ['oneCore', 'twoCores'],
    settleMaxMs: 3_000,
    storageUsers: 20,
    storageRunsPerUser: 5,
    idleMs: 10_000,
  },
};

/** Between two streamed tokens in parts 1 and 3: deltas are live events, a long run lasts about 1.2 s. */
const TOKEN_DELAY_MS = 10;
/**
 * The first live events after a resume, left out of the steady-state latency: a follower elsewhere
 * subscribes to the run's channel and reads what it missed meanwhile (about 100 ms at 10 ms per
 * token). Reported apart as the switch-over.
 */
const SWITCH_OVER_EVENTS = 10;
/** Words of the long message: the model quotes it back, about 120 deltas. */
const LONG_WORDS = 100;
const RUN_TIMEOUT_MS = 60_000;
const CORES: Readonly<Record<Placement, string>> = { oneCore: SERVER_CPU, twoCores: `${SERVER_CPU},${LOAD_CPU}` };

const isTerminal = (frame: TimedFrame): boolean => (TERMINAL_RUN_EVENTS as readonly string[]).includes(frame.event);
const tokenOf = (user: string): string => signToken({ sub: user, exp: Math.floor(Date.now() / 1000) + 3_600 });

/** A message the embedded model quotes back word by word (no digits, no "time": it calls no tool). */
function message(words: number): string {
  const vocabulary = ['replica', 'lease', 'stream', 'balancer', 'drain', 'resume', 'follower', 'quota'];
  return `Please say back: ${Array.from({ length: words }, (_, index) => vocabulary[index % vocabulary.length]).join(' ')}`;
}

function percentiles(values: readonly number[], digits = 3) {
  return {
    p50: fix(percentile(values, 0.5), digits),
    p90: fix(percentile(values, 0.9), digits),
    p99: fix(percentile(values, 0.99), digits),
    max: fix(percentile(values, 1), digits),
  };
}

// ---------------------------------------------------------------- 1. delivery latency

/** Follower arrival minus owner arrival, ms, per live delta: the first {@link SWITCH_OVER_EVENTS}, and the rest. */
interface Delivery {
  readonly switchOver: number[];
  readonly steady: number[];
}

interface FollowedRun {
  readonly cross: Delivery;
  readonly same: Delivery;
  readonly events: number;
  readonly deltas: number;
  /** Followers that were not recovered, or missed deltas the owner got. */
  readonly failures: number;
}

/** Arrival times, by `seq`, of the deltas of the run `requestId` at `client`. */
function deltaArrivals(client: TimedClient, requestId: string) {
  const arrivals = new Map<number, number>();
  const stop = client.on((frame) => {
    if (frame.event === 'agent_message_delta' && frame.data.requestId === requestId && frame.data.seq !== undefined) {
      arrivals.set(frame.data.seq, frame.at);
    }
  });
  return { arrivals, stop };
}

/** Sends `resume {afterSeq: 0}`: the `resumed` answer, and the run's final event. */
async function resume(client: TimedClient, runId: string, what: string) {
  const resumed = client.next(
    (f) => f.event === 'resumed' && f.data.runId === runId,
    RUN_TIMEOUT_MS,
    `${what}: resumed`,
  );
  const ended = client.next((f) => isTerminal(f) && f.data.runId === runId, RUN_TIMEOUT_MS, `${what}: end`);
  // Awaited below; until then a failure must not be an unhandled rejection.
  ended.catch(() => undefined);
  client.send('resume', { runId, afterSeq: 0, requestId: `${what}-resume` });
  return { resumed: await resumed, ended };
}

async function followOnce(user: string, owning: BenchServer, other: BenchServer): Promise<FollowedRun> {
  const token = tokenOf(user);
  const clients = await Promise.all([
    TimedClient.connect(owning.wsUrl, token),
    TimedClient.connect(other.wsUrl, token),
    TimedClient.connect(owning.wsUrl, token),
  ]);
  const [owner, cross, same] = clients;
  const requestId = `${user}-run`;
  const [ownerAt, crossAt, sameAt] = clients.map((client) => deltaArrivals(client, requestId));
  try {
    const started = owner.next(
      (f) => f.event === 'agent_started' && f.data.requestId === requestId,
      RUN_TIMEOUT_MS,
      `${user}: agent_started`,
    );
    const end = owner.next((f) => isTerminal(f) && f.data.requestId === requestId, RUN_TIMEOUT_MS, `${user}: end`);
    end.catch(() => undefined);
    owner.send('agent_request', { requestId, message: message(LONG_WORDS) });
    const runId = (await started).data.runId ?? '';
    const [crossResume, sameResume] = await Promise.all([
      resume(cross, runId, `${user}-cross`),
      resume(same, runId, `${user}-same`),
    ]);
    const last = await end;
    await Promise.all([crossResume.ended, sameResume.ended]);
    let failures = last.event === 'agent_completed' ? 0 : 1;
    const live = (resumed: TimedFrame, arrivals: Map<number, number>): Delivery => {
      const delivery: Delivery = { switchOver: [], steady: [] };
      if (resumed.data.recovered !== true) {
        failures += 1;
        return delivery;
      }
      // The resume's `afterSeq` is 0: everything up to `replayed` was sent before it was answered.
      const replayedUpTo = Number(resumed.data.replayed);
      for (const [seq, ownerArrival] of ownerAt.arrivals) {
        const arrival = arrivals.get(seq);
        if (arrival === undefined) failures += 1;
        else if (seq > replayedUpTo + SWITCH_OVER_EVENTS) delivery.steady.push(arrival - ownerArrival);
        else if (seq > replayedUpTo) delivery.switchOver.push(arrival - ownerArrival);
      }
      return delivery;
    };
    return {
      cross: live(crossResume.resumed, crossAt.arrivals),
      same: live(sameResume.resumed, sameAt.arrivals),
      events: last.data.seq ?? 0,
      deltas: ownerAt.arrivals.size,
      failures,
    };
  } finally {
    for (const each of [ownerAt, crossAt, sameAt]) each.stop();
    for (const client of clients) client.close();
  }
}

async function measureDelivery(sizes: FleetSizes) {
  const replicas = 2;
  const cluster = await startCluster('fleet', replicas, { LOCAL_LLM_TOKEN_DELAY_MS: String(TOKEN_DELAY_MS) }, [
    SERVER_CPU,
    LOAD_CPU,
  ]);
  const loop = monitorEventLoopDelay({ resolution: 1 });
  try {
    let deliveriesBefore = 0;
    const runs: FollowedRun[] = [];
    // Wave 0 runs every code path once on both replicas (the first resumes, the first remote
    // follows) and is not counted.
    for (let wave = 0; wave <= sizes.latencyWaves; wave += 1) {
      if (wave === 1) {
        runs.length = 0;
        deliveriesBefore = await cluster.counter('agent_gateway_fleet_deliveries_total');
        loop.enable();
      }
      runs.push(
        ...(await Promise.all(
          Array.from({ length: sizes.latencyRuns }, async (_, index) => {
            // Staggered over a token's delay, so the runs' tokens do not all fall in the same tick.
            await sleep((index * TOKEN_DELAY_MS) / sizes.latencyRuns);
            const owning = cluster.replicas[index % replicas];
            const other = cluster.replicas[(index + 1) % replicas];
            return followOnce(`fleet-latency-${wave}-${index}`, owning, other);
          }),
        )),
      );
    }
    loop.disable();
    const deliveries = (await cluster.counter('agent_gateway_fleet_deliveries_total')) - deliveriesBefore;
    const of = (follower: 'cross' | 'same', part: keyof Delivery) => runs.flatMap((run) => run[follower][part]);
    const cross = percentiles(of('cross', 'steady'));
    const same = percentiles(of('same', 'steady'));
    return {
      replicas,
      runs: runs.length,
      eventsPerRun: fix(median(runs.map((run) => run.events)), 1),
      deltasPerRun: fix(median(runs.map((run) => run.deltas)), 1),
      liveDeltasTimed: { crossReplica: of('cross', 'steady').length, sameReplica: of('same', 'steady').length },
      /** Follower arrival − owner arrival, per live delta after the switch-over. */
      sameReplicaMs: same,
      crossReplicaMs: cross,
      /** What the bus adds: cross-replica minus same-replica. */
      busAddsMs: { p50: fix(cross.p50 - same.p50, 3), p99: fix(cross.p99 - same.p99, 3) },
      /** The first live deltas after each resume, while the follower switches from its replay to the live stream. */
      switchOver: {
        eventsPerRun: SWITCH_OVER_EVENTS,
        sameReplicaMs: percentiles(of('same', 'switchOver')),
        crossReplicaMs: percentiles(of('cross', 'switchOver')),
      },
      /** `agent_gateway_fleet_deliveries_total` over both replicas: events sent to followers of other replicas' runs. */
      fleetDeliveries: deliveries,
      failures: runs.reduce((sum, run) => sum + run.failures, 0),
      /** This process's worst event-loop delay while timing: a busy client would flatten the differences. */
      clientLoopDelayMs: { p99: fix(loop.percentile(99) / 1e6, 2), max: fix(loop.max / 1e6, 2) },
    };
  } finally {
    await cluster.stop();
  }
}

// ---------------------------------------------------------------- 2. runs per second

type Setup = 'singleInstance' | 'fleet1' | 'fleet3';
const SETUPS: Readonly<Record<Setup, { mode: 'single' | 'fleet'; replicas: number }>> = {
  singleInstance: { mode: 'single', replicas: 1 },
  fleet1: { mode: 'fleet', replicas: 1 },
  fleet3: { mode: 'fleet', replicas: 3 },
};

async function runsOnce(setup: Setup, sizes: FleetSizes): Promise<Partial<Record<Placement, PhaseResult>>> {
  const { mode, replicas } = SETUPS[setup];
  const cluster = await startCluster(
    mode,
    replicas,
    { AGENT_MAX_CONCURRENT_RUNS: String(sizes.clients), AGENT_QUEUE_SIZE: String(sizes.clients) },
    // Started on both cores (three Node boots on one take seconds), then pinned for each window.
    [CORES.twoCores],
  );
  try {
    const results: Partial<Record<Placement, PhaseResult>> = {};
    for (const placement of sizes.placements) {
      for (const replica of cluster.replicas) pin(replica.pid, CORES[placement]);
      const [first] = cluster.replicas;
      if (first === undefined) throw new Error('no replica');
      results[placement] = await phase(
        first,
        {
          rounds: 1,
          memoryRounds: 0,
          warmupMs: sizes.warmupMs,
          windowMs: sizes.windowMs,
          idleConnections: 0,
          settleMs: 0,
          settleMaxMs: sizes.settleMaxMs,
          // PostgreSQL's and Redis's CPU count as other work on the machine: no re-runs for it.
          attempts: 1,
        },
        {
          mode: 'runs',
          clients: sizes.clients,
          message: RUN_MESSAGE,
          runsPerThread: RUNS_PER_THREAD,
          urls: cluster.replicas.map((replica) => replica.wsUrl),
          serverPids: cluster.replicas.map((replica) => replica.pid),
        },
      );
    }
    return results;
  } finally {
    await cluster.stop();
  }
}

function summariseRuns(samples: ReadonlyArray<Record<Setup, Partial<Record<Placement, PhaseResult>>>>) {
  const of = (setup: Setup, placement: Placement) => {
    const all = samples.flatMap((sample) => (sample[setup][placement] === undefined ? [] : [sample[setup][placement]]));
    return {
      runsPerSecond: fix(median(all.map((r) => r.perSecond)), 0),
      allRunsPerSecond: all.map((r) => fix(r.perSecond, 0)),
      latencyMs: {
        p50: fix(median(all.map((r) => r.latencyMs?.p50 ?? NaN)), 1),
        p99: fix(median(all.map((r) => r.latencyMs?.p99 ?? NaN)), 1),
      },
      deltasPerRun: fix(median(all.map((r) => r.deltasPerRun ?? NaN)), 1),
      /** Every replica's CPU together, in cores, and per run. */
      serverCpuCores: fix(median(all.map((r) => r.serverCpu.utilisation)), 2),
      serverCpuUsPerRun: fix(median(all.map((r) => r.serverCpu.usPerOp)), 0),
      /** PostgreSQL, Redis and anything else, in cores. */
      otherCpuCores: fix(median(all.map((r) => r.otherCpuCores)), 2),
      errors: all.reduce((sum, r) => sum + r.errors, 0),
    };
  };
  const placements = [...new Set(samples.flatMap((sample) => Object.keys(sample.fleet3) as Placement[]))];
  return Object.fromEntries(
    placements.map((placement) => {
      const single = of('singleInstance', placement);
      const fleet1 = of('fleet1', placement);
      const fleet3 = of('fleet3', placement);
      return [
        placement,
        {
          singleInstance: single,
          fleet1,
          fleet3,
          ratio: {
            fleet3VsSingleInstance: fix(fleet3.runsPerSecond / single.runsPerSecond, 2),
            fleet3VsFleet1: fix(fleet3.runsPerSecond / fleet1.runsPerSecond, 2),
            fleet1VsSingleInstance: fix(fleet1.runsPerSecond / single.runsPerSecond, 2),
          },
        },
      ];
    }),
  );
}

// ---------------------------------------------------------------- 3. PostgreSQL per run

const minus = (a: StorageCount, b: StorageCount): StorageCount => ({
  statements: a.statements - b.statements,
  transactions: a.transactions - b.transactions,
});

/** `users` clients (round-robin over the replicas), each running `runsEach` runs one after another in one thread. */
async function runMany(cluster: Cluster, tag: string, users: number, runsEach: number, text: string) {
  const clients = await Promise.all(
    Array.from({ length: users }, (_, index) =>
      TimedClient.connect(cluster.replicas[index % cluster.replicas.length].wsUrl, tokenOf(`${tag}-${index}`)),
    ),
  );
  try {
    const before = await cluster.storage();
    const startedAt = performance.now();
    const runs = await Promise.all(
      clients.map(async (client, index) => {
        const done: Array<{ events: number; deltas: number }> = [];
        let threadId: unknown;
        for (let run = 0; run < runsEach; run += 1) {
          const requestId = `${tag}-${index}-${run}`;
          const { arrivals, stop } = deltaArrivals(client, requestId);
          const end = client.next(
            (f) => isTerminal(f) && f.data.requestId === requestId,
            RUN_TIMEOUT_MS,
            `${requestId}: end`,
          );
          client.send('agent_request', { requestId, message: text, ...(threadId === undefined ? {} : { threadId }) });
          const last = await end.finally(stop);
          if (last.event !== 'agent_completed') throw new Error(`${requestId}: ${JSON.stringify(last.data)}`);
          threadId = last.data.threadId;
          done.push({ events: last.data.seq ?? Number.NaN, deltas: arrivals.size });
        }
        return done;
      }),
    );
    const elapsedMs = performance.now() - startedAt;
    const used = minus(await cluster.storage(), before);
    const all = runs.flat();
    return {
      runs: all.length,
      elapsedMs,
      used,
      eventsPerRun: fix(median(all.map((run) => run.events)), 1),
      deltasPerRun: fix(median(all.map((run) => run.deltas)), 1),
    };
  } finally {
    for (const client of clients) client.close();
  }
}

async function storageOf(mode: 'single' | 'fleet', sizes: FleetSizes) {
  const replicas = mode === 'fleet' ? 2 : 1;
  const env = {
    LOCAL_LLM_TOKEN_DELAY_MS: String(TOKEN_DELAY_MS),
    // Every run starts at once (the default 16 slots would queue some: an extra event, a longer run).
    AGENT_MAX_CONCURRENT_RUNS: String(sizes.storageUsers),
    AGENT_QUEUE_SIZE: String(sizes.storageUsers),
  };
  const cluster = await startCluster(mode, replicas, env, [SERVER_CPU, LOAD_CPU]);
  try {
    // First runs (code paths not yet optimised, the first thread of the schema) are not counted.
    await runMany(cluster, `${mode}-warm`, replicas, 1, RUN_MESSAGE);
    const idleBefore = await cluster.storage();
    const idleFrom = performance.now();
    await sleep(sizes.idleMs);
    const idle = minus(await cluster.storage(), idleBefore);
    const idleSeconds = (performance.now() - idleFrom) / 1000;
    const background = { statements: idle.statements / idleSeconds, transactions: idle.transactions / idleSeconds };
    const perRun = async (kind: string, text: string) => {
      const result = await runMany(cluster, `${mode}-${kind}`, sizes.storageUsers, sizes.storageRunsPerUser, text);
      const seconds = result.elapsedMs / 1000;
      const per = (key: keyof StorageCount) => ({
        perRun: fix((result.used[key] - background[key] * seconds) / result.runs, 2),
        /** Without subtracting the background. */
        perRunAsCounted: fix(result.used[key] / result.runs, 2),
      });
      return {
        runs: result.runs,
        eventsPerRun: result.eventsPerRun,
        deltasPerRun: result.deltasPerRun,
        seconds: fix(seconds, 2),
        statements: per('statements'),
        transactions: per('transactions'),
      };
    };
    return {
      replicas,
      /** Over an idle window, all replicas together (lease renewals, the reaper). */
      background: {
        windowSeconds: fix(idleSeconds, 1),
        statementsPerSecond: fix(background.statements, 2),
        transactionsPerSecond: fix(background.transactions, 2),
      },
      shortRun: await perRun('short', RUN_MESSAGE),
      longRun: await perRun('long', message(LONG_WORDS)),
    };
  } finally {
    await cluster.stop();
  }
}

// ---------------------------------------------------------------- the scenario

export async function measureFleet(quick: boolean) {
  const skipped = await fleetUnavailable();
  if (skipped !== undefined) return { skipped };
  const sizes = quick ? FLEET_SIZES.quick : FLEET_SIZES.full;
  const loadAverageAtStart = fix(loadavg()[0] ?? Number.NaN, 2);
  const wallSeconds: Record<string, number> = {};
  const timed = async <T>(part: string, measure: () => Promise<T>): Promise<T> => {
    const startedAt = performance.now();
    try {
      return await measure();
    } finally {
      wallSeconds[part] = Math.round((performance.now() - startedAt) / 1000);
    }
  };
  const deliveryLatency = await timed('deliveryLatency', () => measureDelivery(sizes));
  const samples = await timed('runsPerSecond', async () => {
    const all: Array<Record<Setup, Partial<Record<Placement, PhaseResult>>>> = [];
    for (let round = 0; round < sizes.rounds; round += 1) {
      const sample = {} as Record<Setup, Partial<Record<Placement, PhaseResult>>>;
      for (const setup of Object.keys(SETUPS) as Setup[]) sample[setup] = await runsOnce(setup, sizes);
      all.push(sample);
    }
    return all;
  });
  const storage = await timed('storage', async () => ({
    singleInstance: await storageOf('single', sizes),
    fleet: await storageOf('fleet', sizes),
  }));
  const runsPerSecond = summariseRuns(samples);
  const perRun = (kind: 'shortRun' | 'longRun') => ({
    eventsPerRun: storage.fleet[kind].eventsPerRun,
    singleInstance: {
      statements: storage.singleInstance[kind].statements.perRun,
      transactions: storage.singleInstance[kind].transactions.perRun,
    },
    fleet: { statements: storage.fleet[kind].statements.perRun, transactions: storage.fleet[kind].transactions.perRun },
  });
  return {
    /** The three measures side by side; the details follow. */
    headline: {
      deliveryMs: {
        sameReplica: { p50: deliveryLatency.sameReplicaMs.p50, p99: deliveryLatency.sameReplicaMs.p99 },
        crossReplica: { p50: deliveryLatency.crossReplicaMs.p50, p99: deliveryLatency.crossReplicaMs.p99 },
      },
      runsPerSecond: Object.fromEntries(
        Object.entries(runsPerSecond).map(([placement, setups]) => [
          placement,
          {
            singleInstance: setups.singleInstance.runsPerSecond,
            fleet1: setups.fleet1.runsPerSecond,
            fleet3: setups.fleet3.runsPerSecond,
          },
        ]),
      ),
      postgresPerRun: { shortRun: perRun('shortRun'), longRun: perRun('longRun') },
    },
    method: {
      pinning: pinning(),
      /** The machine's 1-minute load average at the start and the end (above the core count: other work was running). */
      loadAverage: { atStart: loadAverageAtStart, atEnd: fix(loadavg()[0] ?? Number.NaN, 2) },
      wallSeconds,
      deliveryLatency: `2 fleet replicas (cores ${SERVER_CPU} and ${LOAD_CPU}), ${sizes.latencyWaves} × ${sizes.latencyRuns} runs at once (one user each, owners alternating between the replicas), ${TOKEN_DELAY_MS} ms per token; per live delta, follower arrival − owner-client arrival in this process: a follower on the other replica, and one on the owning replica as the control; a first wave warms up, uncounted; the first ${SWITCH_OVER_EVENTS} live deltas after each resume reported apart (switchOver)`,
      runsPerSecond: `${sizes.clients} clients (one user each, round-robin over the replicas), closed loop, message of ${RUN_MESSAGE.length} chars, a new thread every ${RUNS_PER_THREAD} runs, no token delay, warm-up ${sizes.warmupMs} ms, window ${sizes.windowMs} ms, ${sizes.rounds} round(s); singleInstance: 1 replica on PostgreSQL without REDIS_URL; fleet1/fleet3: 1/3 replicas with REDIS_URL; every replica AGENT_MAX_CONCURRENT_RUNS = AGENT_QUEUE_SIZE = ${sizes.clients}`,
      placements: Object.fromEntries(
        sizes.placements.map((p) => [p, `replicas on cores ${CORES[p]}, load on ${LOAD_CPU}`]),
      ),
      storage: `per mode: fresh schema, ${TOKEN_DELAY_MS} ms per token, ${sizes.storageUsers} users at once × ${sizes.storageRunsPerUser} runs each (one thread per user) per run kind, AGENT_MAX_CONCURRENT_RUNS = AGENT_QUEUE_SIZE = ${sizes.storageUsers}; /metrics db counters summed over the replicas, minus the background rate of a ${sizes.idleMs} ms idle window × the runs' duration`,
    },
    deliveryLatency,
    runsPerSecond: { clients: sizes.clients, ...runsPerSecond },
    storage,
  };
}

export type FleetSummary = Awaited<ReturnType<typeof measureFleet>>;

/** `tsx bench/scenarios/fleet.ts [--quick]`: this scenario alone. */
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const summary = await measureFleet(process.argv.includes('--quick'));
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}
