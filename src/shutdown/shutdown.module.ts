import { Module } from '@nestjs/common';
import { AgentModule } from '../agent/agent.module.js';
import { GatewayModule } from '../gateway/gateway.module.js';
import { GracefulShutdown } from './graceful-shutdown.service.js';

@Module({
  imports: [AgentModule, GatewayModule],
  providers: [GracefulShutdown],
  exports: [GracefulShutdown],
})
export class ShutdownModule {}
