import { Gauge, type Registry } from 'prom-client';
import type { Observable, Subscription } from 'rxjs';
import type { ReadinessPhase, ReadinessSnapshot } from '../readiness/readiness.types.js';
import { METRIC_PREFIX } from './metrics.constants.js';

const PHASES = Object.keys({
  starting: true,
  ready: true,
  failed: true,
  draining: true,
} satisfies Record<ReadinessPhase, true>) as ReadinessPhase[];

/**
 * The readiness phase (1 for the current one, 0 for the others), how long each dependency took to
 * get ready, and the start-up deadline (the alert on slow starts compares the process's age with it).
 */
export function recordReadiness(
  registry: Registry,
  snapshot$: Observable<ReadinessSnapshot>,
  startupTimeoutMs: number,
): Subscription {
  new Gauge({
    name: `${METRIC_PREFIX}startup_timeout_seconds`,
    help: 'STARTUP_TIMEOUT_MS in seconds: an instance not ready this long after it started gives up and exits 1.',
    registers: [registry],
  }).set(startupTimeoutMs / 1000);
  const phase = new Gauge({
    name: `${METRIC_PREFIX}readiness_phase`,
    help: 'Readiness phase of this instance: 1 for the current phase (starting, ready, failed, draining), 0 for the others.',
    labelNames: ['phase'],
    registers: [registry],
  });
  const initDuration = new Gauge({
    name: `${METRIC_PREFIX}dependency_init_duration_seconds`,
    help: 'Time from the first initialisation attempt of a dependency to ready, retries included; absent until it is ready.',
    labelNames: ['dependency'],
    registers: [registry],
  });
  return snapshot$.subscribe((snapshot) => {
    for (const name of PHASES) phase.set({ phase: name }, name === snapshot.phase ? 1 : 0);
    for (const dependency of snapshot.dependencies) {
      if (dependency.durationMs !== undefined) {
        initDuration.set({ dependency: dependency.name }, dependency.durationMs / 1000);
      }
    }
  });
}
