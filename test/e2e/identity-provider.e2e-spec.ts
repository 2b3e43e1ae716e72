import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LocalIdentityProvider } from '../support/identity-provider.js';
import { ServerProcess } from '../support/server-process.js';
import { TestClient } from '../support/ws-client.js';

/**
 * The built server as production runs it with an identity provider and no JWT_SECRET: it starts,
 * becomes ready once it holds the keys, accepts the provider's tokens, and refuses HS256.
 */
describe('the server in production with an identity provider only', () => {
  let provider: LocalIdentityProvider;
  let server: ServerProcess;

  beforeAll(async () => {
    provider = await LocalIdentityProvider.start({ algorithms: ['ES256'] });
    server = await ServerProcess.start({
      ...provider.env(),
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      DATABASE_URL: 'sqlite::memory:',
      SHUTDOWN_DELAY_MS: '0',
    });
    await server.ready();
  });

  afterAll(async () => {
    await server.stop();
    await provider.close();
  });

  it('logs the keys it holds, accepts an ES256 token and has no development token route', async () => {
    const line = await server.waitForLine((candidate) => candidate.includes('holding 1 key(s)'));
    expect(line).toContain('accepting RS256, ES256, EdDSA');
    expect(line).not.toContain('HS256');
    const client = new TestClient(server.url, { token: await provider.sign({ sub: 'prod-user' }) });
    try {
      expect((await client.waitFor('connection_established')).data.userId).toBe('prod-user');
    } finally {
      await client.close();
    }
    expect((await fetch(`${server.url}/dev/token`, { method: 'POST' })).status).toBe(404);
    const ready = (await (await fetch(`${server.url}/health/ready`)).json()) as {
      details: Record<string, Record<string, unknown>>;
    };
    expect(ready.details.auth).toMatchObject({ status: 'up', keys: 1 });
  });
});
