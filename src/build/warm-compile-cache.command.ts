/**
 * `NODE_COMPILE_CACHE=<dir> node dist/build/warm-compile-cache.command.js`, run by the Dockerfile
 * at image build: starts the bundled server once, as the image will, serves it one chat turn once
 * it is ready (a WebSocket client, an `agent_request`, its `agent_completed`), and stops it, so
 * that Node's module compile cache (Node 22.1 and later) holds the code a start and a first request
 * compile. Every start of the image then reads that code instead of parsing and compiling it again.
 *
 * Nothing outside the process is needed: SQLite in memory, loopback only, a throwaway secret, no
 * identity provider. Exits 0 once the server has stopped cleanly (Node writes the cache at exit),
 * 1 if any step did not happen within `WARM_UP_TIMEOUT_MS`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const WARM_UP_TIMEOUT_MS = 60_000;
const BUNDLE = fileURLToPath(new URL('../bundle/main.mjs', import.meta.url));

function fail(message: string, server?: ChildProcess): never {
  server?.kill('SIGKILL');
  process.stderr.write(`warm-compile-cache: ${message}\n`);
  process.exit(1);
}

const cacheDir = process.env.NODE_COMPILE_CACHE;
if (cacheDir === undefined || cacheDir === '') fail('NODE_COMPILE_CACHE is not set: there is no cache to warm');
if (Number(process.versions.node.split('.')[0]) < 22) fail(`Node ${process.version} has no module compile cache`);

const port = await new Promise<number>((resolve, reject) => {
  const probe = createServer();
  probe.once('error', reject);
  probe.listen(0, '127.0.0.1', () => {
    const address = probe.address();
    probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
  });
});
const secret = randomBytes(32).toString('hex');

const server = spawn(process.execPath, [BUNDLE], {
  env: {
    ...process.env,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: 'sqlite::memory:',
    JWT_SECRET: secret,
    SHUTDOWN_DELAY_MS: '0',
  },
  // Its log lines are the image's business at run time, not the build's.
  stdio: ['ignore', 'ignore', 'inherit'],
});
const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
let running = true;
void exited.then(() => (running = false));
const deadline = Date.now() + WARM_UP_TIMEOUT_MS;

for (;;) {
  if (!running) fail(`the server exited before it was ready (code ${String(await exited)})`);
  if (Date.now() > deadline) fail(`the server was not ready within ${WARM_UP_TIMEOUT_MS} ms`, server);
  const status = await fetch(`http://127.0.0.1:${port}/health/ready`).then(
    async (response) => (await response.arrayBuffer(), response.status),
    () => 0,
  );
  if (status === 200) break;
  await new Promise((resolve) => setTimeout(resolve, 20));
}

/** An HS256 token for the throwaway secret, as any client of the service would present. */
function token(): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub: 'compile-cache-warm-up', exp: Math.floor(Date.now() / 1000) + 300 })}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

// One chat turn, as the first client of a new instance takes it (Node 22+ has a WebSocket client).
await new Promise<void>((resolve, reject) => {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/ws?token=${token()}`);
  const timer = setTimeout(() => reject(new Error('no agent_completed')), Math.max(0, deadline - Date.now()));
  socket.addEventListener('message', ({ data }) => {
    const { event } = JSON.parse(String(data)) as { event: string };
    if (event === 'connection_established') {
      socket.send(
        JSON.stringify({ event: 'agent_request', data: { requestId: 'warm-up', message: 'What is 6 * 7?' } }),
      );
    } else if (event === 'agent_completed') {
      clearTimeout(timer);
      socket.close(1000);
      resolve();
    } else if (event === 'error' || event === 'agent_error') {
      reject(new Error(`the server answered ${String(data).slice(0, 300)}`));
    }
  });
  socket.addEventListener('close', ({ code }) => reject(new Error(`the connection closed with ${code}`)));
}).catch((error: unknown) =>
  fail(`the chat turn failed: ${error instanceof Error ? error.message : String(error)}`, server),
);

server.kill('SIGTERM');
const code = await exited;
if (code !== 0) fail(`the server exited with code ${String(code)} after SIGTERM`);
const entries = readdirSync(cacheDir, { recursive: true }).length;
process.stdout.write(`warm-compile-cache: ${cacheDir} holds ${entries} entries\n`);
