import { collectDefaultMetrics, Registry } from 'prom-client';

let shared: Registry | undefined;

/**
 * The process metrics (`process_*`, `nodejs_*`, event-loop lag included), in a registry of their own
 * that every application of this process shares. Why not one per application like the others:
 * `collectDefaultMetrics` starts an event-loop delay monitor and a GC observer that it never stops,
 * so calling it per application would leave one of each running for every application a test
 * process ever created. They describe the process anyway, not an application.
 */
export function processMetrics(): Registry {
  if (shared === undefined) {
    shared = new Registry();
    collectDefaultMetrics({ register: shared });
  }
  return shared;
}
