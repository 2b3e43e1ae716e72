import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Logger, UseFilters } from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  type OnGatewayConnection,
  SubscribeMessage,
  WebSocketGateway,
  type WsResponse,
} from '@nestjs/websockets';
import { first, type Observable, of, timeout } from 'rxjs';
import { RunReplay } from '../agent/run-replay.service.js';
import type { WebSocket } from 'ws';
import { AgentSupervisor } from '../agent/agent.supervisor.js';
import { extractBearerToken } from '../auth/bearer-token.js';
import { TokenVerifier } from '../auth/token-verifier.service.js';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import { AppError } from '../errors/app-error.js';
import { CloseCode } from '../protocol/close-codes.js';
import {
  type AgentCancelRequest,
  type AgentRequest,
  type PingRequest,
  type Pong,
  PROTOCOL_VERSION,
  type ResumeRequest,
  type ServerFrame,
  type ThreadHistoryRequest,
  type ThreadHistoryResult,
  type ThreadListRequest,
  type ThreadListResult,
} from '../protocol/events.js';
import { ReadinessService } from '../readiness/readiness.service.js';
import { missingDependencies, type ReadinessSnapshot } from '../readiness/readiness.types.js';
import { ConnectionRegistry } from './connection.registry.js';
import { ReplaySender } from './replay-sender.js';
import { ThreadsService } from '../threads/threads.service.js';
import { toChatMessage, toThreadSummary } from '../threads/thread.wire.js';
import {
  agentCancelSchema,
  agentRequestSchema,
  pingSchema,
  resumeSchema,
  threadHistorySchema,
  threadListSchema,
} from './request.schemas.js';
import { RequestValidationPipe } from './request-validation.pipe.js';
import type { WsConnection } from './ws-connection.js';
import { WsErrorFilter } from './ws-error.filter.js';

/** Suggested wait before reconnecting when the wait for readiness ran out. */
const NOT_READY_RETRY_AFTER_MS = 2_000;
/** Suggested wait when start-up failed: the orchestrator is restarting the instance. */
const FAILED_RETRY_AFTER_MS = 5_000;
const SHUTTING_DOWN_RETRY_AFTER_MS = 1_000;

/**
 * The chat endpoint, `/ws`. Admission is decided synchronously in `handleConnection` (auth, origin)
 * and then by the readiness stream: a connection is released the instant readiness flips, or
 * refused with 1013 when `WS_READY_WAIT_MS` runs out. Until then its frames are held, not handled.
 */
@WebSocketGateway({ path: '/ws' })
@UseFilters(WsErrorFilter)
export class ChatGateway implements OnGatewayConnection {
  private readonly logger = new Logger('Gateway');

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly readiness: ReadinessService,
    private readonly tokens: TokenVerifier,
    private readonly connections: ConnectionRegistry,
    private readonly agent: AgentSupervisor,
    private readonly replay: RunReplay,
    private readonly replays: ReplaySender,
    private readonly threads: ThreadsService,
  ) {}

  // Deliberately synchronous: Nest does not await this, and binds message handlers right after it.
  handleConnection(socket: WebSocket, request: IncomingMessage): void {
    const connection = this.connections.open(socket);
    try {
      let userId: string;
      try {
        this.checkOrigin(request);
        userId = this.tokens.verify(extractBearerToken(request)).userId;
      } catch (error) {
        if (!(error instanceof AppError)) throw error;
        const reason = error.code === 'TOKEN_EXPIRED' ? 'token expired' : 'unauthorized';
        connection.refuse(error, CloseCode.POLICY_VIOLATION, reason);
        return;
      }
      // Counted from the handshake, held or not: one token cannot park more sockets than this.
      if (this.connections.openOf(userId) >= this.config.ws.maxConnectionsPerUser) {
        connection.refuse(
          new AppError(
            'TOO_MANY_CONNECTIONS',
            `user already has ${this.config.ws.maxConnectionsPerUser} connections open; close one first`,
            false,
          ),
          CloseCode.POLICY_VIOLATION,
          'too many connections',
        );
        return;
      }
      this.connections.authenticated(connection, userId);
      this.admitWhenReady(connection, userId);
    } catch (error) {
      // Never rethrow: an error escaping here would end Nest's connection stream for every later client.
      this.refuseOnBug(connection, error);
    }
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
      throw new AppError(
        'VALIDATION_FAILED',
        `message: must be at most ${max} characters (AGENT_MESSAGE_MAX_CHARS)`,
        false,
        {
          field: 'message',
        },
      );
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
      data: {
        requestId: body.requestId,
        threads: page.items.map(toThreadSummary),
        ...(page.next === undefined ? {} : { nextCursor: page.next }),
      },
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
      data: {
        requestId: body.requestId,
        threadId: body.threadId,
        messages: page.items.map(toChatMessage),
        ...(page.next === undefined ? {} : { nextBefore: page.next }),
      },
    };
  }

  private admitWhenReady(connection: WsConnection, userId: string): void {
    // Already decided (ready, draining, failed): admitted here and now, before any frame is read.
    const current = this.readiness.snapshot;
    if (current.phase !== 'starting') {
      this.admit(connection, userId, current);
      return;
    }
    // Held: released by the readiness stream the instant it flips, or refused when the wait runs out.
    // Whatever goes wrong while releasing or refusing this one connection stays with it: the
    // subscriber never throws into the readiness stream (which would end the process).
    const settle = (snapshot: ReadinessSnapshot): void => {
      try {
        this.admit(connection, userId, snapshot);
      } catch (error) {
        this.refuseOnBug(connection, error);
      }
    };
    connection.follow(
      this.readiness.snapshot$
        .pipe(
          first((snapshot) => snapshot.phase !== 'starting', undefined),
          timeout({ first: this.config.ws.readyWaitMs, with: () => of(undefined) }),
        )
        .subscribe({
          next: (settled) => settle(settled ?? this.readiness.snapshot),
          error: (error: unknown) => this.refuseOnBug(connection, error),
        }),
    );
  }

  private admit(connection: WsConnection, userId: string, snapshot: ReadinessSnapshot): void {
    switch (snapshot.phase) {
      case 'ready':
        connection.establish(userId, {
          protocolVersion: PROTOCOL_VERSION,
          heartbeatMs: this.config.ws.heartbeatMs,
          serverTime: new Date().toISOString(),
        });
        return;
      case 'starting':
      case 'failed': {
        const missing = missingDependencies(snapshot);
        const failed = snapshot.phase === 'failed';
        const message = failed
          ? `service failed to start (${missing.join(', ')}); it is being restarted`
          : `service not ready after ${this.config.ws.readyWaitMs} ms (waiting for ${missing.join(', ')})`;
        connection.refuse(
          new AppError('SERVICE_NOT_READY', message, true, {
            retryAfterMs: failed ? FAILED_RETRY_AFTER_MS : NOT_READY_RETRY_AFTER_MS,
            missing,
          }),
          CloseCode.TRY_AGAIN_LATER,
          'service not ready, retry later',
        );
        return;
      }
      case 'draining':
        connection.refuse(
          new AppError('SERVICE_SHUTTING_DOWN', 'this instance is shutting down; reconnect', true, {
            retryAfterMs: SHUTTING_DOWN_RETRY_AFTER_MS,
          }),
          CloseCode.SERVICE_RESTART,
          'service shutting down',
        );
        return;
      default: {
        const exhaustive: never = snapshot.phase;
        return exhaustive;
      }
    }
  }

  /**
   * The one place the gateway closes with 1011: admitting, releasing or refusing this connection
   * crashed, which is a bug. It ends this connection only; if even the refusal fails, the socket is
   * cut. Nothing is rethrown.
   */
  private refuseOnBug(connection: WsConnection, error: unknown): void {
    const correlationId = randomUUID();
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
    this.logger.error(`admission failed (correlationId ${correlationId}, connection ${connection.id}): ${detail}`);
    try {
      connection.refuse(
        new AppError('INTERNAL_ERROR', 'internal error; quote the correlationId when reporting it', false, {
          correlationId,
        }),
        CloseCode.INTERNAL_ERROR,
        'internal error',
      );
    } catch (refusal) {
      this.logger.error(
        `refusing connection ${connection.id} failed too (correlationId ${correlationId}): ${String(refusal)}`,
      );
      connection.socket.terminate();
    }
  }

  private checkOrigin(request: IncomingMessage): void {
    const allowed = this.config.ws.allowedOrigins;
    const origin = request.headers.origin;
    // Non-browser clients send no Origin; the allow-list protects browsers from cross-site use.
    if (allowed.length === 0 || origin === undefined || allowed.includes(origin)) return;
    // The header is the client's: quoted only in part, so the error frame stays small.
    throw new AppError('ORIGIN_NOT_ALLOWED', `origin ${origin.slice(0, 200)} is not allowed`, false);
  }

  private userOf(socket: WebSocket): string {
    const { userId } = this.connections.get(socket);
    if (userId === undefined) throw new Error('handler reached for a connection that was never established');
    return userId;
  }
}
