import { Body, Controller, HttpCode, Post, Req, UseFilters, UseGuards } from '@nestjs/common';
import type { JwtService } from '@nestjs/jwt';
import type { Request } from 'express';
import type { AppConfig } from '../config/app-config.js';
import { jwtModuleOptions } from '../auth/jwt-options.js';
import { InjectConfig } from '../config/config.module.js';
import { isLoopbackHost } from '../config/load-config.js';
import { forbidden } from '../errors/client-errors.js';
import * as z from 'zod';
import { HttpErrorFilter } from '../http/http-error.filter.js';
import { AddressRateLimitGuard } from '../http/request-rate-limits.js';
import { RequestValidationPipe } from '../http/request-validation.pipe.js';

/** The body of `POST /dev/token`; docs/openapi.json derives its schema from this one. */
export const devTokenRequest = z.object({
  userId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/u, 'must be 1–64 letters, digits, dots, dashes or underscores'),
  ttlSeconds: z.number().int().min(1).max(86_400).default(3_600),
});

export interface DevToken {
  readonly token: string;
  readonly userId: string;
  readonly expiresAt: string;
}

/**
 * `POST /dev/token {userId, ttlSeconds?}`: a token for trying the service out from the chat page.
 * Registered only when `NODE_ENV` is not `production` (see `PageModule`): in production tokens come
 * from the real identity provider, and this route does not exist. Served to loopback clients only:
 * a laptop running `npm start` with `HOST=0.0.0.0` must not hand out tokens to its whole network.
 */
@Controller('dev')
@UseFilters(HttpErrorFilter)
@UseGuards(AddressRateLimitGuard)
export class DevTokenController {
  /**
   * Built on the first token asked for: `@nestjs/jwt` (jsonwebtoken and its dependencies) would
   * otherwise be loaded at every start, before the port opens, for a route most starts never serve.
   */
  private signer: Promise<JwtService> | undefined;

  constructor(@InjectConfig() private readonly config: AppConfig) {}

  @Post('token')
  @HttpCode(200)
  async issue(
    @Req() request: Request,
    @Body(new RequestValidationPipe(devTokenRequest)) body: z.infer<typeof devTokenRequest>,
  ): Promise<DevToken> {
    if (!isLoopbackHost(request.socket.remoteAddress ?? '')) {
      throw forbidden('development tokens are served to clients on this machine only');
    }
    const claims = { sub: body.userId, [this.config.auth.userClaim]: body.userId };
    this.signer ??= import('@nestjs/jwt').then(({ JwtService }) => new JwtService(jwtModuleOptions(this.config)));
    const token = (await this.signer).sign(claims, { expiresIn: body.ttlSeconds });
    return { token, userId: body.userId, expiresAt: new Date(Date.now() + body.ttlSeconds * 1000).toISOString() };
  }
}
