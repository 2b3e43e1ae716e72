/**
 * Every error code a client can see, in `error` frames and in HTTP error bodies.
 * The codes are stable: clients branch on them, never on `message`.
 */
export const ERROR_CODES = [
  'UNAUTHORIZED',
  'TOKEN_EXPIRED',
  'ORIGIN_NOT_ALLOWED',
  'TOO_MANY_CONNECTIONS',
  'SERVICE_NOT_READY',
  'SERVICE_SHUTTING_DOWN',
  'TOO_MANY_EARLY_FRAMES',
  'BAD_REQUEST',
  'UNKNOWN_EVENT',
  'VALIDATION_FAILED',
  'THREAD_NOT_FOUND',
  'RUN_NOT_FOUND',
  'RUN_NOT_ACTIVE',
  'RATE_LIMITED',
  'SERVER_BUSY',
  'LLM_UNAVAILABLE',
  'RUN_TIMEOUT',
  'STEP_LIMIT_REACHED',
  'RUN_INTERRUPTED',
  'STORAGE_UNAVAILABLE',
  'INTERNAL_ERROR',
  'LLM_MISCONFIGURED',
  'NOT_FOUND',
  'FORBIDDEN',
  'TOOL_CALL_NOT_PENDING',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The `data` of an `error` frame. */
export interface ErrorPayload {
  readonly code: ErrorCode;
  readonly message: string;
  readonly retryable: boolean;
  /** The `requestId` of the client frame this error answers, when it had one. */
  readonly requestId?: string;
  /** Set on `VALIDATION_FAILED`: the path of the offending field, e.g. `message` or `data`. */
  readonly field?: string;
  /** Set on `INTERNAL_ERROR`: quote it when reporting the problem; it is in the server log too. */
  readonly correlationId?: string;
  /** Set on `SERVICE_NOT_READY`, `SERVICE_SHUTTING_DOWN`, `RATE_LIMITED`, `SERVER_BUSY`: wait at least this long before retrying. */
  readonly retryAfterMs?: number;
  /** Set on `SERVICE_NOT_READY`: the dependencies that were not ready. */
  readonly missing?: readonly string[];
  /**
   * Set when frames the client sent were dropped without being processed (refused connection,
   * `TOO_MANY_EARLY_FRAMES`): their `requestId`s, so the client knows exactly what to resend.
   */
  readonly unprocessedRequestIds?: readonly string[];
  /**
   * Set with `unprocessedRequestIds`: how many frames were not processed in all. More than the ids
   * listed when some frames had no `requestId`, or when the list was cut to keep the frame under
   * 8 KiB: resend what you cannot account for.
   */
  readonly unprocessedCount?: number;
}

/** Why a tool call failed, in `tool_failed` frames; the run goes on and the model hears the reason. */
export const TOOL_ERROR_CODES = [
  'INVALID_TOOL_ARGUMENTS',
  'UNKNOWN_TOOL',
  'TOOL_TIMEOUT',
  'TOOL_FAILED',
  /** An MCP tool's server cannot be reached now (it died, or does not answer); it is being reconnected. */
  'TOOL_UNAVAILABLE',
  /** An MCP tool's result is longer than `MCP_MAX_RESULT_CHARS`. */
  'TOOL_RESULT_TOO_LARGE',
  /** A person refused the call (`tool_approval` with `approved: false`), or nobody answered within `AGENT_APPROVAL_TIMEOUT_MS`. */
  'TOOL_REFUSED',
] as const;

export type ToolErrorCode = (typeof TOOL_ERROR_CODES)[number];
