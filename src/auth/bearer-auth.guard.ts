import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { extractBearerToken } from './bearer-token.js';
import { type Principal, TokenVerifier } from './token-verifier.service.js';

/** A request that passed {@link BearerAuthGuard}. */
export interface AuthenticatedRequest extends Request {
  principal: Principal;
}

/** HTTP routes take the same bearer token as the WebSocket; failures are `UNAUTHORIZED`/`TOKEN_EXPIRED` (401). */
@Injectable()
export class BearerAuthGuard implements CanActivate {
  constructor(private readonly tokens: TokenVerifier) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    request.principal = this.tokens.verify(extractBearerToken(request));
    return true;
  }
}
