import { Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/config.constants.js';
import { jwtModuleOptions } from './jwt-options.js';
import { ProviderKeys } from './provider-keys.service.js';
import { TokenVerifier } from './token-verifier.service.js';

@Module({
  imports: [
    JwtModule.registerAsync({ inject: [APP_CONFIG], useFactory: (config: AppConfig) => jwtModuleOptions(config) }),
  ],
  providers: [TokenVerifier, ProviderKeys],
  // JwtModule for the development token route (PageModule).
  exports: [TokenVerifier, ProviderKeys, JwtModule],
})
export class AuthModule {}
