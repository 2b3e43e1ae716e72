import { Module } from '@nestjs/common';
import { AddressRateLimitGuard, RequestRateLimits, UserRateLimitGuard } from './request-rate-limits.js';

/** The request budgets every HTTP route draws on, for the modules whose controllers face clients. */
@Module({
  providers: [RequestRateLimits, UserRateLimitGuard, AddressRateLimitGuard],
  exports: [RequestRateLimits, UserRateLimitGuard, AddressRateLimitGuard],
})
export class HttpEdgeModule {}
