import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { type HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import type { Subscription } from 'rxjs';
import { ReadinessService } from '../readiness/readiness.service.js';
import type { ReadinessSnapshot } from '../readiness/readiness.types.js';

/**
 * One Terminus indicator per declared dependency, read from the latest readiness snapshot it is
 * subscribed to: a probe costs a lookup, never a check of its own, and nothing polls. Each entry
 * also carries what the dependency's owner publishes with its registration (`track(name, init,
 * { details })`): the model provider's availability, the database's. This file knows no
 * dependency by name.
 */
@Injectable()
export class ReadinessHealthIndicator implements OnModuleDestroy {
  private latest: ReadinessSnapshot;
  private readonly subscription: Subscription;

  constructor(
    private readonly readiness: ReadinessService,
    private readonly indicators: HealthIndicatorService,
  ) {
    this.latest = readiness.snapshot;
    this.subscription = readiness.snapshot$.subscribe((snapshot) => {
      this.latest = snapshot;
    });
  }

  /** `up` when the dependency is ready and the instance is not draining. */
  check(name: string): HealthIndicatorResult {
    const { phase, dependencies } = this.latest;
    const dependency = dependencies.find((dep) => dep.name === name);
    const session = this.indicators.check(name);
    if (dependency === undefined) return session.down({ message: `unknown dependency ${name}` });
    const details = {
      state: dependency.state,
      phase,
      attempts: dependency.attempts,
      ...(dependency.startedAt === undefined ? {} : { startedAt: new Date(dependency.startedAt).toISOString() }),
      ...(dependency.durationMs === undefined ? {} : { durationMs: dependency.durationMs }),
      ...(dependency.lastError === undefined ? {} : { lastError: dependency.lastError }),
      ...this.readiness.details(name),
    };
    return dependency.state === 'ready' && phase !== 'draining' ? session.up(details) : session.down(details);
  }

  onModuleDestroy(): void {
    this.subscription.unsubscribe();
  }
}
