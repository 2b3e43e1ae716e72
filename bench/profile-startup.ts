/**
 * `npm run build && tsx bench/profile-startup.ts [--unbundled] [--node24] [--image] [--raw]`: where
 * a start's time goes (issue 16). The server (the bundle by default; `--unbundled`: tsc's
 * `dist/main.js`, or `BENCH_UNBUNDLED_MAIN_JS`'s; `--image`: the bundle as the image starts it, compile cache warmed, Node 24) is
 * spawned pinned to the server core under `node --cpu-prof` on embedded defaults, stopped with
 * SIGTERM once ready (V8 writes the profile at exit), and summarised:
 *
 * - the timeline from the spawn, from the server's own log: its first line (what runs before
 *   `main.ts`'s first line: Node's start and every module loaded and evaluated), `listening on`,
 *   and the readiness phase `ready`;
 * - the samples of each phase (modules, up to `NestFactory.create`; Nest's create and init, up to
 *   `listen`; after it, until ready) by kind: compiling JavaScript, loading Node's built-ins,
 *   resolving and reading files, garbage collection, waiting, and running code by package (the
 *   bundle's frames mapped back through its source maps; a chunk's top-level code has no function
 *   of its own and is counted as the chunk's);
 * - with strace installed, the files opened from the spawn to ready (a second run, not timed):
 *   JavaScript modules, package.json files, native addons.
 *
 * The profile and the summary go to bench/results/profiles/.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAIN_JS, UNBUNDLED_MAIN_JS } from '../test/support/server-process.js';
import { emulateImage } from './harness/image.js';
import { nodeVersions } from './harness/node-versions.js';
import { buildScripts, settle } from './harness/processes.js';
import { type ServerOptions, type Side, startServer } from './harness/servers.js';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const PHASES = [
  { name: 'modules (spawn → NestFactory.create)', until: /^(create|NestFactoryStatic\.create)$/u },
  { name: 'Nest create and init (→ listen)', until: /^listen$/u },
  { name: 'after listen (→ ready, and the drain)', until: undefined },
] as const;

const WAITING = new Set(['(idle)', '(program)', '(garbage collector)']);

/** The npm package (or dist/src folder) of a source path. */
function packageOf(path: string): string {
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/u.exec(path);
  if (match !== null) return match[1] ?? path;
  return path.replace(/^.*?\/(src|dist)\//u, '$1/').replace(/\/[^/]*$/u, '');
}

function summarise(profile: CpuProfile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const maps = new Map<string, SourceMap | undefined>();
  const mapOf = (url: string): SourceMap | undefined => {
    if (!url.startsWith('file://') || !url.includes('/dist/bundle/')) return undefined;
    if (!maps.has(url)) {
      const file = `${fileURLToPath(url)}.map`;
      maps.set(url, existsSync(file) ? new SourceMap(JSON.parse(readFileSync(file, 'utf8')) as never) : undefined);
    }
    return maps.get(url);
  };
  const codeOf = (node: ProfileNode): string => {
    const { url, lineNumber, columnNumber, functionName } = node.callFrame;
    const map = mapOf(url);
    if (map !== undefined) {
      const entry = map.findEntry(lineNumber, columnNumber) as { originalSource?: string };
      return entry.originalSource === undefined
        ? `top-level code of ${url.split('/').at(-1) ?? url}`
        : packageOf(entry.originalSource);
    }
    if (url.startsWith('node:')) return 'Node internals';
    return url === '' ? functionName || '(native)' : packageOf(url);
  };
  const phases = PHASES.map((phase) => ({ name: phase.name, ms: 0, kinds: new Map<string, number>() }));
  let phase = 0;
  profile.samples.forEach((id, index) => {
    const stack: ProfileNode[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const node = byId.get(at);
      if (node !== undefined) stack.push(node);
    }
    const names = stack.map((node) => node.callFrame.functionName);
    const until = PHASES[phase]?.until;
    if (until !== undefined && names.some((name) => until.test(name))) phase += 1;
    const leaf = stack[0]?.callFrame.functionName ?? '';
    const kind = WAITING.has(leaf)
      ? leaf
      : names.some((name) => /^(compileSourceTextModule|wrapSafe|compileFunction)$/u.test(name))
        ? '(compiling modules)'
        : names.some((name) => /^(requireBuiltin|compileForPublicLoader|loadBuiltinModule)$/u.test(name))
          ? "(loading Node's built-in modules)"
          : stack[0]?.callFrame.url.startsWith('node:internal/modules') === true
            ? '(module loader: resolving, reading)'
            : `run: ${codeOf(stack.find((node) => mapOf(node.callFrame.url) !== undefined) ?? stack[0] ?? ({} as ProfileNode))}`;
    const ms = (profile.timeDeltas[index] ?? 0) / 1000;
    const current = phases[phase];
    if (current === undefined) return;
    current.ms += ms;
    current.kinds.set(kind, (current.kinds.get(kind) ?? 0) + ms);
  });
  return phases.map(({ name, ms, kinds }) => ({
    phase: name,
    ms: Math.round(ms),
    top: [...kinds.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([kind, kindMs]) => `${kindMs.toFixed(1).padStart(7)} ms  ${kind}`),
  }));
}

/** The files a start opens, from the spawn to ready (strace, when installed). */
function filesOpened(side: Side, options: ServerOptions): Record<string, number> | string {
  if (spawnSync('strace', ['-V'], { stdio: 'ignore' }).status !== 0) return 'strace not installed';
  const dir = join(fileURLToPath(new URL('./results/profiles/', import.meta.url)), `strace-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const trace = join(dir, 'trace');
  const entry = side === 'raw' ? buildScripts().rawServer : (options.entry ?? MAIN_JS);
  // A script of its own: stopped once ready, exactly like the profiled run (a fresh SQLite file).
  const script = `
    const { spawn } = require('node:child_process');
    const port = 30000 + (process.pid % 20000);
    const child = spawn('strace', ['-f', '-qq', '-e', 'trace=openat', '-e', 'status=successful', '-o', ${JSON.stringify(trace)},
      ${JSON.stringify(options.node ?? process.execPath)}, ${JSON.stringify(entry)}],
      { cwd: ${JSON.stringify(options.cwd ?? process.cwd())}, stdio: 'ignore', env: { ...process.env, ...${JSON.stringify(options.env ?? {})},
        NODE_ENV: 'production', HOST: '127.0.0.1', PORT: String(port), JWT_SECRET: 'x'.repeat(40),
        DATABASE_URL: 'sqlite:' + ${JSON.stringify(join(dir, 'db.sqlite'))}, SHUTDOWN_DELAY_MS: '0' } });
    // SIGTERM to node itself (strace's child): strace would only detach from it.
    const stop = () => process.kill(Number(require('node:fs').readFileSync('/proc/' + child.pid + '/task/' + child.pid + '/children', 'utf8').trim().split(' ')[0]), 'SIGTERM');
    const poll = () => fetch('http://127.0.0.1:' + port + '/health/ready').then((r) => r.status === 200, () => false)
      .then((ok) => ok ? stop() : setTimeout(poll, 50));
    poll();`;
  spawnSync(process.execPath, ['-e', script], { stdio: 'ignore', timeout: 120_000 });
  const opened = new Set(
    readFileSync(trace, 'utf8')
      .split('\n')
      .flatMap((line) => /openat\([^"]*"([^"]+)"/u.exec(line)?.[1] ?? []),
  );
  const count = (pattern: RegExp): number => [...opened].filter((path) => pattern.test(path)).length;
  return {
    'JavaScript modules (.js, .mjs, .cjs)': count(/\.(m|c)?js$/u),
    'package.json files': count(/package\.json$/u),
    'native addons (.node)': count(/\.node$/u),
    'compile cache entries': options.env?.NODE_COMPILE_CACHE === undefined ? 0 : count(/node-compile-cache\//u),
  };
}

async function profileStartup(): Promise<unknown> {
  const side: Side = process.argv.includes('--raw') ? 'raw' : 'ours';
  const image = process.argv.includes('--image');
  const node24 = nodeVersions().versions.find((version) => version.name === 'node24');
  if ((process.argv.includes('--node24') || image) && node24 === undefined) throw new Error(nodeVersions().missing);
  const node = process.argv.includes('--node24') || image ? node24 : undefined;
  const emulated = image && node !== undefined ? emulateImage(node.path) : undefined;
  const options: ServerOptions = {
    ...(node === undefined ? {} : { node: node.path }),
    ...(process.argv.includes('--unbundled')
      ? { entry: process.env.BENCH_UNBUNDLED_MAIN_JS ?? UNBUNDLED_MAIN_JS }
      : {}),
    ...(emulated === undefined ? {} : { entry: emulated.entry, cwd: emulated.cwd, env: emulated.env }),
  };
  const label = `${side === 'raw' ? 'raw' : image ? 'image' : process.argv.includes('--unbundled') ? 'unbundled' : 'bundle'}-${node?.name ?? `node${process.versions.node.split('.')[0]}`}`;
  const dir = join(fileURLToPath(new URL('./results/profiles/', import.meta.url)), `${stamp()}-startup-${label}`);
  mkdirSync(dir, { recursive: true });
  await settle();
  const server = await startServer(side, { ...options, cpuProfileDir: dir });
  const log = server
    .log()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { message?: string; timestamp?: number });
  const at = (match: (message: string) => boolean): number | undefined => {
    const line = log.find((entry) => match(entry.message ?? ''));
    return line?.timestamp === undefined ? undefined : Math.round(line.timestamp - server.spawnedAtEpochMs);
  };
  const timeline = {
    firstLogLineMs:
      log[0]?.timestamp === undefined ? undefined : Math.round(log[0].timestamp - server.spawnedAtEpochMs),
    listeningMs: at((message) => message.startsWith('listening')),
    readyMs: at((message) => message.startsWith('phase: starting → ready') || message === 'ready'),
  };
  await server.stop(15_000);
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no .cpuprofile in ${dir}`);
  const summary = {
    server: label,
    profile: join(dir, file),
    timeline,
    phases: summarise(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile),
    filesOpened: filesOpened(side, options),
  };
  writeFileSync(join(dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/gu, '-');
}

process.stdout.write(`${JSON.stringify(await profileStartup(), null, 2)}\n`);
