import { readdir, readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { TEST_JWT_SECRET } from '../support/tokens.js';

/** The chat page's HTTP side: the page itself and the development tokens it signs in with. */
describe('the chat page routes', () => {
  let app: TestApp | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  const post = (url: string, body: unknown): Promise<Response> =>
    fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

  it('serves the page before the service is ready, under a policy that runs only its own scripts', async () => {
    app = await startTestApp({ gated: ['agent'] });
    const page = await fetch(`${app.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await page.text()).toContain('<script type="module" src="/chat.js"></script>');
    expect((await fetch(`${app.url}/chat.js`)).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await fetch(`${app.url}/sdk/client/..%2f..%2fpackage.json`)).status).toBe(404);
    expect((await fetch(`${app.url}/health/ready`)).status).toBe(503);
  });

  it("serves every module the page imports from /page/, under the page's policy", async () => {
    app = await startTestApp({ gated: ['agent'] });
    const modules = await pageImports();
    expect(modules).toEqual(expect.arrayContaining(['/page/conversation.js', '/page/sign-in.js']));
    for (const path of modules) {
      const response = await fetch(`${app.url}${path}`);
      expect({ path, status: response.status }).toEqual({ path, status: 200 });
      expect(response.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(await response.text()).toBe(await readFile(new URL(`../../public${path}`, import.meta.url), 'utf8'));
    }
  });

  it.each(['/page/missing.js', '/page/..%2Fpackage.json', '/page/..%2F..%2Fpackage.json', '/page/..%2Fchat.js'])(
    'answers %s with the documented 404 NOT_FOUND body: a request names a module, never a path',
    async (path) => {
      app = await startTestApp({ ready: true });
      const response = await fetch(`${app.url}${path}`);
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({
        code: 'NOT_FOUND',
        message: expect.stringContaining('no such route: GET /page/'),
        retryable: false,
      });
    },
  );

  it('issues a development token that opens a WebSocket as that user', async () => {
    app = await startTestApp({ ready: true });
    const response = await post(`${app.url}/dev/token`, { userId: 'erin', ttlSeconds: 60 });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { token: string; userId: string; expiresAt: string };
    expect(body.userId).toBe('erin');
    expect(Date.parse(body.expiresAt) - Date.now()).toBeLessThanOrEqual(60_000);
    const client = app.connect({ token: body.token });
    const established = await client.waitFor('connection_established');
    expect(established.data.userId).toBe('erin');
  });

  it.each([
    [{}, 'userId'],
    [{ userId: 'has space' }, 'userId'],
    [{ userId: 'x'.repeat(65) }, 'userId'],
    [{ userId: 'erin', ttlSeconds: 0 }, 'ttlSeconds'],
    [{ userId: 'erin', ttlSeconds: 86_401 }, 'ttlSeconds'],
  ])('refuses %j with VALIDATION_FAILED naming %s', async (body, field) => {
    app = await startTestApp({ ready: true });
    const response = await post(`${app.url}/dev/token`, body);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: 'VALIDATION_FAILED', field, retryable: false });
  });

  it('has no development tokens in production: the route does not exist', async () => {
    app = await startTestApp({ ready: true, env: { NODE_ENV: 'production', JWT_SECRET: TEST_JWT_SECRET } });
    expect((await post(`${app.url}/dev/token`, { userId: 'mallory' })).status).toBe(404);
    expect((await fetch(`${app.url}/`)).status).toBe(200);
  });
});

/** The page's own modules, as the browser asks for them: what chat.js and public/page/*.js import from `./page/` or `./`. */
async function pageImports(): Promise<string[]> {
  const pageDir = new URL('../../public/page/', import.meta.url);
  const sources = [
    await readFile(new URL('../../public/chat.js', import.meta.url), 'utf8'),
    ...(await Promise.all(
      (await readdir(pageDir))
        .filter((name) => name.endsWith('.js'))
        .map((name) => readFile(new URL(name, pageDir), 'utf8')),
    )),
  ];
  const imported = sources.flatMap((source) =>
    [...source.matchAll(/from '\.\/(?:page\/)?([\w-]+\.js)'/gu)].map((match) => `/page/${match[1]}`),
  );
  return [...new Set(imported)].sort();
}
