import { Module } from '@nestjs/common';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/config.constants.js';
import { LLM_PROVIDER } from './llm.constants.js';
import { LlmService } from './llm.service.js';
import type { LlmProvider } from './llm.types.js';
import { LocalModel } from './local-model.js';
import { OpenAiProvider } from './openai.provider.js';

@Module({
  providers: [
    LlmService,
    {
      provide: LLM_PROVIDER,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig): LlmProvider =>
        config.llm.provider === 'openai' ? new OpenAiProvider(config.llm.openai) : new LocalModel(config.llm.local),
    },
  ],
  exports: [LlmService],
})
export class LlmModule {}
