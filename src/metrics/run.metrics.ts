import { Counter, Histogram, type Registry } from 'prom-client';
import type { Observable, Subscription } from 'rxjs';
import type { RunEndStatus, RunLifecycleEvent } from '../agent/run-lifecycle.js';
import { METRIC_PREFIX, RUN_DURATION_BUCKETS } from './metrics.constants.js';

const END_STATUSES = Object.keys({
  completed: true,
  failed: true,
  cancelled: true,
  interrupted: true,
} satisfies Record<RunEndStatus, true>) as RunEndStatus[];

/** Agent runs started, ended by status (with the error code of failures), refused by code; run durations. */
export function recordRuns(registry: Registry, events$: Observable<RunLifecycleEvent>): Subscription {
  const started = new Counter({
    name: `${METRIC_PREFIX}agent_runs_started_total`,
    help: 'Agent runs started (the request was stored and agent_started sent).',
    registers: [registry],
  });
  const outcomes = new Counter({
    name: `${METRIC_PREFIX}agent_runs_total`,
    help: 'Agent requests by outcome: status completed, failed, cancelled or interrupted for runs that ended (code: the error code of failed and interrupted ones), or refused before any run existed (code: why).',
    labelNames: ['status', 'code'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: `${METRIC_PREFIX}agent_run_duration_seconds`,
    help: 'Agent run duration from agent_started to its last event (queue wait included), by final status.',
    labelNames: ['status'],
    buckets: [...RUN_DURATION_BUCKETS],
    registers: [registry],
  });
  for (const status of END_STATUSES) outcomes.inc({ status }, 0);

  return events$.subscribe((event) => {
    switch (event.type) {
      case 'started':
        started.inc();
        return;
      case 'ended':
        outcomes.inc(
          event.errorCode === undefined ? { status: event.status } : { status: event.status, code: event.errorCode },
        );
        duration.observe({ status: event.status }, event.durationMs / 1000);
        return;
      case 'refused':
        outcomes.inc({ status: 'refused', code: event.errorCode });
        return;
      default: {
        const exhaustive: never = event;
        return exhaustive;
      }
    }
  });
}
