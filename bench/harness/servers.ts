/**
 * A server of a benchmark, ours (`node dist/bundle/main.mjs`, as production runs it) or the raw one
 * (`harness/raw-server.ts`), spawned pinned to the server core, with its log in a temporary directory.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { freePort, MAIN_JS } from '../../test/support/server-process.js';
import { TEST_JWT_SECRET } from '../../test/support/tokens.js';
import { memoryStatus } from './cpu.js';
import { buildScripts, SERVER_CPU, spawnNode } from './processes.js';

export type Side = 'ours' | 'raw';

export interface BenchServer {
  readonly side: Side;
  readonly pid: number;
  readonly port: number;
  readonly wsUrl: string;
  /** When `spawn` was called, on the wall clock (`performance.timeOrigin + performance.now()`), in ms. */
  readonly spawnedAtEpochMs: number;
  /** Forces a gc in the server and returns `process.memoryUsage()` (servers started with `memoryProbe`). */
  memory(): Promise<NodeJS.MemoryUsage & { heapSnapshot?: string }>;
  /** VmRSS from /proc/<pid>/status, in bytes. */
  vmRss(): number;
  /**
   * Stops the server and removes its temporary directory: SIGKILL, or with `graceMs` SIGTERM first
   * (ours drains with `SHUTDOWN_DELAY_MS=0`; V8 writes a `--cpu-prof` profile only on a clean exit).
   */
  stop(graceMs?: number): Promise<void>;
  logTail(): string;
  /** Everything the server wrote to stdout and stderr so far. */
  log(): string;
}

export interface ServerOptions {
  /** `--expose-gc` and the gc probe preloaded. */
  readonly memoryProbe?: boolean;
  /** `--cpu-prof` into this directory. */
  readonly cpuProfileDir?: string;
  /** With `memoryProbe`: a heap snapshot into this directory at each `memory()`. */
  readonly heapSnapshotDir?: string;
  /** Added to (and overriding) the server's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** A free port by default. */
  readonly port?: number;
  /** The cores it may run on (`taskset -c` list, e.g. `"0-1"`): the server core by default. */
  readonly cpu?: string;
  /** What to wait for before returning: `/health/ready` 200 (the default), `/health/live` 200, or nothing. */
  readonly waitFor?: 'ready' | 'live' | 'none';
  /** The Node binary (`node-versions.ts`): this process's by default. */
  readonly node?: string;
  /** Ours only: the file to run instead of the bundle (`UNBUNDLED_MAIN_JS`, an emulated image's). */
  readonly entry?: string;
  /** The working directory (an emulated image's `/app`). */
  readonly cwd?: string;
}

export async function startServer(side: Side, options: ServerOptions = {}): Promise<BenchServer> {
  const { rawServer, gcProbe } = buildScripts();
  const port = options.port ?? (await freePort());
  const dir = join(tmpdir(), `agent-gateway-bench-${side}-${port}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const logPath = join(dir, 'server.log');
  const memoryReport = join(dir, 'memory.json');
  const log = openSync(logPath, 'w');
  const env: Record<string, string> =
    side === 'ours'
      ? {
          NODE_ENV: 'production',
          HOST: '127.0.0.1',
          PORT: String(port),
          JWT_SECRET: TEST_JWT_SECRET,
          DATABASE_URL: `sqlite:${join(dir, 'bench.db')}`,
          LOCAL_LLM_TOKEN_DELAY_MS: '0',
          // The per-connection frame rate limit (50/s by default) would measure the limiter, not
          // the path: lifted, the token bucket still runs for every frame.
          WS_MAX_MESSAGES_PER_SECOND: '1000000',
          WS_MESSAGE_BURST: '1000000',
          SHUTDOWN_DELAY_MS: '0',
          SHUTDOWN_TIMEOUT_MS: '2000',
        }
      : { HOST: '127.0.0.1', PORT: String(port), JWT_SECRET: TEST_JWT_SECRET };
  Object.assign(env, options.env);
  const args = [
    ...(options.memoryProbe === true ? ['--expose-gc', '--import', pathToFileURL(gcProbe).href] : []),
    ...(options.cpuProfileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`]),
    side === 'ours' ? (options.entry ?? MAIN_JS) : rawServer,
  ];
  const spawnedAtEpochMs = performance.timeOrigin + performance.now();
  const child = spawnNode(
    options.cpu ?? SERVER_CPU,
    args,
    {
      env: {
        PATH: process.env.PATH ?? '',
        BENCH_MEMORY_REPORT: memoryReport,
        ...(options.heapSnapshotDir === undefined ? {} : { BENCH_HEAP_SNAPSHOT_DIR: options.heapSnapshotDir }),
        ...env,
      },
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      stdio: ['ignore', log, log],
    },
    options.node,
  );
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const logTail = (): string => {
    try {
      return readFileSync(logPath, 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      return '';
    }
  };
  const logText = (): string => {
    try {
      return readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
  };
  const cleanUp = (): void => rmSync(dir, { recursive: true, force: true });
  const server: BenchServer = {
    side,
    pid: child.pid ?? -1,
    port,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    spawnedAtEpochMs,
    async memory() {
      await unlink(memoryReport).catch(() => undefined);
      child.kill('SIGUSR2');
      for (let attempt = 0; attempt < 3_000; attempt += 1) {
        try {
          return JSON.parse(await readFile(memoryReport, 'utf8')) as NodeJS.MemoryUsage & { heapSnapshot?: string };
        } catch {
          await sleep(20);
        }
      }
      throw new Error(`${side}: no memory report`);
    },
    vmRss() {
      return memoryStatus(child.pid ?? -1, 'VmRSS');
    },
    async stop(graceMs = 0) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      cleanUp();
    },
    logTail,
    log: logText,
  };
  const waitFor = options.waitFor ?? 'ready';
  if (waitFor === 'none') return server;
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${side} server exited early`);
      if (Date.now() > deadline) throw new Error(`${side} server not ${waitFor} within 30 s`);
      try {
        const response = await fetch(`http://127.0.0.1:${port}/health/${waitFor}`);
        await response.arrayBuffer();
        if (response.status === 200) break;
      } catch {
        // not listening yet
      }
      await sleep(25);
    }
  } catch (error) {
    const tail = logTail();
    await server.stop();
    throw new Error(`${String(error)}\n${tail}`, { cause: error });
  }
  return server;
}
