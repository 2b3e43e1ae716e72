/**
 * Measuring a server from its spawn: the start-up generator is started first, pinned to the load
 * core, and the server (pinned to the server core) is spawned on the port it polls; each
 * measurement is taken on a quiet machine and again while other work disturbed it. Used by the
 * start-up scenarios (5–7) of `scenarios/startup-side-by-side.ts`.
 */
import { performance } from 'node:perf_hooks';
import { freePort } from '../../test/support/server-process.js';
import type { StartupLoadConfig } from '../generators/startup-load.js';
import { machineCpu, processCpuMs } from './cpu.js';
import { buildScripts, settle, spawnGenerator } from './processes.js';
import { type BenchServer, type ServerOptions, type Side, startServer } from './servers.js';
import { fix } from './stats.js';

/**
 * Runs the start-up generator pinned to the load core, waits until it polls `/health/live`, then
 * spawns the server (pinned to the server core) on the port it polls, and returns both once the
 * generator has its result, with the CPU that other processes used meanwhile (in cores: the
 * machine's busy time minus the server's, the generator's and this process's, over the wall time).
 * The server is still running: the caller reads its log, then stops it.
 */
export async function generate<R extends { readonly cpuMs: number }>(
  side: Side,
  options: ServerOptions,
  config: (baseUrl: string, wsUrl: string) => StartupLoadConfig,
): Promise<{
  server: BenchServer;
  result: R;
  otherCpuCores: number;
  otherCpuMs: number;
  loadCpuUtilisation: number;
}> {
  const { startupLoad } = buildScripts();
  const port = await freePort();
  const generatorConfig = config(`http://127.0.0.1:${port}`, `ws://127.0.0.1:${port}/ws`);
  const startedAt = performance.now();
  const machineAtStart = machineCpu().busy;
  const ownAtStart = process.cpuUsage();
  const generator = spawnGenerator(startupLoad, generatorConfig, 'ignore');
  let server: BenchServer | undefined;
  try {
    let result: R | undefined;
    let serverCpuMs = 0;
    for await (const line of generator.lines) {
      if (line === 'POLLING' && server === undefined) {
        server = await startServer(side, { ...options, port, waitFor: 'none' });
      } else if (line.startsWith('RESULT ')) {
        result = JSON.parse(line.slice('RESULT '.length)) as R;
        if (server !== undefined) serverCpuMs = processCpuMs(server.pid);
      }
    }
    const code = await generator.exited;
    if (server === undefined || result === undefined || code !== 0) {
      throw new Error(
        `startup-load (${generatorConfig.mode}) failed with code ${code}: ${generator.stderr()}\n${server?.logTail() ?? ''}`,
      );
    }
    const own = process.cpuUsage(ownAtStart);
    const otherMs = machineCpu().busy - machineAtStart - serverCpuMs - result.cpuMs - (own.user + own.system) / 1000;
    const wallMs = performance.now() - startedAt;
    return {
      server,
      result,
      otherCpuCores: fix(Math.max(0, otherMs) / wallMs, 2),
      otherCpuMs: Math.round(Math.max(0, otherMs)),
      // Over the generator's whole life (start-up and polling included): a lower bound of its busiest moments.
      loadCpuUtilisation: fix(result.cpuMs / wallMs, 2),
    };
  } catch (error) {
    await server?.stop();
    throw error;
  } finally {
    await generator.stop();
  }
}

/** What every sample says about the rest of the machine while it was taken. */
export interface MeasuredSample {
  readonly otherCpuCores: number;
  readonly otherCpuMs: number;
  /** How many times it was measured (again while the machine was busy with other work). */
  readonly runs: number;
}

/** Other work on the machine (cores) above which a measurement is taken again, as in the side-by-side phases. */
const CONTENDED = 0.15;
/**
 * ...and in all (ms), at least: about 100 ms per measurement go unattributed even on an idle
 * machine (10 ms counter ticks, processes starting and exiting), 0.3 cores over a 300 ms start-up.
 */
const CONTENDED_MIN_MS = 150;

/**
 * One measurement on a quiet machine: waits for it to be idle, measures, and measures again (up to
 * `attempts` times) while other processes used more than 0.15 of a core; keeps the least disturbed.
 */
export async function measure<T extends MeasuredSample>(
  sizes: { readonly settleMaxMs: number; readonly attempts: number },
  once: () => Promise<Omit<T, 'runs'>>,
): Promise<T> {
  let best: T | undefined;
  for (let attempt = 1; attempt <= sizes.attempts; attempt += 1) {
    await settle(sizes.settleMaxMs);
    const result = { ...(await once()), runs: attempt } as T;
    if (best === undefined || result.otherCpuCores < best.otherCpuCores) best = result;
    if (result.otherCpuCores <= CONTENDED || result.otherCpuMs <= CONTENDED_MIN_MS) break;
  }
  if (best === undefined) throw new Error('no attempt ran');
  return best;
}

interface LogLine {
  readonly message?: string;
  readonly timestamp?: number;
}

/**
 * The readiness flip and the end of the synchronous release that follows it, from the log (ms).
 * Ours: the `dependency …: initializing → ready` line just before `phase: starting → ready` (the
 * phase changes, and the held connections are released, right after it is logged) and that phase
 * line (logged after the release loop). Raw: its `ready` and `released` lines.
 */
export function flipOf(server: BenchServer): { flipAt: number; loopEndAt: number } {
  const lines: LogLine[] = server
    .log()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
  if (server.side === 'raw') {
    const ready = lines.find((line) => line.message === 'ready')?.timestamp;
    const released = lines.find((line) => line.message === 'released')?.timestamp;
    if (ready === undefined || released === undefined) throw new Error(`raw: no ready line\n${server.logTail()}`);
    return { flipAt: ready, loopEndAt: released };
  }
  const phaseIndex = lines.findIndex((line) => line.message?.startsWith('phase: starting → ready') === true);
  const dependency = lines
    .slice(0, phaseIndex)
    .findLast((line) => /^dependency \S+: initializing → ready/u.test(line.message ?? ''));
  if (phaseIndex < 0 || dependency?.timestamp === undefined) {
    throw new Error(`ours: no readiness flip in the log\n${server.logTail()}`);
  }
  return { flipAt: dependency.timestamp, loopEndAt: lines[phaseIndex]?.timestamp ?? NaN };
}

/** The environment of a warm-up of `warmupMs` with a ready wait of `readyWaitMs`, per side. */
export function warmupEnv(side: Side, warmupMs: number, readyWaitMs: number): ServerOptions['env'] {
  return side === 'ours'
    ? { LOCAL_LLM_WARMUP_MS: String(warmupMs), WS_READY_WAIT_MS: String(readyWaitMs) }
    : { RAW_WARMUP_MS: String(warmupMs), RAW_READY_WAIT_MS: String(readyWaitMs) };
}
