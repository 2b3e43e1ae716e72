import { Module } from '@nestjs/common';
import { AgentModule } from '../agent/agent.module.js';
import { AuthModule } from '../auth/auth.module.js';
import { DatabaseModule } from '../database/database.module.js';
import { FleetModule } from '../fleet/fleet.module.js';
import { GatewayModule } from '../gateway/gateway.module.js';
import { McpModule } from '../mcp/mcp.module.js';
import { MetricsController } from './metrics.controller.js';
import { MetricsService } from './metrics.service.js';

/** `GET /metrics`. Reads the gateway, the agent and readiness through their streams; nothing depends on it. */
@Module({
  imports: [GatewayModule, AgentModule, DatabaseModule, FleetModule, AuthModule, McpModule],
  controllers: [MetricsController],
  providers: [MetricsService],
})
export class MetricsModule {}
