/**
 * The agent gateway's client: browsers and Node, no dependencies. Served to browsers from
 * `/sdk/client/index.js` by the gateway itself.
 */
export { AgentRun, type ApprovalAnswer, type RunResult } from './agent-run.js';
export { type BackoffPolicy, fullJitterDelay } from './backoff.js';
export { type ClientErrorCode, GatewayError, type GatewayErrorInfo } from './client-errors.js';
export { type CloseDecision, type CloseInfo, decideOnClose } from './close-policy.js';
export {
  type AttachOptions,
  type ClosedReason,
  type ConnectionState,
  GatewayClient,
  type GatewayClientOptions,
  type ReconnectOptions,
  type RequestData,
} from './gateway-client.js';
export type { WebSocketConstructorLike, WebSocketLike } from './websocket-like.js';
export type * from '../protocol/events.js';
export type { ErrorCode, ErrorPayload } from '../protocol/error-codes.js';
