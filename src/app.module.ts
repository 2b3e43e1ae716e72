import { type DynamicModule, Module } from '@nestjs/common';
import { appDependencies } from './app.dependencies.js';
import type { AppConfig } from './config/app-config.js';
import { ConfigModule } from './config/config.module.js';
import { GatewayModule } from './gateway/gateway.module.js';
import { HealthModule } from './health/health.module.js';
import { HttpModule } from './http/http.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { PageModule } from './page/page.module.js';
import { ReadinessModule } from './readiness/readiness.module.js';
import { ShutdownModule } from './shutdown/shutdown.module.js';

/**
 * client → gateway → agent → (llm, threads), all gated by readiness; health reads readiness;
 * metrics read readiness, the gateway and the agent through their streams.
 */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        ReadinessModule.forRoot({
          dependencies: appDependencies(config),
          startupTimeoutMs: config.readiness.startupTimeoutMs,
        }),
        HealthModule,
        GatewayModule,
        HttpModule,
        MetricsModule,
        ShutdownModule,
        PageModule.forRoot(config),
      ],
    };
  }
}
