/**
 * The model backend could not answer: unreachable, rate limited or failing after the retries,
 * or its stream stalled past the timeout. Runs it breaks end with `LLM_UNAVAILABLE` (retryable);
 * it never affects readiness.
 */
export class LlmUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LlmUnavailableError';
  }
}
