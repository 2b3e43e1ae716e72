import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';

const ALLOWED = 'https://chat.example.com';
const EVIL = 'https://evil.example.net';

function preflight(app: TestApp, origin: string, path = '/threads'): Promise<Response> {
  return fetch(`${app.url}${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
  });
}

const bearer = (sub: string): Record<string, string> => ({ authorization: `Bearer ${signToken({ sub })}` });

describe('the HTTP edge: CORS', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ ready: true, env: { ALLOWED_ORIGINS: `${ALLOWED}, https://admin.example.com` } });
  });

  afterAll(async () => {
    await app.close();
  });

  it('answers a preflight from an allowed origin: that origin, the methods and headers, no credentials', async () => {
    const response = await preflight(app, ALLOWED);
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(response.headers.get('access-control-allow-methods')).toBe('GET, POST');
    expect(response.headers.get('access-control-allow-headers')).toMatch(/Authorization/u);
    expect(response.headers.get('access-control-max-age')).toBe('600');
    expect(response.headers.get('access-control-allow-credentials')).toBeNull();
    expect(response.headers.get('vary')).toMatch(/Origin/u);
  });

  it('lets the allowed origin read the answer, and exposes Retry-After', async () => {
    const response = await fetch(`${app.url}/threads`, { headers: { origin: ALLOWED, ...bearer('cors-1') } });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(response.headers.get('access-control-expose-headers')).toBe('Retry-After');
  });

  it('refuses a preflight and a request from any other origin with 403 ORIGIN_NOT_ALLOWED, before the route runs', async () => {
    const refused = await preflight(app, EVIL);
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    expect(await refused.json()).toEqual({
      code: 'ORIGIN_NOT_ALLOWED',
      message: `origin ${EVIL} is not allowed`,
      retryable: false,
    });
    const token = await fetch(`${app.url}/dev/token`, {
      method: 'POST',
      headers: { origin: EVIL, 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'mallory' }),
    });
    expect(token.status).toBe(403);
    expect(await token.json()).toMatchObject({ code: 'ORIGIN_NOT_ALLOWED' });
  });

  it("passes requests from the service's own origin (its chat page) and requests without Origin", async () => {
    const own = await fetch(`${app.url}/dev/token`, {
      method: 'POST',
      headers: { origin: app.url, 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'page-user' }),
    });
    expect(own.status).toBe(200);
    expect(own.headers.get('access-control-allow-origin')).toBeNull();
    expect((await fetch(`${app.url}/threads`, { headers: bearer('no-origin') })).status).toBe(200);
  });

  it('applies the same list to WebSocket origins', async () => {
    const refused = app.connect({ token: signToken({ sub: 'ws-cors' }), headers: { origin: EVIL } });
    expect((await refused.closed).code).toBe(1008);
    const allowed = app.connect({ token: signToken({ sub: 'ws-cors' }), headers: { origin: ALLOWED } });
    await allowed.waitFor('connection_established');
  });
});

describe('the HTTP edge: defaults', () => {
  it('outside production with no list, any origin may read the API', async () => {
    const app = await startTestApp({ ready: true });
    try {
      const response = await preflight(app, EVIL);
      expect(response.status).toBe(204);
      expect(response.headers.get('access-control-allow-origin')).toBe(EVIL);
    } finally {
      await app.close();
    }
  });

  it('in production with no list, no other origin may, and every answer has Strict-Transport-Security', async () => {
    const app = await startTestApp({ ready: true, env: { NODE_ENV: 'production' } });
    try {
      const response = await preflight(app, 'http://localhost:5173');
      expect(response.status).toBe(403);
      expect(response.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
      // No development token route in production.
      expect((await fetch(`${app.url}/dev/token`, { method: 'POST' })).status).toBe(404);
    } finally {
      await app.close();
    }
  });
});

describe('the HTTP edge: rate limits and security headers', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({
      ready: true,
      env: { HTTP_MAX_REQUESTS_PER_SECOND: '1', HTTP_REQUEST_BURST: '3', HTTP_MAX_ANONYMOUS_REQUESTS_PER_MINUTE: '2' },
    });
  });

  afterAll(async () => {
    await app.close();
  });

  it('answers a user over budget 429 RATE_LIMITED with Retry-After, in the documented shape; other users go on', async () => {
    const statuses = [];
    for (let index = 0; index < 3; index += 1) {
      statuses.push((await fetch(`${app.url}/threads`, { headers: bearer('busy') })).status);
    }
    expect(statuses).toEqual([200, 200, 200]);
    const limited = await fetch(`${app.url}/threads`, { headers: bearer('busy') });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(await limited.json()).toEqual({
      code: 'RATE_LIMITED',
      message: expect.stringMatching(/^more than 1 requests per second for this user/u) as unknown,
      retryable: true,
      retryAfterMs: expect.any(Number) as unknown,
    });
    expect((await fetch(`${app.url}/threads`, { headers: bearer('calm') })).status).toBe(200);
  });

  it('limits the routes without a token per address', async () => {
    const issue = (): Promise<Response> =>
      fetch(`${app.url}/dev/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'someone' }),
      });
    expect([(await issue()).status, (await issue()).status]).toEqual([200, 200]);
    const limited = await issue();
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(29);
    expect(await limited.json()).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
  });

  it.each([
    ['a probe', '/health/live', 200],
    ['an error', '/threads', 401],
    ['an unknown route', '/nope', 404],
    ['the metrics', '/metrics', 200],
  ])('puts the security headers on %s', async (_, path, status) => {
    const response = await fetch(`${app.url}${path}`);
    expect(response.status).toBe(status);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(response.headers.get('strict-transport-security')).toBeNull();
    expect(response.headers.get('x-powered-by')).toBeNull();
  });

  it("keeps the chat page's own Content-Security-Policy", async () => {
    const response = await fetch(`${app.url}/`);
    expect(response.headers.get('content-security-policy')).toMatch(/script-src 'self'/u);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  });
});
