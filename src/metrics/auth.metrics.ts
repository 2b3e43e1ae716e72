import { Counter, Gauge, type Registry } from 'prom-client';
import { type Observable, Subscription } from 'rxjs';
import type { KeyStats, KeysHealth } from '../auth/provider-keys.service.js';
import { METRIC_PREFIX } from './metrics.constants.js';

export interface AuthSources {
  readonly health$: Observable<KeysHealth>;
  readonly stats: () => KeyStats;
}

/**
 * The identity provider's keys as this instance holds them (only when one is configured): how
 * many, whether the last refresh worked, and the fetches so far (those a token naming an unknown
 * key caused apart: a steady rise is a client with a bad token, or a rotation this instance missed).
 */
export function recordAuth(registry: Registry, sources: AuthSources): Subscription {
  const subscription = new Subscription();
  const degraded = new Gauge({
    name: `${METRIC_PREFIX}auth_keys_degraded`,
    help: "Whether the identity provider's keys could not be refreshed (1): the cached ones keep serving.",
    registers: [registry],
  });
  subscription.add(sources.health$.subscribe((health) => degraded.set(health.status === 'degraded' ? 1 : 0)));
  new Gauge({
    name: `${METRIC_PREFIX}auth_keys`,
    help: "Signature keys held from the identity provider's JWKS.",
    registers: [registry],
    collect() {
      this.set(sources.stats().keys);
    },
  });
  new Counter({
    name: `${METRIC_PREFIX}auth_jwks_fetches_total`,
    help: 'Fetches of the JWKS, by outcome and by cause (scheduled or start-up, or a token naming an unknown key).',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      const stats = sources.stats();
      this.reset();
      this.inc({ outcome: 'ok' }, stats.fetches - stats.failures);
      this.inc({ outcome: 'failed' }, stats.failures);
    },
  });
  new Counter({
    name: `${METRIC_PREFIX}auth_unknown_key_refetches_total`,
    help: 'JWKS fetches caused by a token naming a key that was not held (at most one per AUTH_JWKS_COOLDOWN_MS).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sources.stats().unknownKeyRefetches);
    },
  });
  return subscription;
}
