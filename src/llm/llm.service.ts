import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import type { AppDependency } from '../app.dependencies.js';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import { ReadinessService } from '../readiness/readiness.service.js';
import type { LlmDelta, LlmRequest } from './llm.types.js';
import { LocalModel } from './local-model.js';

const DEPENDENCY: AppDependency = 'llm';

/** The agent's view of the language model: one streaming call, whatever the provider. */
@Injectable()
export class LlmService implements OnApplicationBootstrap {
  private readonly model: LocalModel;

  constructor(
    @InjectConfig() config: AppConfig,
    private readonly readiness: ReadinessService,
  ) {
    this.model = new LocalModel(config.llm.local);
  }

  onApplicationBootstrap(): void {
    this.readiness.track(DEPENDENCY, (signal) => this.model.load(signal));
  }

  stream(request: LlmRequest, signal?: AbortSignal): AsyncGenerator<LlmDelta> {
    return this.model.stream(request, signal);
  }
}
