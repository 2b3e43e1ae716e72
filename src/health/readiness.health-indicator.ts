import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { type HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { Subscription } from 'rxjs';
import { DatabaseService, type StorageHealth } from '../database/database.service.js';
import { type LlmAvailability, LlmService } from '../llm/llm.service.js';
import { ReadinessService } from '../readiness/readiness.service.js';
import type { ReadinessSnapshot } from '../readiness/readiness.types.js';

/**
 * One Terminus indicator per declared dependency, read from the latest readiness snapshot it is
 * subscribed to: a probe costs a lookup, never a check of its own, and nothing polls.
 * The `llm` entry also carries the provider's availability (`degraded` while a remote provider
 * fails) and the `threads` entry the database's (`storage: down` while it is unreachable); neither
 * makes the instance unready: both are shared by every replica.
 */
@Injectable()
export class ReadinessHealthIndicator implements OnModuleDestroy {
  private latest: ReadinessSnapshot;
  private llm: LlmAvailability;
  private storage: StorageHealth;
  private readonly subscription = new Subscription();

  constructor(
    readiness: ReadinessService,
    llm: LlmService,
    database: DatabaseService,
    private readonly indicators: HealthIndicatorService,
  ) {
    this.latest = readiness.snapshot;
    this.llm = llm.currentAvailability;
    this.storage = database.currentHealth;
    this.subscription.add(
      database.health$.subscribe((health) => {
        this.storage = health;
      }),
    );
    this.subscription.add(
      readiness.snapshot$.subscribe((snapshot) => {
        this.latest = snapshot;
      }),
    );
    this.subscription.add(
      llm.availability$.subscribe((availability) => {
        this.llm = availability;
      }),
    );
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
      ...(name === 'llm' ? this.llmDetails() : {}),
      ...(name === 'threads' ? this.storageDetails() : {}),
    };
    return dependency.state === 'ready' && phase !== 'draining' ? session.up(details) : session.down(details);
  }

  private llmDetails(): Record<string, unknown> {
    const { provider, status, lastError, since } = this.llm;
    // `misconfigured` names a problem no retry fixes (a wrong key, model or URL): an operator's.
    return status === 'up'
      ? { provider }
      : {
          provider,
          degraded: true,
          ...(status === 'misconfigured' ? { misconfigured: true } : {}),
          degradedSince: new Date(since).toISOString(),
          providerError: lastError,
        };
  }

  /** Reported, not judged: the database is shared, and unrouting every replica at once would not bring it back. */
  private storageDetails(): Record<string, unknown> {
    const { status, lastError, since } = this.storage;
    return status === 'up'
      ? { storage: 'up' }
      : { storage: 'down', storageDownSince: new Date(since).toISOString(), storageError: lastError };
  }

  onModuleDestroy(): void {
    this.subscription.unsubscribe();
  }
}
