/**
 * `npm run build && tsx bench/profile.ts <scenario> [seconds] [--raw] [--after=<scenario>]`: where
 * the gateway's time (or memory) goes in one side-by-side scenario, for the goals it misses
 * (`--raw`: the same for the raw server, to compare; `--after`: another scenario's load first, in
 * the same process, as in a round of the side-by-side run).
 *
 * - `connect`, `pingSmall`, `pingLarge`, `stream`: the gateway runs under `node --cpu-prof`, pinned
 *   and loaded exactly as in `bench/side-by-side.ts` (the `max` phase, `seconds` long, 10 by
 *   default), then drains on SIGTERM so the profile is written. Only the samples of the
 *   measurement window are summarised: self time by function and by module, and inclusive time.
 * - `idleMemory`: heap snapshots after gc with 0 and with N idle connections (2 000 by default), of
 *   the gateway and of the raw server; the difference per connection, by constructor.
 *
 * Summaries are printed and written next to the profiles, under bench/results/profiles/.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { settle } from './harness/processes.js';
import { type Side, startServer } from './harness/servers.js';
import { phaseOf, runLoad, THROUGHPUT_SCENARIOS, type ThroughputScenario } from './scenarios/side-by-side.js';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Where a frame's code lives: an npm package, a file of dist/, a part of Node, or V8 itself. */
function moduleOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)/u.exec(url);
  if (packageMatch !== null) return packageMatch[1] ?? url;
  const dist = /\/dist\/(.+)$/u.exec(url);
  if (dist !== null) return `dist/${dist[1]}`;
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//u, '');
}

const shortUrl = (url: string): string =>
  url
    .replace(/^file:\/\/.*?node_modules\//u, '')
    .replace(/^file:\/\/.*?\/dist\//u, 'dist/')
    .replace(/^file:\/\//u, '');

export function summariseCpuProfile(profile: CpuProfile, window?: readonly [number, number]) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const key = (node: ProfileNode): string => {
    const { functionName, url, lineNumber } = node.callFrame;
    return url === ''
      ? functionName || '(anonymous)'
      : `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}`;
  };
  // Use the window only when the profile's clock matches it (both are CLOCK_MONOTONIC on Linux).
  const inWindow = window !== undefined && profile.startTime <= window[0] && window[1] <= profile.endTime + 1_000_000;
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const modules = new Map<string, number>();
  let time = profile.startTime;
  let total = 0;
  profile.samples.forEach((id, index) => {
    time += profile.timeDeltas[index] ?? 0;
    if (inWindow && (time < window[0] || time > window[1])) return;
    const node = byId.get(id);
    if (node === undefined) return;
    total += 1;
    self.set(key(node), (self.get(key(node)) ?? 0) + 1);
    const module = moduleOf(node.callFrame.url, node.callFrame.functionName);
    modules.set(module, (modules.get(module) ?? 0) + 1);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at);
      if (frame === undefined || frame.callFrame.functionName === '(root)') continue;
      const name = key(frame);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + 1);
    }
  });
  const top = (counts: Map<string, number>, n: number) =>
    [...counts.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, samples]) => ({ name, percent: Math.round((samples / total) * 1000) / 10 }));
  return {
    samples: total,
    windowOnly: inWindow,
    selfByModule: top(modules, 20),
    selfByFunction: top(self, 30),
    inclusiveByFunction: top(inclusive, 40),
  };
}

async function profileThroughput(
  scenario: ThroughputScenario,
  seconds: number,
  side: Side,
  after: ThroughputScenario | undefined,
): Promise<unknown> {
  const name = `${stamp()}-${scenario}-${side}${after === undefined ? '' : `-after-${after}`}`;
  const dir = join(fileURLToPath(new URL('./results/profiles/', import.meta.url)), name);
  mkdirSync(dir, { recursive: true });
  const server = await startServer(side, { cpuProfileDir: dir });
  let result;
  try {
    let before;
    if (after !== undefined) {
      await settle();
      before = await runLoad(server, { warmupMs: 750, windowMs: 2_500 }, phaseOf(after, side, false));
    }
    await settle();
    result = await runLoad(server, { warmupMs: 1_500, windowMs: seconds * 1_000 }, phaseOf(scenario, side, false));
    if (before !== undefined) result = { ...result, before: { scenario: after, perSecond: before.perSecond } };
  } finally {
    // SIGTERM: the gateway drains and exits 0, and V8 writes the profile on the way out.
    await server.stop(15_000);
  }
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no .cpuprofile in ${dir}`);
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const summary = {
    scenario,
    side,
    profile: join(dir, file),
    perSecond: result.perSecond,
    serverCpu: result.serverCpu,
    ...('before' in result ? { before: result.before } : {}),
    windowMonotonicUs: result.windowMonotonicUs,
    ...summariseCpuProfile(profile, result.windowMonotonicUs),
  };
  writeFileSync(join(dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}

interface HeapSnapshot {
  readonly snapshot: { readonly meta: { readonly node_fields: string[]; readonly node_types: [string[]] } };
  readonly nodes: number[];
  readonly strings: string[];
}

/** Count and self size by kind of object: the constructor for objects, the function for closures. */
function heapByKind(path: string): Map<string, { count: number; bytes: number }> {
  const heap = JSON.parse(readFileSync(path, 'utf8')) as HeapSnapshot;
  const fields = heap.snapshot.meta.node_fields;
  const types = heap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((field) => fields.indexOf(field)) as [
    number,
    number,
    number,
  ];
  const kinds = new Map<string, { count: number; bytes: number }>();
  for (let offset = 0; offset < heap.nodes.length; offset += width) {
    const type = types[heap.nodes[offset + typeAt] ?? 0] ?? '?';
    const name = heap.strings[heap.nodes[offset + nameAt] ?? 0] ?? '';
    const kind = type.includes('string')
      ? '(strings)'
      : type === 'object' || type === 'closure' || type === 'native' || type === 'hidden' || type === 'array'
        ? `${type} ${name.slice(0, 70)}`
        : `(${type})`;
    const entry = kinds.get(kind) ?? { count: 0, bytes: 0 };
    entry.count += 1;
    entry.bytes += heap.nodes[offset + sizeAt] ?? 0;
    kinds.set(kind, entry);
  }
  return kinds;
}

async function profileMemory(connections: number): Promise<unknown> {
  const dir = join(fileURLToPath(new URL('./results/profiles/', import.meta.url)), `${stamp()}-idleMemory`);
  const sizes = { warmupMs: 0, windowMs: 0 };
  const perSide: Record<string, unknown> = {};
  for (const side of ['ours', 'raw'] as Side[]) {
    const snapshots = join(dir, side);
    mkdirSync(snapshots, { recursive: true });
    const server = await startServer(side, { memoryProbe: true, heapSnapshotDir: snapshots });
    try {
      await runLoad(server, sizes, { mode: 'hold', checkpoints: [50], concurrency: 50 });
      await settle();
      const empty = await server.memory();
      let full: Awaited<ReturnType<typeof server.memory>> | undefined;
      await runLoad(server, sizes, { mode: 'hold', checkpoints: [connections], concurrency: 200 }, async () => {
        await settle();
        full = await server.memory();
      });
      if (empty.heapSnapshot === undefined || full?.heapSnapshot === undefined) throw new Error('no heap snapshot');
      const before = heapByKind(empty.heapSnapshot);
      const after = heapByKind(full.heapSnapshot);
      const diff = [...after.entries()]
        .map(([kind, { count, bytes }]) => ({
          kind,
          perConnection: Math.round(((count - (before.get(kind)?.count ?? 0)) / connections) * 100) / 100,
          bytesPerConnection: Math.round((bytes - (before.get(kind)?.bytes ?? 0)) / connections),
        }))
        .sort((a, b) => b.bytesPerConnection - a.bytesPerConnection);
      perSide[side] = {
        heapUsedPerConnection: Math.round((full.heapUsed - empty.heapUsed) / connections),
        top: diff.slice(0, 30),
      };
    } finally {
      await server.stop();
    }
  }
  const summary = { scenario: 'idleMemory', connections, ...perSide };
  writeFileSync(join(dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/gu, '-');
}

const [scenario = '', count] = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
if (scenario === 'idleMemory') {
  process.stdout.write(`${JSON.stringify(await profileMemory(Number(count ?? 2_000)), null, 2)}\n`);
} else if ((THROUGHPUT_SCENARIOS as readonly string[]).includes(scenario)) {
  const side: Side = process.argv.includes('--raw') ? 'raw' : 'ours';
  const after = process.argv.find((arg) => arg.startsWith('--after='))?.slice('--after='.length);
  if (after !== undefined && !(THROUGHPUT_SCENARIOS as readonly string[]).includes(after))
    throw new Error(`--after=${after}?`);
  const summary = await profileThroughput(
    scenario as ThroughputScenario,
    Number(count ?? 10),
    side,
    after as ThroughputScenario | undefined,
  );
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
} else {
  process.stderr.write(
    `usage: tsx bench/profile.ts <${[...THROUGHPUT_SCENARIOS, 'idleMemory'].join('|')}> [seconds|connections]\n`,
  );
  process.exit(2);
}
