/**
 * `npm run bench [-- --quick]`: runs the benchmark scenarios, prints a JSON summary and writes it
 * to bench/results/<timestamp>.json. Timing goals live here, never in the tests.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { ENGINES } from '../test/support/databases.js';
import { fix, median } from './harness/stats.js';
import { measureRunLatency, type RunLatency } from './scenarios/agent-runs.js';
import { measureHostileClients } from './scenarios/hostile-clients.js';
import { measureDrain } from './scenarios/drain.js';
import { measureFleet } from './scenarios/fleet.js';
import { measureHandshakeAlgorithms } from './scenarios/handshake-algorithms.js';
import { measureMcpToolOverhead } from './scenarios/mcp-tools.js';
import { measureSideBySide } from './scenarios/side-by-side.js';
import { measureStartupSideBySide } from './scenarios/startup-side-by-side.js';
import { measureStartup } from './scenarios/startup.js';

const quick = process.argv.includes('--quick');
const rounds = quick ? 2 : 7;
const startedAt = performance.now();

const round = (value: number): number => fix(value, 1);

const startups = [];
for (let index = 0; index < rounds; index += 1) startups.push(await measureStartup());
const slowModel = [];
for (let index = 0; index < rounds; index += 1)
  slowModel.push(await measureStartup({ LOCAL_LLM_WARMUP_MS: '30000' }, true));

// One client's sequential runs against the model alone (full mode only: the quick mode's agent runs
// on both engines are scenario 7 of startupSideBySide). PostgreSQL is measured when
// TEST_DATABASE_URL points at a server (as in CI).
const runLatency: RunLatency[] = [];
for (const { engine, available } of quick ? [] : ENGINES) {
  if (available) runLatency.push(await measureRunLatency(engine, 1_000));
}

const drain = await measureDrain(quick ? 20 : 100, quick ? 3 : 10);

const sideBySide = await measureSideBySide(quick);

// Issue 14: the connect benchmark with HS256, RS256, ES256 and EdDSA tokens (a local identity
// provider's JWKS), ours against the raw server doing the same verification, and the signature
// check alone.
const handshakeAlgorithms = await measureHandshakeAlgorithms(quick);

// Scenarios 5 (start-up, release of held connections from the readiness flip), 6 (start-up storm)
// and 7 (agent runs, 200 clients), side by side with the raw server.
const startupSideBySide = await measureStartupSideBySide(quick);

// Hostile clients (issue 11): a held-frame flood, a resume flood from one user's 20 sockets, and
// the embedded model's arithmetic detection on an adversarial message.
const hostileClients = await measureHostileClients(quick);

// Fleet mode (issue 13), side by side with one instance: delivery latency to a follower on another
// replica vs on the owning one, runs per second of 3 replicas vs 1, PostgreSQL statements and
// transactions per run. A note instead when TEST_DATABASE_URL and TEST_REDIS_URL do not answer.
const fleet = await measureFleet(quick);

// Issue 18: an MCP tool call over a built-in one (p50/p99), over stdio and Streamable HTTP.
const mcpTools = await measureMcpToolOverhead(quick);

const summary = {
  machine: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`,
  startup: {
    rounds,
    liveMs: { median: round(median(startups.map((s) => s.liveMs))), all: startups.map((s) => round(s.liveMs)) },
    readyMs: {
      median: round(median(startups.map((s) => s.readyMs ?? NaN))),
      all: startups.map((s) => round(s.readyMs ?? NaN)),
    },
  },
  startupWith30sModelWarmup: {
    liveMs: { median: round(median(slowModel.map((s) => s.liveMs))), all: slowModel.map((s) => round(s.liveMs)) },
  },
  agentRunLatency: quick ? 'full mode only' : runLatency,
  drain,
  sideBySide,
  handshakeAlgorithms,
  startupSideBySide,
  hostileClients,
  fleet,
  mcpTools,
  mode: quick ? 'quick' : 'full',
  wallSeconds: Math.round((performance.now() - startedAt) / 1000),
};
const json = `${JSON.stringify(summary, null, 2)}\n`;
process.stdout.write(json);
const results = new URL('./results/', import.meta.url);
mkdirSync(results, { recursive: true });
const file = new URL(`${new Date().toISOString().replace(/[:.]/gu, '-')}${quick ? '-quick' : ''}.json`, results);
writeFileSync(file, json);
process.stderr.write(`written to bench/results/${file.pathname.split('/').at(-1)}\n`);
