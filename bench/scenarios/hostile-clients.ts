/**
 * Hostile clients against the built server (`node dist/bundle/main.mjs`), each scenario on a fresh
 * process pinned to CPU 0 while the clients run on CPU 1 (when `taskset` exists):
 *
 * 1. held-frame flood: one authenticated socket sends `frames` frames of `frameBytes` while the
 *    service is still starting (the embedded model warms up), then readiness flips. Measured: the
 *    server's peak RSS, whether it survived the flip, and what the client was told.
 * 2. resume flood: one user with 20 sockets (half of them never read) sends `resume {afterSeq: 0}`
 *    of a finished run of about 4 000 events as fast as the connection limits allow, while a
 *    separate probe process asks `/health/live` every 20 ms. Measured: server CPU, peak RSS growth,
 *    the probe's p50/p99/max, and how many replayed frames reached the reading sockets.
 * 3. the embedded model's arithmetic detection on a 16 000-character `"1+" + spaces + "x"` input,
 *    in process: CPU time of the first chunk.
 *
 * Goals (issue 11): 2. keeps `/health/live` p99 ≤ 200 ms and RSS growth ≤ 128 MB.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { ServerProcess } from '../../test/support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../../test/support/tokens.js';
import { memoryStatus, processCpuMs } from '../harness/cpu.js';
import { LOAD_CPU, pin, SERVER_CPU } from '../harness/processes.js';
import { percentile } from '../harness/stats.js';

const MiB = 2 ** 20;

/** A field of /proc/<pid>/status in MiB (VmRSS, VmHWM), or NaN once the process is gone. */
function statusMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  return Math.round(memoryStatus(pid, field) / MiB);
}

function open(port: number, sub: string): WebSocket {
  return new WebSocket(`ws://127.0.0.1:${port}/ws`, {
    headers: { authorization: `Bearer ${signToken({ sub })}` },
    perMessageDeflate: false,
    maxPayload: 64 * 1024 * 1024,
  });
}

function opened(socket: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
}

export interface HeldFloodResult {
  readonly frames: number;
  readonly frameBytes: number;
  readonly rssBeforeMiB: number;
  readonly peakRssMiB: number;
  readonly exitCode: number | null | 'running';
  readonly closeCode: number | undefined;
  /** Error codes of the frames the client received. */
  readonly errors: readonly string[];
  /** Size of the largest frame the client received. */
  readonly largestFrameBytes: number;
}

/**
 * `env` on top of the defaults: the frame-rate limit closes such a flood early (1008), so the bound
 * on what a held connection keeps is measured with the limit raised too.
 */
export async function measureHeldFlood(
  frames = 2_000,
  frameBytes = 200_000,
  env: Record<string, string> = {},
): Promise<HeldFloodResult> {
  const server = await ServerProcess.start({ JWT_SECRET: TEST_JWT_SECRET, LOCAL_LLM_WARMUP_MS: '6000', ...env });
  pin(server.child.pid, SERVER_CPU);
  const pid = server.child.pid ?? 0;
  try {
    await server.waitForLine((line) => line.includes('listening on'));
    const rssBeforeMiB = statusMiB(pid, 'VmRSS');
    const socket = open(server.port, 'held-flood');
    const errors: string[] = [];
    let largestFrameBytes = 0;
    socket.on('message', (raw: Buffer) => {
      largestFrameBytes = Math.max(largestFrameBytes, raw.length);
      const frame = JSON.parse(raw.toString()) as { event: string; data: { code?: string } };
      if (frame.event === 'error') errors.push(frame.data.code ?? '?');
    });
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    await opened(socket);
    const filler = 'x'.repeat(frameBytes - 100);
    for (let index = 0; index < frames && socket.readyState === WebSocket.OPEN; index += 1) {
      socket.send(JSON.stringify({ event: 'ping', data: { requestId: `held-${index}`, filler } }));
      if (index % 50 === 49) await new Promise<void>((resolve) => socket.send('', () => resolve()));
    }
    // The flip, then a moment for the release (or the crash).
    await Promise.race([
      server.waitForLine((line) => line.includes('phase: starting → ready')),
      server.exited,
      sleep(15_000),
    ]);
    await Promise.race([server.exited, sleep(1_000)]);
    const peakRssMiB = statusMiB(pid, 'VmHWM');
    const exit = server.child.exitCode ?? 'running';
    socket.terminate();
    const closeCode = await Promise.race([closed, sleep(1_000).then(() => undefined)]);
    return { frames, frameBytes, rssBeforeMiB, peakRssMiB, exitCode: exit, closeCode, errors, largestFrameBytes };
  } finally {
    await server.stop();
  }
}

export interface ResumeFloodResult {
  readonly runEvents: number;
  readonly seconds: number;
  readonly resumesSent: number;
  readonly replayedFramesRead: number;
  readonly serverCpuMs: number;
  readonly rssBeforeMiB: number;
  readonly peakRssMiB: number;
  readonly rssGrowthMiB: number;
  readonly liveProbe: { readonly count: number; readonly p50: number; readonly p99: number; readonly max: number };
  readonly closeCodes: Readonly<Record<string, number>>;
}

/** Asks `/health/live` every 20 ms for `seconds`, then prints the latencies as JSON. */
const PROBE = `
const http = require('node:http');
const [port, seconds] = process.argv.slice(1).map(Number);
const latencies = [];
const end = Date.now() + seconds * 1000;
const agent = new http.Agent({ keepAlive: false });
function once() {
  if (Date.now() > end) { process.stdout.write(JSON.stringify(latencies)); return; }
  const start = performance.now();
  const request = http.get({ host: '127.0.0.1', port, path: '/health/live', agent }, (response) => {
    response.resume();
    response.on('end', () => { latencies.push(performance.now() - start); setTimeout(once, 20); });
  });
  request.on('error', () => { latencies.push(performance.now() - start); setTimeout(once, 20); });
}
once();
`;

function runProbe(port: number, seconds: number): Promise<number[]> {
  const child: ChildProcess = spawn(process.execPath, ['-e', PROBE, String(port), String(seconds)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  pin(child.pid, LOAD_CPU);
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((resolve) => child.once('exit', () => resolve(JSON.parse(out || '[]') as number[])));
}

/** A finished run of about `words` deltas, made by the embedded model echoing a long message. */
async function finishedRun(port: number, words: number): Promise<{ runId: string; events: number }> {
  const socket = open(port, 'resume-flood');
  await opened(socket);
  const done = new Promise<{ runId: string; events: number }>((resolve) => {
    let runId = '';
    socket.on('message', (raw: Buffer) => {
      const frame = JSON.parse(raw.toString()) as { event: string; data: { runId?: string; seq?: number } };
      if (frame.event === 'agent_started') runId = frame.data.runId ?? '';
      if (frame.event === 'agent_completed') resolve({ runId, events: frame.data.seq ?? 0 });
    });
  });
  socket.send(JSON.stringify({ event: 'agent_request', data: { requestId: 'long', message: 'a '.repeat(words) } }));
  const run = await done;
  socket.close();
  return run;
}

export async function measureResumeFlood(seconds = 10, sockets = 20): Promise<ResumeFloodResult> {
  const server = await ServerProcess.start({ JWT_SECRET: TEST_JWT_SECRET, NODE_ENV: 'production' });
  pin(server.child.pid, SERVER_CPU);
  const pid = server.child.pid ?? 0;
  try {
    await server.ready();
    const { runId, events } = await finishedRun(server.port, 3_990);
    const clients = Array.from({ length: sockets }, () => open(server.port, 'resume-flood'));
    await Promise.all(clients.map(opened));
    const closeCodes: Record<string, number> = {};
    let replayedFramesRead = 0;
    clients.forEach((socket, index) => {
      socket.on('close', (code) => (closeCodes[code] = (closeCodes[code] ?? 0) + 1));
      socket.on('message', (raw: Buffer) => {
        if (raw.includes('"agent_message_delta"')) replayedFramesRead += 1;
      });
      // Half of them never read: their TCP receive windows fill up.
      if (index % 2 === 1)
        socket.once('message', () => (socket as unknown as { _socket: { pause(): void } })._socket.pause());
    });
    const rssBeforeMiB = statusMiB(pid, 'VmRSS');
    const cpuBefore = processCpuMs(pid);
    const probe = runProbe(server.port, seconds);
    // As fast as the limits allow: a burst of 100, then 50 per second (WS_MESSAGE_BURST,
    // WS_MAX_MESSAGES_PER_SECOND).
    let resumesSent = 0;
    const frame = JSON.stringify({ event: 'resume', data: { runId, afterSeq: 0 } });
    const until = Date.now() + seconds * 1000;
    let tick = 0;
    while (Date.now() < until) {
      const perSocket = tick === 0 ? 100 : 1;
      for (const socket of clients) {
        if (socket.readyState !== WebSocket.OPEN) continue;
        for (let index = 0; index < perSocket; index += 1) socket.send(frame);
        resumesSent += perSocket;
      }
      tick += 1;
      await sleep(20);
    }
    const latencies = await probe;
    const serverCpuMs = processCpuMs(pid) - cpuBefore;
    const peakRssMiB = statusMiB(pid, 'VmHWM');
    for (const socket of clients) socket.terminate();
    return {
      runEvents: events,
      seconds,
      resumesSent,
      replayedFramesRead,
      serverCpuMs,
      rssBeforeMiB,
      peakRssMiB,
      rssGrowthMiB: peakRssMiB - rssBeforeMiB,
      liveProbe: {
        count: latencies.length,
        p50: Math.round(percentile(latencies, 0.5) * 10) / 10,
        p99: Math.round(percentile(latencies, 0.99) * 10) / 10,
        max: Math.round(Math.max(...latencies) * 10) / 10,
      },
      closeCodes,
    };
  } finally {
    await server.stop();
  }
}

export interface RegexResult {
  readonly inputChars: number;
  readonly firstChunkCpuMs: number;
}

/** CPU time of the embedded model's first chunk for a 16 000-character adversarial message. */
export async function measureArithmeticDetection(): Promise<RegexResult> {
  const { LocalModel } = (await import(pathToFileURL(`${process.cwd()}/dist/llm/local-model.js`).href)) as {
    LocalModel: new (options: { warmupMs: number; tokenDelayMs: number }) => {
      init(signal: AbortSignal): Promise<void>;
      stream(request: unknown, signal: AbortSignal): AsyncGenerator<unknown>;
    };
  };
  const model = new LocalModel({ warmupMs: 0, tokenDelayMs: 0 });
  const signal = new AbortController().signal;
  await model.init(signal);
  const content = `1+${' '.repeat(15_997)}x`;
  const request = {
    messages: [{ role: 'user', content }],
    tools: [{ name: 'calculator', description: '', parameters: {} }],
  };
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 5; round += 1) {
    const started = process.cpuUsage();
    const stream = model.stream(request, signal);
    await stream.next();
    await stream.return(undefined);
    const used = process.cpuUsage(started);
    best = Math.min(best, (used.user + used.system) / 1000);
  }
  return { inputChars: content.length, firstChunkCpuMs: Math.round(best * 10) / 10 };
}

/** Frame-rate limits raised out of the way (said so in the results). */
const NO_RATE_LIMIT = { WS_MAX_MESSAGES_PER_SECOND: '1000000', WS_MESSAGE_BURST: '1000000' };

export async function measureHostileClients(quick: boolean): Promise<{
  heldFlood: HeldFloodResult;
  heldFloodWithoutRateLimit: HeldFloodResult & { readonly env: Record<string, string> };
  resumeFlood: ResumeFloodResult;
  arithmeticDetection: RegexResult;
}> {
  // The clients run on the other core than the server, and get both back afterwards.
  pin(process.pid, LOAD_CPU);
  try {
    return {
      heldFlood: await measureHeldFlood(quick ? 300 : 2_000),
      heldFloodWithoutRateLimit: {
        ...(await measureHeldFlood(quick ? 300 : 2_000, 200_000, NO_RATE_LIMIT)),
        env: NO_RATE_LIMIT,
      },
      resumeFlood: await measureResumeFlood(quick ? 3 : 10),
      arithmeticDetection: await measureArithmeticDetection(),
    };
  } finally {
    pin(process.pid, `0-${cpus().length - 1}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const quick = process.argv.includes('--quick');
  process.stdout.write(`${JSON.stringify(await measureHostileClients(quick), null, 2)}\n`);
}
