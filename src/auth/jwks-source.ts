import { KeyObject } from 'node:crypto';
import { importJWK, type JWK } from 'jose';
import { FatalInitError } from '../readiness/readiness.errors.js';
import {
  importAlgorithmFor,
  isAsymmetricAlgorithm,
  keyFits,
  MIN_RSA_BITS,
  type VerificationKey,
} from './jws-algorithms.js';

/** One fetch of the discovery document or the JWKS may take this long. */
export const FETCH_TIMEOUT_MS = 5_000;
/** A JWKS is a few kilobytes; a larger answer is refused rather than held in memory. */
const MAX_BODY_BYTES = 512 * 1024;
/** Keys beyond this many in one set are ignored (providers publish two or three). */
export const MAX_KEYS = 100;
const DISCOVERY_PATH = '/.well-known/openid-configuration';

/** An identity provider's answer could not be used; the message says why, for logs and `/health/ready`. */
export class KeySourceError extends Error {
  override readonly name = 'KeySourceError';
}

/** The provider's keys as fetched: the ones imported, the ones left out (and why), and how long they may be cached. */
export interface FetchedKeySet {
  readonly keys: readonly VerificationKey[];
  readonly skipped: readonly string[];
  /** From `Cache-Control: max-age` (0 for `no-store`/`no-cache`); unset without one. */
  readonly maxAgeMs?: number;
}

/**
 * The JWKS address named by an OIDC discovery document (`<issuer>/.well-known/openid-configuration`).
 * The document's `issuer` must be `expectedIssuer` (`JWT_ISSUER`), as OpenID Connect Discovery 1.0
 * section 4.3 requires: otherwise every token would be refused for its `iss`, so the mistake is
 * reported here, once, instead.
 */
export async function discoverJwksUri(issuerUrl: string, expectedIssuer: string, signal: AbortSignal): Promise<string> {
  const url = issuerUrl.endsWith(DISCOVERY_PATH) ? issuerUrl : `${issuerUrl.replace(/\/+$/u, '')}${DISCOVERY_PATH}`;
  const { body } = await fetchJson(url, signal);
  const document = body as { issuer?: unknown; jwks_uri?: unknown };
  if (typeof document.jwks_uri !== 'string' || !/^https?:\/\//u.test(document.jwks_uri)) {
    throw new KeySourceError(`${url}: no http(s) jwks_uri in the discovery document`);
  }
  if (document.issuer !== expectedIssuer) {
    // Retrying cannot fix a setting: the dependency fails at once, with this message.
    throw new FatalInitError(
      `${url}: the discovery document's issuer is ${JSON.stringify(document.issuer)}, but JWT_ISSUER is ${JSON.stringify(expectedIssuer)}; set JWT_ISSUER to the provider's issuer exactly (trailing slash included)`,
    );
  }
  return document.jwks_uri;
}

/**
 * Fetches a JWKS and imports its signature keys with jose (which checks each JWK's members) into
 * node:crypto `KeyObject`s, so that verifying a token later is synchronous. Keys for encryption,
 * symmetric keys (`oct`: never from a JWKS, that is the RS/HS confusion), unknown types and RSA
 * keys under 2048 bits are skipped and named; a set without one usable key is an error.
 */
export async function fetchKeySet(url: string, signal: AbortSignal): Promise<FetchedKeySet> {
  const { body, maxAgeMs } = await fetchJson(url, signal);
  const entries = (body as { keys?: unknown }).keys;
  if (!Array.isArray(entries)) throw new KeySourceError(`${url}: not a JWKS (no "keys" array)`);
  const keys: VerificationKey[] = [];
  const skipped: string[] = [];
  for (const [index, entry] of entries.slice(0, MAX_KEYS).entries()) {
    const result = await importKey(entry as JWK);
    if (typeof result === 'string') skipped.push(`key ${index}${kidOf(entry)}: ${result}`);
    else keys.push(result);
  }
  if (entries.length > MAX_KEYS) skipped.push(`${entries.length - MAX_KEYS} key(s) beyond the first ${MAX_KEYS}`);
  if (keys.length === 0) {
    throw new KeySourceError(`${url}: no usable signature key (${skipped.join('; ') || 'the set is empty'})`);
  }
  return { keys, skipped, ...(maxAgeMs === undefined ? {} : { maxAgeMs }) };
}

/** The key, or why it is not used. */
async function importKey(jwk: JWK): Promise<VerificationKey | string> {
  if (typeof jwk !== 'object' || jwk === null) return 'not an object';
  if (jwk.use !== undefined && jwk.use !== 'sig') return `use "${String(jwk.use)}" (not for signatures)`;
  if (Array.isArray(jwk.key_ops) && !jwk.key_ops.includes('verify')) return 'key_ops without "verify"';
  if (jwk.kty === 'oct') return 'a symmetric key (never trusted from a JWKS)';
  if (jwk.d !== undefined) return 'a private key (refused: a provider publishes public keys only)';
  const alg = importAlgorithmFor(String(jwk.kty), jwk.crv);
  if (alg === undefined) return `unsupported key type ${String(jwk.kty)}${jwk.crv === undefined ? '' : ` ${jwk.crv}`}`;
  try {
    // jose checks the JWK's members and builds the key; node:crypto takes it from there.
    const imported = await importJWK({ ...jwk, alg: undefined, ext: true }, alg);
    if (imported instanceof Uint8Array) return 'a symmetric key (never trusted from a JWKS)';
    const key = KeyObject.from(imported);
    const bits = key.asymmetricKeyDetails?.modulusLength;
    if (jwk.kty === 'RSA' && (bits === undefined || bits < MIN_RSA_BITS)) {
      return `an RSA key of ${String(bits)} bits (${MIN_RSA_BITS} at least)`;
    }
    const verificationKey: VerificationKey = {
      kty: jwk.kty as VerificationKey['kty'],
      key,
      ...(typeof jwk.kid === 'string' ? { kid: jwk.kid } : {}),
      ...(jwk.crv === undefined ? {} : { crv: jwk.crv }),
      ...(jwk.alg === undefined ? {} : { alg: String(jwk.alg) }),
    };
    const named = verificationKey.alg;
    if (named !== undefined && !(isAsymmetricAlgorithm(named) && keyFits(verificationKey, named))) {
      return `alg ${named.slice(0, 32)} is not a signature algorithm for this key`;
    }
    return verificationKey;
  } catch (error) {
    return `not importable (${error instanceof Error ? error.message : String(error)})`;
  }
}

function kidOf(entry: unknown): string {
  const kid = (entry as { kid?: unknown } | null)?.kid;
  return typeof kid === 'string' ? ` (kid ${kid.slice(0, 64)})` : '';
}

/** GET `url` as JSON, within {@link FETCH_TIMEOUT_MS} and {@link MAX_BODY_BYTES}. */
async function fetchJson(url: string, signal: AbortSignal): Promise<{ body: unknown; maxAgeMs?: number }> {
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.any([signal, AbortSignal.timeout(FETCH_TIMEOUT_MS)]),
    });
  } catch (error) {
    const reason =
      error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
    throw new KeySourceError(`${url}: ${reason}`);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new KeySourceError(`${url}: HTTP ${response.status}`);
  }
  const text = await readLimited(response, url);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new KeySourceError(`${url}: the answer is not JSON`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new KeySourceError(`${url}: the answer is not a JSON object`);
  }
  const maxAgeMs = maxAgeOf(response.headers.get('cache-control'));
  return { body, ...(maxAgeMs === undefined ? {} : { maxAgeMs }) };
}

async function readLimited(response: Response, url: string): Promise<string> {
  if (response.body === null) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  // Leaving the loop early cancels the stream: a huge answer is never read to its end.
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) throw new KeySourceError(`${url}: the answer is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `Cache-Control` → milliseconds the answer may be used; `no-store`/`no-cache` → 0; no max-age → unset. */
export function maxAgeOf(header: string | null): number | undefined {
  if (header === null) return undefined;
  if (/(?:^|,)\s*no-(?:store|cache)\b/iu.test(header)) return 0;
  const match = /(?:^|,)\s*max-age\s*=\s*"?(\d{1,10})"?/iu.exec(header);
  return match?.[1] === undefined ? undefined : Number(match[1]) * 1000;
}
