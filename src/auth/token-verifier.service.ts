import { createHmac, type KeyObject, createSecretKey, timingSafeEqual } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import type { AsymmetricAlgorithm } from '../config/config.schema.js';
import { serviceNotReady, tokenExpired, unauthorized } from '../errors/client-errors.js';
import { isAsymmetricAlgorithm, keyFits, type VerificationKey, verifySignature } from './jws-algorithms.js';
import { JWT_ALGORITHM } from './jwt-options.js';
import { ProviderKeys } from './provider-keys.service.js';

/** Who is on the other end of a connection. */
export interface Principal {
  readonly userId: string;
}

/** Longer tokens are refused before any parsing. */
const MAX_TOKEN_LENGTH = 8 * 1024;
const BASE64URL = /^[A-Za-z0-9_-]+$/u;
/** A user id is stored (`varchar(255)`), logged and compared: 1–255 characters, no control characters. */
export const MAX_SUBJECT_LENGTH = 255;
const CONTROL_CHARACTER = /\p{Cc}/u;
/** Providers' key ids are short (a thumbprint is 43 characters). */
const MAX_KID_LENGTH = 256;

/**
 * A token names a key the provider's set does not hold (yet): {@link TokenVerifier.authenticate}
 * may refetch the set once; {@link TokenVerifier.verify} refuses it.
 */
class UnknownKey extends Error {}

/**
 * Verifies access tokens (compact JWS, RFC 7515/7519). The header's `alg` picks the key: HS256
 * → `JWT_SECRET` (when set); an algorithm of `AUTH_ALGORITHMS` → the identity provider's key its
 * `kid` names, which must be of that algorithm's type and curve (so an RS256 key never checks an
 * HS256 or ES256 signature); anything else is refused. Then: `exp` required, `nbf` honoured, every
 * time claim a finite number, `iss`/`aud` checked when configured (always with a provider), and the
 * user id from `AUTH_USER_CLAIM` (1–255 characters, no control characters).
 *
 * Every connection pays for this, so it is synchronous, with node:crypto and keys imported once
 * (the secret here, the provider's keys by {@link ProviderKeys}), not a general JWT library per
 * call (which parsed the options and checked every algorithm's rules each time: about 3.5 times
 * the cost for HS256; and jose verifies asynchronously). test/integration/auth.spec.ts and
 * identity-providers.spec.ts hold the attacks this must refuse.
 */
@Injectable()
export class TokenVerifier {
  private readonly secret: KeyObject | undefined;
  private readonly issuer: string | undefined;
  private readonly audience: string | undefined;
  private readonly userClaim: string;
  private readonly accepted: string;

  constructor(
    @InjectConfig() config: AppConfig,
    private readonly providerKeys: ProviderKeys,
  ) {
    const secret = config.auth.jwtSecret;
    this.secret = secret === undefined ? undefined : createSecretKey(Buffer.from(secret, 'utf8'));
    this.issuer = config.auth.issuer;
    this.audience = config.auth.audience;
    this.userClaim = config.auth.userClaim;
    this.accepted = [...(secret === undefined ? [] : [JWT_ALGORITHM]), ...providerKeys.algorithms].join(', ');
  }

  /**
   * @throws AppError `UNAUTHORIZED` or `TOKEN_EXPIRED` (`SERVICE_NOT_READY` while the provider's keys
   * are not held yet). Synchronous on purpose: no await before auth is decided. A token naming an
   * unknown key is refused; {@link authenticate} refetches the keys first.
   */
  verify(token: string | undefined): Principal {
    try {
      return this.check(token);
    } catch (error) {
      if (error instanceof UnknownKey) throw unauthorized(error.message);
      throw error;
    }
  }

  /**
   * {@link verify}, except that a token naming a key the provider's set does not hold triggers one
   * refetch of the set (shared, and at most one per cool-down), then is checked again: a rotation
   * is followed at the first token signed with the new key. Synchronous whenever it can be.
   */
  authenticate(token: string | undefined): Principal | Promise<Principal> {
    try {
      return this.check(token);
    } catch (error) {
      if (!(error instanceof UnknownKey)) throw error;
      const refetch = this.providerKeys.refetchForUnknownKey();
      if (refetch === undefined) throw unauthorized(error.message);
      return refetch.then(() => this.verify(token));
    }
  }

  private check(token: string | undefined): Principal {
    if (token === undefined) throw unauthorized('missing bearer token');
    if (token.length > MAX_TOKEN_LENGTH) throw unauthorized('token too long');
    const claims = this.verifiedClaims(token);
    const now = Math.floor(Date.now() / 1000);
    // `1e400` parses as Infinity: a token that never expires. Times are finite numbers or refused.
    if (!isFiniteNumber(claims.exp)) throw unauthorized('invalid token: exp claim required (a finite number)');
    if (claims.nbf !== undefined && !isFiniteNumber(claims.nbf)) throw unauthorized('invalid token: invalid nbf');
    if (claims.iat !== undefined && !isFiniteNumber(claims.iat)) throw unauthorized('invalid token: invalid iat');
    if (isFiniteNumber(claims.nbf) && claims.nbf > now) throw unauthorized('invalid token: not active yet (nbf)');
    if (now >= claims.exp) throw tokenExpired();
    if (this.issuer !== undefined && claims.iss !== this.issuer) {
      throw unauthorized(`invalid token: issuer must be ${this.issuer}`);
    }
    if (this.audience !== undefined && !audienceIncludes(claims.aud, this.audience)) {
      throw unauthorized(`invalid token: audience must include ${this.audience}`);
    }
    const userId = claims[this.userClaim];
    if (typeof userId !== 'string' || userId === '') {
      throw unauthorized(`invalid token: ${this.userClaim} claim required (a string)`);
    }
    if (userId.length > MAX_SUBJECT_LENGTH || CONTROL_CHARACTER.test(userId) || !userId.isWellFormed()) {
      throw unauthorized(
        `invalid token: ${this.userClaim} must be 1–${MAX_SUBJECT_LENGTH} characters of well-formed Unicode without control characters`,
      );
    }
    return { userId };
  }

  /** The claims of a well-formed token whose signature is right; refuses anything else. */
  private verifiedClaims(token: string): Record<string, unknown> {
    const parts = token.split('.');
    if (parts.length !== 3) throw unauthorized('invalid token: malformed');
    const [header = '', payload = '', signature = ''] = parts;
    if (!BASE64URL.test(header) || !BASE64URL.test(payload) || !BASE64URL.test(signature)) {
      throw unauthorized('invalid token: malformed');
    }
    const protectedHeader = parseJsonObject(header);
    if (protectedHeader === undefined) throw unauthorized('invalid token: malformed');
    // RFC 7515 4.1.11: extensions the verifier does not understand must be refused.
    if (protectedHeader.crit !== undefined) throw unauthorized('invalid token: unsupported crit header');
    const { alg } = protectedHeader;
    const signingInput = `${header}.${payload}`;
    if (alg === JWT_ALGORITHM && this.secret !== undefined) {
      const expected = Buffer.from(createHmac('sha256', this.secret).update(signingInput).digest('base64url'));
      const given = Buffer.from(signature);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw unauthorized('invalid token: invalid signature');
      }
    } else if (isAsymmetricAlgorithm(alg) && this.providerKeys.algorithms.includes(alg)) {
      const key = this.keyFor(alg, protectedHeader.kid);
      if (!verifySignature(alg, signingInput, Buffer.from(signature, 'base64url'), key)) {
        throw unauthorized('invalid token: invalid signature');
      }
    } else {
      throw unauthorized(
        `invalid token: algorithm ${JSON.stringify(alg).slice(0, 40)} not accepted (accepted: ${this.accepted})`,
      );
    }
    const claims = parseJsonObject(payload);
    if (claims === undefined) throw unauthorized('invalid token: payload is not a JSON object');
    return claims;
  }

  /** The provider's key for a token of `alg` naming `kid` (or naming none, when exactly one key fits). */
  private keyFor(alg: AsymmetricAlgorithm, kid: unknown): VerificationKey {
    if (!this.providerKeys.ready) throw serviceNotReady(['auth']);
    if (kid === undefined) {
      const candidates = this.providerKeys.all().filter((key) => keyFits(key, alg));
      const [only] = candidates;
      if (only === undefined || candidates.length > 1) {
        throw unauthorized(`invalid token: no kid, and ${candidates.length} ${alg} keys could have signed it`);
      }
      return only;
    }
    if (typeof kid !== 'string' || kid === '' || kid.length > MAX_KID_LENGTH) {
      throw unauthorized('invalid token: kid must be a string');
    }
    const key = this.providerKeys.byId(kid);
    if (key === undefined) throw new UnknownKey(`invalid token: unknown key ${JSON.stringify(kid.slice(0, 64))}`);
    if (!keyFits(key, alg))
      throw unauthorized(`invalid token: key ${JSON.stringify(kid.slice(0, 64))} is not for ${alg}`);
    return key;
  }
}

function parseJsonObject(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function audienceIncludes(aud: unknown, audience: string): boolean {
  return aud === audience || (Array.isArray(aud) && aud.includes(audience));
}
