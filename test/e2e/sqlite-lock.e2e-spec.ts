import { describe, expect, it } from '@jest/globals';
import { createTestDatabase } from '../support/databases.js';
import { processFixture } from '../support/process-fixture.js';
import { ServerProcess } from '../support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../support/tokens.js';
import { TestClient } from '../support/ws-client.js';

/**
 * One SQLite file, one process: a second one would take the first one's live runs for a dead
 * process's and mark them interrupted under it.
 */
describe('two processes on one SQLite file', () => {
  const fixture = processFixture();
  const { servers, clients } = fixture;

  async function start(env: Record<string, string> = {}): Promise<ServerProcess> {
    const server = await ServerProcess.start({ ...fixture.db?.env, JWT_SECRET: TEST_JWT_SECRET, ...env });
    servers.push(server);
    return server;
  }

  it('refuses to start the second: exit 1 naming the file and the process that holds it, and the first keeps its run', async () => {
    fixture.db = await createTestDatabase('sqlite');
    const first = await start({ LOCAL_LLM_TOKEN_DELAY_MS: '40' });
    await first.ready();
    const alice = new TestClient(first.url, { token: signToken({ sub: 'alice' }) });
    clients.push(alice);
    await alice.waitFor('connection_established');
    alice.send('agent_request', { requestId: 'live', message: 'a run that is still going when the second one starts' });
    await alice.waitFor('agent_message_delta');

    const second = await start();
    expect(await second.exited).toEqual({ code: 1, signal: null });
    const file = (fixture.db.env.DATABASE_URL ?? '').slice('sqlite:'.length);
    const refusal = second.output.find((line) => line.includes('is in use by another process'));
    expect(refusal).toContain(`database file ${file} is in use by another process (pid ${first.child.pid} on `);

    const end = await alice.runEnd('live');
    expect(end.event).toBe('agent_completed');

    // Once the holder is gone, however it went (here: killed), the file is free.
    await first.stop();
    const third = await start();
    await third.ready();
  });
});
