import { type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import type { NextFunction, Request, Response } from 'express';
import { HealthController } from './health.controller.js';
import { ReadinessHealthIndicator } from './readiness.health-indicator.js';

@Module({
  // Terminus would log every 503 during start-up; readiness logs each transition once instead.
  // Readiness is global; every other module reaches /health/ready through it.
  imports: [TerminusModule.forRoot({ logger: false })],
  controllers: [HealthController],
  providers: [ReadinessHealthIndicator],
})
export class HealthModule implements NestModule {
  /** Probe answers must never be cached, 503s included (`@Header` only covers successful responses). */
  configure(consumer: MiddlewareConsumer): void {
    consumer
      .apply((_request: Request, response: Response, next: NextFunction) => {
        response.setHeader('Cache-Control', 'no-cache, no-store, must-revalidate');
        next();
      })
      .forRoutes(HealthController);
  }
}
