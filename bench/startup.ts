/**
 * Start-up scenario: process start → /health/live 200 and → ready on the embedded defaults, and
 * how fast held connections are released when readiness flips.
 */
import { WebSocket } from 'ws';
import { ServerProcess } from '../test/support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../test/support/tokens.js';

export interface StartupResult {
  readonly liveMs: number;
  /** Undefined when only liveness was measured. */
  readonly readyMs?: number;
}

/**
 * Spawns the server and GETs the probes back to back until each has answered 200 once. With
 * `liveOnly`, readiness is not waited for (for a long simulated model warm-up).
 */
export async function measureStartup(env: Record<string, string> = {}, liveOnly = false): Promise<StartupResult> {
  const server = await ServerProcess.start({ JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'warn', ...env });
  try {
    const firstOk = async (path: string): Promise<number> => {
      for (;;) {
        try {
          const response = await fetch(server.url + path);
          await response.arrayBuffer();
          if (response.status === 200) return server.elapsed();
        } catch {
          // port not open yet
        }
      }
    };
    if (liveOnly) return { liveMs: await firstOk('/health/live') };
    const [liveMs, readyMs] = await Promise.all([firstOk('/health/live'), firstOk('/health/ready')]);
    return { liveMs, readyMs };
  } finally {
    await server.stop();
  }
}

export interface ReleaseResult {
  readonly held: number;
  /** From the first to the last `connection_established` of the held connections. */
  readonly spreadMs: number;
}

/** Holds `count` connections across a warm-up, then measures how they are released. */
export async function measureRelease(count: number, warmupMs = 3_000): Promise<ReleaseResult> {
  const server = await ServerProcess.start({
    JWT_SECRET: TEST_JWT_SECRET,
    LOCAL_LLM_WARMUP_MS: String(warmupMs),
    WS_READY_WAIT_MS: String(warmupMs * 4),
  });
  try {
    await server.waitForLine((line) => line.includes('listening on'));
    const sockets: WebSocket[] = [];
    const established: number[] = [];
    const refused: string[] = [];
    let allEstablished!: () => void;
    const released = new Promise<void>((resolve) => (allEstablished = resolve));
    await Promise.all(
      Array.from(
        { length: count },
        (_, index) =>
          new Promise<void>((resolve, reject) => {
            // One user per connection: more than WS_MAX_CONNECTIONS_PER_USER (20) of one user are refused.
            const socket = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, {
              headers: { authorization: `Bearer ${signToken({ sub: `bench-${index}` })}` },
              perMessageDeflate: false,
            });
            sockets.push(socket);
            socket.once('open', () => resolve());
            socket.once('error', reject);
            socket.once('message', (raw) => {
              const text = (raw as Buffer).toString();
              if (!text.startsWith('{"event":"connection_established"')) refused.push(text.slice(0, 200));
              established.push(server.elapsed());
              if (established.length === count) allEstablished();
            });
          }),
      ),
    );
    if (established.length > 0) throw new Error('a connection was released before the warm-up ended');
    await released;
    if (refused.length > 0) throw new Error(`${refused.length} connections refused, first: ${refused[0]}`);
    for (const socket of sockets) socket.terminate();
    const first = Math.min(...established);
    const last = Math.max(...established);
    return { held: count, spreadMs: last - first };
  } finally {
    await server.stop();
  }
}
