/**
 * Start-up scenario: process start → /health/live 200 and → ready on the embedded defaults, timed
 * from this process (the side-by-side version, with the release of held connections, is
 * `startup-side-by-side.ts`).
 */
import { ServerProcess } from '../../test/support/server-process.js';
import { TEST_JWT_SECRET } from '../../test/support/tokens.js';

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
