/**
 * The generator of the start-up scenarios (`bench/startup-side-by-side.ts`), a process of its own
 * pinned to the load core, like `bench/generators/load-generator.ts`. One invocation, one job, one
 * `RESULT {json}` line. Every time is on the wall clock (`performance.timeOrigin +
 * performance.now()`, ms), so that it compares with the spawn time and the server's log lines.
 *
 * It is started before the server: it polls `/health/live` (every `intervalMs`) and prints
 * `POLLING` after its first attempt, and the server is spawned only then; so the moment the port
 * answers is seen within a millisecond or two, and the load starts then (not after a generator's
 * own start-up).
 *
 * - `probe`: polls `/health/live` and `/health/ready` until each answered 200 once.
 * - `held`: at live, opens one socket per token (`concurrency` handshakes in flight) on a server
 *   that is warming up, and records when each opened and when its first frame came.
 * - `storm`: at live, one attempt per token, started evenly over `spreadMs`; records for each when
 *   it started, opened and was resolved: `connection_established`, or the close after a refusal.
 * - `firstRun`: scale from zero. One client connects from the start (a TCP connect every
 *   `intervalMs` until the port takes it; no probe), sends `agent_request` once its connection is
 *   established, and records when `agent_completed` came.
 *
 * Every result also has the generator's own CPU time (`cpuMs`), so the orchestrator can tell how
 * much other work ran on the machine meanwhile, and all but `firstRun` when live was first seen.
 *
 * The WebSocket client is hand-written on `node:net` (a fixed upgrade request, a frame reader for
 * unmasked server frames): a storm of thousands of `ws` clients (key generation, accept check,
 * per-socket objects) saturated one core here and delayed the generator's own event loop by up
 * to 0.7 s, which showed as server latency. The servers see a standard client.
 *
 * Self-contained (only `node:*`); transpiled and run as plain JavaScript.
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

interface Common {
  /** `http://host:port` of the server to be. */
  readonly baseUrl: string;
  readonly intervalMs: number;
  /** Held, storm: how long, after the last attempt started, every attempt may take to be resolved. */
  readonly timeoutMs: number;
}

export type StartupLoadConfig =
  | (Common & { readonly mode: 'probe' })
  | (Common & {
      readonly mode: 'held';
      readonly url: string;
      readonly tokens: readonly string[];
      readonly concurrency: number;
    })
  | (Common & {
      readonly mode: 'storm';
      readonly url: string;
      readonly tokens: readonly string[];
      readonly spreadMs: number;
    })
  | (Common & {
      readonly mode: 'firstRun';
      readonly url: string;
      readonly token: string;
      readonly message: string;
    });

interface Measured {
  readonly liveAt: number;
  /** This process's CPU time (user + system) from its start to the result. */
  readonly cpuMs: number;
}

export interface FirstRunResult {
  readonly cpuMs: number;
  /** The TCP connection that got through, the upgrade's 101, `connection_established`, `agent_completed`. */
  readonly connectedAt: number;
  readonly openedAt: number;
  readonly establishedAt: number;
  readonly completedAt: number;
  /** TCP connects refused before the port was open. */
  readonly refused: number;
}

export interface ProbeResult extends Measured {
  readonly readyAt: number;
}

/**
 * One attempt: started, opened (the upgrade's 101 arrived), resolved (its first frame if it was
 * `connection_established`, else its close) and how: `established`, `close <code> <error code>`,
 * `error <message>` (never opened), `unresolved`.
 */
export type Attempt = readonly [startedAt: number, openedAt: number | null, resolvedAt: number | null, outcome: string];

export interface HeldResult extends Measured {
  readonly attempts: readonly Attempt[];
  /**
   * This process's event-loop delay from live to the result, ms: how late it may have noticed an
   * event (an attempt's times are late by as much, at most).
   */
  readonly loopDelayMs: { readonly p99: number; readonly max: number };
}

const ESTABLISHED = '{"event":"connection_established"';
const now = (): number => performance.timeOrigin + performance.now();
const round = (value: number | null): number | null => (value === null ? null : Math.round(value * 1000) / 1000);

let polling = false;

/** When `path` first answers 200, polled every `intervalMs`. */
async function firstOk(config: Common, path: string): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const response = await fetch(config.baseUrl + path);
      await response.arrayBuffer();
      if (response.status === 200) return now();
    } catch {
      // not listening yet
    }
    if (!polling) {
      polling = true;
      process.stdout.write('POLLING\n');
    }
    if (Date.now() > deadline) throw new Error(`${path}: no 200 within 60 s`);
    await sleep(config.intervalMs);
  }
}

const cpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

async function probe(config: Extract<StartupLoadConfig, { mode: 'probe' }>): Promise<ProbeResult> {
  const [liveAt, readyAt] = await Promise.all([firstOk(config, '/health/live'), firstOk(config, '/health/ready')]);
  return { liveAt, readyAt, cpuMs: cpuMs() };
}

/** Any valid key: the client does not check the server's `Sec-WebSocket-Accept`. */
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const OPCODE = { text: 0x1, close: 0x8 } as const;

/**
 * One WebSocket attempt on a bare TCP socket: the upgrade request with `?token=`, then the server's
 * frames (unmasked). Resolved by the first text frame if it is `connection_established`, else by
 * the close frame (`close <code> <error code of the frame before>`), a close of the TCP connection
 * without one (`close 1006`), an error before the upgrade (`error <message>`) or a non-101 answer
 * (`http <status>`). `opened` settles at the 101 (or at the resolution, if there is none).
 */
function attempt(
  url: string,
  token: string,
): { socket: Socket; record: () => Attempt; opened: Promise<void>; done: Promise<void> } {
  const target = new URL(url);
  const startedAt = now();
  let openedAt: number | null = null;
  let resolvedAt: number | null = null;
  let outcome = 'unresolved';
  let refusal = '';
  let upgraded = false;
  let frames = 0;
  let buffer: Buffer = Buffer.alloc(0);
  let resolve!: () => void;
  let open!: () => void;
  const done = new Promise<void>((settle) => (resolve = settle));
  const opened = new Promise<void>((settle) => (open = settle));
  const settle = (at: number, how: string): void => {
    if (resolvedAt !== null) return;
    resolvedAt = at;
    outcome = how;
    open();
    resolve();
  };
  const socket = connect({ host: target.hostname, port: Number(target.port), noDelay: true });
  socket.write(
    `GET ${target.pathname}?token=${encodeURIComponent(token)} HTTP/1.1\r\nHost: ${target.host}\r\n` +
      `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const onFrame = (at: number, opcode: number, payload: Buffer): void => {
    if (opcode === OPCODE.close) {
      const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      settle(at, `close ${code}${refusal === '' ? '' : ` ${refusal}`}`);
      // The closing handshake's answer: a masked close frame (mask 0), then FIN.
      socket.end(Buffer.from([0x88, 0x82, 0, 0, 0, 0, code >> 8, code & 0xff]));
      return;
    }
    if (opcode !== OPCODE.text || (frames += 1) > 1) return;
    if (payload.toString('latin1', 0, ESTABLISHED.length) === ESTABLISHED) return settle(at, 'established');
    try {
      refusal = String((JSON.parse(payload.toString()) as { data?: { code?: unknown } }).data?.code);
    } catch {
      refusal = 'not JSON';
    }
  };
  socket.on('data', (chunk: Buffer) => {
    const at = now();
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    if (!upgraded) {
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = buffer.toString('latin1', 9, 12);
      if (status !== '101') {
        settle(at, `http ${status}`);
        socket.destroy();
        return;
      }
      upgraded = true;
      openedAt = at;
      open();
      buffer = buffer.subarray(end + 4);
    }
    while (buffer.length >= 2) {
      let length = (buffer[1] ?? 0) & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffer.length < 4) return;
        length = buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (buffer.length < 10) return;
        length = Number(buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (buffer.length < offset + length) return;
      const opcode = (buffer[0] ?? 0) & 0x0f;
      const payload = buffer.subarray(offset, offset + length);
      buffer = buffer.subarray(offset + length);
      onFrame(at, opcode, payload);
    }
  });
  socket.on('error', (error) => {
    if (openedAt === null) settle(now(), `error ${error.message}`);
  });
  socket.once('close', () => settle(now(), 'close 1006'));
  return {
    socket,
    record: () => [round(startedAt) ?? 0, round(openedAt), round(resolvedAt), outcome],
    opened,
    done,
  };
}

/** A client frame: text, FIN, masked with a zero key (the payload goes as it is). */
function maskedText(text: string): Buffer {
  const payload = Buffer.from(text);
  const length = payload.length;
  const header =
    length < 126 ? Buffer.from([0x81, 0x80 | length]) : Buffer.from([0x81, 0x80 | 126, length >> 8, length & 0xff]);
  return Buffer.concat([header, Buffer.alloc(4), payload]);
}

/** One TCP connection to the server's port, retried every `intervalMs` while it is refused. */
async function connectWhenOpen(
  target: URL,
  intervalMs: number,
  deadline: number,
): Promise<{ socket: Socket; refused: number }> {
  let refused = 0;
  for (;;) {
    const socket = connect({ host: target.hostname, port: Number(target.port), noDelay: true });
    const ok = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true));
      socket.once('error', () => resolve(false));
    });
    if (ok) return { socket, refused };
    socket.destroy();
    refused += 1;
    if (!polling) {
      polling = true;
      process.stdout.write('POLLING\n');
    }
    if (Date.now() > deadline) throw new Error('the port did not open within 60 s');
    await sleep(intervalMs);
  }
}

async function firstRun(config: Extract<StartupLoadConfig, { mode: 'firstRun' }>): Promise<FirstRunResult> {
  const target = new URL(config.url);
  const { socket, refused } = await connectWhenOpen(target, config.intervalMs, Date.now() + 60_000);
  const connectedAt = now();
  let openedAt = NaN;
  let establishedAt = NaN;
  let buffer: Buffer = Buffer.alloc(0);
  let upgraded = false;
  const completedAt = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no agent_completed within ${config.timeoutMs} ms`)),
      config.timeoutMs,
    );
    const onText = (at: number, text: string): void => {
      const event = (JSON.parse(text) as { event?: string }).event;
      if (event === 'connection_established' && Number.isNaN(establishedAt)) {
        establishedAt = at;
        const request = { event: 'agent_request', data: { requestId: 'first-run', message: config.message } };
        socket.write(maskedText(JSON.stringify(request)));
      } else if (event === 'agent_completed') {
        clearTimeout(timer);
        resolve(at);
      } else if (event === 'error' || event === 'agent_error') {
        clearTimeout(timer);
        reject(new Error(`the server answered ${text.slice(0, 300)}`));
      }
    };
    socket.on('data', (chunk: Buffer) => {
      const at = now();
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      if (!upgraded) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const status = buffer.toString('latin1', 9, 12);
        if (status !== '101') return reject(new Error(`upgrade answered ${status}`));
        upgraded = true;
        openedAt = at;
        buffer = buffer.subarray(end + 4);
      }
      while (buffer.length >= 2) {
        let length = (buffer[1] ?? 0) & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (buffer.length < 4) return;
          length = buffer.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (buffer.length < 10) return;
          length = Number(buffer.readBigUInt64BE(2));
          offset = 10;
        }
        if (buffer.length < offset + length) return;
        const opcode = (buffer[0] ?? 0) & 0x0f;
        const payload = buffer.subarray(offset, offset + length);
        buffer = buffer.subarray(offset + length);
        if (opcode === OPCODE.close)
          return reject(new Error(`closed with ${payload.length >= 2 ? payload.readUInt16BE(0) : 1005}`));
        if (opcode === OPCODE.text) onText(at, payload.toString());
      }
    });
    socket.once('close', () => reject(new Error('the connection closed')));
    socket.write(
      `GET ${target.pathname}?token=${encodeURIComponent(config.token)} HTTP/1.1\r\nHost: ${target.host}\r\n` +
        `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
  socket.destroy();
  return { cpuMs: cpuMs(), connectedAt, openedAt, establishedAt, completedAt, refused };
}

/** Event-loop delay from now on. */
function loopDelay(): () => HeldResult['loopDelayMs'] {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  return () => {
    histogram.disable();
    return { p99: round(histogram.percentile(99) / 1e6) ?? NaN, max: round(histogram.max / 1e6) ?? NaN };
  };
}

/** Waits for every attempt to end (or `timeoutMs`), records them, and closes their sockets. */
async function settleAttempts(
  all: ReadonlyArray<ReturnType<typeof attempt>>,
  timeoutMs: number,
  liveAt: HeldResult['liveAt'],
  delay: () => HeldResult['loopDelayMs'],
): Promise<HeldResult> {
  await Promise.race([Promise.all(all.map((one) => one.done)), sleep(timeoutMs)]);
  const attempts = all.map((one) => one.record());
  const used = cpuMs();
  const loopDelayMs = delay();
  for (const { socket } of all) socket.destroy();
  return { liveAt, cpuMs: used, attempts, loopDelayMs };
}

async function held(config: Extract<StartupLoadConfig, { mode: 'held' }>): Promise<HeldResult> {
  const liveAt = await firstOk(config, '/health/live');
  const delay = loopDelay();
  const all: Array<ReturnType<typeof attempt>> = [];
  let next = 0;
  // `concurrency` handshakes in flight: a worker starts the next attempt when its socket opened.
  const worker = async (): Promise<void> => {
    while (next < config.tokens.length) {
      const one = attempt(config.url, config.tokens[next] ?? '');
      next += 1;
      all.push(one);
      await one.opened;
    }
  };
  await Promise.all(Array.from({ length: Math.min(config.concurrency, config.tokens.length) }, worker));
  return settleAttempts(all, config.timeoutMs, liveAt, delay);
}

async function storm(config: Extract<StartupLoadConfig, { mode: 'storm' }>): Promise<HeldResult> {
  const liveAt = await firstOk(config, '/health/live');
  const delay = loopDelay();
  const all: Array<ReturnType<typeof attempt>> = [];
  const count = config.tokens.length;
  const started = performance.now();
  // Attempt i starts at i · spreadMs / count; a 1 ms tick starts every attempt that is due.
  await new Promise<void>((finished) => {
    const timer = setInterval(() => {
      const due = Math.min(count, Math.floor(((performance.now() - started) * count) / config.spreadMs) + 1);
      while (all.length < due) all.push(attempt(config.url, config.tokens[all.length] ?? ''));
      if (all.length === count) {
        clearInterval(timer);
        finished();
      }
    }, 1);
  });
  return settleAttempts(all, config.timeoutMs, liveAt, delay);
}

/** The settings come in a file (5 000 tokens do not fit in an argument). */
const config = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as StartupLoadConfig;
const guard = setTimeout(
  () => {
    process.stderr.write('startup-load: gave up (timeout)\n');
    process.exit(2);
  },
  config.timeoutMs + (config.mode === 'storm' ? config.spreadMs : 0) + 120_000,
);
guard.unref();
const run = { probe, held, storm, firstRun }[config.mode] as (config: StartupLoadConfig) => Promise<unknown>;
run(config).then(
  (result) => process.stdout.write(`RESULT ${JSON.stringify(result)}\n`, () => process.exit(0)),
  (error: unknown) => {
    process.stderr.write(`startup-load: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
