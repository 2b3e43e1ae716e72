import { createHmac } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { JwtService } from '@nestjs/jwt';
import type { AppConfig } from '../config/app-config.js';
import { jwtModuleOptions } from './jwt-options.js';
import { TokenVerifier } from './token-verifier.service.js';

const SECRET = 'unit-test-secret-0123456789-abcdefghij';
const config = (auth: Partial<AppConfig['auth']> = {}): AppConfig =>
  ({ auth: { jwtSecret: SECRET, usingDevelopmentSecret: false, ...auth } }) as AppConfig;
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

const codeOf = (verifier: TokenVerifier, token: string): string => {
  try {
    verifier.verify(token);
    return 'accepted';
  } catch (error) {
    return (error as { code: string }).code;
  }
};

describe('TokenVerifier', () => {
  const verifier = new TokenVerifier(config());

  it('accepts what the service itself signs (@nestjs/jwt, HS256), with or without iss and aud', () => {
    const plain = new JwtService(jwtModuleOptions(config()));
    expect(verifier.verify(plain.sign({ sub: 'alice' }, { expiresIn: 60 }))).toEqual({ userId: 'alice' });

    const scoped = config({ issuer: 'https://auth.example.com', audience: 'agent-gateway' });
    const signer = new JwtService(jwtModuleOptions(scoped));
    expect(new TokenVerifier(scoped).verify(signer.sign({ sub: 'bob' }, { expiresIn: 60 }))).toEqual({
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
    const scoped = new TokenVerifier(config({ issuer: 'https://auth.example.com', audience: 'agent-gateway' }));
    const claims = { sub: 'a', exp: now() + 60, iss: 'https://auth.example.com' };
    expect(codeOf(scoped, forge({ alg: 'HS256' }, { ...claims, aud: 'agent-gateway' }))).toBe('accepted');
    expect(codeOf(scoped, forge({ alg: 'HS256' }, { ...claims, aud: ['other', 'agent-gateway'] }))).toBe('accepted');
    expect(codeOf(scoped, forge({ alg: 'HS256' }, { ...claims, aud: ['other'] }))).toBe('UNAUTHORIZED');
    expect(
      codeOf(scoped, forge({ alg: 'HS256' }, { ...claims, iss: 'https://auth.example.com/', aud: 'agent-gateway' })),
    ).toBe('UNAUTHORIZED');
  });
});
