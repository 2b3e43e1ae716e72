import type { ErrorCode, ErrorPayload, ToolErrorCode } from './error-codes.js';

/**
 * The wire protocol: every frame is JSON `{"event": string, "data": object}`, both ways.
 * This file is the single source of the event names and payload shapes; it depends on nothing but
 * the error codes, so that the server and any client can share it.
 */
export const PROTOCOL_VERSION = 1;

/** A `requestId` is 1–128 characters, with no control characters; others are never echoed. */
export const MAX_REQUEST_ID_LENGTH = 128;
/** `afterSeq` of a `resume`: 0 to 2³¹ − 1 (a run's events are numbered with 32-bit integers). */
export const MAX_SEQ = 2_147_483_647;

export interface Frame<E extends string = string, D = unknown> {
  readonly event: E;
  readonly data: D;
}

// ---------------------------------------------------------------- client → server

/** Requests a client may send, by event name. */
export interface ClientRequests {
  agent_request: AgentRequest;
  agent_cancel: AgentCancelRequest;
  tool_approval: ToolApprovalRequest;
  resume: ResumeRequest;
  thread_list: ThreadListRequest;
  thread_history: ThreadHistoryRequest;
  ping: PingRequest;
}

/** Starts a run. Without `threadId` a new thread is created, titled after the message. */
export interface AgentRequest {
  readonly requestId: string;
  readonly message: string;
  readonly threadId?: string;
}

/** Stops a run of the caller's; the run ends with `agent_cancelled`. */
export interface AgentCancelRequest {
  readonly requestId?: string;
  readonly runId: string;
}

/**
 * Answers a run's `tool_approval_required`, from any connection of the run's user (on any instance
 * in fleet mode). No direct reply: the run goes on with `tool_executing` (approved) or `tool_failed`
 * `TOOL_REFUSED` (refused). The first answer wins; a call no longer waiting is `TOOL_CALL_NOT_PENDING`.
 */
export interface ToolApprovalRequest {
  readonly requestId?: string;
  readonly runId: string;
  /** The `toolCallId` of the `tool_approval_required` being answered. */
  readonly toolCallId: string;
  readonly approved: boolean;
  /** Why (1–1000 characters): with a refusal, the model hears it. */
  readonly reason?: string;
}

/** Replays a run's events after `afterSeq` (0: all), then follows it live if it is still going. */
export interface ResumeRequest {
  readonly requestId?: string;
  readonly runId: string;
  /** 0 to {@link MAX_SEQ}. */
  readonly afterSeq: number;
}

export interface ThreadListRequest {
  readonly requestId: string;
  /** 1–100, default 20. */
  readonly limit?: number;
  /** `nextCursor` of the previous page. */
  readonly cursor?: string;
}

export interface ThreadHistoryRequest {
  readonly requestId: string;
  readonly threadId: string;
  /** A message id: return the messages before it (`nextBefore` of the previous page). */
  readonly before?: string;
  /** 1–200, default 50. */
  readonly limit?: number;
}

export interface PingRequest {
  readonly requestId?: string;
}

// ---------------------------------------------------------------- shared shapes

export type RunStatus = 'running' | 'completed' | 'failed' | 'cancelled' | 'interrupted';

export interface ChatMessage {
  readonly id: string;
  readonly threadId: string;
  readonly role: 'user' | 'assistant';
  readonly content: string;
  /** The run that produced (assistant) or was started by (user) this message. */
  readonly runId?: string;
  readonly createdAt: string;
  /** Assistant messages in history: the tool calls of the run that produced it, in call order. */
  readonly steps?: readonly ToolStep[];
}

/** One tool call of a run, as its `tool_executing` and `tool_completed`/`tool_failed` events told it. */
export interface ToolStep {
  readonly callId: string;
  readonly tool: string;
  readonly args: unknown;
  /** Set when the call succeeded… */
  readonly result?: unknown;
  /** …this when it failed (the run went on, and the model heard the reason). */
  readonly error?: { readonly code: ToolErrorCode; readonly message: string };
}

export interface ThreadSummary {
  readonly id: string;
  readonly title: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** A run of this thread that is still running: attach to it (`resume`) to follow it. */
  readonly activeRunId?: string;
}

/** A thread's run still running, and where its history leaves off: `resume` it with this `afterSeq`. */
export interface ActiveRun {
  readonly runId: string;
  /** The last `seq` the history already covers (its `agent_started`: the user message is in the history). */
  readonly afterSeq: number;
}

export interface Usage {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

// ---------------------------------------------------------------- run events

/** Fields every event of one agent run carries: `seq` counts 1, 2, 3, … within the run. */
export interface RunEventBase {
  readonly runId: string;
  readonly seq: number;
  readonly requestId: string;
}

/** The user's message is committed before this is sent. */
export interface AgentStarted extends RunEventBase {
  readonly threadId: string;
  readonly userMessage: ChatMessage;
}
/** Every run slot is busy: the run waits, `position` 1 being next. */
export interface AgentQueued extends RunEventBase {
  readonly position: number;
}
/**
 * The model is working on step `step` (1, 2, …: one per model call): once without `text` as the
 * step starts, then once per piece of reasoning a reasoning model streams (`reasoning_content`).
 * That text is shown, never part of the answer.
 */
export interface AgentThinking extends RunEventBase {
  readonly step: number;
  /** A piece of the model's reasoning, in order; absent on the event that starts the step. */
  readonly text?: string;
}
/**
 * The run is paused until a person answers with `tool_approval` (or `AGENT_APPROVAL_TIMEOUT_MS`
 * passes: the call is then refused). Still waiting while no `tool_executing` or `tool_failed` with
 * the same call id (`callId` there) has followed and the run has not ended.
 */
export interface ToolApprovalRequired extends RunEventBase {
  readonly toolCallId: string;
  /** The tool's name (an MCP tool's is `<server>__<tool>`). */
  readonly name: string;
  /** The arguments the model gave: parsed when they are JSON, the raw text otherwise. */
  readonly arguments: unknown;
}
export interface ToolExecuting extends RunEventBase {
  readonly callId: string;
  readonly tool: string;
  readonly args: unknown;
}
export interface ToolCompleted extends RunEventBase {
  readonly callId: string;
  readonly tool: string;
  readonly result: unknown;
}
export interface ToolFailed extends RunEventBase {
  readonly callId: string;
  readonly tool: string;
  readonly error: { readonly code: ToolErrorCode; readonly message: string };
}
export interface AgentMessageDelta extends RunEventBase {
  readonly text: string;
}
/** The assistant's message is committed before this is sent. */
export interface AgentCompleted extends RunEventBase {
  readonly threadId: string;
  readonly message: ChatMessage;
  readonly usage: Usage;
}
export type AgentCancelled = RunEventBase;

/**
 * A run failed, or a request was refused before a run existed (`RATE_LIMITED`, `SERVER_BUSY`,
 * `STORAGE_UNAVAILABLE`): then `runId` and `seq` are absent and nothing was stored.
 */
export interface AgentError extends Partial<Omit<RunEventBase, 'requestId'>> {
  readonly requestId: string;
  readonly code: ErrorCode;
  readonly message: string;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
  readonly correlationId?: string;
}

/** The events of one agent run, in the order they can be sent. A run ends with one of the last three. */
export interface RunEvents {
  agent_started: AgentStarted;
  agent_queued: AgentQueued;
  agent_thinking: AgentThinking;
  tool_approval_required: ToolApprovalRequired;
  tool_executing: ToolExecuting;
  tool_completed: ToolCompleted;
  tool_failed: ToolFailed;
  agent_message_delta: AgentMessageDelta;
  agent_completed: AgentCompleted;
  agent_cancelled: AgentCancelled;
  agent_error: AgentError;
}

export const TERMINAL_RUN_EVENTS = ['agent_completed', 'agent_cancelled', 'agent_error'] as const;

// ---------------------------------------------------------------- replies

export interface ConnectionEstablished {
  readonly connectionId: string;
  readonly userId: string;
  readonly protocolVersion: number;
  /** The server pings this often; a peer that misses a pong is terminated. */
  readonly heartbeatMs: number;
  /** ISO-8601 time on the server when the connection was released. */
  readonly serverTime: string;
}

export interface Pong {
  readonly requestId?: string;
  readonly serverTime: string;
}

export interface ThreadListResult {
  readonly requestId: string;
  /** Most recently active first. */
  readonly threads: readonly ThreadSummary[];
  readonly nextCursor?: string;
}

export interface ThreadHistoryResult {
  readonly requestId: string;
  readonly threadId: string;
  /** Oldest first within the page. */
  readonly messages: readonly ChatMessage[];
  /** Pass as `before` for the older page; absent on the oldest page. */
  readonly nextBefore?: string;
  /** The thread's run still running, if any: its events after `afterSeq` are not in `messages`. */
  readonly activeRun?: ActiveRun;
}

/**
 * The answer to `resume`, sent before the replayed events. `recovered: true`: `replayed` events
 * follow (then live events, while `status` is `running`). `recovered: false`: the events cannot be
 * replayed (the run was interrupted by a restart, or is running on another instance): `status`,
 * and `message` or `error` when it ended, are all there is.
 */
export interface Resumed {
  readonly requestId?: string;
  readonly runId: string;
  readonly threadId: string;
  readonly recovered: boolean;
  readonly status: RunStatus;
  readonly replayed: number;
  readonly message?: ChatMessage;
  readonly error?: { readonly code: string; readonly message: string };
}

/** Events the server sends, by event name. */
export interface ServerEvents extends RunEvents {
  connection_established: ConnectionEstablished;
  pong: Pong;
  thread_list_result: ThreadListResult;
  thread_history_result: ThreadHistoryResult;
  resumed: Resumed;
  error: ErrorPayload;
}

export type ServerEventName = keyof ServerEvents;
export type ServerFrame<E extends ServerEventName = ServerEventName> = {
  [K in E]: Frame<K, ServerEvents[K]>;
}[E];
export type RunEventName = keyof RunEvents;
export type RunFrame = ServerFrame<RunEventName>;
