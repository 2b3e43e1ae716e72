import { createSecretKey } from 'node:crypto';
import type { JwtModuleOptions } from '@nestjs/jwt';
import type { AppConfig } from '../config/app-config.js';

/** The one symmetric algorithm: `none` and other HMAC sizes are refused (asymmetric ones come from a JWKS). */
export const JWT_ALGORITHM = 'HS256';

/**
 * How the service signs tokens (`npm run token`, the development token route), derived once from
 * the config. Verification is `TokenVerifier`'s, with node:crypto; these options never verify.
 */
export function jwtModuleOptions(config: AppConfig): JwtModuleOptions {
  const secret = config.auth.jwtSecret;
  // Without a secret (an identity provider only) the service signs nothing: no signing key at all.
  if (secret === undefined) return {};
  const key = createSecretKey(Buffer.from(secret, 'utf8'));
  // jsonwebtoken rejects an explicit `issuer: undefined` when signing, so unset claims are omitted.
  const claims = {
    ...(config.auth.issuer === undefined ? {} : { issuer: config.auth.issuer }),
    ...(config.auth.audience === undefined ? {} : { audience: config.auth.audience }),
  };
  return {
    secretOrKeyProvider: () => key,
    signOptions: { algorithm: JWT_ALGORITHM, ...claims },
  };
}
