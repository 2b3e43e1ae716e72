import { describe, expect, it } from '@jest/globals';
import { createTestDatabase, ENGINES, POSTGRES_SKIP_REASON } from '../support/databases.js';
import { processFixture } from '../support/process-fixture.js';
import { ServerProcess } from '../support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../support/tokens.js';
import { TestClient } from '../support/ws-client.js';

/**
 * The server process is killed (SIGKILL: no shutdown hook runs) in the middle of a run and a new
 * one starts on the same database, as an orchestrator does. What the client sees must be exact.
 */
for (const { engine, available } of ENGINES) {
  if (!available) {
    describe(`restart in the middle of a run on ${engine}`, () => {
      it.skip(POSTGRES_SKIP_REASON, () => {});
    });
    continue;
  }

  describe(`restart in the middle of a run on ${engine}`, () => {
    const fixture = processFixture();
    const { servers, clients } = fixture;

    async function boot(): Promise<ServerProcess> {
      const server = await ServerProcess.start({
        ...fixture.db?.env,
        JWT_SECRET: TEST_JWT_SECRET,
        LOCAL_LLM_TOKEN_DELAY_MS: '25',
        // 20 runs at once, none of them queued.
        AGENT_MAX_CONCURRENT_RUNS: '32',
        // PostgreSQL: a killed process is dead once its lease expires; short, so the test is too.
        FLEET_LEASE_TTL_MS: '1000',
      });
      servers.push(server);
      await server.ready();
      return server;
    }

    async function connect(server: ServerProcess): Promise<TestClient> {
      const client = new TestClient(server.url, { token: signToken({ sub: 'alice' }) });
      clients.push(client);
      await client.waitFor('connection_established');
      return client;
    }

    it('keeps the user message, marks the run interrupted and tells a resuming client so; resending works', async () => {
      fixture.db = await createTestDatabase(engine);
      const first = await boot();
      const before = await connect(first);
      const message = 'Tell me a long story about readiness probes, in many words please';
      before.send('agent_request', { requestId: 'story', message });
      const started = await before.waitFor('agent_started');
      const runId = started.data.runId;
      const threadId = started.data.threadId;
      await before.waitFor('agent_message_delta', (data) => data.seq === 5);

      await first.stop();
      expect((await before.closed).code).toBe(1006);
      const lastSeen = Math.max(...before.runFrames(runId).map((frame) => Number(frame.data.seq)));

      const second = await boot();
      // At start-up (SQLite), or once the dead process's lease has expired (PostgreSQL).
      await second.waitForLine((line) => line.includes('marked interrupted'));
      const after = await connect(second);
      after.send('resume', { requestId: 'back', runId, afterSeq: lastSeen });
      const resumed = await after.waitFor('resumed', (data) => data.requestId === 'back');
      expect(resumed.data).toEqual({
        requestId: 'back',
        runId,
        threadId,
        recovered: false,
        status: 'interrupted',
        replayed: 0,
        error: { code: 'RUN_INTERRUPTED', message: expect.any(String) },
      });

      after.send('thread_history', { requestId: 'h', threadId });
      const history = await after.waitFor('thread_history_result', (data) => data.requestId === 'h');
      expect(
        (history.data.messages as Array<{ role: string; content: string }>).map((m) => [m.role, m.content]),
      ).toEqual([['user', message]]);

      after.send('agent_request', { requestId: 'again', message, threadId });
      const end = await after.runEnd('again');
      expect(end.event).toBe('agent_completed');
      expect(end.data.threadId).toBe(threadId);
    });

    it('kill -9 in the middle of 20 runs: every acknowledged message is stored once, every run reads interrupted', async () => {
      fixture.db = await createTestDatabase(engine);
      const first = await boot();
      const users = Array.from({ length: 20 }, (_, index) => `user-${index}`);
      const before = await Promise.all(
        users.map(async (user) => {
          const client = new TestClient(first.url, { token: signToken({ sub: user }) });
          clients.push(client);
          await client.waitFor('connection_established');
          client.send('agent_request', { requestId: 'r', message: `message of ${user}: tell me a long story` });
          const started = await client.waitFor('agent_started');
          return { user, runId: String(started.data.runId), threadId: String(started.data.threadId), client };
        }),
      );
      // Every run is streaming when the process dies.
      await Promise.all(before.map(({ client }) => client.waitFor('agent_message_delta')));
      await first.stop();

      const second = await boot();
      await second.waitForLine((line) => line.includes('20 run(s) of instance(s) that died marked interrupted'));
      for (const { user, runId, threadId } of before) {
        const after = new TestClient(second.url, { token: signToken({ sub: user }) });
        clients.push(after);
        await after.waitFor('connection_established');
        after.send('resume', { requestId: 'back', runId, afterSeq: 0 });
        const resumed = await after.waitFor('resumed');
        expect(resumed.data).toMatchObject({ runId, recovered: false, status: 'interrupted' });
        after.send('thread_list', { requestId: 'threads' });
        const list = await after.waitFor('thread_list_result');
        expect((list.data.threads as Array<{ id: string }>).map((thread) => thread.id)).toEqual([threadId]);
        after.send('thread_history', { requestId: 'h', threadId });
        const history = await after.waitFor('thread_history_result');
        expect(
          (history.data.messages as Array<{ role: string; content: string }>).map((m) => [m.role, m.content]),
        ).toEqual([['user', `message of ${user}: tell me a long story`]]);
      }
    });
  });
}
