/**
 * What a token's signature costs alone, without sockets or JSON: CPU time per check for each
 * algorithm, with the keys imported once, as both servers do (RS256: a 2048-bit RSA key, PKCS#1
 * v1.5; ES256: P-256 with the JWS's r ‖ s signature; EdDSA: Ed25519; HS256: HMAC-SHA256 of the
 * signing input and a constant-time compare). Set beside the connect benchmark, it says how much
 * of a handshake is the signature. Runs in the bench process (not pinned: CPU time per check does
 * not depend on the core), in batches on a quiet machine; the median batch is kept.
 */
import {
  createHmac,
  createPublicKey,
  createSecretKey,
  type JsonWebKey,
  type KeyObject,
  timingSafeEqual,
  verify,
} from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { settle } from '../harness/processes.js';
import { fix, median } from '../harness/stats.js';

export type TokenAlgorithm = 'HS256' | 'RS256' | 'ES256' | 'EdDSA';

export interface SignatureSizes {
  readonly batches: number;
  readonly batchMs: number;
  readonly settleMaxMs: number;
}

export interface SignatureCost {
  /** The key: `RSA 2048`, `P-256`, `Ed25519`, `HMAC 41 B`. */
  readonly key: string;
  /** CPU time (user + system of the bench process) per check, µs: median batch, and every batch. */
  readonly cpuUsPerVerify: number;
  readonly allCpuUsPerVerify: readonly number[];
  /** Wall time per check, µs, median batch. */
  readonly wallUsPerVerify: number;
  readonly verifiesPerBatch: number;
}

/** A check of one token's signature with everything but the check itself prepared. */
type Check = () => boolean;

const segment = (token: string, index: number): string => token.split('.')[index] ?? '';

function keyName(jwk: JsonWebKey): string {
  if (jwk.kty === 'RSA') return `RSA ${Buffer.from(jwk.n ?? '', 'base64url').length * 8}`;
  return jwk.crv ?? String(jwk.kty);
}

/**
 * The signature check of `token`, as the raw server does it (`bench/harness/raw-server.ts`), with
 * the key `jwks` holds under the header's `kid`, or `secret` for HS256.
 */
function checkOf(token: string, jwks: ReadonlyMap<string, KeyObject>, secret: KeyObject): Check {
  const { alg, kid } = JSON.parse(Buffer.from(segment(token, 0), 'base64url').toString('utf8')) as Record<
    string,
    string
  >;
  const input = Buffer.from(`${segment(token, 0)}.${segment(token, 1)}`);
  const signature = Buffer.from(segment(token, 2), 'base64url');
  if (alg === 'HS256') {
    return () => {
      const expected = createHmac('sha256', secret).update(input).digest();
      return expected.length === signature.length && timingSafeEqual(expected, signature);
    };
  }
  const key = kid === undefined ? undefined : jwks.get(kid);
  if (key === undefined) throw new Error(`signature cost: no key ${kid} for ${alg}`);
  switch (alg) {
    case 'RS256':
      return () => verify('sha256', input, key, signature);
    case 'ES256':
      return () => verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, signature);
    case 'EdDSA':
      return () => verify(null, input, key, signature);
    default:
      throw new Error(`signature cost: unexpected algorithm ${alg}`);
  }
}

/** Runs `checks` round-robin for `batchMs`: checks done, and CPU and wall µs per check. */
function batch(checks: readonly Check[], batchMs: number): { count: number; cpuUs: number; wallUs: number } {
  const cpuAtStart = process.cpuUsage();
  const startedAt = performance.now();
  let count = 0;
  let valid = true;
  while (performance.now() - startedAt < batchMs) {
    // 32 checks between clock reads: the clock costs about as much as an HMAC.
    for (let index = 0; index < 32; index += 1) {
      valid = checks[count % checks.length]?.() === true && valid;
      count += 1;
    }
  }
  const wallUs = (performance.now() - startedAt) * 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  if (!valid) throw new Error('signature cost: a valid token failed its check');
  return { count, cpuUs: (cpu.user + cpu.system) / count, wallUs: wallUs / count };
}

/**
 * CPU µs per signature check for each algorithm of `tokens` (at most 100 distinct tokens each),
 * the batches of the algorithms interleaved so that a slow minute of the machine hits them all.
 */
export async function measureSignatureCost(
  tokens: Readonly<Partial<Record<TokenAlgorithm, readonly string[]>>>,
  jwks: { readonly keys: ReadonlyArray<JsonWebKey & { kid?: string }> },
  secret: string,
  sizes: SignatureSizes,
): Promise<Partial<Record<TokenAlgorithm, SignatureCost>>> {
  const keys = new Map<string, KeyObject>();
  const names = new Map<string, string>();
  for (const jwk of jwks.keys) {
    if (jwk.kid === undefined || jwk.use === 'enc') continue;
    keys.set(jwk.kid, createPublicKey({ key: jwk, format: 'jwk' }));
    names.set(jwk.kid, keyName(jwk));
  }
  const secretKey = createSecretKey(Buffer.from(secret, 'utf8'));
  const algorithms = Object.keys(tokens) as TokenAlgorithm[];
  const checks = new Map(
    algorithms.map((alg) => [alg, (tokens[alg] ?? []).slice(0, 100).map((token) => checkOf(token, keys, secretKey))]),
  );
  const samples = new Map(algorithms.map((alg) => [alg, [] as Array<ReturnType<typeof batch>>]));
  // Warm-up: every path compiled, every key used once.
  for (const alg of algorithms) batch(checks.get(alg) ?? [], 20);
  for (let index = 0; index < sizes.batches; index += 1) {
    await settle(sizes.settleMaxMs);
    for (const alg of algorithms) samples.get(alg)?.push(batch(checks.get(alg) ?? [], sizes.batchMs));
  }
  const kidOf = (token: string): string =>
    (JSON.parse(Buffer.from(segment(token, 0), 'base64url').toString('utf8')) as { kid?: string }).kid ?? '';
  return Object.fromEntries(
    algorithms.map((alg) => {
      const measured = samples.get(alg) ?? [];
      const first = tokens[alg]?.[0] ?? '';
      const cost: SignatureCost = {
        key: alg === 'HS256' ? `HMAC ${Buffer.byteLength(secret)} B` : (names.get(kidOf(first)) ?? 'unknown'),
        cpuUsPerVerify: fix(median(measured.map((m) => m.cpuUs))),
        allCpuUsPerVerify: measured.map((m) => fix(m.cpuUs)),
        wallUsPerVerify: fix(median(measured.map((m) => m.wallUs))),
        verifiesPerBatch: Math.round(median(measured.map((m) => m.count))),
      };
      return [alg, cost];
    }),
  );
}
