/** Every metric of this service starts with this; the process metrics keep their standard names. */
export const METRIC_PREFIX = 'agent_gateway_';

/** Run durations, in seconds: from a quick tool-less answer to `AGENT_RUN_TIMEOUT_MS` (120 s by default). */
export const RUN_DURATION_BUCKETS: readonly number[] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
