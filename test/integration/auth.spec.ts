import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken, TEST_JWT_SECRET } from '../support/tokens.js';
import type { TestClient } from '../support/ws-client.js';

const now = (): number => Math.floor(Date.now() / 1000);

/** Every refusal: exactly one error frame, then close 1008, and the early request never ran. */
async function expectRefused(client: TestClient, code: string): Promise<void> {
  const close = await client.closed;
  expect(close.code).toBe(1008);
  expect(client.frames).toHaveLength(1);
  expect(client.frames[0]).toEqual({
    event: 'error',
    data: expect.objectContaining({ code, retryable: false, message: expect.any(String) }),
  });
}

/**
 * Algorithm confusion: a token that says RS256 but is HMAC-signed with the server's own secret
 * (what a verifier that lets the token pick its algorithm would check it against).
 */
function rs256Confused(): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ sub: 'mallory', exp: now() + 3600 })}`;
  return `${unsigned}.${createHmac('sha256', TEST_JWT_SECRET).update(unsigned).digest('base64url')}`;
}

const earlyRequest = [{ event: 'agent_request', data: { requestId: 'r1', message: 'should never run' } }];

describe('WebSocket authentication', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({
      ready: true,
      env: { WS_ALLOWED_ORIGINS: 'https://chat.example.com, https://admin.example.com' },
    });
  });

  afterAll(async () => {
    await app.close();
  });

  describe.each(['header', 'query'] as const)('token in the %s', (via) => {
    it('accepts a valid HS256 token and takes the user id from sub', async () => {
      const client = app.connect({ via, token: signToken({ sub: 'user-42' }) });
      const established = await client.waitFor('connection_established');
      expect(established.data.userId).toBe('user-42');
    });

    it.each([
      ['a malformed token', 'not-a-jwt'],
      ['a token signed with another secret', signToken({}, { secret: 'some-other-secret-that-is-long-enough' })],
      ['an alg none token', signToken({}, { alg: 'none' })],
      ['an HS384 token', signToken({}, { alg: 'HS384' })],
      ['an HS512 token', signToken({}, { alg: 'HS512' })],
      ['a token without exp', signToken({ exp: undefined })],
      ['a token without sub', signToken({ sub: undefined })],
      ['a token with an empty sub', signToken({ sub: '' })],
      ['a token not valid yet', signToken({ nbf: now() + 3600 })],
      ['an oversized token', signToken({ pad: 'x'.repeat(9_000) })],
      ['an RS256 token HMAC-signed with the server secret (algorithm confusion)', rs256Confused()],
    ])('refuses %s with UNAUTHORIZED and close 1008', async (_name, token) => {
      await expectRefused(app.connect({ via, token, sendOnOpen: earlyRequest }), 'UNAUTHORIZED');
    });

    it('refuses an expired token with TOKEN_EXPIRED and close 1008', async () => {
      const token = signToken({ iat: now() - 7200, exp: now() - 3600 });
      await expectRefused(app.connect({ via, token, sendOnOpen: earlyRequest }), 'TOKEN_EXPIRED');
    });
  });

  it('refuses a 100 KB token at the HTTP layer (431, before any upgrade), and keeps serving', async () => {
    const url = `${app.url.replace('http', 'ws')}/ws`;
    const huge = signToken({ pad: 'x'.repeat(100_000) });
    const status = await new Promise<number>((resolve, reject) => {
      const socket = new WebSocket(url, { headers: { authorization: `Bearer ${huge}` } });
      socket.on('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      socket.on('open', () => reject(new Error('a 100 KB token was let through')));
      socket.on('error', () => undefined);
    });
    expect(status).toBe(431);
    await app.connect({ token: signToken() }).waitFor('connection_established');
  });

  it('refuses a connection without any token', async () => {
    await expectRefused(app.connect({ sendOnOpen: earlyRequest }), 'UNAUTHORIZED');
  });

  it('refuses a non-Bearer Authorization header even when a query token is present', async () => {
    const client = app.connect({
      via: 'query',
      token: signToken(),
      headers: { authorization: 'Basic YWxpY2U6c2VjcmV0' },
    });
    await expectRefused(client, 'UNAUTHORIZED');
  });

  it('refuses a browser origin outside the allow-list with ORIGIN_NOT_ALLOWED', async () => {
    const client = app.connect({ token: signToken(), headers: { origin: 'https://evil.example.net' } });
    await expectRefused(client, 'ORIGIN_NOT_ALLOWED');
  });

  it('accepts an allowed origin and a client that sends no origin', async () => {
    const browser = app.connect({ token: signToken(), headers: { origin: 'https://admin.example.com' } });
    const tool = app.connect({ token: signToken() });
    await Promise.all([browser.waitFor('connection_established'), tool.waitFor('connection_established')]);
  });
});

describe('WebSocket authentication with issuer and audience configured', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({
      ready: true,
      env: { JWT_ISSUER: 'https://auth.example.com', JWT_AUDIENCE: 'agent-gateway' },
    });
  });

  afterAll(async () => {
    await app.close();
  });

  it('accepts a token with the configured iss and aud', async () => {
    const token = signToken({ iss: 'https://auth.example.com', aud: 'agent-gateway' });
    await app.connect({ token }).waitFor('connection_established');
  });

  it.each([
    ['a wrong issuer', { iss: 'https://elsewhere.example.com', aud: 'agent-gateway' }],
    ['a wrong audience', { iss: 'https://auth.example.com', aud: 'another-service' }],
    ['no issuer or audience', {}],
  ])('refuses %s', async (_name, claims) => {
    await expectRefused(app.connect({ token: signToken(claims) }), 'UNAUTHORIZED');
  });
});
