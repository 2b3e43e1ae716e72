import type { IncomingMessage } from 'node:http';
import { UseFilters } from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  type OnGatewayConnection,
  SubscribeMessage,
  WebSocketGateway,
  type WsResponse,
} from '@nestjs/websockets';

import { type Observable, of } from 'rxjs';
import { RunReplay } from '../agent/run-replay.service.js';
import type { WebSocket } from 'ws';
import { AgentSupervisor } from '../agent/agent.supervisor.js';
import { ToolApprovalAnswers } from '../agent/tool-approval-answers.js';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import { validationFailed } from '../errors/client-errors.js';
import {
  type AgentCancelRequest,
  type AgentRequest,
  type PingRequest,
  type Pong,
  type ResumeRequest,
  type ServerFrame,
  type ThreadHistoryRequest,
  type ThreadHistoryResult,
  type ThreadListRequest,
  type ThreadListResult,
  type ToolApprovalRequest,
} from '../protocol/events.js';
import { ConnectionAdmission } from './connection-admission.js';
import { ConnectionRegistry } from './connection.registry.js';
import { ReplaySender } from './replay-sender.js';
import { ThreadsService } from '../threads/threads.service.js';
import { toThreadHistory, toThreadList } from '../threads/thread.wire.js';
import {
  agentCancelSchema,
  agentRequestSchema,
  pingSchema,
  resumeSchema,
  threadHistorySchema,
  threadListSchema,
  toolApprovalSchema,
} from './request.schemas.js';
import { RequestValidationPipe } from '../http/request-validation.pipe.js';
import { WsErrorFilter } from './ws-error.filter.js';

/**
 * The chat endpoint, `/ws`: the protocol's message handlers. Who may connect, and when, is
 * `ConnectionAdmission`'s: a connection's frames reach these handlers only once it is established.
 */
@WebSocketGateway({ path: '/ws' })
@UseFilters(WsErrorFilter)
export class ChatGateway implements OnGatewayConnection {
  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly admission: ConnectionAdmission,
    private readonly connections: ConnectionRegistry,
    private readonly agent: AgentSupervisor,
    private readonly replay: RunReplay,
    private readonly replays: ReplaySender,
    private readonly threads: ThreadsService,
    private readonly approvals: ToolApprovalAnswers,
  ) {}

  // Deliberately synchronous: Nest does not await this, and binds message handlers right after it.
  handleConnection(socket: WebSocket, request: IncomingMessage): void {
    this.admission.admit(socket, request);
  }

  @SubscribeMessage('ping')
  ping(@MessageBody(new RequestValidationPipe(pingSchema)) body: PingRequest): WsResponse<Pong> {
    const serverTime = new Date().toISOString();
    return {
      event: 'pong',
      data: body.requestId === undefined ? { serverTime } : { requestId: body.requestId, serverTime },
    };
  }

  /**
   * Starts a run and streams its events to this connection. The run does not belong to the
   * connection: if it closes, the run still finishes and is stored (see `resume`).
   */
  @SubscribeMessage('agent_request')
  async agentRequest(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(new RequestValidationPipe(agentRequestSchema)) body: AgentRequest,
  ): Promise<Observable<ServerFrame>> {
    const max = this.config.agent.messageMaxChars;
    if (body.message.length > max) {
      throw validationFailed('message', `must be at most ${max} characters (AGENT_MESSAGE_MAX_CHARS)`);
    }
    const started = await this.agent.start(this.userOf(socket), body);
    return 'refused' in started ? of({ event: 'agent_error', data: started.refused }) : started.run.frames$(0);
  }

  /** No direct reply: the run ends with `agent_cancelled` on its stream. */
  @SubscribeMessage('agent_cancel')
  async agentCancel(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(new RequestValidationPipe(agentCancelSchema)) body: AgentCancelRequest,
  ): Promise<void> {
    await this.agent.cancel(this.userOf(socket), body.runId);
  }

  /** No direct reply: the run goes on with `tool_executing` (approved) or `tool_failed` `TOOL_REFUSED`. */
  @SubscribeMessage('tool_approval')
  async toolApproval(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(new RequestValidationPipe(toolApprovalSchema)) body: ToolApprovalRequest,
  ): Promise<void> {
    await this.approvals.answer(this.userOf(socket), body);
  }

  /**
   * `resumed`, then the events after `afterSeq`, paced by the socket and the user's replay budget
   * (see `ReplaySender`). Returns once the replayed part is sent: this connection's next frame waits
   * for it, so a connection has one replay in flight at most.
   */
  @SubscribeMessage('resume')
  async resume(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(new RequestValidationPipe(resumeSchema)) body: ResumeRequest,
  ): Promise<void> {
    const userId = this.userOf(socket);
    const replay = await this.replay.resume(userId, body);
    await this.replays.send(this.connections.get(socket), userId, replay);
  }

  @SubscribeMessage('thread_list')
  async threadList(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(new RequestValidationPipe(threadListSchema)) body: ThreadListRequest,
  ): Promise<WsResponse<ThreadListResult>> {
    const page = await this.threads.listThreads(this.userOf(socket), body.limit ?? 20, body.cursor);
    return {
      event: 'thread_list_result',
      data: { requestId: body.requestId, ...toThreadList(page) },
    };
  }

  @SubscribeMessage('thread_history')
  async threadHistory(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody(new RequestValidationPipe(threadHistorySchema)) body: ThreadHistoryRequest,
  ): Promise<WsResponse<ThreadHistoryResult>> {
    const page = await this.threads.history(this.userOf(socket), body.threadId, body.limit ?? 50, body.before);
    return {
      event: 'thread_history_result',
      data: { requestId: body.requestId, ...toThreadHistory(body.threadId, page) },
    };
  }

  private userOf(socket: WebSocket): string {
    const { userId } = this.connections.get(socket);
    if (userId === undefined) throw new Error('handler reached for a connection that was never established');
    return userId;
  }
}
