import { createHmac } from 'node:crypto';

/** The secret every integration test app is configured with. */
export const TEST_JWT_SECRET = 'integration-test-secret-0123456789-abcdef';

const base64url = (value: string | Buffer): string => Buffer.from(value).toString('base64url');

/**
 * Signs a token by hand so tests can build every kind of bad token too (alg none, other HMACs,
 * missing claims). `exp` defaults to one hour from now; pass `exp: undefined` to omit it.
 */
export function signToken(
  claims: Record<string, unknown> = {},
  { secret = TEST_JWT_SECRET, alg = 'HS256' }: { secret?: string; alg?: 'HS256' | 'HS384' | 'HS512' | 'none' } = {},
): string {
  const payload = {
    sub: 'alice',
    iat: Math.floor(Date.now() / 1000),
    exp: Math.floor(Date.now() / 1000) + 3600,
    ...claims,
  };
  const header = base64url(JSON.stringify({ alg, typ: 'JWT' }));
  const body = base64url(JSON.stringify(payload));
  if (alg === 'none') return `${header}.${body}.`;
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg];
  const signature = createHmac(hash, secret).update(`${header}.${body}`).digest('base64url');
  return `${header}.${body}.${signature}`;
}
