/**
 * The production image's start without Docker: the runtime stage of the `Dockerfile`, read from
 * the file itself, played out in a directory. Its `ENV` lines (with `/app` moved), its `COPY` lines
 * (from the build stage: this project's `dist/`, built by `npm run build`; from the context: the
 * project's files) and its `RUN node …` lines (the compile-cache warm-up), then its `CMD` is what
 * a start runs. Differences, said where the results are: `node_modules` is a link to this
 * project's (development packages too, which the bundle does not load), and everything runs as
 * this process's user (the image warms and starts as 10001: one cache per user id either way).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BENCH_DIR } from './processes.js';

const ROOT = dirname(BENCH_DIR);
/** Under bench/results (gitignored). */
const IMAGE_DIR = join(BENCH_DIR, 'results', '.image');

export interface EmulatedImage {
  /** The image's `/app`. */
  readonly cwd: string;
  /** What `CMD` runs with `node`. */
  readonly entry: string;
  /** The runtime stage's `ENV`. */
  readonly env: Readonly<Record<string, string>>;
  /** How long the build's warm-up (`RUN node …`) took, ms. */
  readonly warmUpMs: number;
}

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

function runtimeStage(): Instruction[] {
  const instructions = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
    .replace(/\\\n/gu, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/u);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
  const lastFrom = instructions.map((instruction) => instruction.keyword).lastIndexOf('FROM');
  return instructions.slice(lastFrom + 1);
}

/** Builds the runtime stage of the Dockerfile into bench/results/.image/app with `node` (Node 24). */
export function emulateImage(node: string): EmulatedImage {
  const app = join(IMAGE_DIR, 'app');
  rmSync(IMAGE_DIR, { recursive: true, force: true });
  mkdirSync(app, { recursive: true });
  const inApp = (path: string): string => join(app, path.replace(/^\/app\/?/u, '').replace(/^\.\//u, ''));
  const env: Record<string, string> = {};
  let entry: string | undefined;
  let warmUpMs = 0;
  for (const { keyword, args } of runtimeStage()) {
    if (keyword === 'ENV') {
      const [name = '', ...value] = args.split('=');
      env[name] = value.join('=').replace(/^\/app(?=\/|$)/u, app);
    } else if (keyword === 'COPY') {
      const from = /^--from=(\S+)\s+/u.exec(args);
      const [source = '', target = ''] = args.replace(/^--\S+\s+/u, '').split(/\s+/u);
      const destination = target.endsWith('/') ? join(inApp(target), source.split('/').at(-1) ?? '') : inApp(target);
      mkdirSync(dirname(destination), { recursive: true });
      if (from?.[1] === 'prod-deps') symlinkSync(join(ROOT, 'node_modules'), destination, 'dir');
      else cpSync(join(ROOT, source.replace(/^\/app\//u, '')), destination, { recursive: true });
    } else if (keyword === 'RUN' && args.startsWith('node ')) {
      const started = performance.now();
      execFileSync(node, args.split(/\s+/u).slice(1), {
        cwd: app,
        env: { PATH: process.env.PATH ?? '', ...env },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      warmUpMs = Math.round(performance.now() - started);
    } else if (keyword === 'CMD') {
      const [program, ...rest] = JSON.parse(args) as string[];
      if (program !== 'node' || rest.length !== 1) throw new Error(`the image's CMD is not "node <file>": ${args}`);
      entry = join(app, rest[0] ?? '');
    }
  }
  if (entry === undefined) throw new Error('the Dockerfile has no CMD');
  return { cwd: app, entry, env, warmUpMs };
}
