import { createHmac, type KeyObject, createSecretKey, timingSafeEqual } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import { tokenExpired, unauthorized } from '../errors/client-errors.js';
import { JWT_ALGORITHM } from './jwt-options.js';

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

interface Claims {
  readonly sub?: unknown;
  readonly exp?: unknown;
  readonly nbf?: unknown;
  readonly iat?: unknown;
  readonly iss?: unknown;
  readonly aud?: unknown;
}

/**
 * Verifies access tokens (compact JWS, RFC 7515/7519): HS256 only, `exp` required, `nbf` honoured,
 * every time claim a finite number, `sub` is the user id (1–255 characters, no control
 * characters), `iss`/`aud` checked when configured. Every connection pays for this, so it is
 * done with node:crypto and the key prepared once, not with a general JWT library (which parsed
 * the options and checked every algorithm's rules per call: about 3.5 times the cost here).
 * Tokens are signed with `@nestjs/jwt` (`npm run token`, the development token route), and
 * test/integration/auth.spec.ts holds the attacks this must refuse.
 */
@Injectable()
export class TokenVerifier {
  private readonly key: KeyObject;
  private readonly issuer: string | undefined;
  private readonly audience: string | undefined;

  constructor(@InjectConfig() config: AppConfig) {
    this.key = createSecretKey(Buffer.from(config.auth.jwtSecret, 'utf8'));
    this.issuer = config.auth.issuer;
    this.audience = config.auth.audience;
  }

  /** @throws AppError `UNAUTHORIZED` or `TOKEN_EXPIRED`. Synchronous on purpose: no await before auth is decided. */
  verify(token: string | undefined): Principal {
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
    if (typeof claims.sub !== 'string' || claims.sub === '') {
      throw unauthorized('invalid token: sub claim required');
    }
    if (claims.sub.length > MAX_SUBJECT_LENGTH || CONTROL_CHARACTER.test(claims.sub) || !claims.sub.isWellFormed()) {
      throw unauthorized(
        `invalid token: sub must be 1–${MAX_SUBJECT_LENGTH} characters of well-formed Unicode without control characters`,
      );
    }
    return { userId: claims.sub };
  }

  /** The claims of a well-formed HS256 token whose signature is right; refuses anything else. */
  private verifiedClaims(token: string): Claims {
    const parts = token.split('.');
    if (parts.length !== 3) throw unauthorized('invalid token: malformed');
    const [header = '', payload = '', signature = ''] = parts;
    if (!BASE64URL.test(header) || !BASE64URL.test(payload) || !BASE64URL.test(signature)) {
      throw unauthorized('invalid token: malformed');
    }
    const protectedHeader = parseJsonObject(header);
    if (protectedHeader?.alg !== JWT_ALGORITHM) throw unauthorized(`invalid token: algorithm must be ${JWT_ALGORITHM}`);
    // RFC 7515 4.1.11: extensions the verifier does not understand must be refused.
    if (protectedHeader.crit !== undefined) throw unauthorized('invalid token: unsupported crit header');
    const expected = Buffer.from(createHmac('sha256', this.key).update(`${header}.${payload}`).digest('base64url'));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw unauthorized('invalid token: invalid signature');
    }
    const claims = parseJsonObject(payload);
    if (claims === undefined) throw unauthorized('invalid token: payload is not a JSON object');
    return claims;
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
