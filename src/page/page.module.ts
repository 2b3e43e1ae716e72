import { type DynamicModule, Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { HttpEdgeModule } from '../http/http-edge.module.js';
import type { AppConfig } from '../config/app-config.js';
import { ChatPageController } from './chat-page.controller.js';
import { DevTokenController } from './dev-token.controller.js';
import { loadPageAssets } from './page-assets.js';
import { PAGE_ASSETS } from './page.constants.js';

/** The browser chat page, its SDK files, and (outside production) development tokens. */
@Module({})
export class PageModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: PageModule,
      imports: [AuthModule, HttpEdgeModule],
      // The development token route exists only outside production, and only with a secret to sign
      // with (an identity provider alone: tokens come from it).
      controllers:
        config.env === 'production' || config.auth.jwtSecret === undefined
          ? [ChatPageController]
          : [DevTokenController, ChatPageController],
      providers: [{ provide: PAGE_ASSETS, useFactory: loadPageAssets }],
    };
  }
}
