import { type DynamicModule, Module } from '@nestjs/common';
import { READINESS_OPTIONS } from './readiness.constants.js';
import { ReadinessService } from './readiness.service.js';
import type { ReadinessOptions } from './readiness.types.js';

/** Global: every feature module reports its initialisation to the one {@link ReadinessService}. */
@Module({})
export class ReadinessModule {
  static forRoot(options: ReadinessOptions): DynamicModule {
    return {
      module: ReadinessModule,
      global: true,
      providers: [{ provide: READINESS_OPTIONS, useValue: options }, ReadinessService],
      exports: [ReadinessService],
    };
  }
}
