import { Module } from '@nestjs/common';
import { LlmModule } from '../llm/llm.module.js';
import { ThreadsModule } from '../threads/threads.module.js';
import { AGENT_TOOLS } from './agent.constants.js';
import { AgentSupervisor } from './agent.supervisor.js';
import { RunLifecycle } from './run-lifecycle.js';
import { RunReplay } from './run-replay.service.js';
import { calculatorTool } from './tools/calculator.tool.js';
import { currentTimeTool } from './tools/current-time.tool.js';
import { ToolRegistry } from './tools/tool.registry.js';

@Module({
  imports: [LlmModule, ThreadsModule],
  providers: [
    AgentSupervisor,
    RunLifecycle,
    RunReplay,
    ToolRegistry,
    { provide: AGENT_TOOLS, useValue: [calculatorTool, currentTimeTool] },
  ],
  exports: [AgentSupervisor, RunLifecycle, RunReplay],
})
export class AgentModule {}
