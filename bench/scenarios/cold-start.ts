/**
 * Scenario 5a, cold start side by side (issue 16), on this Node (20) and on Node 24, the image's:
 * from the spawn to the first `/health/live` 200 and the first `/health/ready` 200 (a generator
 * polling both every ms), and, in a spawn of its own, to the first `agent_completed` of a client
 * that starts connecting at the spawn (scale from zero: a TCP connect every ms until the port takes
 * it, then the upgrade, held by ours until ready; `agent_request` once established; embedded
 * model, no token delay, SQLite).
 *
 * Per Node version, alternating in every round (the order turned by one each round):
 * - `raw`: `harness/raw-server.ts` without warm-up; its `/health/live` 200 is its "listening";
 * - `bundle`: ours as production runs it, `dist/bundle/main.mjs`;
 * - `unbundled` (full runs): ours as before issue 16, tsc's `dist/main.js` (or another build's:
 *   `BENCH_UNBUNDLED_MAIN_JS`);
 * - `image` (Node 24): the bundle as the image starts it, compile cache warmed at build
 *   (`harness/image.ts` plays the Dockerfile's runtime stage).
 *
 * Goals: ours' ready ≤ 2.0 × raw's listening and live ≤ 1.5 × it; ours' first `agent_completed`
 * ≤ 2.0 × raw's; the image's ready ≤ `node dist/main.js`'s on Node 24. Ratios are medians of the
 * rounds' paired ratios. `tsx bench/scenarios/cold-start.ts [--quick]` runs this alone.
 */
import { fileURLToPath } from 'node:url';
import { signToken } from '../../test/support/tokens.js';
import { UNBUNDLED_MAIN_JS } from '../../test/support/server-process.js';
import type { FirstRunResult, ProbeResult } from '../generators/startup-load.js';
import { emulateImage, type EmulatedImage } from '../harness/image.js';
import { nodeVersions, type NodeVersion } from '../harness/node-versions.js';
import { pinning } from '../harness/processes.js';
import type { ServerOptions, Side } from '../harness/servers.js';
import { fix, median, spread } from '../harness/stats.js';
import { generate, type MeasuredSample, measure } from '../harness/startup-runner.js';

/** The message of every run scenario (this one, 7 and fleet's): the embedded model echoes it, 33 deltas. */
export const RUN_MESSAGE = 'Please summarise what a readiness probe is for, in a few short sentences of plain words.';

export const COLD_START_GOALS = { liveVsRawListening: 1.5, readyVsRawListening: 2.0, firstCompletedVsRaw: 2.0 };

type Variant = 'raw' | 'bundle' | 'unbundled' | 'image';

/** `BENCH_UNBUNDLED_MAIN_JS`: another build's `dist/main.js` as `unbundled` (the commit before a change). */
const UNBUNDLED_ENTRY = process.env.BENCH_UNBUNDLED_MAIN_JS ?? UNBUNDLED_MAIN_JS;

interface Sizes {
  readonly rounds: number;
  readonly settleMaxMs: number;
  readonly attempts: number;
  /** The unbundled server too (the "before" of issue 16). */
  readonly unbundled: boolean;
}

const SIZES: Readonly<Record<'quick' | 'full', Sizes>> = {
  quick: { rounds: 1, settleMaxMs: 1_000, attempts: 1, unbundled: false },
  full: { rounds: 6, settleMaxMs: 10_000, attempts: 3, unbundled: true },
};

interface Sample extends MeasuredSample {
  /** Spawn → …, ms. */
  readonly ms: number;
}

function serverOf(variant: Variant, node: NodeVersion, image: EmulatedImage | undefined): [Side, ServerOptions] {
  switch (variant) {
    case 'raw':
      return ['raw', { node: node.path }];
    case 'bundle':
      return ['ours', { node: node.path }];
    case 'unbundled':
      return ['ours', { node: node.path, entry: UNBUNDLED_ENTRY }];
    case 'image':
      if (image === undefined) throw new Error('no emulated image');
      return ['ours', { node: node.path, entry: image.entry, cwd: image.cwd, env: image.env }];
    default: {
      const exhaustive: never = variant;
      throw new Error(`unknown variant ${String(exhaustive)}`);
    }
  }
}

/** Spawn → first `/health/live` 200 and first `/health/ready` 200. */
function probeOnce(sizes: Sizes, [side, options]: [Side, ServerOptions]): Promise<{ live: Sample; ready: Sample }> {
  return measure<Sample & { readyMs: number }>(sizes, async () => {
    const run = await generate<ProbeResult>(side, options, (baseUrl) => ({
      mode: 'probe',
      baseUrl,
      intervalMs: 1,
      timeoutMs: 0,
    }));
    await run.server.stop();
    return {
      ms: fix(run.result.liveAt - run.server.spawnedAtEpochMs, 1),
      readyMs: fix(run.result.readyAt - run.server.spawnedAtEpochMs, 1),
      otherCpuCores: run.otherCpuCores,
      otherCpuMs: run.otherCpuMs,
    };
  }).then(({ readyMs, ...live }) => ({ live, ready: { ...live, ms: readyMs } }));
}

/** Spawn → first `agent_completed` of a client connecting from the spawn on. */
function firstRunOnce(sizes: Sizes, [side, options]: [Side, ServerOptions], token: string): Promise<Sample> {
  return measure<Sample>(sizes, async () => {
    const run = await generate<FirstRunResult>(side, options, (baseUrl, url) => ({
      mode: 'firstRun',
      baseUrl,
      intervalMs: 1,
      url,
      token,
      message: RUN_MESSAGE,
      timeoutMs: 30_000,
    }));
    await run.server.stop();
    return {
      ms: fix(run.result.completedAt - run.server.spawnedAtEpochMs, 1),
      otherCpuCores: run.otherCpuCores,
      otherCpuMs: run.otherCpuMs,
    };
  });
}

type Measure = 'live' | 'ready' | 'firstCompleted';
type Round = Partial<Record<Variant, Record<Measure, Sample>>>;

function summarise(node: NodeVersion, variants: readonly Variant[], rounds: readonly Round[]) {
  const of = (variant: Variant, measure: Measure): Sample[] => rounds.flatMap((r) => r[variant]?.[measure] ?? []);
  /** Median over the rounds of ours/raw (or ours/another variant), each round's pair measured seconds apart. */
  const paired = (variant: Variant, measure: Measure, base: Variant, baseMeasure: Measure): number =>
    fix(median(rounds.map((r) => (r[variant]?.[measure].ms ?? NaN) / (r[base]?.[baseMeasure].ms ?? NaN))), 2);
  const ratios = (variant: Variant) => ({
    liveVsRawListening: paired(variant, 'live', 'raw', 'live'),
    readyVsRawListening: paired(variant, 'ready', 'raw', 'live'),
    firstCompletedVsRaw: paired(variant, 'firstCompleted', 'raw', 'firstCompleted'),
  });
  const ours = variants.filter((v) => v !== 'raw');
  return {
    node: node.version,
    variants: Object.fromEntries(
      variants.map((variant) => [
        variant,
        {
          liveMs: spread(of(variant, 'live').map((s) => s.ms)),
          readyMs: spread(of(variant, 'ready').map((s) => s.ms)),
          firstCompletedMs: spread(of(variant, 'firstCompleted').map((s) => s.ms)),
          otherCpuCoresMax: fix(
            Math.max(
              ...(['live', 'firstCompleted'] as const).flatMap((m) => of(variant, m).map((s) => s.otherCpuCores)),
            ),
            2,
          ),
          reruns: (['live', 'firstCompleted'] as const).reduce(
            (sum, m) => sum + of(variant, m).reduce((n, s) => n + s.runs - 1, 0),
            0,
          ),
        },
      ]),
    ),
    ratios: Object.fromEntries(ours.map((variant) => [variant, ratios(variant)])),
    goals: COLD_START_GOALS,
    met: Object.fromEntries(
      ours.map((variant) => {
        const r = ratios(variant);
        return [
          variant,
          {
            live: r.liveVsRawListening <= COLD_START_GOALS.liveVsRawListening,
            ready: r.readyVsRawListening <= COLD_START_GOALS.readyVsRawListening,
            firstCompleted: r.firstCompletedVsRaw <= COLD_START_GOALS.firstCompletedVsRaw,
          },
        ];
      }),
    ),
    ...(variants.includes('image') && variants.includes('unbundled')
      ? {
          imageVsUnbundled: {
            readyRatio: paired('image', 'ready', 'unbundled', 'ready'),
            goal: "the image's ready ≤ node dist/main.js's on the same Node (ratio ≤ 1)",
            met: paired('image', 'ready', 'unbundled', 'ready') <= 1,
          },
        }
      : {}),
  };
}

export async function measureColdStart(quick: boolean) {
  const sizes = quick ? SIZES.quick : SIZES.full;
  const { versions, missing } = nodeVersions();
  const token = signToken({ sub: 'first-run', exp: Math.floor(Date.now() / 1000) + 3600 });
  const results = [];
  let imageWarmUpMs: number | undefined;
  for (const node of versions) {
    const withImage = Number(node.version.slice(1).split('.')[0]) >= 22;
    const image = withImage ? emulateImage(node.path) : undefined;
    if (image !== undefined) imageWarmUpMs = image.warmUpMs;
    const variants: Variant[] = [
      'raw',
      'bundle',
      ...(withImage ? ['image' as const] : []),
      ...(sizes.unbundled ? ['unbundled' as const] : []),
    ];
    const rounds: Round[] = [];
    for (let index = 0; index < sizes.rounds; index += 1) {
      const order = variants.map((_, i) => variants[(i + index) % variants.length]);
      const round: Round = {};
      const probes: Partial<Record<Variant, { live: Sample; ready: Sample }>> = {};
      for (const variant of order) probes[variant] = await probeOnce(sizes, serverOf(variant, node, image));
      for (const variant of order) {
        const probe = probes[variant];
        if (probe === undefined) continue;
        round[variant] = { ...probe, firstCompleted: await firstRunOnce(sizes, serverOf(variant, node, image), token) };
      }
      rounds.push(round);
    }
    results.push([node.name, summarise(node, variants, rounds)] as const);
  }
  return {
    method: {
      pinning: pinning(),
      rounds: sizes.rounds,
      order:
        "per Node version and round: every variant probed, then every variant's first run, in an order turned by one each round",
      probe:
        'spawn (sh + taskset + node) → first 200 of /health/live and of /health/ready, polled every 1 ms from the load core',
      firstRun: `spawn → agent_completed: a TCP connect every 1 ms from before the spawn, the upgrade, agent_request (${RUN_MESSAGE.length} chars, 33 deltas) once established`,
      unbundled: UNBUNDLED_ENTRY,
      image: `the Dockerfile's runtime stage played out in bench/results/.image (node_modules linked to the project's, this user for warm-up and starts); warm-up ${imageWarmUpMs ?? '-'} ms`,
      ...(missing === undefined ? {} : { missing }),
    },
    ...Object.fromEntries(results),
  };
}

export type ColdStart = Awaited<ReturnType<typeof measureColdStart>>;

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const summary = await measureColdStart(process.argv.includes('--quick'));
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}
