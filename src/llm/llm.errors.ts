/**
 * The model backend could not answer: unreachable, rate limited or failing after the retries,
 * or its stream stalled past the timeout. Runs it breaks end with `LLM_UNAVAILABLE` (retryable);
 * it never affects readiness. `misconfigured`: the endpoint refused the service itself (401, 403,
 * 404: a wrong key, model or base URL), which no retry fixes; runs end with `LLM_MISCONFIGURED`.
 */
export class LlmUnavailableError extends Error {
  readonly misconfigured: boolean;

  constructor(message: string, options?: { cause?: unknown; misconfigured?: boolean }) {
    super(message, options);
    this.name = 'LlmUnavailableError';
    this.misconfigured = options?.misconfigured ?? false;
  }
}
