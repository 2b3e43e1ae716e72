import type { ErrorPayload } from './error-codes.js';

/**
 * The wire protocol: every frame is JSON `{"event": string, "data": object}`, both ways.
 * This file is the single source of the event names and payload shapes; it depends on nothing so
 * that the server and any client can share it.
 */
export const PROTOCOL_VERSION = 1;

export interface Frame<E extends string = string, D = unknown> {
  readonly event: E;
  readonly data: D;
}

/** Requests a client may send, by event name. */
export interface ClientRequests {
  agent_request: AgentRequest;
  ping: PingRequest;
}

export interface AgentRequest {
  readonly requestId: string;
  readonly message: string;
  readonly threadId?: string;
}

export interface PingRequest {
  readonly requestId?: string;
}

/** Fields every event of one agent run carries: `seq` counts 1, 2, 3, … within the run. */
export interface RunEventBase {
  readonly runId: string;
  readonly seq: number;
  readonly requestId: string;
}

export interface AgentStarted extends RunEventBase {
  readonly threadId: string;
}
export type AgentThinking = RunEventBase;
export interface AgentMessageDelta extends RunEventBase {
  readonly text: string;
}
export interface AgentCompleted extends RunEventBase {
  readonly threadId: string;
  readonly message: ChatMessage;
}

export interface ChatMessage {
  readonly id: string;
  readonly threadId: string;
  readonly role: 'user' | 'assistant';
  readonly content: string;
  readonly createdAt: string;
}

/** The events of one agent run, in the order they are sent. */
export interface RunEvents {
  agent_started: AgentStarted;
  agent_thinking: AgentThinking;
  agent_message_delta: AgentMessageDelta;
  agent_completed: AgentCompleted;
}

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

/** Events the server sends, by event name. */
export interface ServerEvents extends RunEvents {
  connection_established: ConnectionEstablished;
  pong: Pong;
  error: ErrorPayload;
}

export type ServerEventName = keyof ServerEvents;
export type ServerFrame<E extends ServerEventName = ServerEventName> = {
  [K in E]: Frame<K, ServerEvents[K]>;
}[E];
export type RunEventName = keyof RunEvents;
export type RunFrame = ServerFrame<RunEventName>;
