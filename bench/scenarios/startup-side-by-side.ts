/**
 * Scenarios 5, 6 and 7, side by side: the gateway (`node dist/bundle/main.mjs`) against the raw `ws`
 * server (`bench/harness/raw-server.ts`, with its hand-written readiness gate: `RAW_WARMUP_MS`,
 * `RAW_READY_WAIT_MS`), each spawned pinned to the server core, the load from a generator process
 * pinned to the other (`bench/generators/startup-load.ts`, `bench/generators/load-generator.ts` for runs), alternating
 * ours, raw in every round.
 *
 * 5. Cold start (`cold-start.ts`, on Node 20 and Node 24): spawn → live, → ready, → the first
 *    `agent_completed` of a client connecting from the spawn; and the release of N connections held
 *    during a warm-up, from the readiness flip to the last `connection_established`. The flip is
 *    read from the server's log: ours logs the dependency that completes readiness (`dependency
 *    …: initializing → ready`, with its `timestamp`) synchronously just before the phase change
 *    releases the held connections, the raw server logs `ready` just before its release loop. Both
 *    stamps are `Date.now()` (whole ms, floored), the client's are sub-ms on the same clock.
 * 6. Start-up storm: attempts (one user each) spread evenly over the warm-up from the first
 *    `/health/live` 200, with a short ready wait: how each attempt was resolved (established, or
 *    an error frame and a close code) and how long it took from the attempt (TCP connect) and
 *    from the socket's open (the 101; the server's wait starts at the upgrade).
 * 7. Agent runs: closed-loop `agent_request`s from C clients (one user each) on the embedded model
 *    at zero token delay, SQLite and PostgreSQL (when `TEST_DATABASE_URL` is set), against the raw
 *    server's echo run (the same frames, no storage): runs per second, p50/p99 latency (send →
 *    `agent_completed`). Ours gets `AGENT_MAX_CONCURRENT_RUNS` and `AGENT_QUEUE_SIZE` = C.
 *
 * Ours runs with side-by-side.ts's settings (production, a fresh SQLite file, the frame rate limit
 * lifted). Each start-up, release and storm sample is taken on an idle machine and taken again
 * (up to `attempts` times) while other processes used the CPU meanwhile; the kept one says how
 * much (`otherCpuCoresMax`). `tsx bench/scenarios/startup-side-by-side.ts [--quick]` runs these alone.
 */
import { fileURLToPath } from 'node:url';
import { createTestDatabase, ENGINES, type Engine } from '../../test/support/databases.js';
import { signToken } from '../../test/support/tokens.js';
import { pinning } from '../harness/processes.js';
import { type Side, startServer } from '../harness/servers.js';
import { fix, median, pairedRatio, percentile, spread } from '../harness/stats.js';
import { flipOf, generate, type MeasuredSample, measure, warmupEnv } from '../harness/startup-runner.js';
import { measureColdStart, RUN_MESSAGE } from './cold-start.js';
import { phase, type PhaseResult, type Sizes } from './side-by-side.js';
import type { HeldResult } from '../generators/startup-load.js';

interface StartupSizes {
  readonly rounds: number;
  readonly held: number;
  readonly releaseWarmupMs: number;
  readonly stormAttempts: number;
  readonly stormWarmupMs: number;
  readonly stormReadyWaitMs: number;
  readonly runClients: number;
  readonly runWarmupMs: number;
  readonly runWindowMs: number;
  readonly settleMaxMs: number;
  /** The most measurements of a sample disturbed by other work (see `phase` in side-by-side.ts). */
  readonly attempts: number;
}

export const STARTUP_SIZES: Readonly<Record<'quick' | 'full', StartupSizes>> = {
  quick: {
    rounds: 1,
    held: 200,
    releaseWarmupMs: 1_000,
    stormAttempts: 1_000,
    stormWarmupMs: 1_500,
    stormReadyWaitMs: 1_000,
    runClients: 50,
    runWarmupMs: 300,
    runWindowMs: 1_500,
    settleMaxMs: 2_000,
    attempts: 1,
  },
  full: {
    rounds: 4,
    held: 1_000,
    releaseWarmupMs: 3_000,
    stormAttempts: 5_000,
    stormWarmupMs: 3_000,
    stormReadyWaitMs: 1_000,
    runClients: 200,
    runWarmupMs: 1_000,
    runWindowMs: 10_000,
    settleMaxMs: 10_000,
    attempts: 3,
  },
};

/** The goals of issue 6 (cold start: `cold-start.ts`). */
export const GOALS = { releaseMs: 100, stormMarginMs: 100 } as const;
export { RUN_MESSAGE };
export const RUNS_PER_THREAD = 10;

// ---------------------------------------------------------------- helpers

/** Distinct users: the gateway refuses more than `WS_MAX_CONNECTIONS_PER_USER` (20) per user. */
function tokens(prefix: string, count: number): string[] {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  return Array.from({ length: count }, (_, index) => signToken({ sub: `${prefix}-${index}`, exp }));
}

// ---------------------------------------------------------------- 5. release of held connections

/** What every held-connection sample says about its generator. */
interface LoadedSample extends MeasuredSample {
  readonly loadCpuUtilisation: number;
  /** The generator's worst event-loop delay, ms: its times may be late by as much. */
  readonly loadLoopDelayMaxMs: number;
}

interface ReleaseSample extends LoadedSample {
  readonly held: number;
  /** After the flip, ms: the first, median, p99 and last `connection_established` received. */
  readonly firstMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly lastMs: number;
  /** In the server, from the flip to the end of its synchronous release (ms, from the two log stamps). */
  readonly serverLoopMs: number;
  /** The last socket opened this long before the flip (all were held). */
  readonly lastOpenBeforeFlipMs: number;
}

function releaseOnce(side: Side, sizes: StartupSizes): Promise<ReleaseSample> {
  return measure(sizes, async () => {
    const { server, result, otherCpuCores, otherCpuMs, loadCpuUtilisation } = await generate<HeldResult>(
      // The ready wait (10 s, ours' default) outlasts the warm-up: every connection is held, none refused.
      side,
      { env: warmupEnv(side, sizes.releaseWarmupMs, 10_000) },
      (baseUrl, url) => ({
        mode: 'held',
        baseUrl,
        intervalMs: 1,
        url,
        tokens: tokens('held', sizes.held),
        concurrency: 200,
        timeoutMs: sizes.releaseWarmupMs + 15_000,
      }),
    );
    try {
      const { attempts } = result;
      const { flipAt, loopEndAt } = flipOf(server);
      const notEstablished = attempts.filter(([, , , outcome]) => outcome !== 'established');
      if (notEstablished.length > 0) {
        throw new Error(
          `${side}: ${notEstablished.length} held connections not established, first: ${notEstablished[0]?.[3]}`,
        );
      }
      const lastOpen = Math.max(...attempts.map(([, openedAt]) => openedAt ?? Infinity));
      if (!(lastOpen < flipAt)) throw new Error(`${side}: not every socket was open at the flip: lengthen the warm-up`);
      const after = attempts.map(([, , resolvedAt]) => (resolvedAt ?? NaN) - flipAt);
      return {
        held: attempts.length,
        firstMs: fix(Math.min(...after), 2),
        p50Ms: fix(percentile(after, 0.5), 2),
        p99Ms: fix(percentile(after, 0.99), 2),
        lastMs: fix(Math.max(...after), 2),
        serverLoopMs: loopEndAt - flipAt,
        lastOpenBeforeFlipMs: fix(flipAt - lastOpen, 1),
        loadCpuUtilisation,
        loadLoopDelayMaxMs: result.loopDelayMs.max,
        otherCpuCores,
        otherCpuMs,
      };
    } finally {
      await server.stop();
    }
  });
}

// ---------------------------------------------------------------- 6. start-up storm

type Stats = { readonly p50: number; readonly p99: number; readonly max: number };

interface StormSample extends LoadedSample {
  readonly attempts: number;
  /** Started before the readiness flip (the rest found the server ready). */
  readonly startedBeforeFlip: number;
  /** `established`, `close 1013 SERVICE_NOT_READY`, …: how many of each. */
  readonly outcomes: Readonly<Record<string, number>>;
  readonly closes1011: number;
  readonly unresolved: number;
  /** Neither established nor closed with 1013 (1011, 1006, a socket error, unresolved). */
  readonly otherThanEstablishedOr1013: number;
  /** Resolution time, ms: from `new WebSocket`, and from the socket's open. */
  readonly fromAttemptMs: Stats;
  readonly fromOpenMs: Stats;
  /** The slowest attempt: how it ended, and when it started relative to the flip (ms). */
  readonly slowest: { readonly outcome: string; readonly startedAfterFlipMs: number };
  /** The flip to the last `connection_established` of the attempts held at it (opened before it), ms. */
  readonly releaseLastMs: number;
}

function stormOnce(side: Side, sizes: StartupSizes): Promise<StormSample> {
  return measure(sizes, async () => {
    const { server, result, otherCpuCores, otherCpuMs, loadCpuUtilisation } = await generate<HeldResult>(
      side,
      { env: warmupEnv(side, sizes.stormWarmupMs, sizes.stormReadyWaitMs) },
      (baseUrl, url) => ({
        mode: 'storm',
        baseUrl,
        intervalMs: 1,
        url,
        tokens: tokens('storm', sizes.stormAttempts),
        spreadMs: sizes.stormWarmupMs,
        timeoutMs: sizes.stormReadyWaitMs + 5_000,
      }),
    );
    try {
      const { attempts } = result;
      const { flipAt } = flipOf(server);
      const outcomes: Record<string, number> = {};
      for (const [, , , outcome] of attempts) outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      const resolved = attempts.filter((a): a is [number, number | null, number, string] => a[2] !== null);
      const stats = (values: number[]): Stats => ({
        p50: fix(percentile(values, 0.5), 2),
        p99: fix(percentile(values, 0.99), 2),
        max: fix(Math.max(...values), 2),
      });
      const slowest = resolved.reduce((worst, a) => (a[2] - a[0] > worst[2] - worst[0] ? a : worst));
      const expected = (outcome: string): boolean => outcome === 'established' || outcome.startsWith('close 1013');
      return {
        attempts: attempts.length,
        startedBeforeFlip: attempts.filter(([startedAt]) => startedAt < flipAt).length,
        outcomes,
        closes1011: attempts.filter(([, , , outcome]) => outcome.startsWith('close 1011')).length,
        unresolved: outcomes.unresolved ?? 0,
        otherThanEstablishedOr1013: attempts.filter(([, , , outcome]) => !expected(outcome)).length,
        fromAttemptMs: stats(resolved.map(([startedAt, , resolvedAt]) => resolvedAt - startedAt)),
        fromOpenMs: stats(
          resolved.flatMap(([, openedAt, resolvedAt]) => (openedAt === null ? [] : [resolvedAt - openedAt])),
        ),
        slowest: { outcome: slowest[3], startedAfterFlipMs: fix(slowest[0] - flipAt, 1) },
        releaseLastMs: fix(
          Math.max(
            ...resolved.flatMap(([, openedAt, resolvedAt, outcome]) =>
              outcome === 'established' && openedAt !== null && openedAt < flipAt ? [resolvedAt - flipAt] : [],
            ),
          ),
          2,
        ),
        loadCpuUtilisation,
        loadLoopDelayMaxMs: result.loopDelayMs.max,
        otherCpuCores,
        otherCpuMs,
      };
    } finally {
      await server.stop();
    }
  });
}

// ---------------------------------------------------------------- 7. agent runs

type RunTarget = 'raw' | Engine;

async function runsOnce(target: RunTarget, sizes: StartupSizes): Promise<PhaseResult> {
  const database = target === 'postgres' ? await createTestDatabase('postgres') : undefined;
  const side: Side = target === 'raw' ? 'raw' : 'ours';
  const server = await startServer(side, {
    env:
      side === 'raw'
        ? {}
        : {
            // Every client's run starts at once: the defaults (16 slots, 64 queued) would refuse
            // 120 of 200 clients with SERVER_BUSY and turn this into a test of the limiter.
            AGENT_MAX_CONCURRENT_RUNS: String(sizes.runClients),
            AGENT_QUEUE_SIZE: String(sizes.runClients),
            ...database?.env,
          },
  });
  try {
    const phaseSizes: Sizes = {
      rounds: 1,
      memoryRounds: 0,
      warmupMs: sizes.runWarmupMs,
      windowMs: sizes.runWindowMs,
      idleConnections: 0,
      settleMs: 0,
      settleMaxMs: sizes.settleMaxMs,
      // PostgreSQL's own CPU counts as "other work on the machine": no re-runs for it.
      attempts: target === 'postgres' ? 1 : sizes.attempts,
    };
    return await phase(server, phaseSizes, {
      mode: 'runs',
      clients: sizes.runClients,
      message: RUN_MESSAGE,
      runsPerThread: RUNS_PER_THREAD,
    });
  } finally {
    await server.stop();
    await database?.drop();
  }
}

// ---------------------------------------------------------------- summary

const bySide = <T>(samples: ReadonlyArray<Record<Side, T>>, side: Side): T[] => samples.map((s) => s[side]);

/** The most other work seen on the machine during a kept sample (cores), and the re-measurements. */
function disturbance(
  samples: ReadonlyArray<{
    readonly otherCpuCores: number;
    readonly runs: number;
    readonly loadCpuUtilisation?: number;
    readonly loadLoopDelayMaxMs?: number;
  }>,
) {
  return {
    ...(samples[0]?.loadLoopDelayMaxMs === undefined
      ? {}
      : {
          loadCpuUtilisationMax: fix(Math.max(...samples.map((x) => x.loadCpuUtilisation ?? NaN)), 2),
          loadLoopDelayMaxMs: fix(Math.max(...samples.map((x) => x.loadLoopDelayMaxMs ?? NaN)), 1),
        }),
    otherCpuCoresMax: fix(Math.max(...samples.map((x) => x.otherCpuCores)), 2),
    reruns: samples.reduce((sum, x) => sum + x.runs - 1, 0),
  };
}

function summariseRelease(samples: ReadonlyArray<Record<Side, ReleaseSample>>) {
  const side = (s: Side) => {
    const all = bySide(samples, s);
    const med = (pick: (x: ReleaseSample) => number): number => fix(median(all.map(pick)), 2);
    return {
      held: all[0]?.held ?? 0,
      /** Flip → the last `connection_established`: the scenario's number. */
      lastMs: spread(
        all.map((x) => x.lastMs),
        2,
      ),
      /** Medians over the rounds: flip → the first, the median and the p99 connection. */
      firstMs: med((x) => x.firstMs),
      p50Ms: med((x) => x.p50Ms),
      p99Ms: med((x) => x.p99Ms),
      serverLoopMs: med((x) => x.serverLoopMs),
      lastOpenBeforeFlipMsMin: fix(Math.min(...all.map((x) => x.lastOpenBeforeFlipMs)), 1),
      ...disturbance(all),
    };
  };
  const ours = side('ours');
  return {
    ours,
    raw: side('raw'),
    ratio: { lastMs: pairedRatio(samples, (x) => x.lastMs), p50Ms: pairedRatio(samples, (x) => x.p50Ms) },
    goal: `flip → last of ${ours.held} held connection_established ≤ ${GOALS.releaseMs} ms (median of rounds)`,
    met: ours.lastMs.median <= GOALS.releaseMs,
    metInEveryRound: ours.lastMs.max <= GOALS.releaseMs,
  };
}

function summariseStorm(samples: ReadonlyArray<Record<Side, StormSample>>, sizes: StartupSizes) {
  const limit = sizes.stormReadyWaitMs + GOALS.stormMarginMs;
  const side = (s: Side) => {
    const all = bySide(samples, s);
    const sum = (pick: (x: StormSample) => number): number => all.reduce((total, x) => total + pick(x), 0);
    const outcomes: Record<string, number> = {};
    for (const x of all) for (const [key, n] of Object.entries(x.outcomes)) outcomes[key] = (outcomes[key] ?? 0) + n;
    const slowest = all.reduce((worst, x) => (x.fromAttemptMs.max > worst.fromAttemptMs.max ? x : worst));
    return {
      attempts: sum((x) => x.attempts),
      startedBeforeFlip: sum((x) => x.startedBeforeFlip),
      /** Summed over the rounds. */
      outcomes,
      closes1011: sum((x) => x.closes1011),
      unresolved: sum((x) => x.unresolved),
      otherThanEstablishedOr1013: sum((x) => x.otherThanEstablishedOr1013),
      /** Resolution time, ms, per round: the slowest attempt, and the p99. */
      maxFromAttemptMs: spread(
        all.map((x) => x.fromAttemptMs.max),
        2,
      ),
      maxFromOpenMs: spread(
        all.map((x) => x.fromOpenMs.max),
        2,
      ),
      p99FromAttemptMs: fix(median(all.map((x) => x.fromAttemptMs.p99)), 2),
      p50FromAttemptMs: fix(median(all.map((x) => x.fromAttemptMs.p50)), 2),
      slowest: slowest.slowest,
      /** Flip → the last held attempt established (median over the rounds). */
      releaseLastMs: fix(median(all.map((x) => x.releaseLastMs)), 2),
      ...disturbance(all),
    };
  };
  const ours = side('ours');
  const ok = ours.closes1011 === 0 && ours.otherThanEstablishedOr1013 === 0;
  return {
    ours,
    raw: side('raw'),
    ratio: {
      maxFromAttemptMs: pairedRatio(samples, (x) => x.fromAttemptMs.max),
      p99FromAttemptMs: pairedRatio(samples, (x) => x.fromAttemptMs.p99),
      releaseLastMs: pairedRatio(samples, (x) => x.releaseLastMs),
    },
    goal: `0 × 1011, every attempt established or 1013, each within WS_READY_WAIT_MS + ${GOALS.stormMarginMs} ms = ${limit} ms of new WebSocket (every round)`,
    met: ok && ours.maxFromAttemptMs.max <= limit,
    /** The same bound counted from the socket's open (where the server's wait starts). */
    metFromOpen: ok && ours.maxFromOpenMs.max <= limit,
  };
}

function summariseRuns(samples: ReadonlyArray<Partial<Record<RunTarget, PhaseResult>>>, sizes: StartupSizes) {
  const of = (target: RunTarget) => {
    const all = samples.flatMap((s) => (s[target] === undefined ? [] : [s[target]]));
    if (all.length === 0) return undefined;
    return {
      runsPerSecond: spread(
        all.map((r) => r.perSecond),
        0,
      ),
      /**
       * Clients over the mean latency (Little's law, closed loop): the same rate, without the
       * granularity of counting completions in a window when they come in waves (ours on
       * PostgreSQL completes the 200 runs in near lockstep, so a window holds 3, 4 or 5 waves).
       */
      runsPerSecondFromLatency: fix(median(all.map((r) => (sizes.runClients * 1000) / (r.meanLatencyMs ?? NaN))), 0),
      /** Send → `agent_completed`, ms: medians over the rounds of each round's p50 and p99. */
      latencyMs: {
        p50: fix(median(all.map((r) => r.latencyMs?.p50 ?? NaN)), 1),
        p99: fix(median(all.map((r) => r.latencyMs?.p99 ?? NaN)), 1),
        maxP99: fix(Math.max(...all.map((r) => r.latencyMs?.p99 ?? NaN)), 1),
      },
      deltasPerRun: fix(median(all.map((r) => r.deltasPerRun ?? NaN)), 1),
      serverCpuUtilisation: fix(median(all.map((r) => r.serverCpu.utilisation)), 2),
      serverCpuUsPerRun: fix(median(all.map((r) => r.serverCpu.usPerOp)), 0),
      loadCpuUtilisation: fix(median(all.map((r) => r.loadCpuUtilisation)), 2),
      otherCpuCoresMax: fix(Math.max(...all.map((r) => r.otherCpuCores)), 2),
      reruns: all.reduce((sum, r) => sum + r.attempts - 1, 0),
      errors: all.reduce((sum, r) => sum + r.errors, 0),
    };
  };
  const paired = (target: Engine, pick: (r: PhaseResult) => number): number =>
    fix(median(samples.flatMap((s) => (s[target] && s.raw ? [pick(s[target]) / pick(s.raw)] : []))), 2);
  const engines = (['sqlite', 'postgres'] as const).flatMap((engine) => {
    const ours = of(engine);
    if (ours === undefined) return [];
    return [
      [
        engine,
        {
          ours,
          ratio: {
            runsPerSecond: paired(engine, (r) => r.perSecond),
            runsPerSecondFromLatency: paired(engine, (r) => 1 / (r.meanLatencyMs ?? NaN)),
            latencyP50: paired(engine, (r) => r.latencyMs?.p50 ?? NaN),
            latencyP99: paired(engine, (r) => r.latencyMs?.p99 ?? NaN),
          },
          goal: 'none in the issue (reported); every run completes (no agent_error)',
          met: ours.errors === 0,
        },
      ] as const,
    ];
  });
  return {
    clients: sizes.runClients,
    /** Set for ours (the defaults are 16 and 64). */
    oursEnv: { AGENT_MAX_CONCURRENT_RUNS: sizes.runClients, AGENT_QUEUE_SIZE: sizes.runClients },
    raw: of('raw'),
    ...Object.fromEntries(engines),
  };
}

export async function measureStartupSideBySide(quick: boolean) {
  const sizes = quick ? STARTUP_SIZES.quick : STARTUP_SIZES.full;
  const targets: RunTarget[] = [
    'sqlite',
    'raw',
    ...(ENGINES.find((e) => e.engine === 'postgres')?.available ? ['postgres' as const] : []),
  ];
  const releases: Array<Record<Side, ReleaseSample>> = [];
  const storms: Array<Record<Side, StormSample>> = [];
  const runs: Array<Partial<Record<RunTarget, PhaseResult>>> = [];
  const coldStart = await measureColdStart(quick);
  for (let round = 0; round < sizes.rounds; round += 1) {
    releases.push({ ours: await releaseOnce('ours', sizes), raw: await releaseOnce('raw', sizes) });
    storms.push({ ours: await stormOnce('ours', sizes), raw: await stormOnce('raw', sizes) });
    const results: Partial<Record<RunTarget, PhaseResult>> = {};
    for (const target of targets) results[target] = await runsOnce(target, sizes);
    runs.push(results);
  }
  return {
    method: {
      pinning: pinning(),
      rounds: sizes.rounds,
      order: `cold start first (its own rounds, see coldStart.method); then per round: release (ours, raw), storm (ours, raw), runs (${targets.join(', ')})`,
      release: `${sizes.held} sockets (one user each) opened during a ${sizes.releaseWarmupMs} ms warm-up; flip from the server log (ms stamp) → each connection_established at the client`,
      storm: `${sizes.stormAttempts} attempts (one user each) evenly over ${sizes.stormWarmupMs} ms from /health/live 200, warm-up ${sizes.stormWarmupMs} ms, ready wait ${sizes.stormReadyWaitMs} ms`,
      runs: `${sizes.runClients} clients (one user each), closed loop, message of ${RUN_MESSAGE.length} chars, a new thread every ${RUNS_PER_THREAD} runs, warm-up ${sizes.runWarmupMs} ms, window ${sizes.runWindowMs} ms`,
    },
    coldStart,
    release: summariseRelease(releases),
    storm: summariseStorm(storms, sizes),
    agentRuns: summariseRuns(runs, sizes),
  };
}

export type StartupSideBySide = Awaited<ReturnType<typeof measureStartupSideBySide>>;

/** `tsx bench/startup-side-by-side.ts [--quick]`: these scenarios alone. */
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const summary = await measureStartupSideBySide(process.argv.includes('--quick'));
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}
