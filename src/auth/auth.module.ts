import { Module } from '@nestjs/common';
import { ProviderKeys } from './provider-keys.service.js';
import { TokenVerifier } from './token-verifier.service.js';

// Signing (`npm run token`, the development token route) imports `@nestjs/jwt` where it happens.
@Module({
  providers: [TokenVerifier, ProviderKeys],
  exports: [TokenVerifier, ProviderKeys],
})
export class AuthModule {}
