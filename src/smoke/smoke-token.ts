import { DEVELOPMENT_JWT_SECRET } from '../config/config.schema.js';

/**
 * A short-lived token for `user`, signed as the server verifies HS256 tokens: with `JWT_SECRET`
 * (unset: the built-in development secret, which only a development server accepts), and
 * `JWT_ISSUER`, `JWT_AUDIENCE` and `AUTH_USER_CLAIM` as the server reads them from `env`.
 */
export async function signSmokeToken(user: string, env: Readonly<Record<string, string | undefined>>): Promise<string> {
  const set = (name: string): string | undefined => (env[name] === '' ? undefined : env[name]);
  const issuer = set('JWT_ISSUER');
  const audience = set('JWT_AUDIENCE');
  // Imported here: only `--user` signs, and @nestjs/jwt brings @nestjs/common with it.
  const { JwtService } = await import('@nestjs/jwt');
  const jwt = new JwtService({
    secret: set('JWT_SECRET') ?? DEVELOPMENT_JWT_SECRET,
    signOptions: {
      algorithm: 'HS256',
      expiresIn: 300,
      ...(issuer === undefined ? {} : { issuer }),
      ...(audience === undefined ? {} : { audience }),
    },
  });
  return jwt.sign({ sub: user, [set('AUTH_USER_CLAIM') ?? 'sub']: user });
}
