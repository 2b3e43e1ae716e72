/**
 * Side by side: the gateway (`node dist/bundle/main.mjs`) against a minimal raw `ws` server doing the same
 * job on the wire (`bench/harness/raw-server.ts`), each spawned as its own process pinned to CPU 0,
 * loaded by a generator process (`bench/generators/load-generator.ts`) pinned to CPU 1, alternating: every phase of
 * every round runs against ours, then against raw, seconds apart. Scenarios:
 *
 * 1. connect + auth: connections per second reaching `connection_established` with a valid JWT,
 *    and the latency of each (connect → first frame);
 * 2. idle memory: RSS and V8 heap per idle connection, after a forced gc;
 * 3. server → client stream: `agent_message_delta` frames per second to 20 clients (ours: real
 *    agent runs on the embedded model; raw: a send loop of frames of the same shape and size);
 * 4. request → answer: `ping` → `pong` round trips per second with 20 clients, one in flight each,
 *    at a small and a 4 KB request.
 *
 * Every throughput scenario runs twice per round: `max` (closed loop, as fast as it goes) and
 * `fixed` (the same offered load for both servers, well below either's limit). A Node generator on
 * one core may not saturate the raw server; when it does not (server CPU < 90 % of its core), the
 * ratio is taken from the server CPU time per operation at the fixed offered load instead. Ratios
 * are medians of the rounds' paired ratios; phases disturbed by other work on the machine are
 * measured again (see `phase`).
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { MAIN_JS } from '../../test/support/server-process.js';
import { signToken } from '../../test/support/tokens.js';
import type { LoadConfig, LoadResult } from '../generators/load-generator.js';
import { buildScripts, pinning, settle, spawnGenerator } from '../harness/processes.js';
import { type BenchServer, type Side, startServer } from '../harness/servers.js';
import { fix, median } from '../harness/stats.js';

/** A phase whose server used less than this share of its core was not saturated by the generator. */
const SATURATED = 0.9;

export interface Sizes {
  readonly rounds: number;
  /** The first this many rounds also measure idle memory (stable to a few % from round to round). */
  readonly memoryRounds: number;
  readonly warmupMs: number;
  readonly windowMs: number;
  readonly idleConnections: number;
  readonly settleMs: number;
  /** The longest wait for an idle machine before a phase, and the most runs of a disturbed phase. */
  readonly settleMaxMs: number;
  readonly attempts: number;
}

export const SIZES: Readonly<Record<'quick' | 'full', Sizes>> = {
  quick: {
    rounds: 2,
    memoryRounds: 2,
    warmupMs: 150,
    windowMs: 500,
    idleConnections: 1_000,
    settleMs: 100,
    settleMaxMs: 3_000,
    attempts: 2,
  },
  full: {
    rounds: 6,
    memoryRounds: 4,
    warmupMs: 750,
    windowMs: 2_000,
    idleConnections: 10_000,
    settleMs: 1_000,
    settleMaxMs: 15_000,
    attempts: 3,
  },
};

/** Clients (connections) of the stream and ping scenarios, handshakes in flight for connect. */
export const CLIENTS = 20;
export const CONNECT_CONCURRENCY = 32;
/**
 * The fixed offered loads, per second: well below what either server sustains on this machine
 * (see docs/benchmarks.md), so that both do the same work and CPU time per operation compares.
 */
export const FIXED_LOAD = { connect: 500, ping: 5_000, streamFrames: 8_000 } as const;
/** 1 300 words of 6 characters: under the default `AGENT_MESSAGE_MAX_CHARS` (8 000). */
export const STREAM_WORDS = 1_300;
export const STREAM_MESSAGE = Array.from({ length: STREAM_WORDS }, () => 'lorem').join(' ');
/**
 * The embedded model answers `You said: "<message>". I am the embedded local model, so I can only
 * echo it back to you.`, one word per delta: the message's words and 18 more.
 */
export const STREAM_DELTAS = STREAM_WORDS + 18;
/**
 * Ping frame sizes in bytes. Small: `{"event":"ping","data":{"requestId":"p-00000000"}}`, 50 B,
 * the smallest with a fixed-width request id (its `data` is 26 B); large: padded to 4 KB with a
 * field both servers ignore.
 */
export const PING_SIZES = { small: 50, large: 4_096 } as const;

// ---------------------------------------------------------------- load

/**
 * One user per 10 connections at most: the gateway refuses more than `WS_MAX_CONNECTIONS_PER_USER`
 * (20) established connections per user, and the idle-memory scenario holds 10 000.
 */
const tokens = Array.from({ length: 1_024 }, (_, index) =>
  signToken({ sub: `bench-${index}`, exp: Math.floor(Date.now() / 1000) + 6 * 3600 }),
);

/** A phase's generator settings; `tokens` replaces the default ones (HS256, `bench-<i>`) when given. */
type PhaseConfig = (LoadConfig extends infer C ? (C extends LoadConfig ? Omit<C, keyof CommonKeys> : never) : never) & {
  readonly tokens?: readonly string[];
};
interface CommonKeys {
  url: unknown;
  serverPid: unknown;
  tokens: unknown;
  warmupMs: unknown;
  windowMs: unknown;
}

/**
 * One phase: the generator, pinned to the other core, against `server`. `onHolding` runs at each
 * `HOLDING` line of the `hold` mode; the generator goes on when it returns.
 */
export async function runLoad(
  server: BenchServer,
  sizes: Pick<Sizes, 'warmupMs' | 'windowMs'>,
  phase: PhaseConfig,
  onHolding?: (held: { held: number; establishMs: number }) => Promise<void>,
): Promise<LoadResult> {
  const { loadGenerator } = buildScripts();
  const config = {
    url: server.wsUrl,
    serverPid: server.pid,
    tokens,
    warmupMs: sizes.warmupMs,
    windowMs: sizes.windowMs,
    ...phase,
  } as LoadConfig;
  const generator = spawnGenerator(loadGenerator, config, 'pipe');
  let result: LoadResult | undefined;
  try {
    for await (const line of generator.lines) {
      if (line.startsWith('HOLDING ')) {
        await onHolding?.(JSON.parse(line.slice('HOLDING '.length)) as { held: number; establishMs: number });
        generator.child.stdin?.write('release\n');
      } else if (line.startsWith('RESULT ')) {
        result = JSON.parse(line.slice('RESULT '.length)) as LoadResult;
      }
    }
    const code = await generator.exited;
    if (result === undefined || code !== 0) {
      throw new Error(
        `load generator (${phase.mode}) failed with code ${code}: ${generator.stderr()}\n${server.logTail()}`,
      );
    }
    return result;
  } finally {
    await generator.stop();
  }
}

// ---------------------------------------------------------------- scenarios

export interface MemoryResult {
  readonly connections: number;
  readonly establishMs: number;
  /** After gc, bytes: empty (before any connection), at a tenth of the connections, and at all of them. */
  readonly empty: NodeJS.MemoryUsage;
  readonly tenth: NodeJS.MemoryUsage;
  readonly full: NodeJS.MemoryUsage;
  /** VmRSS (/proc) at the same three points, before the gc. */
  readonly vmRss: readonly [number, number, number];
  /** Bytes per connection from empty to full, and between a tenth and full (the marginal cost). */
  readonly perConnection: {
    readonly rss: number;
    readonly heapUsed: number;
    readonly marginalRss: number;
    readonly marginalHeapUsed: number;
  };
}

export async function idleMemory(side: Side, sizes: Sizes): Promise<MemoryResult> {
  const server = await startServer(side, { memoryProbe: true });
  try {
    const count = sizes.idleConnections;
    const tenth = Math.round(count / 10);
    // One connection opened and closed first: the code paths of a connection are compiled and
    // loaded in both servers before the empty measurement.
    await runLoad(server, sizes, { mode: 'hold', checkpoints: [50], concurrency: 50 });
    await settle(sizes.settleMaxMs);
    await sleep(sizes.settleMs);
    const vmRss: number[] = [server.vmRss()];
    const snapshots: NodeJS.MemoryUsage[] = [await server.memory()];
    let establishMs = 0;
    await runLoad(server, sizes, { mode: 'hold', checkpoints: [tenth, count], concurrency: 200 }, async (held) => {
      establishMs = held.establishMs;
      await settle(sizes.settleMaxMs);
      await sleep(sizes.settleMs);
      vmRss.push(server.vmRss());
      snapshots.push(await server.memory());
    });
    const [empty, atTenth, full] = snapshots as [NodeJS.MemoryUsage, NodeJS.MemoryUsage, NodeJS.MemoryUsage];
    const per = (key: 'rss' | 'heapUsed', from: NodeJS.MemoryUsage, connections: number): number =>
      Math.round((full[key] - from[key]) / connections);
    return {
      connections: count,
      establishMs,
      empty,
      tenth: atTenth,
      full,
      vmRss: vmRss as unknown as [number, number, number],
      perConnection: {
        rss: per('rss', empty, count),
        heapUsed: per('heapUsed', empty, count),
        marginalRss: per('rss', atTenth, count - tenth),
        marginalHeapUsed: per('heapUsed', atTenth, count - tenth),
      },
    };
  } finally {
    await server.stop();
  }
}

export type ThroughputScenario = 'connect' | 'pingSmall' | 'pingLarge' | 'stream';
export const THROUGHPUT_SCENARIOS: readonly ThroughputScenario[] = ['connect', 'pingSmall', 'pingLarge', 'stream'];

/** The generator's settings of a scenario's phase; `fixed` adds the offered load. */
export function phaseOf(scenario: ThroughputScenario, side: Side, fixed: boolean): PhaseConfig {
  switch (scenario) {
    case 'connect':
      return { mode: 'connect', concurrency: CONNECT_CONCURRENCY, ...(fixed ? { rate: FIXED_LOAD.connect } : {}) };
    case 'pingSmall':
    case 'pingLarge':
      return {
        mode: 'ping',
        connections: CLIENTS,
        frameBytes: scenario === 'pingSmall' ? PING_SIZES.small : PING_SIZES.large,
        ...(fixed ? { rate: FIXED_LOAD.ping } : {}),
      };
    case 'stream':
      return {
        mode: 'stream',
        clients: CLIENTS,
        request: side === 'ours' ? 'agent' : 'raw',
        message: STREAM_MESSAGE,
        count: STREAM_DELTAS,
        text: 'lorem ',
        ...(fixed ? { rate: FIXED_LOAD.streamFrames / STREAM_DELTAS } : {}),
      };
    default: {
      const exhaustive: never = scenario;
      return exhaustive;
    }
  }
}

/** Other work on the machine (cores) above which a phase is measured again. */
const CONTENDED = 0.15;

export type PhaseResult = LoadResult & { readonly attempts: number };

/**
 * A phase on a quiet machine: waits for it to be idle (up to `settleMaxMs`), runs, and runs again
 * (up to `attempts` times) while other processes used more than 0.15 of a core during the window;
 * keeps the least disturbed.
 */
export async function phase(server: BenchServer, sizes: Sizes, config: PhaseConfig): Promise<PhaseResult> {
  let best: PhaseResult | undefined;
  for (let attempt = 1; attempt <= sizes.attempts; attempt += 1) {
    await settle(sizes.settleMaxMs);
    const result = await runLoad(server, sizes, config);
    if (best === undefined || result.otherCpuCores < best.otherCpuCores) best = { ...result, attempts: attempt };
    if (result.otherCpuCores <= CONTENDED) break;
  }
  if (best === undefined) throw new Error('no attempt ran');
  return best;
}

type Phases = Record<ThroughputScenario, { readonly max: PhaseResult; readonly fixed: PhaseResult }>;

interface RoundResult {
  readonly memory?: Readonly<Record<Side, MemoryResult>>;
  readonly phases: Readonly<Record<Side, Phases>>;
}

/**
 * One round: idle memory (ours, then raw: a fresh process each), then both throughput servers
 * started side by side, each pinned to the server core (the one not under load sits idle), and
 * every phase run against ours, then against raw, so each pair is measured seconds apart.
 */
async function round(index: number, sizes: Sizes): Promise<RoundResult> {
  const memory =
    index < sizes.memoryRounds
      ? { ours: await idleMemory('ours', sizes), raw: await idleMemory('raw', sizes) }
      : undefined;
  const servers: Partial<Record<Side, BenchServer>> = {};
  try {
    servers.ours = await startServer('ours');
    servers.raw = await startServer('raw');
    const running = { ours: servers.ours, raw: servers.raw };
    const phases = { ours: {}, raw: {} } as Record<Side, Phases>;
    for (const scenario of THROUGHPUT_SCENARIOS) {
      const results = { ours: {}, raw: {} } as Record<Side, { max: PhaseResult; fixed: PhaseResult }>;
      for (const kind of ['max', 'fixed'] as const) {
        for (const side of ['ours', 'raw'] as const) {
          results[side][kind] = await phase(running[side], sizes, phaseOf(scenario, side, kind === 'fixed'));
        }
      }
      phases.ours[scenario] = results.ours;
      phases.raw[scenario] = results.raw;
    }
    return { ...(memory === undefined ? {} : { memory }), phases };
  } finally {
    await servers.ours?.stop();
    await servers.raw?.stop();
  }
}

// ---------------------------------------------------------------- summary

/** Medians over the rounds, and every round's value of the headline number. */
export function aggregate(results: readonly PhaseResult[]) {
  const latency = (key: 'p50' | 'p99'): number => fix(median(results.map((r) => r.latencyMs?.[key] ?? NaN)), 3);
  return {
    perSecond: fix(median(results.map((r) => r.perSecond)), 0),
    allPerSecond: results.map((r) => fix(r.perSecond, 0)),
    ...(results[0]?.latencyMs === undefined ? {} : { latencyMs: { p50: latency('p50'), p99: latency('p99') } }),
    serverCpuUtilisation: fix(median(results.map((r) => r.serverCpu.utilisation))),
    serverCpuUsPerOp: fix(median(results.map((r) => r.serverCpu.usPerOp))),
    allServerCpuUsPerOp: results.map((r) => fix(r.serverCpu.usPerOp)),
    serverCpuSystemShare: fix(median(results.map((r) => r.serverCpu.systemShare))),
    loadCpuUtilisation: fix(median(results.map((r) => r.loadCpuUtilisation))),
    /** The most other work seen on the machine in any round's window (cores), and the re-runs it caused. */
    otherCpuCoresMax: fix(Math.max(...results.map((r) => r.otherCpuCores))),
    reruns: results.reduce((sum, r) => sum + r.attempts - 1, 0),
    errors: results.reduce((sum, r) => sum + r.errors, 0),
    ...(results[0]?.offeredPerSecond === undefined ? {} : { offeredPerSecond: fix(results[0].offeredPerSecond, 0) }),
    ...(results[0]?.frameBytes === undefined ? {} : { frameBytes: results[0].frameBytes }),
    ...(results[0]?.streams === undefined
      ? {}
      : {
          streamsPerSecond: fix(median(results.map((r) => ((r.streams ?? 0) * 1000) / r.windowMs)), 1),
          bytesPerDelta: fix(median(results.map((r) => (r.deltaBytes ?? 0) / Math.max(1, r.ops))), 1),
        }),
  };
}

export interface Verdict {
  readonly what: string;
  readonly goal: string;
  readonly ratio: number;
  readonly met: boolean;
  /** Where the ratio comes from. */
  readonly basis: string;
}

/**
 * The throughput ratio ours/raw, the median of the rounds' paired ratios: of the measured rates
 * when the raw server was saturated (its core ≥ 90 % busy, median of the rounds), otherwise of the
 * CPU time per operation (raw over ours) at the same fixed offered load.
 */
function throughputVerdict(what: string, goal: number, result: ReturnType<typeof scenarioSummary>): Verdict {
  const saturated = result.raw.max.serverCpuUtilisation >= SATURATED;
  const ratio = saturated ? result.ratios.maxPerSecond : result.ratios.capacityFromCpuPerOpAtFixedLoad;
  return {
    what,
    goal: `≥ ${goal}× raw`,
    ratio,
    met: ratio >= goal,
    basis: saturated
      ? 'rates at saturation (raw server ≥ 90 % of its core)'
      : `server CPU per operation at the same offered load (the generator drives the raw server's core only to ${Math.round(result.raw.max.serverCpuUtilisation * 100)} %)`,
  };
}

/** Medians per side and phase, and the medians of the per-round ratios ours/raw (paired: seconds apart). */
function scenarioSummary(rounds: readonly RoundResult[], name: ThroughputScenario) {
  const of = (side: Side, kind: 'max' | 'fixed'): PhaseResult[] => rounds.map((r) => r.phases[side][name][kind]);
  const paired = (kind: 'max' | 'fixed', pick: (r: PhaseResult) => number, invert = false): number[] =>
    rounds.map((r) => {
      const ours = pick(r.phases.ours[name][kind]);
      const raw = pick(r.phases.raw[name][kind]);
      return fix(invert ? raw / ours : ours / raw);
    });
  const maxPerSecond = paired('max', (r) => r.perSecond);
  const capacity = paired('fixed', (r) => r.serverCpu.usPerOp, true);
  const latency = (kind: 'max' | 'fixed', key: 'p50' | 'p99'): number[] =>
    paired(kind, (r) => r.latencyMs?.[key] ?? NaN);
  const withLatency = rounds[0]?.phases.ours[name].max.latencyMs !== undefined;
  return {
    ours: { max: aggregate(of('ours', 'max')), fixed: aggregate(of('ours', 'fixed')) },
    raw: { max: aggregate(of('raw', 'max')), fixed: aggregate(of('raw', 'fixed')) },
    ratios: {
      maxPerSecond: fix(median(maxPerSecond)),
      allMaxPerSecond: maxPerSecond,
      /** Raw CPU per operation over ours at the fixed load: the throughput ratio if both were saturated. */
      capacityFromCpuPerOpAtFixedLoad: fix(median(capacity)),
      allCapacityFromCpuPerOpAtFixedLoad: capacity,
      ...(withLatency
        ? {
            latencyP50AtFixedLoad: fix(median(latency('fixed', 'p50'))),
            latencyP99AtFixedLoad: fix(median(latency('fixed', 'p99'))),
            allLatencyP99AtFixedLoad: latency('fixed', 'p99'),
            latencyP50AtMax: fix(median(latency('max', 'p50'))),
            latencyP99AtMax: fix(median(latency('max', 'p99'))),
          }
        : {}),
    },
  };
}

export async function measureSideBySide(quick: boolean) {
  const sizes = quick ? SIZES.quick : SIZES.full;
  const rounds: RoundResult[] = [];
  for (let index = 0; index < sizes.rounds; index += 1) rounds.push(await round(index, sizes));
  const connect = scenarioSummary(rounds, 'connect');
  const stream = scenarioSummary(rounds, 'stream');
  const pingSmall = scenarioSummary(rounds, 'pingSmall');
  const pingLarge = scenarioSummary(rounds, 'pingLarge');
  const memoryRounds = rounds.flatMap((r) => (r.memory === undefined ? [] : [r.memory]));
  const memory = (side: Side) => {
    const measured = memoryRounds.map((r) => r[side]);
    const med = (pick: (m: MemoryResult) => number): number => Math.round(median(measured.map(pick)));
    return {
      connections: sizes.idleConnections,
      rounds: measured.length,
      /** Marginal: from a tenth of the connections to all of them (one-time costs left out). */
      perConnectionBytes: {
        rss: med((m) => m.perConnection.marginalRss),
        heapUsed: med((m) => m.perConnection.marginalHeapUsed),
      },
      /** From no connection to all of them: includes the heap's first growth. */
      perConnectionFromEmptyBytes: {
        rss: med((m) => m.perConnection.rss),
        heapUsed: med((m) => m.perConnection.heapUsed),
      },
      emptyMiB: {
        rss: fix(med((m) => m.empty.rss) / 2 ** 20, 1),
        heapUsed: fix(med((m) => m.empty.heapUsed) / 2 ** 20, 1),
      },
      fullMiB: {
        rss: fix(med((m) => m.full.rss) / 2 ** 20, 1),
        heapUsed: fix(med((m) => m.full.heapUsed) / 2 ** 20, 1),
        heapTotal: fix(med((m) => m.full.heapTotal) / 2 ** 20, 1),
        vmRssBeforeGc: fix(med((m) => m.vmRss[2]) / 2 ** 20, 1),
      },
      allRssPerConnection: measured.map((m) => m.perConnection.marginalRss),
      allHeapPerConnection: measured.map((m) => m.perConnection.marginalHeapUsed),
      establishMs: med((m) => m.establishMs),
    };
  };
  const oursMemory = memory('ours');
  const rawMemory = memory('raw');
  const rssRatio = oursMemory.perConnectionBytes.rss / rawMemory.perConnectionBytes.rss;
  const heapRatio = oursMemory.perConnectionBytes.heapUsed / rawMemory.perConnectionBytes.heapUsed;
  const fromEmpty = (key: 'rss' | 'heapUsed'): number =>
    fix(oursMemory.perConnectionFromEmptyBytes[key] / rawMemory.perConnectionFromEmptyBytes[key]);
  const connectP99 = connect.ratios.latencyP99AtFixedLoad ?? NaN;
  const verdicts: Verdict[] = [
    throughputVerdict('connect + auth: connections/s', 0.75, connect),
    {
      what: 'connect + auth: latency p99',
      goal: '≤ 1.3× raw',
      ratio: connectP99,
      met: connectP99 <= 1.3,
      basis: `at the same offered load (${FIXED_LOAD.connect} connections/s), median of the paired rounds`,
    },
    {
      what: 'idle memory: RSS per connection',
      goal: '≤ 1.5× raw',
      ratio: fix(rssRatio),
      met: rssRatio <= 1.5,
      basis: `after gc, marginal: ${sizes.idleConnections / 10} → ${sizes.idleConnections} connections`,
    },
    {
      what: 'idle memory: heap per connection',
      goal: '≤ 1.5× raw',
      ratio: fix(heapRatio),
      met: heapRatio <= 1.5,
      basis: `after gc, marginal: ${sizes.idleConnections / 10} → ${sizes.idleConnections} connections`,
    },
    throughputVerdict('stream: delta frames/s', 0.9, stream),
    throughputVerdict(`ping → pong, ${PING_SIZES.small} B`, 0.7, pingSmall),
    throughputVerdict(`ping → pong, ${PING_SIZES.large} B`, 0.85, pingLarge),
  ];
  return {
    method: {
      pinning: pinning(),
      rounds: sizes.rounds,
      memoryRounds: sizes.memoryRounds,
      order:
        'per round: idle memory ours, raw (fresh processes); then both throughput servers up, and each phase against ours, then raw',
      warmupMs: sizes.warmupMs,
      windowMs: sizes.windowMs,
      clients: CLIENTS,
      connectConcurrency: CONNECT_CONCURRENCY,
      fixedLoad: FIXED_LOAD,
      streamDeltasPerRun: STREAM_DELTAS,
      saturatedWhenServerCpuAtLeast: SATURATED,
    },
    verdicts,
    connect,
    idleMemory: {
      ours: oursMemory,
      raw: rawMemory,
      ratios: {
        rss: fix(rssRatio),
        heapUsed: fix(heapRatio),
        rssFromEmpty: fromEmpty('rss'),
        heapUsedFromEmpty: fromEmpty('heapUsed'),
      },
    },
    stream,
    pingSmall,
    pingLarge,
  };
}

export type SideBySide = Awaited<ReturnType<typeof measureSideBySide>>;

/** `tsx bench/scenarios/side-by-side.ts [--quick]`: this scenario alone. */
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (!existsSync(MAIN_JS)) throw new Error('run `npm run build` first');
  const summary = await measureSideBySide(process.argv.includes('--quick'));
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}
