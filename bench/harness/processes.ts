/**
 * Spawning the processes of a benchmark: pinned to a core each (the server to one, its load to the
 * other) when `taskset` exists and there are two, with room for 10 000 sockets, and never outliving
 * the run. Also builds the scripts those processes run, and waits for a quiet machine.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { machineCpu } from './cpu.js';

/** `bench/`. */
export const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
/** Under bench/results (gitignored), so that `ws` resolves from the project's node_modules. */
export const BUILD_DIR = join(BENCH_DIR, 'results', '.build');
/** The server's core, and its load's. */
export const SERVER_CPU = '0';
export const LOAD_CPU = '1';
/** Open files for the spawned processes: 10 000 sockets each, and then some. */
const FD_LIMIT = 65_536;

const children = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Whatever happens to this process, the servers and generators it spawned go with it. */
function track(child: ChildProcess): ChildProcess {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const each of children) each.kill('SIGKILL');
    });
    for (const [signal, code] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const) {
      process.once(signal, () => {
        for (const each of children) each.kill('SIGKILL');
        process.exit(code);
      });
    }
  }
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export const hasTaskset = (() => {
  try {
    return spawnSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' }).status === 0;
  } catch {
    return false;
  }
})();

export const pinned = hasTaskset && Number(execFileSync('nproc').toString().trim()) >= 2;

/** How the processes were placed, for a summary's `method`. */
export function pinning(): { server: string; load: string } | string {
  return pinned
    ? { server: `taskset -c ${SERVER_CPU}`, load: `taskset -c ${LOAD_CPU}` }
    : 'none (taskset missing or one core)';
}

/** Pins a running process (every thread) to `cpuList` (`"0"`, `"0-1"`), when pinning is possible. */
export function pin(pid: number | undefined, cpuList: string): void {
  if (pinned && pid !== undefined) spawnSync('taskset', ['-a', '-p', '-c', cpuList, String(pid)], { stdio: 'ignore' });
}

/**
 * `node <args>` pinned to `cpu` (when taskset exists and there are two cores), through `sh` to raise
 * the open-file limit; every step `exec`s, so the child's pid is node's. `node`: another Node
 * binary (see `node-versions.ts`), this process's by default.
 */
export function spawnNode(
  cpu: string,
  args: readonly string[],
  options: Parameters<typeof spawn>[2],
  node = process.execPath,
): ChildProcess {
  const command = [...(pinned ? ['taskset', '-c', cpu] : []), node, ...args];
  const script = `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
  return track(spawn('/bin/sh', ['-c', script, 'sh', ...command], options));
}

interface Scripts {
  readonly rawServer: string;
  readonly loadGenerator: string;
  readonly gcProbe: string;
  readonly startupLoad: string;
}

let scripts: Scripts | undefined;

/**
 * The raw server, the generators and the gc probe as plain JavaScript (no loader in their
 * processes), with the harness files they import, into `BUILD_DIR` in the same folders.
 */
export function buildScripts(): Scripts {
  if (scripts !== undefined) return scripts;
  const build = (path: string): string => {
    const source = readFileSync(join(BENCH_DIR, `${path}.ts`), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: `${path}.ts`,
    });
    const target = join(BUILD_DIR, `${path}.js`);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, outputText);
    return target;
  };
  for (const imported of ['harness/cpu', 'harness/stats']) build(imported);
  scripts = {
    rawServer: build('harness/raw-server'),
    loadGenerator: build('generators/load-generator'),
    gcProbe: build('harness/gc-probe'),
    startupLoad: build('generators/startup-load'),
  };
  return scripts;
}

/**
 * Until the whole machine is idle (under 12 % of one core over 250 ms, steal left out): the last
 * phase's closes and writes are done, and nothing else is running. Gives up after `maxMs`
 * (returns false).
 */
export async function settle(maxMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline) {
    const before = machineCpu().busy;
    await sleep(250);
    if (machineCpu().busy - before < 30) return true;
  }
  return false;
}

let loads = 0;

/** A generator process: its output lines, its stderr so far, and how to be rid of it. */
export interface Generator {
  readonly child: ChildProcess;
  readonly lines: AsyncIterable<string>;
  readonly exited: Promise<number | null>;
  stderr(): string;
  /** Kills it if it is still running, waits for it, and removes its config file. */
  stop(): Promise<void>;
}

/**
 * Runs `script` (one of {@link buildScripts}) pinned to the load core, with its settings in a file
 * (thousands of tokens do not fit in an argument).
 */
export function spawnGenerator(script: string, config: unknown, stdin: 'ignore' | 'pipe'): Generator {
  const configPath = join(BUILD_DIR, `load-${process.pid}-${(loads += 1)}.json`);
  writeFileSync(configPath, JSON.stringify(config));
  const child = spawnNode(LOAD_CPU, [script, configPath], {
    env: { PATH: process.env.PATH ?? '' },
    stdio: [stdin, 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return {
    child,
    lines: createInterface({ input: child.stdout! }),
    exited,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      rmSync(configPath, { force: true });
    },
  };
}
