import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module.js';
import { FleetModule } from '../fleet/fleet.module.js';
import { LlmModule } from '../llm/llm.module.js';
import { McpModule } from '../mcp/mcp.module.js';
import { ThreadsModule } from '../threads/threads.module.js';
import { AGENT_TOOLS } from './agent.constants.js';
import { AgentSupervisor } from './agent.supervisor.js';
import { RunLifecycle } from './run-lifecycle.js';
import { RemoteRuns } from './remote-runs.js';
import { RunAdmission } from './run-admission.js';
import { RunReaper } from './run-reaper.js';
import { RunReplay } from './run-replay.service.js';
import { ToolApprovalAnswers } from './tool-approval-answers.js';
import { ToolApprovalGate } from './tool-approval-gate.js';
import { calculatorTool } from './tools/calculator.tool.js';
import { currentTimeTool } from './tools/current-time.tool.js';
import { ToolRegistry } from './tools/tool.registry.js';

@Module({
  imports: [LlmModule, ThreadsModule, FleetModule, DatabaseModule, McpModule],
  providers: [
    AgentSupervisor,
    RunLifecycle,
    RunReplay,
    RunReaper,
    RunAdmission,
    RemoteRuns,
    ToolRegistry,
    ToolApprovalGate,
    ToolApprovalAnswers,
    { provide: AGENT_TOOLS, useValue: [calculatorTool, currentTimeTool] },
  ],
  exports: [AgentSupervisor, RunLifecycle, RunReplay, ToolApprovalAnswers],
})
export class AgentModule {}
