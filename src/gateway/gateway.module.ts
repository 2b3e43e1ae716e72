import { Module } from '@nestjs/common';
import { AgentModule } from '../agent/agent.module.js';
import { AuthModule } from '../auth/auth.module.js';
import { ChatGateway } from './chat.gateway.js';
import { ConnectionRegistry } from './connection.registry.js';
import { ReplaySender } from './replay-sender.js';
import { ThreadsController } from './threads.controller.js';
import { WsErrorFilter } from './ws-error.filter.js';

@Module({
  imports: [AuthModule, AgentModule],
  controllers: [ThreadsController],
  providers: [ChatGateway, ConnectionRegistry, ReplaySender, WsErrorFilter],
  exports: [ConnectionRegistry],
})
export class GatewayModule {}
