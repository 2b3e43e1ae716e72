import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { TEST_JWT_SECRET } from '../support/tokens.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TOKEN_COMMAND = fileURLToPath(new URL('../../dist/auth/token.command.js', import.meta.url));
const ENSURE_BUILD = fileURLToPath(new URL('../../src/dev/ensure-build.command.ts', import.meta.url));
const run = promisify(execFile);
const ISSUER_ENV = {
  JWT_SECRET: TEST_JWT_SECRET,
  JWT_ISSUER: 'https://auth.example.com',
  JWT_AUDIENCE: 'agent-gateway',
};

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
    const { stdout } = await run(process.execPath, [TOKEN_COMMAND, 'carol'], { env: ISSUER_ENV });
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

  it('prints its usage for --help and -h, and refuses an option rather than taking it for a user id', async () => {
    for (const flag of ['--help', '-h']) {
      const { stdout, stderr } = await run(process.execPath, [TOKEN_COMMAND, 'erin', flag], { env: {} });
      expect({ stdout, stderr }).toEqual({
        stdout: expect.stringMatching(/^usage: npm run token -- <userId>[^]*JWT_SECRET/u),
        stderr: '',
      });
    }
    await expect(run(process.execPath, [TOKEN_COMMAND, '--user=erin'], { env: {} })).rejects.toMatchObject({
      code: 2,
      stdout: '',
      stderr: expect.stringMatching(/^unknown option --user=erin\nusage: /u),
    });
  });

  it("says, inside the production image, that it needs the server's JWT_SECRET", async () => {
    await expect(
      run(process.execPath, [TOKEN_COMMAND, 'erin'], { env: { NODE_ENV: 'production' } }),
    ).rejects.toMatchObject({
      code: 1,
      stdout: '',
      stderr: expect.stringContaining('JWT_SECRET: is required with NODE_ENV=production'),
    });
  });

  it('npm run token goes straight to the token when dist/ is fresh: no build, nothing on stderr', async () => {
    // npm and the build need PATH and HOME; NODE_OPTIONS (Jest's VM modules flag) stays out.
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? ROOT, ...ISSUER_ENV };
    // Whatever the last build was, this one leaves dist/ fresh (and says what it builds, on stderr).
    await run(process.execPath, ['--import', 'tsx', ENSURE_BUILD], { cwd: ROOT, env });
    const { stdout, stderr } = await run('npm', ['run', '--silent', 'token', '--', 'frank'], { cwd: ROOT, env });
    expect(stderr).toBe('');
    const established = await app.connect({ token: stdout.trim() }).waitFor('connection_established');
    expect(established.data.userId).toBe('frank');
  }, 180_000);
});
