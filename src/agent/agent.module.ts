import { Module } from '@nestjs/common';
import { LlmModule } from '../llm/llm.module.js';
import { ThreadsModule } from '../threads/threads.module.js';
import { AgentSupervisor } from './agent.supervisor.js';

@Module({
  imports: [LlmModule, ThreadsModule],
  providers: [AgentSupervisor],
  exports: [AgentSupervisor],
})
export class AgentModule {}
