import { createHmac, randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { LocalIdentityProvider, type ProviderAlgorithm } from '../support/identity-provider.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';
import type { TestClient } from '../support/ws-client.js';

interface ReadyBody {
  readonly status: string;
  readonly details: Record<string, Record<string, unknown>>;
}

async function readiness(app: TestApp): Promise<{ status: number; body: ReadyBody }> {
  const response = await fetch(`${app.url}/health/ready`);
  return { status: response.status, body: (await response.json()) as ReadyBody };
}

/** A refused handshake: exactly one error frame with `code`, then close 1008. */
async function expectRefused(client: TestClient, code = 'UNAUTHORIZED'): Promise<string> {
  const close = await client.closed;
  expect(close.code).toBe(1008);
  expect(client.frames).toEqual([{ event: 'error', data: expect.objectContaining({ code, retryable: false }) }]);
  return String(client.frames[0]?.data.message);
}

async function userOf(app: TestApp, token: string): Promise<unknown> {
  const client = app.connect({ token });
  return (await client.waitFor('connection_established')).data.userId;
}

/** A token that says `alg` but whose signature is anything else: the header is what an attacker controls. */
function reheader(token: string, header: Record<string, unknown>): string {
  const [, payload = '', signature = ''] = token.split('.');
  return `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${payload}.${signature}`;
}

describe('tokens from an identity provider (JWKS)', () => {
  let provider: LocalIdentityProvider;
  let app: TestApp;

  beforeAll(async () => {
    provider = await LocalIdentityProvider.start();
    // JWT_SECRET unset (an empty value counts as unset): the provider is the only source of tokens.
    app = await startTestApp({ ready: true, env: { ...provider.env(), JWT_SECRET: '' } });
  });

  afterAll(async () => {
    await app.close();
    await provider.close();
  });

  it.each<ProviderAlgorithm>(['RS256', 'ES256', 'EdDSA'])(
    'accepts an %s token over WebSocket and over HTTP, the user id from sub',
    async (alg) => {
      const token = await provider.sign({ sub: `user-${alg}` }, { alg });
      expect(await userOf(app, token)).toBe(`user-${alg}`);
      const response = await fetch(`${app.url}/threads`, { headers: { authorization: `Bearer ${token}` } });
      expect(response.status).toBe(200);
    },
  );

  it('becomes ready only with the keys: /health/ready names auth, with how many keys it holds', async () => {
    const { status, body } = await readiness(app);
    expect(status).toBe(200);
    // Three signature keys; the provider's encryption key (use "enc") is left out.
    expect(body.details.auth).toMatchObject({ status: 'up', keys: 3, jwksUri: provider.jwksUrl });
    expect(body.details.auth?.degraded).toBeUndefined();
  });

  it.each([
    ['a wrong issuer', { iss: 'https://evil.example.com' }, /issuer/u],
    ['a wrong audience', { aud: 'another-app' }, /audience/u],
    ['an expired token', { exp: Math.floor(Date.now() / 1000) - 10 }, undefined],
    ['no sub', { sub: undefined }, /sub claim required/u],
  ])('refuses %s', async (_, claims, message) => {
    const client = app.connect({ token: await provider.sign(claims) });
    if (message === undefined) await expectRefused(client, 'TOKEN_EXPIRED');
    else expect(await expectRefused(client)).toMatch(message);
  });

  it('refuses HS256 when no JWT_SECRET is set, even signed with the development secret', async () => {
    const client = app.connect({
      token: signToken({ iss: provider.issuer, aud: 'agent-gateway' }, { secret: 'agent-gateway-development-secret' }),
    });
    expect(await expectRefused(client)).toMatch(/algorithm "HS256" not accepted \(accepted: RS256, ES256, EdDSA\)/u);
  });

  it('refuses the RS/HS confusion: an HS256 token HMAC-signed with the provider public key its kid names', async () => {
    const claims = (await provider.sign()).split('.')[1] ?? '';
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', kid: 'rs256-1' })).toString('base64url');
    for (const secret of [JSON.stringify(provider.publicJwk('rs256-1')), provider.publicJwk('rs256-1').n ?? '']) {
      const signature = createHmac('sha256', secret).update(`${header}.${claims}`).digest('base64url');
      await expectRefused(app.connect({ token: `${header}.${claims}.${signature}` }));
    }
  });

  it('refuses a token whose alg does not fit the key its kid names (ES256 header on the RSA key)', async () => {
    const token = reheader(await provider.sign({}, { alg: 'RS256' }), { alg: 'ES256', kid: 'rs256-1' });
    expect(await expectRefused(app.connect({ token }))).toMatch(/key "rs256-1" is not for ES256/u);
  });

  it('refuses alg none, and algorithms outside the allow-list', async () => {
    const token = await provider.sign();
    await expectRefused(app.connect({ token: reheader(token, { alg: 'none', kid: 'rs256-1' }) }));
    await expectRefused(app.connect({ token: reheader(token, { alg: 'PS256', kid: 'rs256-1' }) }));
  });

  it('refuses a token signed by another key under a kid the provider publishes', async () => {
    const impostor = await LocalIdentityProvider.start({ algorithms: ['RS256'] });
    try {
      const forged = await impostor.sign({ iss: provider.issuer }, { alg: 'RS256', kid: 'rs256-1' });
      expect(await expectRefused(app.connect({ token: forged }))).toMatch(/invalid signature/u);
    } finally {
      await impostor.close();
    }
  });

  it('refuses over HTTP with the same codes: 401 UNAUTHORIZED and TOKEN_EXPIRED', async () => {
    const bad = await provider.sign({ aud: 'another-app' });
    const expired = await provider.sign({ exp: Math.floor(Date.now() / 1000) - 10 });
    for (const [token, code] of [
      [bad, 'UNAUTHORIZED'],
      [expired, 'TOKEN_EXPIRED'],
    ] as const) {
      const response = await fetch(`${app.url}/threads`, { headers: { authorization: `Bearer ${token}` } });
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ code, retryable: false });
    }
  });
});

describe('key rotation and refetches', () => {
  let provider: LocalIdentityProvider;
  let app: TestApp | undefined;

  beforeAll(async () => {
    provider = await LocalIdentityProvider.start({ algorithms: ['RS256', 'ES256'] });
  });

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  afterAll(async () => {
    await provider.close();
  });

  it('accepts a token signed with a new key after exactly one refetch, and stops trusting a removed key', async () => {
    app = await startTestApp({ ready: true, env: { ...provider.env(), AUTH_JWKS_COOLDOWN_MS: '0' } });
    const before = provider.fetches.jwks;
    const rotated = await provider.addKey('RS256', `rotated-${randomUUID()}`);
    expect(await userOf(app, await provider.sign({ sub: 'carol' }, { kid: rotated.kid }))).toBe('carol');
    expect(provider.fetches.jwks).toBe(before + 1);
    // A second token with the new key: already held, no fetch.
    expect(await userOf(app, await provider.sign({ sub: 'dave' }, { kid: rotated.kid }))).toBe('dave');
    expect(provider.fetches.jwks).toBe(before + 1);

    const old = await provider.sign({}, { kid: 'es256-2' });
    provider.removeKey('es256-2');
    // Another new key's first token refetches the set, which no longer lists es256-2.
    const next = await provider.addKey('ES256', `next-${randomUUID()}`);
    expect(await userOf(app, await provider.sign({ sub: 'erin' }, { kid: next.kid }))).toBe('erin');
    expect(await expectRefused(app.connect({ token: old }))).toMatch(/unknown key "es256-2"/u);
  });

  it('fetches at most once per cool-down, whatever the number of unknown kids', async () => {
    app = await startTestApp({ ready: true, env: { ...provider.env(), AUTH_JWKS_COOLDOWN_MS: '60000' } });
    const before = provider.fetches.jwks;
    const forged = await Promise.all(
      Array.from({ length: 40 }, async (_, index) =>
        reheader(await provider.sign(), { alg: 'RS256', kid: `made-up-${index}` }),
      ),
    );
    const clients = forged.map((token) => app?.connect({ token }));
    for (const client of clients) if (client !== undefined) await expectRefused(client);
    // The start-up fetch was less than a cool-down ago: not one refetch.
    expect(provider.fetches.jwks).toBe(before);
    // Over HTTP too.
    const response = await fetch(`${app.url}/threads`, { headers: { authorization: `Bearer ${forged[0] ?? ''}` } });
    expect(response.status).toBe(401);
    expect(provider.fetches.jwks).toBe(before);
  });

  it('with the cool-down passed, a flood of unknown kids shares one refetch', async () => {
    app = await startTestApp({ ready: true, env: { ...provider.env(), AUTH_JWKS_COOLDOWN_MS: '0' } });
    const before = provider.fetches.jwks;
    const release = provider.holdJwks();
    const token = await provider.sign();
    const started = app;
    const clients = Array.from({ length: 40 }, (_, index) =>
      started.connect({ token: reheader(token, { alg: 'RS256', kid: `flood-${index}` }) }),
    );
    // Once a client's socket is open, the server has admitted it: all 40 wait on the same refetch.
    await Promise.all(clients.map((client) => client.opened));
    await provider.jwksServed(before + 1);
    expect(provider.fetches.jwks).toBe(before + 1);
    expect(clients.every((client) => client.frames.length === 0)).toBe(true);
    release();
    for (const client of clients) await expectRefused(client);
    expect(provider.fetches.jwks).toBe(before + 1);
  });

  it('refreshes in the background when the Cache-Control max-age runs out, picking up a new key unasked', async () => {
    provider.cacheControl = 'public, max-age=1';
    try {
      app = await startTestApp({ ready: true, env: provider.env() });
      const held = Number((await readiness(app)).body.details.auth?.keys);
      const added = await provider.addKey('ES256', `background-${randomUUID()}`);
      await app.logs.waitFor((entry) => entry.message.startsWith('keys refreshed (scheduled)'));
      expect((await readiness(app)).body.details.auth).toMatchObject({ status: 'up', keys: held + 1 });
      // Held already: a token with the new key costs no fetch.
      const fetches = provider.fetches.jwks;
      expect(await userOf(app, await provider.sign({ sub: 'heidi' }, { kid: added.kid }))).toBe('heidi');
      expect(provider.fetches.jwks).toBe(fetches);
    } finally {
      provider.cacheControl = undefined;
    }
  });
});

describe('the provider unreachable', () => {
  let provider: LocalIdentityProvider;
  let app: TestApp | undefined;

  beforeAll(async () => {
    provider = await LocalIdentityProvider.start({ algorithms: ['ES256'] });
  });

  afterEach(async () => {
    provider.setAvailable(true);
    await app?.close();
    app = undefined;
  });

  afterAll(async () => {
    await provider.close();
  });

  it('at start: /health/ready is 503 naming auth, clients are held, then all is released when it comes up', async () => {
    provider.setAvailable(false);
    const before = provider.fetches.jwks;
    app = await startTestApp({ env: { ...provider.env(), WS_READY_WAIT_MS: '30000' } });
    await provider.jwksServed(before + 1);
    const held = app.connect({ token: await provider.sign({ sub: 'early' }) });
    const { status, body } = await readiness(app);
    expect(status).toBe(503);
    expect(body.details.auth).toMatchObject({ status: 'down', state: 'initializing' });
    await provider.jwksServed(before + 2);
    expect((await readiness(app)).body.details.auth?.lastError).toMatch(/HTTP 503/u);
    expect(held.frames).toEqual([]);

    provider.setAvailable(true);
    await app.readiness.whenReady(15_000);
    expect((await held.waitFor('connection_established')).data.userId).toBe('early');
    expect((await readiness(app)).status).toBe(200);
  });

  it('at start: a client still waiting for the keys when WS_READY_WAIT_MS runs out is refused with 1013 naming auth', async () => {
    provider.setAvailable(false);
    const before = provider.fetches.jwks;
    app = await startTestApp({ env: { ...provider.env(), WS_READY_WAIT_MS: '300' } });
    await provider.jwksServed(before + 1);
    const client = app.connect({ token: await provider.sign({ sub: 'too-early' }) });
    const close = await client.closed;
    expect(close.code).toBe(1013);
    expect(client.frames).toEqual([
      {
        event: 'error',
        data: expect.objectContaining({
          code: 'SERVICE_NOT_READY',
          retryable: true,
          missing: expect.arrayContaining(['auth']) as unknown,
        }) as unknown,
      },
    ]);
  });

  it('after start: still serving from the cached keys, and auth degraded with the reason until it is back', async () => {
    app = await startTestApp({ ready: true, env: { ...provider.env(), AUTH_JWKS_COOLDOWN_MS: '0' } });
    provider.setAvailable(false);
    const before = provider.fetches.jwks;
    // A token naming an unknown key asks for a refetch, which fails: refused, and auth degraded.
    await expectRefused(app.connect({ token: reheader(await provider.sign(), { alg: 'ES256', kid: 'not-yet' }) }));
    expect(provider.fetches.jwks).toBe(before + 1);
    const { status, body } = await readiness(app);
    expect(status).toBe(200);
    expect(body.details.auth).toMatchObject({
      status: 'up',
      degraded: true,
      authError: expect.stringMatching(/HTTP 503/u) as unknown,
    });
    expect(await userOf(app, await provider.sign({ sub: 'still-served' }))).toBe('still-served');
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toMatch(/^agent_gateway_auth_keys_degraded 1$/mu);
    expect(metrics).toMatch(/^agent_gateway_auth_jwks_fetches_total\{outcome="failed"\} 1$/mu);
    expect(metrics).toMatch(/^agent_gateway_auth_unknown_key_refetches_total 1$/mu);
    expect(
      app.logs.entries.some((entry) => entry.level === 'warn' && /the cached keys keep serving/u.test(entry.message)),
    ).toBe(true);

    provider.setAvailable(true);
    const rotated = await provider.addKey('ES256', `after-${randomUUID()}`);
    expect(await userOf(app, await provider.sign({ sub: 'back' }, { kid: rotated.kid }))).toBe('back');
    expect((await readiness(app)).body.details.auth?.degraded).toBeUndefined();
    expect(await (await fetch(`${app.url}/metrics`)).text()).toMatch(/^agent_gateway_auth_keys_degraded 0$/mu);
  });
});

describe('OIDC discovery, the user claim, and HS256 beside a provider', () => {
  let provider: LocalIdentityProvider;

  beforeAll(async () => {
    provider = await LocalIdentityProvider.start({ algorithms: ['RS256'] });
  });

  afterAll(async () => {
    await provider.close();
  });

  it('finds the JWKS through AUTH_ISSUER_URL, takes the user id from AUTH_USER_CLAIM, and still accepts HS256', async () => {
    const before = { ...provider.fetches };
    const app = await startTestApp({
      ready: true,
      env: {
        AUTH_ISSUER_URL: provider.issuerUrl,
        JWT_ISSUER: provider.issuer,
        JWT_AUDIENCE: 'agent-gateway',
        AUTH_USER_CLAIM: 'email',
      },
    });
    try {
      expect(provider.fetches.discovery).toBe(before.discovery + 1);
      expect(provider.fetches.jwks).toBe(before.jwks + 1);
      expect(await userOf(app, await provider.sign({ email: 'frank@example.com' }))).toBe('frank@example.com');
      await expectRefused(app.connect({ token: await provider.sign({ email: undefined }) }));
      // HS256 with the app's JWT_SECRET, same issuer, audience and claim rules.
      const hs256 = signToken({ iss: provider.issuer, aud: 'agent-gateway', email: 'grace@example.com' });
      expect(await userOf(app, hs256)).toBe('grace@example.com');
      await expectRefused(app.connect({ token: signToken({ email: 'grace@example.com' }) }));
    } finally {
      await app.close();
    }
  });

  it('fails the start-up at once when the discovery document names another issuer', async () => {
    const app = await startTestApp({
      env: { AUTH_ISSUER_URL: provider.issuerUrl, JWT_ISSUER: `${provider.issuer}/`, JWT_AUDIENCE: 'agent-gateway' },
    });
    try {
      await expect(app.readiness.whenReady(10_000)).rejects.toThrow(/JWT_ISSUER/u);
      const auth = app.readiness.snapshot.dependencies.find((dep) => dep.name === 'auth');
      expect(auth).toMatchObject({ state: 'failed', attempts: 1 });
    } finally {
      await app.close();
    }
  });
});
