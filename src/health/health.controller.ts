import { Controller, Get, HttpCode, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheck, type HealthCheckResult, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { ReadinessService } from '../readiness/readiness.service.js';
import { ReadinessHealthIndicator } from './readiness.health-indicator.js';

/**
 * `/health/live`: the process is up; never looks at dependencies (a dependency outage must not get
 * every pod restarted). `/health/ready`: 200 only in phase `ready`, else 503 with one entry per
 * dependency.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicator: ReadinessHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    private readonly readiness: ReadinessService,
  ) {}

  @Get('live')
  @HttpCode(200)
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  // Not `@HealthCheck()`: by default it `require`s @nestjs/swagger whenever that is installed, about
  // 200 ms of start-up for documentation health.openapi.ts writes anyway (and more exactly).
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  async ready(): Promise<HealthCheckResult> {
    try {
      return await this.health.check(
        this.readiness.snapshot.dependencies.map(({ name }) => async () => {
          try {
            return this.indicator.check(name);
          } catch (error) {
            return this.indicators.check(name).down({ message: `check failed: ${describe(error)}` });
          }
        }),
      );
    } catch (error) {
      if (error instanceof ServiceUnavailableException) throw error;
      // Whatever went wrong, a probe must read "not ready" with the reason, never a 500.
      throw new ServiceUnavailableException({
        status: 'error',
        info: {},
        error: { readiness: { status: 'down', message: describe(error) } },
        details: { readiness: { status: 'down', message: describe(error) } },
      });
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
