import { Counter, Gauge, type Registry } from 'prom-client';
import { type Observable, Subscription } from 'rxjs';
import type { LeaseState } from '../database/instance-lease.js';
import type { BusHealth, BusStats } from '../fleet/fleet-bus.service.js';
import { METRIC_PREFIX } from './metrics.constants.js';

export interface FleetSources {
  /** Fleet mode only: the bus's health and counts. */
  readonly bus?: { readonly health$: Observable<BusHealth>; readonly stats: () => BusStats };
  /** PostgreSQL only: this instance's lease. */
  readonly lease$?: Observable<LeaseState>;
  /** Statements and transactions sent to the database so far. */
  readonly storage: () => { readonly statements: number; readonly transactions: number };
}

/**
 * The fleet's state as this instance sees it (lease held, bus up, followers of runs executing
 * elsewhere, events delivered from other instances, bus errors), and the database's load
 * (statements and transactions: what fleet mode keeps bounded per run).
 */
export function recordFleet(registry: Registry, sources: FleetSources): Subscription {
  const subscription = new Subscription();
  const counterOf = (name: string, help: string, read: () => number): void => {
    new Counter({
      name: `${METRIC_PREFIX}${name}`,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  };
  counterOf('db_statements_total', 'Statements sent to the database (BEGIN/COMMIT not counted).', () => {
    return sources.storage().statements;
  });
  counterOf('db_transactions_total', 'Database transactions: commits, and statements outside a transaction.', () => {
    return sources.storage().transactions;
  });
  const lease$ = sources.lease$;
  if (lease$ !== undefined) {
    const held = new Gauge({
      name: `${METRIC_PREFIX}fleet_lease_held`,
      help: 'Whether this instance holds its lease (1) or lost it (0): without it, it starts no run.',
      registers: [registry],
    });
    subscription.add(lease$.subscribe((state) => held.set(state.held ? 1 : 0)));
  }
  const bus = sources.bus;
  if (bus === undefined) return subscription;
  const up = new Gauge({
    name: `${METRIC_PREFIX}fleet_bus_up`,
    help: 'Whether the bus (Redis) answers (1) or this instance falls back to PostgreSQL (0).',
    registers: [registry],
  });
  subscription.add(bus.health$.subscribe((health) => up.set(health.status === 'up' ? 1 : 0)));
  new Gauge({
    name: `${METRIC_PREFIX}fleet_followers`,
    help: 'Clients of this instance following a run that executes on another instance.',
    registers: [registry],
    collect() {
      this.set(bus.stats().followers);
    },
  });
  counterOf(
    'fleet_deliveries_total',
    'Events delivered to clients of this instance from runs executing on other instances.',
    () => bus.stats().deliveries,
  );
  counterOf('fleet_bus_errors_total', 'Bus (Redis) commands or connections that failed.', () => bus.stats().errors);
  return subscription;
}
