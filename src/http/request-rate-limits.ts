import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import type { AuthenticatedRequest } from '../auth/bearer-auth.guard.js';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import { tooManyRequests } from '../errors/client-errors.js';
import { KeyedRateLimiter } from './keyed-rate-limiter.js';

/**
 * The HTTP API's request budgets, one home for both: per user on every route that takes a token
 * (`HTTP_MAX_REQUESTS_PER_SECOND`, burst `HTTP_REQUEST_BURST`), and per address on the routes that
 * take none (`HTTP_MAX_ANONYMOUS_REQUESTS_PER_MINUTE`). Per instance: behind a load balancer a user
 * spread over N replicas may make N times this, which bounds each replica's work all the same. The
 * address is the socket's peer; `X-Forwarded-For` is not trusted (anyone can write it).
 */
@Injectable()
export class RequestRateLimits {
  readonly users: KeyedRateLimiter;
  readonly addresses: KeyedRateLimiter;
  private readonly userLimit: string;
  private readonly addressLimit: string;

  constructor(@InjectConfig() config: AppConfig) {
    const edge = config.httpEdge;
    this.users = new KeyedRateLimiter(edge.requestsPerSecond, edge.requestBurst);
    this.addresses = new KeyedRateLimiter(edge.anonymousRequestsPerMinute / 60, edge.anonymousRequestsPerMinute);
    this.userLimit = `${edge.requestsPerSecond} requests per second`;
    this.addressLimit = `${edge.anonymousRequestsPerMinute} requests per minute`;
  }

  /** @throws AppError `RATE_LIMITED` (429, `Retry-After`) when `userId` is over budget. */
  takeForUser(userId: string): void {
    const waitMs = this.users.take(userId);
    if (waitMs > 0) throw tooManyRequests('user', this.userLimit, waitMs);
  }

  /** @throws AppError `RATE_LIMITED` (429, `Retry-After`) when `address` is over budget. */
  takeForAddress(address: string): void {
    const waitMs = this.addresses.take(address);
    if (waitMs > 0) throw tooManyRequests('address', this.addressLimit, waitMs);
  }
}

/** After `BearerAuthGuard`: one request from the user's budget. */
@Injectable()
export class UserRateLimitGuard implements CanActivate {
  constructor(private readonly limits: RequestRateLimits) {}

  canActivate(context: ExecutionContext): boolean {
    this.limits.takeForUser(context.switchToHttp().getRequest<AuthenticatedRequest>().principal.userId);
    return true;
  }
}

/** On routes without a token: one request from the address's budget. */
@Injectable()
export class AddressRateLimitGuard implements CanActivate {
  constructor(private readonly limits: RequestRateLimits) {}

  canActivate(context: ExecutionContext): boolean {
    this.limits.takeForAddress(context.switchToHttp().getRequest<Request>().socket.remoteAddress ?? 'unknown');
    return true;
  }
}
