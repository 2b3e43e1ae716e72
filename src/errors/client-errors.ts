import { randomUUID } from 'node:crypto';
import type { LoggerService } from '@nestjs/common';
import { AppError } from './app-error.js';

/**
 * Every error a client can see, each defined once: its code, its message and its retry hint. Call
 * sites say what happened; the wording and the waits live here (docs/protocol.md, "Errors").
 */

/** Suggested wait before reconnecting when the wait for readiness ran out. */
const NOT_READY_RETRY_AFTER_MS = 2_000;
/** Suggested wait when start-up failed: the orchestrator is restarting the instance. */
const FAILED_RETRY_AFTER_MS = 5_000;
/** Suggested wait while an instance drains: by then another one should be taking the traffic. */
const SHUTTING_DOWN_RETRY_AFTER_MS = 1_000;
const STORAGE_RETRY_AFTER_MS = 1_000;
const RATE_LIMITED_RETRY_AFTER_MS = 1_000;
const SERVER_BUSY_RETRY_AFTER_MS = 2_000;
/** The part of a client-chosen value an error message quotes. */
const QUOTED_CHARS = 200;

// ------------------------------------------------------------------ admission

export function unauthorized(reason: string): AppError {
  return new AppError('UNAUTHORIZED', reason);
}

export function tokenExpired(): AppError {
  return new AppError('TOKEN_EXPIRED', 'token expired: get a new one and reconnect');
}

export function originNotAllowed(origin: string): AppError {
  return new AppError('ORIGIN_NOT_ALLOWED', `origin ${origin.slice(0, QUOTED_CHARS)} is not allowed`);
}

export function tooManyConnections(max: number): AppError {
  return new AppError('TOO_MANY_CONNECTIONS', `user already has ${max} connections open; close one first`);
}

/**
 * The service cannot serve yet: still starting after `waitedMs` (or, over HTTP, at all), or its
 * start-up failed and the orchestrator is restarting it.
 */
export function serviceNotReady(
  missing: readonly string[],
  options: { failed?: boolean; waitedMs?: number } = {},
): AppError {
  const waiting = `waiting for ${missing.join(', ')}`;
  const message = options.failed
    ? `service failed to start (${missing.join(', ')}); it is being restarted`
    : options.waitedMs === undefined
      ? `service not ready (${waiting})`
      : `service not ready after ${options.waitedMs} ms (${waiting})`;
  return new AppError('SERVICE_NOT_READY', message, {
    retryable: true,
    retryAfterMs: options.failed ? FAILED_RETRY_AFTER_MS : NOT_READY_RETRY_AFTER_MS,
    missing,
  });
}

/**
 * This instance is draining. `retryAfterMs` 0 for the last close of the drain: by then the load
 * balancers have had `SHUTDOWN_DELAY_MS` to route elsewhere, so reconnecting at once is right.
 */
export function serviceShuttingDown(options: { retryAfterMs?: number } = {}): AppError {
  return new AppError('SERVICE_SHUTTING_DOWN', 'this instance is shutting down; reconnect and send it again', {
    retryable: true,
    retryAfterMs: options.retryAfterMs ?? SHUTTING_DOWN_RETRY_AFTER_MS,
  });
}

// ------------------------------------------------------------------ frames

export function badRequest(reason: string): AppError {
  return new AppError('BAD_REQUEST', reason);
}

export function unknownEvent(event: string): AppError {
  return new AppError('UNKNOWN_EVENT', `unknown event "${event.slice(0, 64)}"`);
}

/** `field` is a path (`message`, `data`, `threads.0.id`); `problem` says what is wrong with it. */
export function validationFailed(field: string, problem: string): AppError {
  return new AppError('VALIDATION_FAILED', `${field}: ${problem}`, { field });
}

export function tooManyEarlyFrames(dropped: number, held: number): AppError {
  return new AppError(
    'TOO_MANY_EARLY_FRAMES',
    `${dropped} frame(s) sent before connection_established were dropped (beyond the first ${held}, or over the frame rate); resend them`,
    { retryable: true },
  );
}

/**
 * An HTTP request over its limit: `per` says whose (`user`: every route with a token; `address`: the
 * routes without one, such as `/dev/token`). Answered 429 with `Retry-After`.
 */
export function tooManyRequests(per: 'user' | 'address', limit: string, retryAfterMs: number): AppError {
  return rateLimited(`more than ${limit} for this ${per}; retry in ${Math.ceil(retryAfterMs / 1000)} s`, retryAfterMs);
}

/** A frame over the connection's rate (not processed), or a connection closed for flooding. */
export function rateLimited(message: string, retryAfterMs: number): AppError {
  return new AppError('RATE_LIMITED', message, { retryable: true, retryAfterMs });
}

// ------------------------------------------------------------------ threads and runs

export function threadNotFound(threadId: string): AppError {
  return new AppError('THREAD_NOT_FOUND', `thread ${threadId} not found`);
}

export function runNotFound(runId: string): AppError {
  return new AppError('RUN_NOT_FOUND', `run ${runId} not found`);
}

/** `action`: what the client tried (`cancel`, or `answer` a `tool_approval_required`), for the message. */
export function runNotActive(runId: string, status: string, action: 'cancel' | 'answer' = 'cancel'): AppError {
  const message =
    status === 'running'
      ? `run ${runId} is running on another instance; ${action} it there`
      : `run ${runId} has already ended (${status})`;
  return new AppError('RUN_NOT_ACTIVE', message);
}

/** A `tool_approval` for a call that is not waiting: never asked about, already answered, or timed out. */
export function toolCallNotPending(runId: string, toolCallId: string): AppError {
  return new AppError(
    'TOOL_CALL_NOT_PENDING',
    `tool call ${JSON.stringify(toolCallId.slice(0, QUOTED_CHARS))} of run ${runId} is not waiting for approval (never requested, already answered, or timed out)`,
  );
}

/**
 * Fleet mode: a `tool_approval` for a run on another instance that could not be handed to it
 * (Redis unreachable, or that instance not listening): nothing was decided, send it again.
 */
export function approvalUndelivered(runId: string): AppError {
  return new AppError(
    'STORAGE_UNAVAILABLE',
    `the instance running run ${runId} could not be reached right now; send the answer again shortly`,
    { retryable: true, retryAfterMs: STORAGE_RETRY_AFTER_MS },
  );
}

export function tooManyRuns(maxRunsPerUser: number): AppError {
  return rateLimited(
    `at most ${maxRunsPerUser} run(s) per user at a time; wait for one to finish`,
    RATE_LIMITED_RETRY_AFTER_MS,
  );
}

export function serverBusy(): AppError {
  return new AppError('SERVER_BUSY', 'every run slot is busy and the queue is full; retry shortly', {
    retryable: true,
    retryAfterMs: SERVER_BUSY_RETRY_AFTER_MS,
  });
}

export function runTimeout(timeoutMs: number): AppError {
  return new AppError('RUN_TIMEOUT', `the run took longer than ${timeoutMs} ms`, { retryable: true });
}

export function stepLimitReached(maxSteps: number): AppError {
  return new AppError(
    'STEP_LIMIT_REACHED',
    `the model was still calling tools after ${maxSteps} steps (AGENT_MAX_STEPS)`,
  );
}

/**
 * The run was cut short by its process: `shutdown` while this process drains, `restart` when the
 * process running it died (what the stored run says from then on).
 */
export function runInterrupted(by: 'shutdown' | 'restart' | 'lease' = 'restart'): AppError {
  const message = {
    shutdown: 'the server is shutting down; send the message again',
    restart: 'the server restarted while this run was in progress; send the message again',
    lease: 'the server running this run lost its lease (it looked dead to the fleet); send the message again',
  }[by];
  return new AppError('RUN_INTERRUPTED', message, { retryable: true });
}

// ------------------------------------------------------------------ dependencies

/**
 * The database could not be reached: `what` was not stored (`the message`: nothing was saved; `the
 * answer`: the run will read interrupted), or, without `what`, a read failed.
 */
export function storageUnavailable(options: { what?: 'the message' | 'the answer'; cause?: unknown } = {}): AppError {
  if (options.what === undefined) {
    return new AppError('STORAGE_UNAVAILABLE', 'the database is not reachable right now; retry shortly', {
      retryable: true,
      retryAfterMs: STORAGE_RETRY_AFTER_MS,
      cause: options.cause,
    });
  }
  const message =
    options.what === 'the message'
      ? 'the message could not be stored; nothing was saved, send it again'
      : 'the answer could not be stored; send the message again';
  return new AppError('STORAGE_UNAVAILABLE', message, { retryable: true, cause: options.cause });
}

/**
 * What the user sees of a model endpoint's failure: never its own words (they can name internal
 * hosts and ports), but the kind of failure and a correlation id; `detail` goes to the log.
 */
export function llmFailure(
  logger: Pick<LoggerService, 'warn'>,
  context: string,
  detail: string,
  options: { misconfigured: boolean },
): AppError {
  const correlationId = randomUUID();
  logger.warn(`${context}: ${detail} (correlationId ${correlationId})`);
  return options.misconfigured
    ? new AppError(
        'LLM_MISCONFIGURED',
        'the language model refused this service (a configuration problem an operator has to fix); quote the correlationId when reporting it',
        { correlationId },
      )
    : new AppError(
        'LLM_UNAVAILABLE',
        'the language model is not available right now; send the message again shortly (quote the correlationId if it persists)',
        { retryable: true, correlationId },
      );
}

// ------------------------------------------------------------------ HTTP only

export function notFound(method: string, path: string): AppError {
  return new AppError('NOT_FOUND', `no such route: ${method} ${path.slice(0, QUOTED_CHARS)}`);
}

export function forbidden(reason: string): AppError {
  return new AppError('FORBIDDEN', reason);
}

// ------------------------------------------------------------------ bugs

/**
 * A bug, or a failure nobody planned for: logged with its stack under a new correlation id, which
 * the client gets too; nothing else about it leaves the server.
 */
export function internalError(logger: Pick<LoggerService, 'error'>, context: string, cause: unknown): AppError {
  const correlationId = randomUUID();
  const detail = cause instanceof Error ? (cause.stack ?? cause.message) : String(cause);
  logger.error(`${context} (correlationId ${correlationId}): ${detail}`);
  return new AppError('INTERNAL_ERROR', 'internal error; quote the correlationId when reporting it', {
    correlationId,
    cause,
  });
}
