/**
 * Drain timeline: one SIGTERM to the built server holding `connections` open WebSockets, `runs`
 * of them with an agent run in flight. Times are from the signal.
 */
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { ServerProcess } from '../../test/support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../../test/support/tokens.js';

export interface DrainTimeline {
  readonly connections: number;
  readonly runsInFlight: number;
  readonly firstReady503Ms: number;
  readonly runsCompletedMs: { readonly first: number; readonly last: number; readonly completed: number };
  readonly closesMs: { readonly first: number; readonly last: number };
  readonly closeCodes: Readonly<Record<string, number>>;
  readonly exitMs: number;
  readonly exitCode: number | null;
  /** The server's own log of the steps (`shutdown +N ms: …`). */
  readonly steps: readonly string[];
}

export async function measureDrain(connections = 100, runs = 10): Promise<DrainTimeline> {
  const server = await ServerProcess.start({
    JWT_SECRET: TEST_JWT_SECRET,
    LOCAL_LLM_TOKEN_DELAY_MS: '100',
    SHUTDOWN_DELAY_MS: '1000',
    SHUTDOWN_TIMEOUT_MS: '10000',
    AGENT_MAX_CONCURRENT_RUNS: String(runs),
  });
  try {
    await server.ready();
    const sockets: WebSocket[] = [];
    const established: Array<Promise<void>> = [];
    const closes: Array<Promise<{ code: number; at: number }>> = [];
    const completions: Array<Promise<number>> = [];
    let signalledAt = 0;
    for (let index = 0; index < connections; index += 1) {
      const socket = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, {
        headers: { authorization: `Bearer ${signToken({ sub: `drain-${index}` })}` },
        perMessageDeflate: false,
      });
      sockets.push(socket);
      const frames: Array<{ event: string }> = [];
      socket.on('message', (raw) => frames.push(JSON.parse((raw as Buffer).toString()) as { event: string }));
      established.push(new Promise((resolve) => socket.once('message', () => resolve())));
      closes.push(new Promise((resolve) => socket.once('close', (code) => resolve({ code, at: performance.now() }))));
      if (index < runs) {
        completions.push(
          new Promise((resolve) => {
            socket.on('message', (raw) => {
              const { event } = JSON.parse((raw as Buffer).toString()) as { event: string };
              if (event === 'agent_completed' || event === 'agent_error') resolve(performance.now());
            });
          }),
        );
      }
    }
    await Promise.all(established);
    const started = sockets.slice(0, runs).map(
      (socket, index) =>
        new Promise<void>((resolve) => {
          socket.on('message', (raw) => {
            if ((JSON.parse((raw as Buffer).toString()) as { event: string }).event === 'agent_message_delta')
              resolve();
          });
          socket.send(
            JSON.stringify({
              event: 'agent_request',
              data: { requestId: `run-${index}`, message: 'tell me about graceful shutdown in some detail please' },
            }),
          );
        }),
    );
    await Promise.all(started);

    signalledAt = performance.now();
    server.child.kill('SIGTERM');
    let firstReady503Ms = NaN;
    for (;;) {
      const response = await fetch(`${server.url}/health/ready`);
      await response.arrayBuffer();
      if (response.status === 503) {
        firstReady503Ms = performance.now() - signalledAt;
        break;
      }
    }
    const completedAt = await Promise.all(completions);
    const closed = await Promise.all(closes);
    const exit = await server.exited;
    const exitMs = performance.now() - signalledAt;
    const since = (at: number): number => Math.round(at - signalledAt);
    const codes: Record<string, number> = {};
    for (const { code } of closed) codes[code] = (codes[code] ?? 0) + 1;
    return {
      connections,
      runsInFlight: runs,
      firstReady503Ms: Math.round(firstReady503Ms),
      runsCompletedMs: {
        first: since(Math.min(...completedAt)),
        last: since(Math.max(...completedAt)),
        completed: completedAt.length,
      },
      closesMs: {
        first: since(Math.min(...closed.map((c) => c.at))),
        last: since(Math.max(...closed.map((c) => c.at))),
      },
      closeCodes: codes,
      exitMs: Math.round(exitMs),
      exitCode: exit.code,
      steps: server.output
        .filter((line) => line.includes('shutdown +'))
        .map((line) => {
          const { message } = JSON.parse(line) as { message?: unknown };
          return typeof message === 'string' ? message : line;
        }),
    };
  } finally {
    await server.stop();
  }
}
