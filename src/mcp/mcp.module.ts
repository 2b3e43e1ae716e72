import { Module } from '@nestjs/common';
import { McpServers } from './mcp-servers.service.js';

/** The MCP servers of `MCP_SERVERS`: their connections, readiness dependencies and tools. */
@Module({
  providers: [McpServers],
  exports: [McpServers],
})
export class McpModule {}
