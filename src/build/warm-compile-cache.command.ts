/**
 * `NODE_COMPILE_CACHE=<dir> node dist/build/warm-compile-cache.command.js`, run by the Dockerfile
 * at image build: starts the bundled server once, as the image will, serves it one chat turn once
 * it is ready (the smoke check of `src/smoke/`: probes, a WebSocket client, an agent turn with a
 * tool call, the thread list, a clean close), and stops it, so that Node's module compile cache
 * (Node 22.1 and later) holds the code a start and a first request compile. Every start of the image then reads that code instead of parsing and compiling it again.
 *
 * Nothing outside the process is needed: SQLite in memory, loopback only, a throwaway secret, no
 * identity provider. Exits 0 once the server has stopped cleanly (Node writes the cache at exit),
 * 1 if any step did not happen within `WARM_UP_TIMEOUT_MS`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { formatSmokeReport, runSmoke } from '../smoke/smoke-check.js';
import { DEFAULT_MESSAGE } from '../smoke/smoke-options.js';
import { signSmokeToken } from '../smoke/smoke-token.js';

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

// One client's whole path, as the first client of a new instance takes it: the smoke check a
// deploy runs (src/smoke/), with limits no slower build machine can miss, so that only a broken
// server fails the image build.
const remaining = Math.max(1, deadline - Date.now());
const report = await runSmoke(
  {
    url: new URL(`http://127.0.0.1:${port}`),
    auth: { user: 'compile-cache-warm-up' },
    thresholds: { connectMs: remaining, establishedMs: remaining, firstDeltaMs: remaining, completedMs: remaining },
    timeoutMs: remaining,
    message: DEFAULT_MESSAGE,
    json: false,
  },
  await signSmokeToken('compile-cache-warm-up', { JWT_SECRET: secret }),
);
if (!report.ok) fail(`the smoke check failed:\n${formatSmokeReport(report)}`, server);

server.kill('SIGTERM');
const code = await exited;
if (code !== 0) fail(`the server exited with code ${String(code)} after SIGTERM`);
const entries = readdirSync(cacheDir, { recursive: true }).length;
process.stdout.write(`warm-compile-cache: ${cacheDir} holds ${entries} entries\n`);
