import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { TEST_JWT_SECRET } from '../support/tokens.js';

const TOKEN_COMMAND = fileURLToPath(new URL('../../dist/auth/token.command.js', import.meta.url));
const run = promisify(execFile);

describe('npm run token', () => {
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

  it('prints a token the gateway accepts for the given user', async () => {
    const { stdout } = await run(process.execPath, [TOKEN_COMMAND, 'carol'], {
      env: { JWT_SECRET: TEST_JWT_SECRET, JWT_ISSUER: 'https://auth.example.com', JWT_AUDIENCE: 'agent-gateway' },
    });
    const established = await app.connect({ token: stdout.trim() }).waitFor('connection_established');
    expect(established.data.userId).toBe('carol');
  });

  it('signs with the development secret when none is configured, and explains its usage', async () => {
    const { stdout } = await run(process.execPath, [TOKEN_COMMAND, 'dave', '60'], { env: {} });
    expect(stdout.trim().split('.')).toHaveLength(3);
    await expect(run(process.execPath, [TOKEN_COMMAND], { env: {} })).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('usage: npm run token'),
    });
  });
});
