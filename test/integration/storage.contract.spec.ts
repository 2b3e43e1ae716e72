import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { DatabaseService } from '../../src/database/database.service.js';
import { isStorageUnavailable } from '../../src/database/storage-errors.js';
import { AppError } from '../../src/errors/app-error.js';
import { MAX_REQUEST_ID_LENGTH, MAX_SEQ } from '../../src/protocol/events.js';
import { newId } from '../../src/database/ids.js';
import { LLM_PROVIDER } from '../../src/llm/llm.constants.js';
import { RunJournal } from '../../src/threads/run-journal.service.js';
import { ThreadsService } from '../../src/threads/threads.service.js';
import type { Message, Thread } from '../../src/threads/thread.types.js';
import { createTestDatabase, ENGINES, POSTGRES_SKIP_REASON, type TestDatabase } from '../support/databases.js';
import { ScriptedModel } from '../support/scripted-model.js';
import { startTestApp, type TestApp, type TestAppOptions } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';

/** SQLite's SQLITE_CONSTRAINT_* or PostgreSQL's class 23 (integrity constraint violation). */
const CONSTRAINT_VIOLATION = expect.stringMatching(/^(SQLITE_CONSTRAINT|23)/u);

/**
 * The rejection of `promise`. (better-sqlite3's errors are not `Error`s to Jest across realms, so
 * `rejects.toThrow()` cannot be trusted with them.)
 */
async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/**
 * One contract, every engine: what the service promises about storage must hold on SQLite and on
 * PostgreSQL alike. Each test gets a fresh database (a temporary file, or a new schema).
 */
for (const { engine, available } of ENGINES) {
  if (!available) {
    describe(`storage contract on ${engine}`, () => {
      it.skip(POSTGRES_SKIP_REASON, () => {});
    });
    continue;
  }

  describe(`storage contract on ${engine}`, () => {
    let db: TestDatabase;
    const apps: TestApp[] = [];

    async function boot(options: TestAppOptions = {}): Promise<TestApp> {
      const app = await startTestApp({ ready: true, ...options, env: { ...db.env, ...options.env } });
      apps.push(app);
      return app;
    }

    async function stop(app: TestApp): Promise<void> {
      apps.splice(apps.indexOf(app), 1);
      await app.close();
    }

    function seed(owner: string, text: string, thread?: Thread): { thread: Thread; message: Message; runId: string } {
      const now = new Date();
      const target = thread ?? { id: newId(), ownerId: owner, title: text, createdAt: now, updatedAt: now };
      const runId = newId();
      const message: Message = { id: newId(), threadId: target.id, role: 'user', content: text, runId, createdAt: now };
      return { thread: target, message, runId };
    }

    beforeEach(async () => {
      db = await createTestDatabase(engine);
    });

    afterEach(async () => {
      await Promise.all(apps.splice(0).map((app) => app.close()));
      await db.drop();
    });

    it('creates the schema on first start and keeps every thread and message across a restart', async () => {
      const first = await boot();
      expect(first.logs.messages('log').some((line) => line.includes('migration 0001-conversations applied'))).toBe(
        true,
      );
      const alice = first.connect({ token: signToken({ sub: 'alice' }) });
      await alice.waitFor('connection_established');
      alice.send('agent_request', { requestId: 'r1', message: 'Persist me 🙂 — ünïcødé' });
      const end = await alice.runEnd('r1');
      expect(end.event).toBe('agent_completed');
      await stop(first);

      const second = await boot();
      expect(second.logs.messages('log').some((line) => line.includes('applied'))).toBe(false);
      const threads = second.app.get(ThreadsService);
      const list = await threads.listThreads('alice', 10);
      expect(list.items.map((thread) => thread.title)).toEqual(['Persist me 🙂 — ünïcødé']);
      const history = await threads.history('alice', end.data.threadId as string, 10);
      expect(history.items.map((message) => [message.role, message.content])).toEqual([
        ['user', 'Persist me 🙂 — ünïcødé'],
        ['assistant', (end.data.message as { content: string }).content],
      ]);
      const stored = await threads.runEventsAfter(end.data.runId as string, 0);
      expect(stored.map((event) => event.seq)).toEqual(stored.map((_, index) => index + 1));
      expect(stored.at(-1)?.data).toEqual(end.data);
    });

    it('gives back every stored event exactly as it was sent, deltas kept one row per burst included', async () => {
      const app = await boot();
      const journal = app.app.get(RunJournal);
      const threads = app.app.get(ThreadsService);
      const { thread, message, runId } = seed('alice', 'stream me');
      const event = (seq: number, name: string, extra: Record<string, unknown>) => ({
        runId,
        seq,
        event: name,
        data: { ...extra, runId, requestId: 'r1', seq },
      });
      const started = event(1, 'agent_started', { threadId: thread.id });
      await journal.begin({
        newThread: thread,
        threadId: thread.id,
        runId,
        ownerId: 'alice',
        requestId: 'r1',
        userMessage: message,
        events: [started],
      });
      const sent = [
        started,
        event(2, 'agent_thinking', { step: 1 }),
        ...['Hel', 'lo ', '🙂 ', '"quoted" ', ''].map((text, index) =>
          event(3 + index, 'agent_message_delta', { text }),
        ),
        event(8, 'tool_executing', { callId: 'c1', tool: 'calculator', args: { expression: '1+1' } }),
        event(9, 'agent_message_delta', { text: 'alone' }),
        event(10, 'agent_thinking', { step: 2 }),
        ...['a', 'b'].map((text, index) => event(11 + index, 'agent_message_delta', { text })),
      ];
      // In three writes, as the live run stores them: a burst may end in the middle of the deltas.
      await journal.record(sent.slice(1, 5));
      await journal.record(sent.slice(5, 11));
      await journal.record(sent.slice(11));

      expect(await threads.runEventsAfter(runId, 0)).toEqual(sent);
      // 12 events in 9 rows: consecutive deltas of one write share a row (3-5, 6-7).
      const rows = await app.app
        .get(DatabaseService)
        .db.selectFrom('run_events')
        .select('seq')
        .where('run_id', '=', runId)
        .execute();
      expect(rows.map((row) => Number(row.seq))).toEqual([1, 2, 5, 7, 8, 9, 10, 11, 12]);
      for (const afterSeq of [1, 3, 4, 6, 7, 9, 11, 12]) {
        expect(await threads.runEventsAfter(runId, afterSeq)).toEqual(sent.filter((each) => each.seq > afterSeq));
      }
    });

    it('keeps the reasoning pieces of one step one row per burst too, between deltas, each given back as sent', async () => {
      const app = await boot();
      const journal = app.app.get(RunJournal);
      const threads = app.app.get(ThreadsService);
      const { thread, message, runId } = seed('alice', 'think aloud');
      // Keys in the order the live run sends them (`{...data, runId, requestId, seq}`).
      const event = (seq: number, name: string, extra: Record<string, unknown>) => ({
        runId,
        seq,
        event: name,
        data: { ...extra, runId, requestId: 'r1', seq },
      });
      const thinking = (seq: number, step: number, text: string) => event(seq, 'agent_thinking', { step, text });
      const delta = (seq: number, text: string) => event(seq, 'agent_message_delta', { text });
      const started = event(1, 'agent_started', { threadId: thread.id });
      await journal.begin({
        newThread: thread,
        threadId: thread.id,
        runId,
        ownerId: 'alice',
        requestId: 'r1',
        userMessage: message,
        events: [started],
      });
      const sent = [
        started,
        event(2, 'agent_thinking', { step: 1 }),
        thinking(3, 1, 'The user '),
        thinking(4, 1, 'asks 🙂 "why"; '),
        thinking(5, 1, ''),
        delta(6, 'Be'),
        delta(7, 'cause'),
        thinking(8, 1, 'alone between deltas'),
        delta(9, '.'),
        event(10, 'tool_executing', { callId: 'c1', tool: 'calculator', args: { expression: '1+1' } }),
        event(11, 'agent_thinking', { step: 2 }),
        thinking(12, 2, 'Now '),
        thinking(13, 2, 'step two.'),
        // Not the step above: a row of its own, as is a piece with anything besides its text and step.
        thinking(14, 3, 'step three'),
        event(15, 'agent_thinking', { step: 3, text: 'extra', note: 'kept as it is' }),
        thinking(16, 3, 'a '),
        thinking(17, 3, 'burst '),
        thinking(18, 3, 'split '),
        thinking(19, 3, 'in two'),
        delta(20, 'Done'),
      ];
      // As the live run stores them, in writes whose boundaries fall inside bursts (after 16 and 17).
      await journal.record(sent.slice(1, 16));
      await journal.record(sent.slice(16, 17));
      await journal.record(sent.slice(17));

      const all = await threads.runEventsAfter(runId, 0);
      expect(all).toEqual(sent);
      // The very JSON that was sent, key order included: a replay is the live stream again.
      expect(all.map((each) => JSON.stringify(each.data))).toEqual(sent.map((each) => JSON.stringify(each.data)));
      // 20 events in 15 rows: 3-5, 6-7, 12-13 and 18-19 share a row.
      const rows = await app.app
        .get(DatabaseService)
        .db.selectFrom('run_events')
        .select(['seq', 'event'])
        .where('run_id', '=', runId)
        .orderBy('seq')
        .execute();
      expect(rows.map((row) => [Number(row.seq), row.event])).toEqual([
        [1, 'agent_started'],
        [2, 'agent_thinking'],
        [5, 'agent_thinking_run'],
        [7, 'agent_message_delta_run'],
        [8, 'agent_thinking'],
        [9, 'agent_message_delta'],
        [10, 'tool_executing'],
        [11, 'agent_thinking'],
        [13, 'agent_thinking_run'],
        [14, 'agent_thinking'],
        [15, 'agent_thinking'],
        [16, 'agent_thinking'],
        [17, 'agent_thinking'],
        [19, 'agent_thinking_run'],
        [20, 'agent_message_delta'],
      ]);
      for (let afterSeq = 0; afterSeq <= sent.length; afterSeq += 1) {
        expect(await threads.runEventsAfter(runId, afterSeq)).toEqual(sent.filter((each) => each.seq > afterSeq));
      }
      // A page of rows gives whole rows' worth of events, in order.
      expect((await threads.runEventsAfter(runId, 3, 2)).map((each) => each.seq)).toEqual([4, 5, 6, 7]);
      expect(await threads.lastStoredEvent(runId)).toEqual(sent.at(-1));

      // The last stored event is the last piece of a row of reasoning, when that is where the run is.
      await journal.record([thinking(21, 4, 'still '), thinking(22, 4, 'thinking')]);
      expect(await threads.lastStoredEvent(runId)).toEqual(thinking(22, 4, 'thinking'));
      expect(await threads.lastStoredSeq(runId)).toBe(22);
    });

    it('replays a finished run with reasoning frame for frame as it was streamed live', async () => {
      const model = new ScriptedModel();
      const app = await boot({ override: (builder) => builder.overrideProvider(LLM_PROVIDER).useValue(model) });
      const alice = app.connect({ token: signToken({ sub: 'alice' }) });
      await alice.waitFor('connection_established');
      alice.send('agent_request', { requestId: 'r1', message: 'think first' });
      const started = await alice.waitFor('agent_started');
      (await model.nextCall()).reasoning('I should ', 'think ', 'first.').text('Thought ', 'through.').finish();
      expect((await alice.runEnd('r1')).event).toBe('agent_completed');
      const runId = started.data.runId as string;
      const live = alice.runFrames(runId);
      expect(live.map((frame) => [frame.event, frame.data.text])).toEqual([
        ['agent_started', undefined],
        ['agent_thinking', undefined],
        ['agent_thinking', 'I should '],
        ['agent_thinking', 'think '],
        ['agent_thinking', 'first.'],
        ['agent_message_delta', 'Thought '],
        ['agent_message_delta', 'through.'],
        ['agent_completed', undefined],
      ]);

      const later = app.connect({ token: signToken({ sub: 'alice' }) });
      await later.waitFor('connection_established');
      later.send('resume', { requestId: 'replay', runId, afterSeq: 0 });
      const resumed = await later.waitFor('resumed', (data) => data.requestId === 'replay');
      expect(resumed.data).toMatchObject({ status: 'completed', replayed: live.length });
      await later.waitFor('agent_completed', (data) => data.runId === runId);
      expect(later.runFrames(runId).map((frame) => JSON.stringify(frame))).toEqual(
        live.map((frame) => JSON.stringify(frame)),
      );
      // The model's chunks arrive in one turn of the event loop, so each burst was stored as one row.
      const rows = await app.app
        .get(DatabaseService)
        .db.selectFrom('run_events')
        .select('event')
        .where('run_id', '=', runId)
        .orderBy('seq')
        .execute();
      expect(rows.map((row) => row.event)).toEqual([
        'agent_started',
        'agent_thinking',
        'agent_thinking_run',
        'agent_message_delta_run',
        'agent_completed',
      ]);
    });

    if (engine === 'postgres') {
      it('lets replicas that start together on one database run each migration exactly once', async () => {
        const replicas = await Promise.all([boot(), boot(), boot()]);
        const applied = replicas.flatMap((replica) =>
          replica.logs.messages('log').filter((line) => line.includes('migration 0001-conversations applied')),
        );
        expect(applied).toHaveLength(1);
        // Each replica reads what another wrote: they share one schema.
        const { thread, message, runId } = seed('alice', 'shared');
        await replicas[0]?.app.get(RunJournal).begin({
          newThread: thread,
          threadId: thread.id,
          runId,
          ownerId: 'alice',
          requestId: 'q',
          userMessage: message,
          events: [],
        });
        const seen = await replicas[2]?.app.get(ThreadsService).listThreads('alice', 10);
        expect(seen?.items.map((item) => item.id)).toEqual([thread.id]);
      });
    } else {
      it('refuses a second instance on the same file, naming the file and the process that holds it', async () => {
        const first = await boot();
        await expect(boot()).rejects.toThrow(
          new RegExp(`database file \\S*test\\.db is in use by another process \\(pid ${process.pid} on `, 'u'),
        );
        // The first one is untouched, and once it is gone the file is free again.
        expect(first.readiness.snapshot.phase).toBe('ready');
        await stop(first);
        await boot();
      });
    }

    it('marks the runs of a process that died as interrupted at start-up, and resume tells the client', async () => {
      const first = await boot();
      const dead = seed('alice', 'the process running this died');
      const { db: database } = first.app.get(DatabaseService);
      await first.app.get(RunJournal).begin({
        newThread: dead.thread,
        threadId: dead.thread.id,
        runId: dead.runId,
        ownerId: 'alice',
        requestId: 'a',
        userMessage: dead.message,
        events: [],
      });
      // As if another process (now gone: it holds no lease) had been running it.
      await database
        .updateTable('runs')
        .set({ instance_id: 'a-process-that-died' })
        .where('id', '=', dead.runId)
        .execute();
      const live = seed('alice', 'the first instance is still running this');
      await first.app.get(RunJournal).begin({
        newThread: live.thread,
        threadId: live.thread.id,
        runId: live.runId,
        ownerId: 'alice',
        requestId: 'b',
        userMessage: live.message,
        events: [],
      });

      // A second instance starting while the first still lives (replicas on PostgreSQL). A second
      // process on the same SQLite file is refused: there the first has stopped, and its runs count
      // as dead.
      if (engine === 'sqlite') await stop(first);
      const second = await boot();
      const threads = second.app.get(ThreadsService);
      expect(await threads.findRun('alice', dead.runId)).toMatchObject({
        status: 'interrupted',
        error: { code: 'RUN_INTERRUPTED' },
      });
      expect((await threads.findRun('alice', live.runId)).status).toBe(
        engine === 'postgres' ? 'running' : 'interrupted',
      );

      const alice = second.connect({ token: signToken({ sub: 'alice' }) });
      await alice.waitFor('connection_established');
      alice.send('resume', { requestId: 'back', runId: dead.runId, afterSeq: 0 });
      const resumed = await alice.waitFor('resumed', (data) => data.requestId === 'back');
      expect(resumed.data).toMatchObject({
        recovered: false,
        status: 'interrupted',
        replayed: 0,
        error: { code: 'RUN_INTERRUPTED' },
      });
    });

    it('interrupts the runs still executing when the service shuts down, and says so to their clients', async () => {
      const model = new ScriptedModel();
      const first = await boot({ override: (builder) => builder.overrideProvider(LLM_PROVIDER).useValue(model) });
      const alice = first.connect({ token: signToken({ sub: 'alice' }) });
      await alice.waitFor('connection_established');
      alice.send('agent_request', { requestId: 'r1', message: 'long job' });
      const started = await alice.waitFor('agent_started');
      (await model.nextCall()).text('half an ans');
      await alice.waitFor('agent_message_delta');
      const end = alice.runEnd('r1');
      // Nest's own shutdown, with the client still connected (TestApp.close would disconnect it first).
      apps.splice(apps.indexOf(first), 1);
      await first.app.close();
      expect((await end).data).toMatchObject({ code: 'RUN_INTERRUPTED', retryable: true });
      await alice.close();

      const second = await boot();
      const run = await second.app.get(ThreadsService).findRun('alice', started.data.runId as string);
      expect(run.status).toBe('interrupted');
    });

    it('leaves no half-written rows when a transaction fails', async () => {
      const app = await boot();
      const journal = app.app.get(RunJournal);
      const threads = app.app.get(ThreadsService);
      const bad = seed('alice', 'doomed');
      // The role check constraint rejects the message after the thread and run rows were written.
      const invalid = { ...bad.message, role: 'system' } as unknown as Message;
      expect(
        await failureOf(
          journal.begin({
            newThread: bad.thread,
            threadId: bad.thread.id,
            runId: bad.runId,
            ownerId: 'alice',
            requestId: 'x',
            userMessage: invalid,
            events: [],
          }),
        ),
      ).toMatchObject({ code: CONSTRAINT_VIOLATION });
      expect((await threads.listThreads('alice', 10)).items).toEqual([]);
      await expect(threads.findRun('alice', bad.runId)).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });

      const good = seed('alice', 'fine');
      await journal.begin({
        newThread: good.thread,
        threadId: good.thread.id,
        runId: good.runId,
        ownerId: 'alice',
        requestId: 'y',
        userMessage: good.message,
        events: [],
      });
      // The answer reuses the user message's id: its insert fails, so the run must stay unfinished.
      const clash: Message = { ...good.message, role: 'assistant', content: 'answer' };
      const event = { runId: good.runId, seq: 1, event: 'agent_completed', data: { seq: 1 } };
      expect(
        await failureOf(
          journal.end({
            runId: good.runId,
            threadId: good.thread.id,
            outcome: { status: 'completed', at: new Date() },
            assistantMessage: clash,
            events: [event],
          }),
        ),
      ).toMatchObject({ code: CONSTRAINT_VIOLATION });
      expect((await threads.findRun('alice', good.runId)).status).toBe('running');
      expect(await threads.runEventsAfter(good.runId, 0)).toEqual([]);
      expect((await threads.history('alice', good.thread.id, 10)).items.map((message) => message.role)).toEqual([
        'user',
      ]);
    });

    it('reports a value the store refuses as what it is, never as an outage (no retryable STORAGE_UNAVAILABLE)', async () => {
      const app = await boot();
      const journal = app.app.get(RunJournal);
      const first = seed('alice', 'once');
      const start = {
        newThread: first.thread,
        threadId: first.thread.id,
        runId: first.runId,
        ownerId: 'alice',
        requestId: 'x',
        userMessage: first.message,
        events: [],
      };
      await journal.begin(start);
      const duplicate = await failureOf(journal.begin(start));
      expect(duplicate).toMatchObject({ code: CONSTRAINT_VIOLATION });
      expect(duplicate).not.toBeInstanceOf(AppError);
      expect(isStorageUnavailable(duplicate)).toBe(false);
      expect(app.app.get(DatabaseService).currentHealth.status).toBe('up');
    });

    it('stores and finds what the protocol allows at its bounds, alike on both engines', async () => {
      const app = await boot();
      const journal = app.app.get(RunJournal);
      const threads = app.app.get(ThreadsService);
      // A user id of 255 characters (the handshake refuses longer ones), in any script.
      const owner = `${'ü'.repeat(200)}${'用'.repeat(54)}😀`.slice(0, 255);
      expect(owner).toHaveLength(255);
      const run = seed(owner, 'at the bounds');
      await journal.begin({
        newThread: run.thread,
        threadId: run.thread.id,
        runId: run.runId,
        ownerId: owner,
        requestId: 'r'.repeat(MAX_REQUEST_ID_LENGTH),
        userMessage: run.message,
        events: [{ runId: run.runId, seq: 1, event: 'agent_started', data: { seq: 1 } }],
      });
      expect((await threads.listThreads(owner, 10)).items.map((thread) => thread.id)).toEqual([run.thread.id]);
      expect((await threads.findRun(owner, run.runId)).requestId).toBe('r'.repeat(MAX_REQUEST_ID_LENGTH));
      // The largest afterSeq a resume may ask for (2³¹ − 1): nothing after it, and no error.
      expect(await threads.runEventsAfter(run.runId, MAX_SEQ)).toEqual([]);
      expect(await threads.runEventsAfter(run.runId, 0)).toHaveLength(1);
    });

    it('pages threads newest-active first and history backwards, each owner seeing only their own', async () => {
      const app = await boot();
      const journal = app.app.get(RunJournal);
      const threads = app.app.get(ThreadsService);
      const made: Thread[] = [];
      for (let index = 0; index < 5; index += 1) {
        const { thread, message, runId } = seed('alice', `thread ${index}`);
        await journal.begin({
          newThread: thread,
          threadId: thread.id,
          runId,
          ownerId: 'alice',
          requestId: `r${index}`,
          userMessage: message,
          events: [],
        });
        made.push(thread);
      }
      const other = seed('bob', 'bob only');
      await journal.begin({
        newThread: other.thread,
        threadId: other.thread.id,
        runId: other.runId,
        ownerId: 'bob',
        requestId: 'b',
        userMessage: other.message,
        events: [],
      });

      const titles: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await threads.listThreads('alice', 2, cursor);
        titles.push(...page.items.map((thread) => thread.title));
        cursor = page.next;
      } while (cursor !== undefined);
      expect(new Set(titles)).toEqual(new Set(made.map((thread) => thread.title)));
      expect(titles).toHaveLength(5);

      const target = made[0];
      if (target === undefined) throw new Error('no thread');
      for (let index = 0; index < 4; index += 1) {
        const { message, runId } = seed('alice', `follow-up ${index}`, target);
        await journal.begin({
          threadId: target.id,
          runId,
          ownerId: 'alice',
          requestId: `f${index}`,
          userMessage: message,
          events: [],
        });
      }
      const pages: string[][] = [];
      let before: string | undefined;
      do {
        const page = await threads.history('alice', target.id, 2, before);
        pages.unshift(page.items.map((message) => message.content));
        before = page.next;
      } while (before !== undefined);
      expect(pages.flat()).toEqual(['thread 0', 'follow-up 0', 'follow-up 1', 'follow-up 2', 'follow-up 3']);
      expect((await threads.listThreads('alice', 10)).items[0]?.id).toBe(target.id);

      await expect(threads.history('bob', target.id, 10)).rejects.toMatchObject({ code: 'THREAD_NOT_FOUND' });
      expect((await threads.listThreads('bob', 10)).items.map((thread) => thread.title)).toEqual(['bob only']);
    });
  });
}
