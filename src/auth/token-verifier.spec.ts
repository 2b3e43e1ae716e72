import { createHmac, KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { JwtService } from '@nestjs/jwt';
import type { AppConfig } from '../config/app-config.js';
import { jwtModuleOptions } from './jwt-options.js';
import type { ReadinessService } from '../readiness/readiness.service.js';
import type { VerificationKey } from './jws-algorithms.js';
import { ProviderKeys } from './provider-keys.service.js';
import { TokenVerifier } from './token-verifier.service.js';

const SECRET = 'unit-test-secret-0123456789-abcdefghij';
const config = (auth: Partial<AppConfig['auth']> = {}): AppConfig =>
  ({ auth: { jwtSecret: SECRET, usingDevelopmentSecret: false, userClaim: 'sub', ...auth } }) as AppConfig;
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const now = (): number => Math.floor(Date.now() / 1000);

/** A compact HS256 token over exactly these header and payload objects. */
function forge(header: unknown, payload: unknown, secret = SECRET): string {
  const signingInput = `${b64(header)}.${b64(payload)}`;
  return `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
}

/** The same over a payload written by hand: JSON that `JSON.stringify` cannot write (`1e400`). */
function forgeText(payload: string): string {
  const signingInput = `${b64({ alg: 'HS256' })}.${Buffer.from(payload).toString('base64url')}`;
  return `${signingInput}.${createHmac('sha256', SECRET).update(signingInput).digest('base64url')}`;
}

const verifierFor = (settings: AppConfig): TokenVerifier =>
  new TokenVerifier(settings, new ProviderKeys(settings, {} as ReadinessService));

const codeOf = (verifier: TokenVerifier, token: string): string => {
  try {
    verifier.verify(token);
    return 'accepted';
  } catch (error) {
    return (error as { code: string }).code;
  }
};

describe('TokenVerifier', () => {
  const verifier = verifierFor(config());

  it('accepts what the service itself signs (@nestjs/jwt, HS256), with or without iss and aud', () => {
    const plain = new JwtService(jwtModuleOptions(config()));
    expect(verifier.verify(plain.sign({ sub: 'alice' }, { expiresIn: 60 }))).toEqual({ userId: 'alice' });

    const scoped = config({ issuer: 'https://auth.example.com', audience: 'agent-gateway' });
    const signer = new JwtService(jwtModuleOptions(scoped));
    expect(verifierFor(scoped).verify(signer.sign({ sub: 'bob' }, { expiresIn: 60 }))).toEqual({
      userId: 'bob',
    });
  });

  it.each([
    ['four segments', `${forge({ alg: 'HS256' }, { sub: 'a', exp: now() + 60 })}.x`],
    ['an empty signature', `${b64({ alg: 'HS256' })}.${b64({ sub: 'a', exp: now() + 60 })}.`],
    ['a signature with padding', `${forge({ alg: 'HS256' }, { sub: 'a', exp: now() + 60 })}=`],
    ['a header that is not JSON', `bm90IGpzb24.${b64({ sub: 'a' })}.c2ln`],
    ['alg in lower case', forge({ alg: 'hs256' }, { sub: 'a', exp: now() + 60 })],
    ['a crit header', forge({ alg: 'HS256', crit: ['exp'] }, { sub: 'a', exp: now() + 60 })],
    ['a payload that is an array', forge({ alg: 'HS256' }, [{ sub: 'a', exp: now() + 60 }])],
    ['exp as a string', forge({ alg: 'HS256' }, { sub: 'a', exp: String(now() + 60) })],
    ['nbf as a string', forge({ alg: 'HS256' }, { sub: 'a', exp: now() + 60, nbf: '0' })],
    ['nbf in the future', forge({ alg: 'HS256' }, { sub: 'a', exp: now() + 60, nbf: now() + 30 })],
    ['sub as a number', forge({ alg: 'HS256' }, { sub: 42, exp: now() + 60 })],
    ['another secret', forge({ alg: 'HS256' }, { sub: 'a', exp: now() + 60 }, `${SECRET}x`)],
    ['an exp that never comes (1e400 parses as Infinity)', forgeText('{"sub":"a","exp":1e400}')],
    ['an nbf of -1e400', forgeText(`{"sub":"a","exp":${now() + 60},"nbf":-1e400}`)],
    ['an iat of 1e400', forgeText(`{"sub":"a","exp":${now() + 60},"iat":1e400}`)],
    ['an iat that is not a number', forge({ alg: 'HS256' }, { sub: 'a', exp: now() + 60, iat: 'yesterday' })],
    ['a sub of 256 characters', forge({ alg: 'HS256' }, { sub: 'u'.repeat(256), exp: now() + 60 })],
    ['a sub of 5 000 characters', forge({ alg: 'HS256' }, { sub: 'u'.repeat(5_000), exp: now() + 60 })],
    ['a sub with U+0000', forge({ alg: 'HS256' }, { sub: 'ali\u0000ce', exp: now() + 60 })],
    ['a sub with a line break', forge({ alg: 'HS256' }, { sub: 'alice\nadmin', exp: now() + 60 })],
    ['a sub with a lone surrogate', forge({ alg: 'HS256' }, { sub: 'a\ud800', exp: now() + 60 })],
  ])('refuses %s with UNAUTHORIZED', (_, token) => {
    expect(codeOf(verifier, token)).toBe('UNAUTHORIZED');
  });

  it('accepts a sub of exactly 255 characters, in any script', () => {
    expect(codeOf(verifier, forge({ alg: 'HS256' }, { sub: 'é'.repeat(255), exp: now() + 60 }))).toBe('accepted');
  });

  it('refuses a token whose exp is now (exp is exclusive) with TOKEN_EXPIRED', () => {
    expect(codeOf(verifier, forge({ alg: 'HS256' }, { sub: 'a', exp: now() }))).toBe('TOKEN_EXPIRED');
    expect(codeOf(verifier, forge({ alg: 'HS256' }, { sub: 'a', exp: now() + 60, nbf: now() }))).toBe('accepted');
  });

  it('checks iss exactly and finds the audience in a string or an array', () => {
    const scoped = verifierFor(config({ issuer: 'https://auth.example.com', audience: 'agent-gateway' }));
    const claims = { sub: 'a', exp: now() + 60, iss: 'https://auth.example.com' };
    expect(codeOf(scoped, forge({ alg: 'HS256' }, { ...claims, aud: 'agent-gateway' }))).toBe('accepted');
    expect(codeOf(scoped, forge({ alg: 'HS256' }, { ...claims, aud: ['other', 'agent-gateway'] }))).toBe('accepted');
    expect(codeOf(scoped, forge({ alg: 'HS256' }, { ...claims, aud: ['other'] }))).toBe('UNAUTHORIZED');
    expect(
      codeOf(scoped, forge({ alg: 'HS256' }, { ...claims, iss: 'https://auth.example.com/', aud: 'agent-gateway' })),
    ).toBe('UNAUTHORIZED');
  });
});

describe('TokenVerifier with an identity provider', () => {
  const ALL = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
  const signers = new Map<string, Awaited<ReturnType<typeof generateKeyPair>>['privateKey']>();
  const keys = new Map<string, VerificationKey>();
  const settings = config({ issuer: 'https://id.example.com', audience: 'chat' });

  beforeAll(async () => {
    for (const alg of ALL) {
      const pair = await generateKeyPair(alg, { extractable: true });
      const jwk = await exportJWK(pair.publicKey);
      signers.set(alg, pair.privateKey);
      keys.set(`${alg}-key`, {
        kid: `${alg}-key`,
        kty: jwk.kty as VerificationKey['kty'],
        ...(jwk.crv === undefined ? {} : { crv: jwk.crv }),
        key: KeyObject.from(pair.publicKey),
      });
    }
  });

  /** The verifier with these keys held, as `ProviderKeys` would hold them after a fetch. */
  const withKeys = (algorithms: readonly string[], held = keys): TokenVerifier =>
    new TokenVerifier(settings, {
      ready: true,
      algorithms,
      byId: (kid: string) => held.get(kid),
      all: () => [...held.values()],
      refetchForUnknownKey: () => undefined,
    } as unknown as ProviderKeys);

  /** `kid` null: a header without one. */
  const sign = (alg: string, kid: string | null = `${alg}-key`): Promise<string> =>
    new SignJWT({ iss: 'https://id.example.com', aud: 'chat', sub: 'ivan' })
      .setProtectedHeader({ alg, ...(kid === null ? {} : { kid }) })
      .setExpirationTime('1h')
      .sign(signers.get(alg) as Parameters<SignJWT['sign']>[0]);

  it.each(ALL)('verifies %s, synchronously', async (alg) => {
    expect(withKeys(ALL).verify(await sign(alg))).toEqual({ userId: 'ivan' });
  });

  it('refuses an algorithm left out of AUTH_ALGORITHMS, with the accepted ones in the message', async () => {
    expect(() => withKeys(['ES256']).verify(undefined)).toThrow(/missing bearer token/u);
    const token = await sign('RS256');
    expect(() => withKeys(['ES256']).verify(token)).toThrow(
      /algorithm "RS256" not accepted \(accepted: HS256, ES256\)/u,
    );
  });

  it('refuses a signature made for one algorithm presented as another of the same key type', async () => {
    const ps = (await sign('PS256', 'RS256-key')).split('.');
    const header = Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'RS256-key' })).toString('base64url');
    expect(codeOf(withKeys(ALL), `${header}.${ps[1] ?? ''}.${ps[2] ?? ''}`)).toBe('UNAUTHORIZED');
    // A P-256 key does not check ES384 (curve), an Ed25519 key no ES256 (type).
    expect(() => withKeys(ALL).verify(reheaded(ps, { alg: 'ES384', kid: 'ES256-key' }))).toThrow(/not for ES384/u);
    expect(() => withKeys(ALL).verify(reheaded(ps, { alg: 'ES256', kid: 'EdDSA-key' }))).toThrow(/not for ES256/u);
  });

  it('takes a token without kid only when exactly one held key fits its algorithm', async () => {
    const one = new Map([...keys].filter(([kid]) => kid === 'ES256-key'));
    const token = await sign('ES256', null);
    expect(withKeys(ALL, one).verify(token)).toEqual({ userId: 'ivan' });
    const two = new Map([...one, ['other', { ...(one.get('ES256-key') as VerificationKey), kid: 'other' }]]);
    expect(() => withKeys(ALL, two).verify(token)).toThrow(/no kid, and 2 ES256 keys could have signed it/u);
  });

  it('refuses an unknown kid, a kid that is not a string, and answers SERVICE_NOT_READY before the keys are held', async () => {
    const token = await sign('EdDSA');
    expect(() => withKeys(ALL).verify(reheaded(token.split('.'), { alg: 'EdDSA', kid: 'gone' }))).toThrow(
      /unknown key "gone"/u,
    );
    expect(() => withKeys(ALL).verify(reheaded(token.split('.'), { alg: 'EdDSA', kid: 7 }))).toThrow(
      /kid must be a string/u,
    );
    const starting = new TokenVerifier(settings, { ready: false, algorithms: ALL } as unknown as ProviderKeys);
    expect(codeOf(starting, token)).toBe('SERVICE_NOT_READY');
  });
});

/** `parts` of a token under another protected header (the signature stays what it was). */
function reheaded(parts: readonly string[], header: Record<string, unknown>): string {
  return `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${parts[1] ?? ''}.${parts[2] ?? ''}`;
}
