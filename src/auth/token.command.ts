/**
 * `npm run token -- <userId> [ttlSeconds]` (in the image: `node dist/auth/token.command.js …`):
 * prints a JWT for trying the service out, signed as the server signs its development tokens.
 */
import { loadConfig } from '../config/load-config.js';
import { jwtModuleOptions } from './jwt-options.js';

const USAGE = `usage: npm run token -- <userId> [ttlSeconds, default 3600]
       node dist/auth/token.command.js <userId> [ttlSeconds]   (in the image, e.g. with docker exec)

Prints a token for <userId>, signed with JWT_SECRET (and JWT_ISSUER, JWT_AUDIENCE, AUTH_USER_CLAIM)
from this environment: the server accepts it only if it runs with the same values. Without
JWT_SECRET, outside production, it signs with the built-in development secret, as the server then
does. With an identity provider and no JWT_SECRET, tokens come from the provider instead.
`;

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const [userId = '', ttlArgument = '3600', ...extra] = args;
const ttlSeconds = Number(ttlArgument);
// `-v` or `--user=alice` is a mistake, not a user named so.
if (userId === '' || userId.startsWith('-') || extra.length > 0) {
  process.stderr.write(`${userId.startsWith('-') ? `unknown option ${userId}\n` : ''}${USAGE}`);
  process.exit(2);
}
if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
  process.stderr.write(`ttlSeconds: must be a whole number of seconds above 0 (got "${ttlArgument}")\n${USAGE}`);
  process.exit(2);
}
try {
  const { config } = loadConfig(process.env);
  if (config.auth.jwtSecret === undefined) {
    throw new Error('no JWT_SECRET: with an identity provider (AUTH_JWKS_URL/AUTH_ISSUER_URL) tokens come from it');
  }
  // Loaded only once there is a token to sign: @nestjs/jwt brings @nestjs/common, most of this
  // command's run time, which `--help` and a wrong argument do without.
  const { JwtService } = await import('@nestjs/jwt');
  const jwt = new JwtService(jwtModuleOptions(config));
  process.stdout.write(`${jwt.sign({ sub: userId, [config.auth.userClaim]: userId }, { expiresIn: ttlSeconds })}\n`);
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
