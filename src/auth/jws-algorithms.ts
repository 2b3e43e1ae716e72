import { constants, type KeyObject, verify } from 'node:crypto';
import type { AsymmetricAlgorithm } from '../config/config.schema.js';

/** What a JWK must be to verify one algorithm (RFC 7518 section 3, RFC 8037 for EdDSA). */
interface AlgorithmRule {
  readonly kty: 'RSA' | 'EC' | 'OKP';
  /** EC and OKP: the curve, as the JWK names it. */
  readonly crv?: string;
  /** The digest; `null` for EdDSA, which hashes inside the signature. */
  readonly hash: 'sha256' | 'sha384' | 'sha512' | null;
  readonly pss?: boolean;
  /** ECDSA: a JWS signature is r‖s, each this many bytes (not DER). */
  readonly ecPartBytes?: number;
}

const RULES: Readonly<Record<AsymmetricAlgorithm, AlgorithmRule>> = {
  RS256: { kty: 'RSA', hash: 'sha256' },
  RS384: { kty: 'RSA', hash: 'sha384' },
  RS512: { kty: 'RSA', hash: 'sha512' },
  PS256: { kty: 'RSA', hash: 'sha256', pss: true },
  PS384: { kty: 'RSA', hash: 'sha384', pss: true },
  PS512: { kty: 'RSA', hash: 'sha512', pss: true },
  ES256: { kty: 'EC', crv: 'P-256', hash: 'sha256', ecPartBytes: 32 },
  ES384: { kty: 'EC', crv: 'P-384', hash: 'sha384', ecPartBytes: 48 },
  ES512: { kty: 'EC', crv: 'P-521', hash: 'sha512', ecPartBytes: 66 },
  EdDSA: { kty: 'OKP', crv: 'Ed25519', hash: null },
};

/** Shorter RSA keys are refused at import (RFC 7518 3.3: 2048 bits or more). */
export const MIN_RSA_BITS = 2048;

/** A public key from the provider's JWKS, imported once. */
export interface VerificationKey {
  readonly kid?: string;
  readonly kty: AlgorithmRule['kty'];
  readonly crv?: string;
  /** The JWK's own `alg`, when it names one: then only that algorithm may use the key. */
  readonly alg?: string;
  readonly key: KeyObject;
}

export function isAsymmetricAlgorithm(alg: unknown): alg is AsymmetricAlgorithm {
  return typeof alg === 'string' && Object.hasOwn(RULES, alg);
}

/** The algorithm jose is told when importing a JWK of this type and curve (any one that fits). */
export function importAlgorithmFor(kty: string, crv: string | undefined): AsymmetricAlgorithm | undefined {
  return (Object.keys(RULES) as AsymmetricAlgorithm[]).find(
    (alg) => RULES[alg].kty === kty && (RULES[alg].crv === undefined || RULES[alg].crv === crv),
  );
}

/**
 * Whether `key` may verify `alg`: its type and curve fit the algorithm, and a key that names its
 * own algorithm is used for that one only. This is what keeps an RS256 key from checking an ES256
 * (or an HS256) signature.
 */
export function keyFits(key: VerificationKey, alg: AsymmetricAlgorithm): boolean {
  const rule = RULES[alg];
  return key.kty === rule.kty && (rule.crv === undefined || key.crv === rule.crv) && (key.alg ?? alg) === alg;
}

/** Checks a JWS signature, synchronously, with node:crypto and the pre-imported key. */
export function verifySignature(
  alg: AsymmetricAlgorithm,
  signingInput: string,
  signature: Buffer,
  key: VerificationKey,
): boolean {
  try {
    return checkSignature(RULES[alg], Buffer.from(signingInput), signature, key);
  } catch {
    // node:crypto throws on some malformed signatures instead of answering false.
    return false;
  }
}

function checkSignature(rule: AlgorithmRule, data: Buffer, signature: Buffer, key: VerificationKey): boolean {
  if (rule.ecPartBytes !== undefined) {
    if (signature.length !== rule.ecPartBytes * 2) return false;
    return verify(rule.hash, data, { key: key.key, dsaEncoding: 'ieee-p1363' }, signature);
  }
  if (rule.pss === true) {
    return verify(
      rule.hash,
      data,
      { key: key.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST },
      signature,
    );
  }
  return verify(rule.hash, data, key.key, signature);
}
