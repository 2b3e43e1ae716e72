import { afterEach, describe, expect, it } from '@jest/globals';
import { WebSocket } from 'ws';
import { ServerProcess } from '../support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../support/tokens.js';

interface ProbeResult {
  readonly at: number;
  readonly status: number | 'refused';
}

/** GETs `path` back to back until `stop()` says so; a closed port counts as `refused`. */
function probeContinuously(
  server: ServerProcess,
  path: string,
): { results: ProbeResult[]; stop: () => Promise<void>; sawStatus: (status: number) => Promise<void> } {
  const results: ProbeResult[] = [];
  const statusWaiters: Array<{ status: number; resolve: () => void }> = [];
  const record = (result: ProbeResult): void => {
    results.push(result);
    for (const waiter of statusWaiters.filter((candidate) => candidate.status === result.status)) waiter.resolve();
  };
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const response = await fetch(server.url + path);
        await response.arrayBuffer();
        record({ at: server.elapsed(), status: response.status });
      } catch {
        record({ at: server.elapsed(), status: 'refused' });
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  })();
  return {
    results,
    sawStatus: (status) =>
      results.some((result) => result.status === status)
        ? Promise.resolve()
        : new Promise((resolve) => statusWaiters.push({ status, resolve })),
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

interface StormOutcome {
  readonly openedAt: number;
  readonly frames: Array<{ event: string; data: Record<string, unknown> }>;
  readonly close?: { code: number; reason: string };
  readonly completedAt?: number;
}

/**
 * One chat client of the storm: connects as soon as it can (retrying while the port is still
 * closed, as a platform's router would), sends an agent_request the moment the socket opens, and
 * settles when its run completes or the server closes the socket.
 */
function stormClient(server: ServerProcess, index: number): Promise<StormOutcome> {
  const token = signToken({ sub: `storm-${index}` });
  return new Promise((resolve) => {
    const attempt = (): void => {
      const socket = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, {
        headers: { authorization: `Bearer ${token}` },
        perMessageDeflate: false,
      });
      let openedAt = -1;
      const frames: StormOutcome['frames'] = [];
      socket.once('error', () => {
        if (openedAt < 0) setTimeout(attempt, 5);
      });
      socket.once('open', () => {
        openedAt = server.elapsed();
        socket.send(
          JSON.stringify({ event: 'agent_request', data: { requestId: `req-${index}`, message: `hello ${index}` } }),
        );
      });
      socket.on('message', (raw) => {
        const frame = JSON.parse((raw as Buffer).toString()) as StormOutcome['frames'][number];
        frames.push(frame);
        if (frame.event === 'agent_completed' || frame.event === 'agent_error') {
          const completedAt = server.elapsed();
          socket.once('close', (code, reason) =>
            resolve({ openedAt, frames, completedAt, close: { code, reason: reason.toString() } }),
          );
          socket.close(1000);
        }
      });
      socket.once('close', (code, reason) => {
        if (openedAt >= 0 && !frames.some((frame) => frame.event === 'agent_completed')) {
          resolve({ openedAt, frames, close: { code, reason: reason.toString() } });
        }
      });
    };
    attempt();
  });
}

describe('start-up of the real process', () => {
  let server: ServerProcess | undefined;

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it('never answers 1011 to a storm of clients connecting from the first millisecond', async () => {
    const CLIENTS = 220;
    server = await ServerProcess.start({
      JWT_SECRET: TEST_JWT_SECRET,
      LOCAL_LLM_WARMUP_MS: '2000',
      // Long enough that clients arriving early are held even on a loaded machine; clients are
      // refused only if start-up is slower than that.
      WS_READY_WAIT_MS: '4000',
      // Admission is under test here, not the run limits: every released request may run.
      AGENT_MAX_CONCURRENT_RUNS: '500',
      AGENT_QUEUE_SIZE: '500',
    });
    const live = probeContinuously(server, '/health/live');
    const ready = probeContinuously(server, '/health/ready');
    const running = server;
    // Clients arrive spread over the whole start-up, about one every 10 ms.
    const outcomes = await Promise.all(
      Array.from(
        { length: CLIENTS },
        (_, index) =>
          new Promise<StormOutcome>((resolve) => {
            setTimeout(() => resolve(stormClient(running, index)), index * 10);
          }),
      ),
    );
    // Probe on until readiness was seen, however slow the machine made the start-up.
    await server.ready();
    await ready.sawStatus(200);
    await Promise.all([live.stop(), ready.stop()]);

    const readyAt = ready.results.find((result) => result.status === 200)?.at ?? Infinity;
    // Liveness: connection refused until the port opens, then 200 every time.
    const firstLive = live.results.findIndex((result) => result.status === 200);
    expect(firstLive).toBeGreaterThanOrEqual(0);
    expect(live.results.slice(firstLive).every((result) => result.status === 200)).toBe(true);
    // Readiness: 503 while warming up, then 200 and never back.
    const readyStatuses = ready.results.map((result) => result.status).filter((status) => status !== 'refused');
    expect(readyStatuses[0]).toBe(503);
    const firstReady = readyStatuses.indexOf(200);
    expect(firstReady).toBeGreaterThan(0);
    expect(readyStatuses.slice(0, firstReady).every((status) => status === 503)).toBe(true);
    expect(readyStatuses.slice(firstReady).every((status) => status === 200)).toBe(true);

    const closeCodes = outcomes.map((outcome) => outcome.close?.code);
    expect(closeCodes.filter((code) => code === 1011)).toEqual([]);
    let held = 0;
    for (const outcome of outcomes) {
      if (outcome.completedAt !== undefined) {
        // Established: connection_established came first, then the run completed.
        expect(outcome.frames[0]?.event).toBe('connection_established');
        expect(outcome.frames.at(-1)?.event).toBe('agent_completed');
        if (outcome.openedAt < readyAt) held += 1;
      } else {
        // Refused: exactly one SERVICE_NOT_READY frame naming the unprocessed request, then 1013.
        expect(outcome.close?.code).toBe(1013);
        expect(outcome.frames).toHaveLength(1);
        expect(outcome.frames[0]?.data).toMatchObject({ code: 'SERVICE_NOT_READY', retryable: true });
        expect(outcome.frames[0]?.data.unprocessedRequestIds).toHaveLength(1);
      }
    }
    // Connections opened during the warm-up were held and their requests completed after ready.
    expect(held).toBeGreaterThan(0);
  }, 60_000);

  it('opens the port and answers liveness while a 30 s model warm-up keeps readiness at 503', async () => {
    server = await ServerProcess.start({ LOCAL_LLM_WARMUP_MS: '30000' });
    const listening = await server.waitForLine((line) => line.includes('listening on'));
    expect(listening).toContain(String(server.port));
    const live = await fetch(`${server.url}/health/live`);
    expect(live.status).toBe(200);
    const ready = await fetch(`${server.url}/health/ready`);
    expect(ready.status).toBe(503);
    const body = (await ready.json()) as { error: Record<string, { state: string }> };
    expect(body.error.llm?.state).toBe('initializing');
    expect(body.error.agent?.state).toBe('pending');
  }, 30_000);

  it('exits with code 1 naming what is missing when not ready by STARTUP_TIMEOUT_MS', async () => {
    server = await ServerProcess.start({ LOCAL_LLM_WARMUP_MS: '60000', STARTUP_TIMEOUT_MS: '1000' });
    const exit = await server.exited;
    expect(exit.code).toBe(1);
    const reasons = server.output.find((line) => line.includes('not ready 1000 ms after start'));
    expect(reasons).toContain('llm (initialisation did not finish in time)');
    expect(reasons).toContain('agent (waiting for llm)');
  }, 30_000);

  it('refuses to start with one message listing every invalid variable', async () => {
    server = await ServerProcess.start({
      NODE_ENV: 'production',
      PORT: 'eighty',
      WS_READY_WAIT_MS: '-5',
      LOG_LEVEL: 'chatty',
    });
    const exit = await server.exited;
    expect(exit.code).toBe(1);
    const text = server.output.join('\n');
    expect(text).toContain('Invalid configuration');
    for (const name of ['PORT', 'WS_READY_WAIT_MS', 'LOG_LEVEL', 'JWT_SECRET']) expect(text).toContain(`${name}:`);
  }, 30_000);
});
