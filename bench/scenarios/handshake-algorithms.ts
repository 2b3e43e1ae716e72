/**
 * The handshake per token algorithm (issue 14): the connect benchmark of side-by-side.ts (scenario
 * 1) with HS256, RS256, ES256 and EdDSA tokens, ours against the raw server doing the same
 * verification, and the signature alone without sockets (`signature-cost.ts`).
 *
 * One identity provider (`test/support/identity-provider.ts`) in this process, with one key of each
 * asymmetric algorithm (RSA 2048, P-256, Ed25519). Ours (`node dist/bundle/main.mjs`, side-by-side.ts's
 * settings) gets its `AUTH_JWKS_URL`, `JWT_ISSUER` and `JWT_AUDIENCE`, and `JWT_SECRET` beside
 * them; raw gets the same JWKS as `RAW_JWKS` and the same issuer, audience and secret. Every
 * algorithm is measured against the same two processes, so HS256 is checked with the issuer and
 * audience too, as it is once a JWKS is configured. Tokens are signed here before the servers
 * start: `tokens` per algorithm, one user each (`user-<i>`), so that the 32 handshakes in flight
 * never share a user (`WS_MAX_CONNECTIONS_PER_USER` stays at its default).
 *
 * Each round: both servers up (pinned to the server core, the generator to the other), then for
 * each algorithm (the order turns by one every round) `max` and `fixed` phases, each against ours
 * then raw, seconds apart. An algorithm ours refuses (before its verifier supports it) is measured
 * on raw only and reported as refused. `tsx bench/scenarios/handshake-algorithms.ts [--quick]`
 * runs this alone.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { LocalIdentityProvider } from '../../test/support/identity-provider.js';
import { MAIN_JS } from '../../test/support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../../test/support/tokens.js';
import { pinning } from '../harness/processes.js';
import { type BenchServer, type Side, startServer } from '../harness/servers.js';
import { fix, median, pairedRatio } from '../harness/stats.js';
import {
  aggregate,
  CONNECT_CONCURRENCY,
  FIXED_LOAD,
  phase,
  type PhaseResult,
  runLoad,
  type Sizes,
  SIZES,
} from './side-by-side.js';
import { measureSignatureCost, type SignatureSizes, type TokenAlgorithm } from './signature-cost.js';

export const HANDSHAKE_ALGORITHMS: readonly TokenAlgorithm[] = ['HS256', 'RS256', 'ES256', 'EdDSA'];

interface HandshakeSizes extends Sizes {
  readonly tokensPerAlgorithm: number;
  /** Handshakes with every algorithm's tokens against each fresh server before the first phase. */
  readonly serverWarmupMs: number;
  readonly signature: SignatureSizes;
}

const HANDSHAKE_SIZES: Readonly<Record<'quick' | 'full', HandshakeSizes>> = {
  quick: {
    // The CI's quick run has a budget: one round, one attempt per phase, a short wait for quiet.
    ...SIZES.quick,
    rounds: 1,
    attempts: 1,
    settleMaxMs: 1_000,
    tokensPerAlgorithm: 1_000,
    serverWarmupMs: 500,
    signature: { batches: 3, batchMs: 40, settleMaxMs: 250 },
  },
  full: {
    ...SIZES.full,
    rounds: 4,
    tokensPerAlgorithm: 1_000,
    serverWarmupMs: 3_000,
    signature: { batches: 7, batchMs: 250, settleMaxMs: 5_000 },
  },
};

/** The audience the provider's tokens carry. */
const AUDIENCE = 'agent-gateway';
const TOKEN_LIFETIME_S = 6 * 3600;

async function signTokens(provider: LocalIdentityProvider, count: number) {
  const exp = Math.floor(Date.now() / 1000) + TOKEN_LIFETIME_S;
  const tokens: Partial<Record<TokenAlgorithm, string[]>> = {};
  for (const alg of HANDSHAKE_ALGORITHMS) {
    const signed: string[] = [];
    for (let index = 0; index < count; index += 1) {
      const sub = `user-${index}`;
      signed.push(
        alg === 'HS256'
          ? signToken({ sub, iss: provider.issuer, aud: AUDIENCE, exp })
          : await provider.sign({ sub }, { alg, expiresIn: TOKEN_LIFETIME_S }),
      );
    }
    tokens[alg] = signed;
  }
  return tokens as Record<TokenAlgorithm, string[]>;
}

/** Undefined when `server` establishes a connection with `token`, otherwise what it answered. */
async function refusal(server: BenchServer, token: string): Promise<string | undefined> {
  const socket = new WebSocket(`${server.wsUrl}?token=${encodeURIComponent(token)}`, { perMessageDeflate: false });
  try {
    return await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve('no answer within 5 s'), 5_000);
      socket.once('message', (data: Buffer) => {
        clearTimeout(timer);
        const text = data.toString();
        resolve(text.startsWith('{"event":"connection_established"') ? undefined : text.slice(0, 300));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        resolve(String(error));
      });
    });
  } finally {
    socket.terminate();
  }
}

type AlgorithmPhases = Record<Side, { max: PhaseResult; fixed: PhaseResult } | undefined>;

/** The order of the algorithms in round `index`: turned by one each round. */
function orderOf(index: number): TokenAlgorithm[] {
  const shift = index % HANDSHAKE_ALGORITHMS.length;
  return [...HANDSHAKE_ALGORITHMS.slice(shift), ...HANDSHAKE_ALGORITHMS.slice(0, shift)];
}

async function round(
  index: number,
  sizes: HandshakeSizes,
  provider: LocalIdentityProvider,
  jwks: string,
  tokens: Record<TokenAlgorithm, string[]>,
  refused: Partial<Record<TokenAlgorithm, string>>,
): Promise<Record<TokenAlgorithm, AlgorithmPhases>> {
  const servers: Partial<Record<Side, BenchServer>> = {};
  try {
    servers.ours = await startServer('ours', { env: provider.env(AUDIENCE) });
    servers.raw = await startServer('raw', { env: { ...provider.env(AUDIENCE), RAW_JWKS: jwks } });
    const running = { ours: servers.ours, raw: servers.raw };
    // A fresh server's first seconds of handshakes run code not yet optimised: without this, the
    // round's first algorithm would pay for it.
    const everyAlgorithm = tokens.HS256.flatMap((_, i) => HANDSHAKE_ALGORITHMS.map((alg) => tokens[alg][i] ?? ''));
    for (const side of ['ours', 'raw'] as const) {
      await runLoad(
        running[side],
        { warmupMs: sizes.serverWarmupMs, windowMs: 100 },
        { mode: 'connect', concurrency: CONNECT_CONCURRENCY, tokens: everyAlgorithm },
      );
    }
    const result = {} as Record<TokenAlgorithm, AlgorithmPhases>;
    for (const alg of orderOf(index)) {
      for (const side of ['ours', 'raw'] as const) {
        const answer = await refusal(running[side], tokens[alg][0] ?? '');
        if (answer !== undefined && side === 'raw') throw new Error(`raw server refused ${alg}: ${answer}`);
        if (answer !== undefined) refused[alg] = answer;
      }
      const sides: readonly Side[] = refused[alg] === undefined ? ['ours', 'raw'] : ['raw'];
      const measured = { ours: {}, raw: {} } as Record<Side, Partial<Record<'max' | 'fixed', PhaseResult>>>;
      for (const kind of ['max', 'fixed'] as const) {
        for (const side of sides) {
          measured[side][kind] = await phase(running[side], sizes, {
            mode: 'connect',
            concurrency: CONNECT_CONCURRENCY,
            ...(kind === 'fixed' ? { rate: FIXED_LOAD.connect } : {}),
            tokens: tokens[alg],
          });
        }
      }
      const both = (side: Side) => {
        const { max, fixed } = measured[side];
        return max === undefined || fixed === undefined ? undefined : { max, fixed };
      };
      result[alg] = { ours: both('ours'), raw: both('raw') };
    }
    return result;
  } finally {
    await servers.ours?.stop();
    await servers.raw?.stop();
  }
}

/** Per algorithm: medians per side and phase, paired ratios, and the CPU added to HS256's handshake. */
function summarise(rounds: ReadonlyArray<Record<TokenAlgorithm, AlgorithmPhases>>, alg: TokenAlgorithm) {
  const sideOf = (side: Side) => {
    const measured = rounds.flatMap((r) => (r[alg][side] === undefined ? [] : [r[alg][side]]));
    if (measured.length === 0) return undefined;
    // CPU per handshake at the fixed load minus HS256's in the same round and process.
    const overHs256 = rounds.flatMap((r) => {
      const own = r[alg][side]?.fixed.serverCpu.usPerOp;
      const hs256 = r.HS256[side]?.fixed.serverCpu.usPerOp;
      return own === undefined || hs256 === undefined ? [] : [own - hs256];
    });
    return {
      max: aggregate(measured.map((m) => m.max)),
      fixed: aggregate(measured.map((m) => m.fixed)),
      cpuUsPerHandshakeOverHs256AtFixedLoad: fix(median(overHs256), 1),
    };
  };
  const paired = rounds.flatMap((r) => {
    const { ours, raw } = r[alg];
    return ours === undefined || raw === undefined ? [] : [{ ours, raw }];
  });
  return {
    ours: sideOf('ours') ?? 'refused',
    raw: sideOf('raw'),
    ratios:
      paired.length === 0
        ? undefined
        : {
            maxPerSecond: pairedRatio(paired, (p) => p.max.perSecond),
            /** Raw CPU per handshake over ours at the fixed load: the rate ratio if both were saturated. */
            capacityFromCpuPerOpAtFixedLoad: pairedRatio(paired, (p) => 1 / p.fixed.serverCpu.usPerOp),
            latencyP50AtFixedLoad: pairedRatio(paired, (p) => p.fixed.latencyMs?.p50 ?? NaN),
            latencyP99AtFixedLoad: pairedRatio(paired, (p) => p.fixed.latencyMs?.p99 ?? NaN),
          },
  };
}

export async function measureHandshakeAlgorithms(quick: boolean) {
  const sizes = quick ? HANDSHAKE_SIZES.quick : HANDSHAKE_SIZES.full;
  const provider = await LocalIdentityProvider.start({ algorithms: ['RS256', 'ES256', 'EdDSA'] });
  try {
    const tokens = await signTokens(provider, sizes.tokensPerAlgorithm);
    const jwksResponse = await fetch(provider.jwksUrl);
    const jwks = await jwksResponse.text();
    const signature = await measureSignatureCost(
      tokens,
      JSON.parse(jwks) as Parameters<typeof measureSignatureCost>[1],
      TEST_JWT_SECRET,
      sizes.signature,
    );
    const refused: Partial<Record<TokenAlgorithm, string>> = {};
    const rounds: Array<Record<TokenAlgorithm, AlgorithmPhases>> = [];
    for (let index = 0; index < sizes.rounds; index += 1) {
      rounds.push(await round(index, sizes, provider, jwks, tokens, refused));
    }
    return {
      method: {
        pinning: pinning(),
        rounds: sizes.rounds,
        order: 'per round: both servers up; per algorithm (order turned each round): max then fixed, ours then raw',
        warmupMs: sizes.warmupMs,
        windowMs: sizes.windowMs,
        connectConcurrency: CONNECT_CONCURRENCY,
        fixedConnectionsPerSecond: FIXED_LOAD.connect,
        tokensPerAlgorithm: sizes.tokensPerAlgorithm,
        users: 'one per token (user-<i>); WS_MAX_CONNECTIONS_PER_USER at its default',
        jwksFetches: provider.fetches.jwks,
      },
      signatureAlone: signature,
      /** What ours answered to an algorithm it does not accept (nothing was measured on its side). */
      refusedByOurs: refused,
      ...Object.fromEntries(HANDSHAKE_ALGORITHMS.map((alg) => [alg, summarise(rounds, alg)])),
    };
  } finally {
    await provider.close();
  }
}

/** `tsx bench/scenarios/handshake-algorithms.ts [--quick]`: this scenario alone. */
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (!existsSync(MAIN_JS)) throw new Error('run `npm run build` first');
  const summary = await measureHandshakeAlgorithms(process.argv.includes('--quick'));
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}
