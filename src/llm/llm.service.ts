import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { BehaviorSubject, type Observable } from 'rxjs';
import type { AppDependency } from '../app.dependencies.js';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import { ReadinessService } from '../readiness/readiness.service.js';
import { LlmUnavailableError } from './llm.errors.js';
import type { LlmChunk, LlmProvider, LlmRequest } from './llm.types.js';
import { LLM_PROVIDER } from './llm.constants.js';
import { describeModelSettings } from './model-settings.js';

const DEPENDENCY: AppDependency = 'llm';

/**
 * Whether the provider answered lately. Not part of readiness: one provider outage must not take
 * every replica out of service, so it shows as a `degraded` detail of `/health/ready` instead.
 */
export interface LlmAvailability {
  readonly provider: string;
  /**
   * `degraded`: the last call failed in a way a retry may fix; `misconfigured`: the endpoint refused
   * the service's key, model or URL (401, 403, 404), which needs an operator.
   */
  readonly status: 'up' | 'degraded' | 'misconfigured';
  /** Why the last call failed, while degraded. */
  readonly lastError?: string;
  readonly since: number;
}

/** The agent's view of the language model: one streaming call, whatever the provider. */
@Injectable()
export class LlmService implements OnApplicationBootstrap {
  private readonly logger = new Logger('Llm');
  private readonly availability: BehaviorSubject<LlmAvailability>;
  readonly availability$: Observable<LlmAvailability>;

  constructor(
    @Inject(LLM_PROVIDER) readonly provider: LlmProvider,
    private readonly readiness: ReadinessService,
    @InjectConfig() private readonly config: AppConfig,
  ) {
    this.availability = new BehaviorSubject<LlmAvailability>({
      provider: this.provider.name,
      status: 'up',
      since: Date.now(),
    });
    this.availability$ = this.availability.asObservable();
  }

  onApplicationBootstrap(): void {
    this.logger.log(describeModelSettings(this.config));
    // Configuration, client and (local) model load gate readiness; reaching a remote endpoint does not.
    this.readiness.track(DEPENDENCY, (signal) => this.provider.init(signal), {
      details: () => this.healthDetails(),
    });
  }

  get currentAvailability(): LlmAvailability {
    return this.availability.getValue();
  }

  /**
   * Streams the model's answer; provider failures also update {@link availability$}. A thin wrapper
   * around the provider's iterator rather than an async generator of its own: a token then costs
   * one promise reaction here, not a generator's round trip.
   */
  stream(request: LlmRequest, signal: AbortSignal): AsyncIterableIterator<LlmChunk> {
    const chunks = this.provider.stream(request, signal);
    const onChunk = (result: IteratorResult<LlmChunk>): IteratorResult<LlmChunk> => {
      if (result.done !== true) this.markUp();
      return result;
    };
    const onError = (error: unknown): never => {
      if (error instanceof LlmUnavailableError) this.markDegraded(error.message, error.misconfigured);
      throw error;
    };
    const iterator: AsyncIterableIterator<LlmChunk> = {
      next: () => chunks.next().then(onChunk, onError),
      return: async (value?: unknown) => {
        await chunks.return(undefined);
        return { done: true, value: value as LlmChunk };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /**
   * The `llm` entry of `/health/ready`: the provider, and while it fails, since when and why
   * (`misconfigured` when no retry can fix it). Never a reason to be unready: every replica shares
   * the provider, so unrouting them all would not bring it back.
   */
  private healthDetails(): Record<string, unknown> {
    const { provider, status, lastError, since } = this.currentAvailability;
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

  private markUp(): void {
    if (this.currentAvailability.status === 'up') return;
    this.logger.log(`provider ${this.provider.name} answers again`);
    this.availability.next({ provider: this.provider.name, status: 'up', since: Date.now() });
  }

  private markDegraded(lastError: string, misconfigured: boolean): void {
    const current = this.currentAvailability;
    const status = misconfigured ? 'misconfigured' : 'degraded';
    if (current.status === status && current.lastError === lastError) return;
    if (current.status !== status) {
      this.logger.warn(
        `provider ${this.provider.name} ${misconfigured ? 'refuses this service (check LLM_API_KEY, LLM_MODEL, LLM_BASE_URL)' : 'unavailable'}: ${lastError}`,
      );
    }
    this.availability.next({
      provider: this.provider.name,
      status,
      lastError,
      since: current.status === status ? current.since : Date.now(),
    });
  }
}
