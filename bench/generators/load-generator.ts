/**
 * The load generator of the side-by-side benchmark, a process of its own (pinned to the other
 * core by `bench/side-by-side.ts`), so that the server and the load never share an event loop.
 * One invocation runs one phase against one server and prints one `RESULT {json}` line:
 *
 * - `connect`: connections opened with `?token=`, each counted when its first frame
 *   (`connection_established`) arrives, then closed with 1000; a new one starts when one has
 *   closed (`concurrency` in flight), or on a schedule of `rate` per second.
 * - `hold`: opens connections and keeps them; at each of `checkpoints` (a number of established
 *   connections) prints `HOLDING {json}` and waits for a line on stdin, then goes on; reports and
 *   exits after the last.
 * - `ping`: `connections` sockets, each with one `ping` in flight (or `rate` pings/s in all, on a
 *   schedule), frames padded to `frameBytes` with a field the server ignores.
 * - `stream`: `clients` sockets, each asking for one stream after the other (an `agent_request`
 *   with `message`, or the raw server's `stream` of `count` frames of `text`); counts the
 *   `agent_message_delta` frames received.
 * - `runs`: `clients` sockets, each sending `agent_request` after `agent_request` (closed loop: the
 *   next when `agent_completed` arrives), continuing its thread for `runsPerThread` runs; counts
 *   completed runs and their latency (send → `agent_completed`).
 *
 * The measurement window starts after `warmupMs`. For it, the generator reads the server's CPU
 * time from /proc/<serverPid>/stat (utime + stime, every thread; summed over `serverPids` for a
 * fleet, whose `urls` share the connections) and its own from
 * `process.cpuUsage()`, so each result says who was the bottleneck.
 * Imports only `node:*`, `ws` and the harness's `cpu` and `stats`; transpiled with them and run as plain
 * JavaScript (see `harness/processes.ts`).
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { WebSocket } from 'ws';
import { machineCpu, processCpu } from '../harness/cpu.js';
import { percentileOfSorted as percentile } from '../harness/stats.js';

interface Common {
  readonly url: string;
  readonly serverPid: number;
  /** Several servers (a fleet): connection `i` goes to `urls[i % urls.length]` instead of `url`. */
  readonly urls?: readonly string[];
  /** Several servers: the processes whose CPU is the server's, summed (default: `serverPid` alone). */
  readonly serverPids?: readonly number[];
  readonly tokens: readonly string[];
  readonly warmupMs: number;
  readonly windowMs: number;
}

export type LoadConfig =
  | (Common & { readonly mode: 'connect'; readonly concurrency: number; readonly rate?: number })
  | (Common & { readonly mode: 'hold'; readonly checkpoints: readonly number[]; readonly concurrency: number })
  | (Common & {
      readonly mode: 'ping';
      readonly connections: number;
      readonly frameBytes: number;
      readonly rate?: number;
    })
  | (Common & {
      readonly mode: 'stream';
      readonly clients: number;
      readonly request: 'agent' | 'raw';
      readonly message: string;
      readonly count: number;
      readonly text: string;
      /** Streams per second, all clients together; absent: each client asks again at once. */
      readonly rate?: number;
    })
  | (Common & {
      readonly mode: 'runs';
      readonly clients: number;
      readonly message: string;
      /** A new thread every this many runs of a client; the runs in between continue it. */
      readonly runsPerThread: number;
    });

export interface LoadResult {
  readonly mode: LoadConfig['mode'];
  /** Operations completed in the window: connections established, pongs, delta frames, held connections. */
  readonly ops: number;
  readonly windowMs: number;
  /** The window on the monotonic clock (µs), the one V8's CPU profiles use. */
  readonly windowMonotonicUs?: readonly [number, number];
  readonly perSecond: number;
  /** Per operation: connect → first frame, ping → pong; absent for streams. */
  readonly latencyMs?: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
  /**
   * Server CPU (all threads) during the window: milliseconds, share of one core, µs per operation,
   * and the share of it spent in the kernel (system time: syscalls, the TCP stack).
   */
  readonly serverCpu: {
    readonly ms: number;
    readonly utilisation: number;
    readonly usPerOp: number;
    readonly systemShare: number;
  };
  /** The generator's own CPU during the window, as a share of one core. */
  readonly loadCpuUtilisation: number;
  /**
   * CPU used during the window by everything else on the machine (user + system time of all
   * processes from /proc/stat, minus the server's and the generator's), in cores, and the time
   * the hypervisor stole: a benchmark on a shared machine says how shared it was.
   */
  readonly otherCpuCores: number;
  readonly stealCores: number;
  readonly errors: number;
  /** Set when the phase ran on a schedule: what was asked for, per second. */
  readonly offeredPerSecond?: number;
  /** Streams (runs) completed in the window, and bytes of delta frames received. */
  readonly streams?: number;
  readonly deltaBytes?: number;
  /** `runs`: `agent_message_delta` frames per completed run, and the mean latency (in the window). */
  readonly deltasPerRun?: number;
  readonly meanLatencyMs?: number;
  readonly frameBytes?: number;
}

const CONNECTION_ESTABLISHED = '{"event":"connection_established"';
const PONG = '{"event":"pong"';
const DELTA = '{"event":"agent_message_delta"';

function startsWith(data: Buffer, prefix: string): boolean {
  return data.length >= prefix.length && data.toString('latin1', 0, prefix.length) === prefix;
}

const round = (value: number, digits = 3): number => Number(value.toFixed(digits));

/** User and system time of every server process of the phase, summed, in ms. */
function serverCpu(config: Common): { user: number; system: number } {
  const total = { user: 0, system: 0 };
  for (const pid of config.serverPids ?? [config.serverPid]) {
    const { user, system } = processCpu(pid);
    total.user += user;
    total.system += system;
  }
  return total;
}

/** The window: samples and counts between its start and its end, CPU read at both ends. */
class Window {
  open = false;
  closed = false;
  ops = 0;
  errors = 0;
  private latencies: number[] = [];
  private startedAt = 0;
  private endedAt = 0;
  private monotonic: [number, number] = [0, 0];
  private serverCpuAtStart = { user: 0, system: 0 };
  private serverCpuAtEnd = { user: 0, system: 0 };
  private machineAtStart = { busy: 0, steal: 0 };
  private machineAtEnd = { busy: 0, steal: 0 };
  private loadCpuAtStart = process.cpuUsage();
  private loadCpu = { user: 0, system: 0 };
  private ended!: () => void;
  readonly done = new Promise<void>((resolve) => (this.ended = resolve));

  constructor(private readonly config: Common) {
    setTimeout(() => this.start(), config.warmupMs);
  }

  count(latencyMs?: number): void {
    if (!this.open) return;
    this.ops += 1;
    if (latencyMs !== undefined) this.latencies.push(latencyMs);
  }

  error(): void {
    if (this.open) this.errors += 1;
  }

  result(mode: LoadConfig['mode'], extra: Partial<LoadResult> = {}, withLatency = true): LoadResult {
    const windowMs = this.endedAt - this.startedAt;
    const userMs = this.serverCpuAtEnd.user - this.serverCpuAtStart.user;
    const systemMs = this.serverCpuAtEnd.system - this.serverCpuAtStart.system;
    const cpuMs = userMs + systemMs;
    const sorted = Float64Array.from(this.latencies).sort();
    const loadCpuMs = (this.loadCpu.user + this.loadCpu.system) / 1000;
    const otherMs = this.machineAtEnd.busy - this.machineAtStart.busy - cpuMs - loadCpuMs;
    return {
      mode,
      ops: this.ops,
      windowMs: round(windowMs, 1),
      windowMonotonicUs: this.monotonic,
      perSecond: round((this.ops * 1000) / windowMs, 1),
      ...(withLatency
        ? {
            latencyMs: {
              p50: round(percentile(sorted, 0.5)),
              p90: round(percentile(sorted, 0.9)),
              p99: round(percentile(sorted, 0.99)),
              max: round(sorted.at(-1) ?? NaN),
            },
          }
        : {}),
      serverCpu: {
        ms: round(cpuMs, 1),
        utilisation: round(cpuMs / windowMs),
        usPerOp: round((cpuMs * 1000) / Math.max(1, this.ops), 2),
        systemShare: round(systemMs / Math.max(1, cpuMs), 2),
      },
      loadCpuUtilisation: round(loadCpuMs / windowMs),
      otherCpuCores: round(Math.max(0, otherMs) / windowMs, 2),
      stealCores: round((this.machineAtEnd.steal - this.machineAtStart.steal) / windowMs, 2),
      errors: this.errors,
      ...extra,
    };
  }

  private start(): void {
    this.serverCpuAtStart = serverCpu(this.config);
    this.machineAtStart = machineCpu();
    this.loadCpuAtStart = process.cpuUsage();
    this.startedAt = performance.now();
    this.monotonic[0] = Number(process.hrtime.bigint() / 1000n);
    this.open = true;
    setTimeout(() => this.end(), this.config.windowMs);
  }

  private end(): void {
    this.open = false;
    this.closed = true;
    this.endedAt = performance.now();
    this.monotonic[1] = Number(process.hrtime.bigint() / 1000n);
    this.serverCpuAtEnd = serverCpu(this.config);
    this.machineAtEnd = machineCpu();
    this.loadCpu = process.cpuUsage(this.loadCpuAtStart);
    this.ended();
  }
}

function open(url: string, token: string): WebSocket {
  const socket = new WebSocket(`${url}?token=${encodeURIComponent(token)}`, { perMessageDeflate: false });
  socket.on('error', () => undefined);
  return socket;
}

/** `count` established sockets (first frame `connection_established`), `concurrency` handshakes at a time. */
async function establish(config: Common, count: number, concurrency = 100, offset = 0): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = offset + next;
      next += 1;
      const url = config.urls === undefined ? config.url : (config.urls[index % config.urls.length] ?? config.url);
      const socket = open(url, config.tokens[index % config.tokens.length] ?? '');
      await new Promise<void>((resolve, reject) => {
        socket.once('message', (data: Buffer) =>
          startsWith(data, CONNECTION_ESTABLISHED)
            ? resolve()
            : reject(new Error(`refused: ${data.toString().slice(0, 200)}`)),
        );
        socket.once('close', (code) => reject(new Error(`closed with ${code} before connection_established`)));
      });
      socket.removeAllListeners('close');
      sockets.push(socket);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return sockets;
}

/** Calls `tick` every millisecond with how many operations the schedule wants started by now. */
function schedule(rate: number, tick: (due: number) => void): () => void {
  const started = performance.now();
  let issued = 0;
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) * rate) / 1000) - issued;
    if (due > 0) {
      issued += due;
      tick(due);
    }
  }, 1);
  return () => clearInterval(timer);
}

async function connect(config: Extract<LoadConfig, { mode: 'connect' }>): Promise<LoadResult> {
  const window = new Window(config);
  let launched = 0;
  let inFlight = 0;
  const launch = (): void => {
    inFlight += 1;
    const startedAt = performance.now();
    const socket = open(config.url, config.tokens[launched % config.tokens.length] ?? '');
    launched += 1;
    socket.once('message', (data: Buffer) => {
      if (startsWith(data, CONNECTION_ESTABLISHED)) window.count(performance.now() - startedAt);
      else window.error();
      socket.close(1000);
    });
    socket.once('close', () => {
      inFlight -= 1;
      if (config.rate === undefined && !window.closed) launch();
    });
  };
  let stop = (): void => undefined;
  if (config.rate === undefined) {
    for (let index = 0; index < config.concurrency; index += 1) launch();
  } else {
    // Open loop, but never more than `concurrency` handshakes in flight: a schedule the server
    // cannot keep up with shows as fewer operations than offered.
    stop = schedule(config.rate, (due) => {
      for (let index = 0; index < due && inFlight < config.concurrency; index += 1) launch();
    });
  }
  await window.done;
  stop();
  return window.result('connect', config.rate === undefined ? {} : { offeredPerSecond: config.rate });
}

async function hold(config: Extract<LoadConfig, { mode: 'hold' }>): Promise<LoadResult> {
  const started = performance.now();
  const sockets: WebSocket[] = [];
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  let establishMs = 0;
  for (const checkpoint of config.checkpoints) {
    const from = performance.now();
    sockets.push(...(await establish(config, checkpoint - sockets.length, config.concurrency, sockets.length)));
    establishMs += performance.now() - from;
    process.stdout.write(`HOLDING ${JSON.stringify({ held: sockets.length, establishMs: round(establishMs, 1) })}\n`);
    await lines.next();
  }
  await lines.return?.();
  for (const socket of sockets) socket.terminate();
  return {
    mode: 'hold',
    ops: sockets.length,
    windowMs: round(performance.now() - started, 1),
    perSecond: round((sockets.length * 1000) / establishMs, 1),
    serverCpu: { ms: NaN, utilisation: NaN, usPerOp: NaN, systemShare: NaN },
    loadCpuUtilisation: NaN,
    otherCpuCores: NaN,
    stealCores: NaN,
    errors: 0,
  };
}

async function ping(config: Extract<LoadConfig, { mode: 'ping' }>): Promise<LoadResult> {
  const sockets = await establish(config, config.connections);
  const window = new Window(config);
  let sequence = 0;
  // Fixed size: a zero-padded counter, and a `pad` field (ignored by both servers) up to frameBytes.
  const base = JSON.stringify({ event: 'ping', data: { requestId: 'p-00000000' } }).length;
  const padded = config.frameBytes - base - ',"pad":""'.length;
  const pad = padded > 0 ? ',"pad":"' + 'x'.repeat(padded) + '"' : '';
  const frameBytes = base + pad.length;
  const pending = sockets.map(() => [] as number[]);
  const send = (index: number): void => {
    sequence = (sequence + 1) % 100_000_000;
    pending[index]?.push(performance.now());
    sockets[index]?.send(`{"event":"ping","data":{"requestId":"p-${String(sequence).padStart(8, '0')}"${pad}}}`);
  };
  sockets.forEach((socket, index) => {
    socket.on('message', (data: Buffer) => {
      const sentAt = pending[index]?.shift();
      if (sentAt === undefined || !startsWith(data, PONG)) {
        window.error();
        return;
      }
      window.count(performance.now() - sentAt);
      if (config.rate === undefined && !window.closed) send(index);
    });
  });
  let stop = (): void => undefined;
  if (config.rate === undefined) {
    sockets.forEach((_, index) => send(index));
  } else {
    let next = 0;
    stop = schedule(config.rate, (due) => {
      for (let index = 0; index < due; index += 1) {
        send(next);
        next = (next + 1) % sockets.length;
      }
    });
  }
  await window.done;
  stop();
  for (const socket of sockets) socket.terminate();
  return window.result('ping', { frameBytes, ...(config.rate === undefined ? {} : { offeredPerSecond: config.rate }) });
}

async function stream(config: Extract<LoadConfig, { mode: 'stream' }>): Promise<LoadResult> {
  const sockets = await establish(config, config.clients);
  const window = new Window(config);
  const started = performance.now();
  let streams = 0;
  let deltaBytes = 0;
  let requested = 0;
  const request = (index: number): void => {
    if (window.closed) return;
    requested += 1;
    const requestId = `s${index}-${requested}`;
    sockets[index]?.send(
      JSON.stringify(
        config.request === 'agent'
          ? { event: 'agent_request', data: { requestId, message: config.message } }
          : { event: 'stream', data: { requestId, count: config.count, text: config.text } },
      ),
    );
  };
  const runsOf = sockets.map(() => 0);
  const next = (index: number): void => {
    const runs = (runsOf[index] ?? 0) + 1;
    runsOf[index] = runs;
    if (config.rate === undefined) return request(index);
    // Client `index` starts its n-th stream at (n·clients + index) / rate, or at once when late.
    const due = started + ((runs * sockets.length + index) * 1000) / config.rate;
    setTimeout(() => request(index), Math.max(0, due - performance.now()));
  };
  sockets.forEach((socket, index) => {
    socket.on('message', (data: Buffer) => {
      if (startsWith(data, DELTA)) {
        if (window.open) deltaBytes += data.length;
        window.count();
        return;
      }
      const { event } = JSON.parse(data.toString()) as { event: string };
      if (event === 'agent_completed' || event === 'stream_done') {
        if (window.open) streams += 1;
        next(index);
      } else if (event === 'agent_error' || event === 'error') {
        window.error();
        setTimeout(() => next(index), 10);
      }
    });
  });
  const { rate } = config;
  if (rate === undefined) sockets.forEach((_, index) => request(index));
  else sockets.forEach((_, index) => setTimeout(() => request(index), (index * 1000) / rate));
  await window.done;
  for (const socket of sockets) socket.terminate();
  return window.result(
    'stream',
    { streams, deltaBytes, ...(config.rate === undefined ? {} : { offeredPerSecond: config.rate }) },
    false,
  );
}

async function runs(config: Extract<LoadConfig, { mode: 'runs' }>): Promise<LoadResult> {
  const sockets = await establish(config, config.clients);
  const window = new Window(config);
  let deltas = 0;
  let latencySum = 0;
  let sent = 0;
  const clients: Array<{ requestId: string; sentAt: number; runs: number; deltas: number; threadId?: unknown }> =
    sockets.map(() => ({ requestId: '', sentAt: 0, runs: 0, deltas: 0 }));
  const request = (index: number): void => {
    const client = clients[index];
    if (client === undefined || window.closed) return;
    sent += 1;
    client.requestId = `r${index}-${sent}`;
    const continues = client.runs % config.runsPerThread !== 0 && typeof client.threadId === 'string';
    const data = {
      requestId: client.requestId,
      message: config.message,
      ...(continues ? { threadId: client.threadId } : {}),
    };
    client.sentAt = performance.now();
    client.deltas = 0;
    sockets[index]?.send(JSON.stringify({ event: 'agent_request', data }));
  };
  sockets.forEach((socket, index) => {
    socket.on('message', (data: Buffer) => {
      const client = clients[index];
      if (client === undefined) return;
      if (startsWith(data, DELTA)) {
        client.deltas += 1;
        return;
      }
      const frame = JSON.parse(data.toString()) as { event: string; data: { requestId?: string; threadId?: unknown } };
      if (frame.data.requestId !== client.requestId) return;
      if (frame.event === 'agent_completed') {
        const latency = performance.now() - client.sentAt;
        if (window.open) {
          deltas += client.deltas;
          latencySum += latency;
        }
        window.count(latency);
        client.runs += 1;
        client.threadId = frame.data.threadId;
        request(index);
      } else if (frame.event === 'agent_error' || frame.event === 'error') {
        window.error();
        client.threadId = undefined;
        setTimeout(() => request(index), 10);
      }
    });
  });
  sockets.forEach((_, index) => request(index));
  await window.done;
  for (const socket of sockets) socket.terminate();
  const completed = Math.max(1, window.ops);
  return window.result('runs', {
    streams: window.ops,
    deltasPerRun: round(deltas / completed, 1),
    meanLatencyMs: round(latencySum / completed),
  });
}

/** The settings come in a file (1 000 tokens do not fit in an argument). */
const config = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as LoadConfig;
const guard = setTimeout(
  () => {
    process.stderr.write('load-generator: gave up (timeout)\n');
    process.exit(2);
  },
  (config.mode === 'hold' ? 600_000 : 0) + config.warmupMs + config.windowMs + 60_000,
);
guard.unref();
const run = { connect, hold, ping, stream, runs }[config.mode] as (config: LoadConfig) => Promise<LoadResult>;
run(config).then(
  (result) => process.stdout.write(`RESULT ${JSON.stringify(result)}\n`, () => process.exit(0)),
  (error: unknown) => {
    process.stderr.write(
      `load-generator: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
