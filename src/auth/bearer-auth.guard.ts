import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { headerToken } from './bearer-token.js';
import { type Principal, TokenVerifier } from './token-verifier.service.js';

/** A request that passed {@link BearerAuthGuard}. */
export interface AuthenticatedRequest extends Request {
  principal: Principal;
}

/**
 * HTTP routes take the same bearer token as the WebSocket, in the `Authorization` header only (never
 * `?token=`: URLs are logged). Failures are `UNAUTHORIZED`/`TOKEN_EXPIRED` (401).
 */
@Injectable()
export class BearerAuthGuard implements CanActivate {
  constructor(private readonly tokens: TokenVerifier) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    // Synchronous unless the token names a key the provider's set does not hold yet (a rotation).
    request.principal = await this.tokens.authenticate(headerToken(request));
    return true;
  }
}
