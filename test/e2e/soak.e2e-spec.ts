import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { get } from 'node:http';
import { parsePrometheus } from '../support/prometheus.js';
import { ServerProcess } from '../support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../support/tokens.js';
import { TestClient } from '../support/ws-client.js';

/** How long the mixed traffic lasts: 60 s by default (CI); SOAK_SECONDS=600 for the full soak. */
const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const USERS = 12;

type Metrics = ReturnType<typeof parsePrometheus>;

/**
 * `/metrics` on a connection of its own that closes after the answer: a kept-alive scrape socket
 * would count as one of the server's open sockets at the next scrape.
 */
function scrape(baseUrl: string): Promise<Metrics> {
  return new Promise((resolve, reject) => {
    get(new URL('/metrics', baseUrl), { agent: false, headers: { connection: 'close' } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve(parsePrometheus(text)));
    }).on('error', reject);
  });
}

/** Active resources by type (timers, sockets, …), as the server reports them. */
function resources(metrics: Metrics): Record<string, number> {
  return Object.fromEntries(
    metrics.series('nodejs_active_resources').map(({ labels, value }) => [labels.type ?? '?', value]),
  );
}

/**
 * Mixed traffic with connection churn against a spawned server: runs with and without tools,
 * cancels, reads, sockets dropped in the middle of a run and resumed from a new one. Memory must
 * stay flat, and once every client is gone the server must hold no more timers or sockets than
 * before the first one came.
 */
describe(`soak (${SECONDS} s of mixed traffic)`, () => {
  let server: ServerProcess | undefined;
  let dir: string | undefined;

  afterAll(async () => {
    await server?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it(
    'keeps memory flat and leaks no timers or sockets',
    async () => {
      dir = await mkdtemp(join(tmpdir(), 'agent-gateway-soak-'));
      server = await ServerProcess.start({
        JWT_SECRET: TEST_JWT_SECRET,
        DATABASE_URL: `sqlite:${join(dir, 'soak.db')}`,
        LOCAL_LLM_TOKEN_DELAY_MS: '2',
        // A small old space: V8 collects often, and a real leak ends the process (every check fails).
        NODE_OPTIONS: '--max-old-space-size=128',
        WS_HEARTBEAT_MS: '1000',
      });
      await server.ready();
      const running = server;
      const before = resources(await scrape(running.url));

      let connections = 0;
      let runs = 0;
      const heap: number[] = [];
      const deadline = performance.now() + SECONDS * 1000;
      const warmupEnds = performance.now() + SECONDS * 100;

      /** One user's session: connect, a few things, leave (sometimes in the middle of a run). */
      async function session(user: string, round: number): Promise<void> {
        const client = new TestClient(running.url, { token: signToken({ sub: user }) });
        connections += 1;
        await client.waitFor('connection_established');
        const kind = round % 4;
        if (kind === 0) {
          await client.request(`r${round}`, `what is ${round} * 7 + 1?`);
        } else if (kind === 1) {
          client.send('agent_request', { requestId: `c${round}`, message: 'a long answer that I will cancel, please' });
          const started = await client.waitFor('agent_started');
          client.send('agent_cancel', { runId: started.data.runId });
          await client.runEnd(`c${round}`);
        } else if (kind === 2) {
          // Leave in the middle of a run; come back on a new socket and follow it to its end.
          client.send('agent_request', { requestId: `d${round}`, message: `tell me a story number ${round}, slowly` });
          const started = await client.waitFor('agent_started');
          await client.waitFor('agent_message_delta');
          client.socket.terminate();
          const again = new TestClient(running.url, { token: signToken({ sub: user }) });
          connections += 1;
          await again.waitFor('connection_established');
          again.send('resume', { requestId: 'back', runId: started.data.runId, afterSeq: 0 });
          await again.runEnd(`d${round}`);
          await again.close();
        } else {
          client.send('thread_list', { requestId: 'list' });
          const list = await client.waitFor('thread_list_result');
          const first = (list.data.threads as Array<{ id: string }>)[0];
          if (first !== undefined) {
            client.send('thread_history', { requestId: 'history', threadId: first.id });
            await client.waitFor('thread_history_result');
          }
          await client.request(`r${round}`, 'hello again');
        }
        runs += 1;
        await client.close();
      }

      async function user(index: number): Promise<void> {
        for (let round = 0; performance.now() < deadline; round += 1) await session(`soak-${index}`, round);
      }

      // Heap samples: one every 2 s after the warm-up (the minimum of a window is its after-GC level).
      const sampling = (async () => {
        while (performance.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 2_000));
          if (performance.now() > warmupEnds) {
            heap.push((await scrape(running.url)).value('nodejs_heap_size_used_bytes') ?? Number.NaN);
          }
        }
      })();
      await Promise.all([...Array.from({ length: USERS }, (_, index) => user(index)), sampling]);

      // Every socket the server saw has been closed on its side.
      await running.waitForLines((line) => line.includes('"message":"connection closed"'), connections);
      const metrics = await scrape(running.url);
      expect(metrics.value('agent_gateway_ws_connections_open')).toBe(0);
      // Present at 0 from the start (for the alert on it), and still 0.
      expect(metrics.value('agent_gateway_ws_closes_total', { code: '1011' })).toBe(0);

      // No more timers, sockets or handles than before the first client.
      const after = resources(metrics);
      for (const [type, count] of Object.entries(after)) {
        expect({ type, count }).toEqual({ type, count: Math.min(count, before[type] ?? 0) });
      }

      // Flat memory: the lowest heap of the last third is within 50 % (+ 16 MiB) of the first third's.
      // (Sampled without forcing a collection, so the bound is loose; the small old space above is
      // what makes a leak fail for certain.)
      const third = Math.max(1, Math.floor(heap.length / 3));
      const early = Math.min(...heap.slice(0, third));
      const late = Math.min(...heap.slice(-third));
      expect(late).toBeLessThanOrEqual(early * 1.5 + 16 * 1024 * 1024);
      expect(running.child.exitCode).toBeNull();
      expect(connections).toBeGreaterThan(USERS);
      expect(runs).toBeGreaterThan(USERS);
    },
    (SECONDS + 60) * 1000,
  );
});
