import { Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { AppError } from '../errors/app-error.js';

/** Who is on the other end of a connection. */
export interface Principal {
  readonly userId: string;
}

/** Longer tokens are refused before any parsing. */
const MAX_TOKEN_LENGTH = 8 * 1024;

interface Claims {
  readonly sub?: unknown;
  readonly exp?: unknown;
}

/** Verifies access tokens: HS256 only, `exp` required, `sub` is the user id, `iss`/`aud` when configured. */
@Injectable()
export class TokenVerifier {
  constructor(private readonly jwt: JwtService) {}

  /** @throws AppError `UNAUTHORIZED` or `TOKEN_EXPIRED`. Synchronous on purpose: no await before auth is decided. */
  verify(token: string | undefined): Principal {
    if (token === undefined) throw unauthorized('missing bearer token');
    if (token.length > MAX_TOKEN_LENGTH) throw unauthorized('token too long');
    let claims: Claims;
    try {
      claims = this.jwt.verify<Claims & object>(token);
    } catch (error) {
      if (error instanceof Error && error.name === 'TokenExpiredError') {
        throw new AppError('TOKEN_EXPIRED', 'token expired: get a new one and reconnect', false);
      }
      throw unauthorized(`invalid token: ${error instanceof Error ? error.message : 'unreadable'}`);
    }
    if (typeof claims.exp !== 'number') throw unauthorized('invalid token: exp claim required');
    if (typeof claims.sub !== 'string' || claims.sub === '') {
      throw unauthorized('invalid token: sub claim required');
    }
    return { userId: claims.sub };
  }
}

function unauthorized(message: string): AppError {
  return new AppError('UNAUTHORIZED', message, false);
}
