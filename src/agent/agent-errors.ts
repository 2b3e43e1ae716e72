import { AppError } from '../errors/app-error.js';
import type { AgentError } from '../protocol/events.js';

/** A storage outage (retryable), as the observed dialect reports one; not a value the store refused. */
export function isOutage(error: unknown): boolean {
  return error instanceof AppError && error.code === 'STORAGE_UNAVAILABLE';
}

/** The `agent_error` fields of `error` (the run's own fields are added by the run). */
export function agentErrorOf(error: AppError): Omit<AgentError, 'requestId'> {
  const { retryAfterMs, correlationId } = error.details;
  return {
    code: error.code,
    message: error.message,
    retryable: error.retryable,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    ...(correlationId === undefined ? {} : { correlationId }),
  };
}

/** An `agent_error` sent before any run existed (nothing stored). */
export function refusal(requestId: string, error: AppError): AgentError {
  return { requestId, ...agentErrorOf(error) };
}
