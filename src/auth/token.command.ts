/**
 * `npm run token -- <userId> [ttlSeconds]`: prints a development JWT signed with the configured
 * secret (JWT_SECRET, or the development default), for trying the service out.
 */
import { JwtService } from '@nestjs/jwt';
import { loadConfig } from '../config/load-config.js';
import { jwtModuleOptions } from './jwt-options.js';

const [userId, ttlArgument = '3600'] = process.argv.slice(2);
const ttlSeconds = Number(ttlArgument);
if (userId === undefined || userId === '' || !Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
  process.stderr.write('usage: npm run token -- <userId> [ttlSeconds, default 3600]\n');
  process.exit(2);
}
try {
  const { config } = loadConfig(process.env);
  if (config.auth.jwtSecret === undefined) {
    throw new Error('no JWT_SECRET: with an identity provider (AUTH_JWKS_URL/AUTH_ISSUER_URL) tokens come from it');
  }
  const jwt = new JwtService(jwtModuleOptions(config));
  process.stdout.write(`${jwt.sign({ sub: userId, [config.auth.userClaim]: userId }, { expiresIn: ttlSeconds })}\n`);
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
