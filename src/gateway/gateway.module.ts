import { Module } from '@nestjs/common';
import { AgentModule } from '../agent/agent.module.js';
import { AuthModule } from '../auth/auth.module.js';
import { FleetModule } from '../fleet/fleet.module.js';
import { ThreadsModule } from '../threads/threads.module.js';
import { ChatGateway } from './chat.gateway.js';
import { ConnectionAdmission } from './connection-admission.js';
import { ConnectionRegistry } from './connection.registry.js';
import { ReplaySender } from './replay-sender.js';
import { WsErrorFilter } from './ws-error.filter.js';

/** `/ws`: admission, the connections, and the chat protocol's handlers. WebSocket only. */
@Module({
  imports: [AuthModule, AgentModule, ThreadsModule, FleetModule],
  providers: [ChatGateway, ConnectionAdmission, ConnectionRegistry, ReplaySender, WsErrorFilter],
  exports: [ConnectionRegistry],
})
export class GatewayModule {}
