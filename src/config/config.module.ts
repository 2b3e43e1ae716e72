import { type DynamicModule, Inject, Module } from '@nestjs/common';
import type { AppConfig } from './app-config.js';
import { APP_CONFIG } from './config.constants.js';

/** Makes the validated {@link AppConfig} injectable everywhere with `@InjectConfig()`. */
@Module({})
export class ConfigModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: ConfigModule,
      global: true,
      providers: [{ provide: APP_CONFIG, useValue: config }],
      exports: [APP_CONFIG],
    };
  }
}

export const InjectConfig = (): ParameterDecorator => Inject(APP_CONFIG);
