import { Counter, Gauge, type Registry } from 'prom-client';
import { type Observable, Subscription } from 'rxjs';
import type {
  AdmissionOutcome,
  ConnectionEvent,
  ConnectionLimit,
  EarlyFrameEvent,
} from '../gateway/connection.events.js';
import { METRIC_PREFIX } from './metrics.constants.js';
import { CloseCode } from '../protocol/close-codes.js';

const ADMISSION_OUTCOMES = Object.keys({
  established: true,
  unauthorized: true,
  token_expired: true,
  origin_not_allowed: true,
  too_many_connections: true,
  not_ready: true,
  shutting_down: true,
  rate_limited: true,
  internal_error: true,
} satisfies Record<AdmissionOutcome, true>) as AdmissionOutcome[];

const LIMITS = Object.keys({
  message_rate: true,
  slow_consumer: true,
  flood: true,
} satisfies Record<ConnectionLimit, true>) as ConnectionLimit[];

/** WebSocket connections open, admitted or refused, closed; frames in and out; frames held before admission. */
export function recordConnections(
  registry: Registry,
  events$: Observable<ConnectionEvent>,
  earlyFrames$: Observable<EarlyFrameEvent>,
  frameCounts: () => { readonly in: number; readonly out: number },
): Subscription {
  // Frames are the one thing counted at the source and read at scrape time: an event per frame
  // would cost more than sending the frame. The count only grows, so the counter takes its value.
  const readCount = (counter: Counter, direction: 'in' | 'out'): void => {
    counter.reset();
    counter.inc(frameCounts()[direction]);
  };
  const open = new Gauge({
    name: `${METRIC_PREFIX}ws_connections_open`,
    help: 'WebSocket connections open now, held ones (waiting for readiness) included.',
    registers: [registry],
  });
  const admissions = new Counter({
    name: `${METRIC_PREFIX}ws_connections_total`,
    help: 'WebSocket connections by admission outcome: established, or the reason they were refused.',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const closes = new Counter({
    name: `${METRIC_PREFIX}ws_closes_total`,
    help: 'WebSocket connections closed, by close code (1006: dropped without a close frame).',
    labelNames: ['code'],
    registers: [registry],
  });
  // Present from the start at 0, so that the first 1011 is an increase an alert can see
  // (`increase()` cannot count a series' first sample). 1011 is never meant to happen.
  closes.inc({ code: String(CloseCode.INTERNAL_ERROR) }, 0);
  new Counter({
    name: `${METRIC_PREFIX}ws_frames_received_total`,
    help: 'WebSocket frames received from clients, malformed ones included.',
    registers: [registry],
    collect() {
      readCount(this, 'in');
    },
  });
  new Counter({
    name: `${METRIC_PREFIX}ws_frames_sent_total`,
    help: 'WebSocket frames sent to clients.',
    registers: [registry],
    collect() {
      readCount(this, 'out');
    },
  });
  const early = new Counter({
    name: `${METRIC_PREFIX}ws_early_frames_total`,
    help: 'Frames that arrived before connection_established: held for processing, or dropped over the limit.',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const limited = new Counter({
    name: `${METRIC_PREFIX}ws_limited_total`,
    help: 'Per-connection limits applied: message_rate (a frame over the rate was dropped and answered RATE_LIMITED), slow_consumer (a client that stopped reading was cut off), flood (a peer far over its frame budget, control frames included, was closed with 1008).',
    labelNames: ['limit'],
    registers: [registry],
  });
  for (const limit of LIMITS) limited.inc({ limit }, 0);
  // Known label values start at 0, so a first refusal shows as an increase, not as a new series.
  for (const outcome of ADMISSION_OUTCOMES) admissions.inc({ outcome }, 0);
  for (const outcome of ['held', 'dropped']) early.inc({ outcome }, 0);

  const subscription = new Subscription();
  subscription.add(
    events$.subscribe((event) => {
      switch (event.type) {
        case 'opened':
          open.inc();
          return;
        case 'admitted':
          admissions.inc({ outcome: event.outcome });
          return;
        case 'limited':
          limited.inc({ limit: event.limit });
          return;
        case 'closed':
          open.dec();
          closes.inc({ code: String(event.code) });
          return;
        default: {
          const exhaustive: never = event;
          return exhaustive;
        }
      }
    }),
  );
  subscription.add(earlyFrames$.subscribe((event) => early.inc({ outcome: event.outcome })));
  return subscription;
}
