import { afterEach, describe, expect, it } from '@jest/globals';
import { LLM_PROVIDER } from '../../src/llm/llm.constants.js';
import { RunJournal } from '../../src/threads/run-journal.service.js';
import { storageUnavailable } from '../../src/errors/client-errors.js';
import { ThreadsService } from '../../src/threads/threads.service.js';
import { ScriptedModel } from '../support/scripted-model.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import type { ReceivedFrame, TestClient } from '../support/ws-client.js';

const MISSING_ID = '0190a3b2-0000-7000-8000-000000000000';

let app: TestApp | undefined;
let model: ScriptedModel;

async function start(env: Record<string, string> = {}): Promise<TestApp> {
  model = new ScriptedModel();
  app = await startTestApp({
    ready: true,
    env,
    override: (builder) => builder.overrideProvider(LLM_PROVIDER).useValue(model),
  });
  return app;
}

async function startedRun(client: TestClient, requestId: string, message = 'hello'): Promise<ReceivedFrame> {
  client.send('agent_request', { requestId, message });
  return client.waitFor('agent_started', (data) => data.requestId === requestId);
}

function deltasOf(frames: readonly ReceivedFrame[]): string {
  return frames
    .filter((frame) => frame.event === 'agent_message_delta')
    .map((frame) => String(frame.data.text))
    .join('');
}

afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('what is committed when', () => {
  it('commits the user message before agent_started and the answer (with the run completed) before agent_completed', async () => {
    const started = await start();
    const threads = started.app.get(ThreadsService);
    const alice = await started.connectAs();
    const first = await startedRun(alice, 'r1', 'remember this');
    const { runId, threadId } = first.data as { runId: string; threadId: string };

    const call = await model.nextCall();
    const before = await threads.history('alice', threadId, 10);
    expect(before.items.map((message) => [message.role, message.content])).toEqual([['user', 'remember this']]);
    expect((await threads.findRun('alice', runId)).status).toBe('running');

    call.text('Noted', '.').finish({ promptTokens: 7, completionTokens: 2 });
    const end = await alice.runEnd('r1');
    expect(end.event).toBe('agent_completed');
    const after = await threads.history('alice', threadId, 10);
    expect(after.items.map((message) => [message.role, message.content])).toEqual([
      ['user', 'remember this'],
      ['assistant', 'Noted.'],
    ]);
    const run = await threads.findRun('alice', runId);
    expect(run).toMatchObject({ status: 'completed', usage: { promptTokens: 7, completionTokens: 2 } });
    expect(run.messageId).toBe((end.data.message as { id: string }).id);
    expect(end.data.usage).toEqual({ promptTokens: 7, completionTokens: 2 });
  });

  it('sends the events of a run numbered 1, 2, 3 … with the user message in agent_started', async () => {
    const started = await start();
    const alice = await started.connectAs();
    const first = await startedRun(alice, 'r1', 'hi');
    (await model.nextCall()).text('a', 'b', 'c').finish();
    await alice.runEnd('r1');
    const frames = alice.runFrames(first.data.runId);
    expect(frames.map((frame) => frame.event)).toEqual([
      'agent_started',
      'agent_thinking',
      'agent_message_delta',
      'agent_message_delta',
      'agent_message_delta',
      'agent_completed',
    ]);
    expect(frames.map((frame) => frame.data.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(first.data.userMessage).toMatchObject({ role: 'user', content: 'hi', runId: first.data.runId });
  });
});

describe('agent_cancel', () => {
  it('stops the model stream mid-reply and ends the run cancelled, with no answer stored', async () => {
    const started = await start();
    const threads = started.app.get(ThreadsService);
    const alice = await started.connectAs();
    const first = await startedRun(alice, 'r1');
    const runId = String(first.data.runId);
    const call = await model.nextCall();
    call.text('partial ');
    await alice.waitFor('agent_message_delta', (data) => data.runId === runId);

    alice.send('agent_cancel', { runId });
    const end = await alice.runEnd('r1');
    expect(end.event).toBe('agent_cancelled');
    await expect(call.aborted.promise).resolves.toBeDefined();
    expect((await threads.findRun('alice', runId)).status).toBe('cancelled');
    const history = await threads.history('alice', String(first.data.threadId), 10);
    expect(history.items.map((message) => message.role)).toEqual(['user']);
  });

  it('cancels a run waiting in the queue before the model is ever called', async () => {
    const started = await start({ AGENT_MAX_CONCURRENT_RUNS: '1', AGENT_QUEUE_SIZE: '1' });
    const alice = await started.connectAs('alice');
    const bob = await started.connectAs('bob');
    await startedRun(alice, 'a1');
    const busy = await model.nextCall();
    const queued = await startedRun(bob, 'b1');
    await bob.waitFor('agent_queued', (data) => data.runId === queued.data.runId);

    bob.send('agent_cancel', { runId: queued.data.runId });
    expect((await bob.runEnd('b1')).event).toBe('agent_cancelled');
    busy.text('done').finish();
    await alice.runEnd('a1');
    expect(model.calls).toHaveLength(1);
  });

  it("answers RUN_NOT_FOUND for another user's run exactly as for a missing one, and RUN_NOT_ACTIVE for an ended one", async () => {
    const started = await start();
    const alice = await started.connectAs('alice');
    const bob = await started.connectAs('bob');
    const first = await startedRun(alice, 'r1');
    const call = await model.nextCall();

    bob.send('agent_cancel', { requestId: 'steal', runId: first.data.runId });
    bob.send('agent_cancel', { requestId: 'ghost', runId: MISSING_ID });
    const steal = await bob.waitFor('error', (data) => data.requestId === 'steal');
    const ghost = await bob.waitFor('error', (data) => data.requestId === 'ghost');
    expect(steal.data).toMatchObject({ code: 'RUN_NOT_FOUND', message: `run ${String(first.data.runId)} not found` });
    expect(ghost.data).toMatchObject({ code: 'RUN_NOT_FOUND', message: `run ${MISSING_ID} not found` });

    call.text('x').finish();
    await alice.runEnd('r1');
    alice.send('agent_cancel', { requestId: 'late', runId: first.data.runId });
    const late = await alice.waitFor('error', (data) => data.requestId === 'late');
    expect(late.data).toMatchObject({ code: 'RUN_NOT_ACTIVE', retryable: false });

    alice.send('agent_cancel', { requestId: 'bad', runId: 'not-a-uuid' });
    const bad = await alice.waitFor('error', (data) => data.requestId === 'bad');
    expect(bad.data).toMatchObject({ code: 'VALIDATION_FAILED', field: 'runId' });
  });
});

describe('limits', () => {
  it('refuses a run over AGENT_MAX_RUNS_PER_USER with a retryable RATE_LIMITED, storing nothing', async () => {
    const started = await start({ AGENT_MAX_RUNS_PER_USER: '2' });
    const threads = started.app.get(ThreadsService);
    const alice = await started.connectAs('alice');
    await startedRun(alice, 'r1');
    await startedRun(alice, 'r2');
    alice.send('agent_request', { requestId: 'r3', message: 'one too many' });
    const refused = await alice.waitFor('agent_error', (data) => data.requestId === 'r3');
    expect(refused.data).toMatchObject({ code: 'RATE_LIMITED', retryable: true, retryAfterMs: expect.any(Number) });
    expect(refused.data.runId).toBeUndefined();
    expect((await threads.listThreads('alice', 10)).items).toHaveLength(2);

    const bob = await started.connectAs('bob');
    await startedRun(bob, 'b1');
    for (let index = 0; index < 3; index += 1) (await model.nextCall()).text('ok').finish();
    await Promise.all([alice.runEnd('r1'), alice.runEnd('r2'), bob.runEnd('b1')]);

    const again = await startedRun(alice, 'r4');
    expect(again.data.runId).toEqual(expect.any(String));
    (await model.nextCall()).text('ok').finish();
    await alice.runEnd('r4');
  });

  it('queues runs over AGENT_MAX_CONCURRENT_RUNS with agent_queued, refuses beyond the queue with SERVER_BUSY, and starts the queued run when a slot frees', async () => {
    const started = await start({ AGENT_MAX_CONCURRENT_RUNS: '1', AGENT_QUEUE_SIZE: '1' });
    const [alice, bob, carol] = await Promise.all([
      started.connectAs('alice'),
      started.connectAs('bob'),
      started.connectAs('carol'),
    ]);
    await startedRun(alice, 'a1');
    const first = await model.nextCall();
    const queued = await startedRun(bob, 'b1');
    const position = await bob.waitFor('agent_queued', (data) => data.runId === queued.data.runId);
    expect(position.data).toMatchObject({ position: 1, seq: 2 });
    carol.send('agent_request', { requestId: 'c1', message: 'me too' });
    const busy = await carol.waitFor('agent_error', (data) => data.requestId === 'c1');
    expect(busy.data).toMatchObject({ code: 'SERVER_BUSY', retryable: true });

    expect(model.calls).toHaveLength(1);
    first.text('first').finish();
    await alice.runEnd('a1');
    const second = await model.nextCall();
    second.text('second').finish();
    const end = await bob.runEnd('b1');
    expect(end.event).toBe('agent_completed');
    expect(bob.runFrames(queued.data.runId).map((frame) => frame.event)).toEqual([
      'agent_started',
      'agent_queued',
      'agent_thinking',
      'agent_message_delta',
      'agent_completed',
    ]);
  });

  it('ends a run that outlives AGENT_RUN_TIMEOUT_MS with a retryable RUN_TIMEOUT and stops the model', async () => {
    const started = await start({ AGENT_RUN_TIMEOUT_MS: '200' });
    const threads = started.app.get(ThreadsService);
    const alice = await started.connectAs();
    const first = await startedRun(alice, 'r1');
    const call = await model.nextCall();
    call.text('thinking hard...');
    const end = await alice.runEnd('r1');
    expect(end.event).toBe('agent_error');
    expect(end.data).toMatchObject({ code: 'RUN_TIMEOUT', retryable: true });
    await call.aborted.promise;
    expect(await threads.findRun('alice', String(first.data.runId))).toMatchObject({
      status: 'failed',
      error: { code: 'RUN_TIMEOUT' },
    });
  });
});

describe('bad requests', () => {
  it.each([
    ['an empty message', { message: '' }, 'message'],
    ['a blank message', { message: '  \n\t ' }, 'message'],
    ['a message over AGENT_MESSAGE_MAX_CHARS', { message: 'x'.repeat(101) }, 'message'],
    ['a message that is not a string', { message: 42 }, 'message'],
    ['a message with a NUL character', { message: 'a\u0000b' }, 'message'],
    ['a message with a lone surrogate', { message: 'broken \ud800 pair' }, 'message'],
    ['a malformed threadId', { message: 'hi', threadId: '../../etc/passwd' }, 'threadId'],
  ])('refuses %s with VALIDATION_FAILED naming the field, storing nothing', async (_name, data, field) => {
    const started = await start({ AGENT_MESSAGE_MAX_CHARS: '100' });
    const threads = started.app.get(ThreadsService);
    const alice = await started.connectAs();
    alice.send('agent_request', { requestId: 'bad', ...data });
    const error = await alice.waitFor('error', (frame) => frame.requestId === 'bad');
    expect(error.data).toMatchObject({ code: 'VALIDATION_FAILED', field, retryable: false });
    expect((await threads.listThreads('alice', 10)).items).toEqual([]);
    expect(model.calls).toHaveLength(0);
  });
});

describe('resume', () => {
  it('lets a client that reconnects mid-run replay what it missed and follow the rest live, losing nothing', async () => {
    const started = await start();
    const first = await started.connectAs();
    const run = await startedRun(first, 'r1');
    const runId = run.data.runId;
    const call = await model.nextCall();
    call.text('one ', 'two ');
    await first.waitFor('agent_message_delta', (data) => data.runId === runId && data.text === 'two ');
    await first.close();
    const seenBefore = first.runFrames(runId);
    const lastSeen = Number(seenBefore.at(-1)?.data.seq);

    call.text('three ');
    const second = await started.connectAs();
    second.send('resume', { requestId: 'again', runId, afterSeq: lastSeen });
    const resumed = await second.waitFor('resumed', (data) => data.requestId === 'again');
    expect(resumed.data).toMatchObject({ runId, recovered: true, status: 'running' });
    call.text('four').finish();
    const end = await second.waitFor('agent_completed', (data) => data.runId === runId);

    const after = second.runFrames(runId);
    const seqs = [...seenBefore, ...after].map((frame) => frame.data.seq);
    expect(seqs).toEqual(seqs.map((_, index) => index + 1));
    expect(deltasOf([...seenBefore, ...after])).toBe('one two three four');
    expect((end.data.message as { content: string }).content).toBe('one two three four');
  });

  it('follows a run once per connection: resuming it again replaces the follow, so each live event arrives once', async () => {
    const started = await start();
    const owner = await started.connectAs();
    const run = await startedRun(owner, 'r1');
    const runId = run.data.runId;
    const call = await model.nextCall();
    call.text('one ');
    const other = await started.connectAs();
    for (const requestId of ['x1', 'x2', 'x3']) {
      other.send('resume', { requestId, runId, afterSeq: 0 });
      await other.waitFor('resumed', (data) => data.requestId === requestId);
    }
    call.text('two ', 'three').finish();
    await other.waitFor('agent_completed', (data) => data.runId === runId);
    await owner.runEnd('r1');
    // Three replays from the start, then one live stream: the live events once each.
    const live = other.runFrames(runId).filter((frame) => Number(frame.data.seq) > owner.runFrames(runId).length - 3);
    expect(live.map((frame) => frame.data.seq)).toEqual(
      owner
        .runFrames(runId)
        .slice(-3)
        .map((frame) => frame.data.seq),
    );
  });

  it('keeps a run going when its client disconnects, then replays it from storage after it ended', async () => {
    const started = await start();
    const first = await started.connectAs();
    const run = await startedRun(first, 'r1');
    const runId = run.data.runId;
    const call = await model.nextCall();
    await first.close();
    call.text('finished ', 'without ', 'you').finish();

    const watcher = await started.connectAs();
    watcher.send('resume', { requestId: 'w', runId, afterSeq: 0 });
    await watcher.waitFor('agent_completed', (data) => data.runId === runId);
    // Once the run has ended it is served from the database: the same events, in order.
    const live = watcher.runFrames(runId);
    const later = await started.connectAs();
    later.send('resume', { requestId: 'late', runId, afterSeq: 2 });
    const resumed = await later.waitFor('resumed', (data) => data.requestId === 'late');
    const end = await later.waitFor('agent_completed', (data) => data.runId === runId);
    expect(resumed.data).toMatchObject({ recovered: true, status: 'completed', replayed: live.length - 2 });
    expect(later.runFrames(runId)).toEqual(live.slice(2));
    expect((end.data.message as { content: string }).content).toBe('finished without you');
  });

  it('answers RUN_NOT_FOUND when resuming a run of another user, and VALIDATION_FAILED for a bad afterSeq', async () => {
    const started = await start();
    const alice = await started.connectAs('alice');
    const run = await startedRun(alice, 'r1');
    (await model.nextCall()).text('x').finish();
    await alice.runEnd('r1');
    const bob = await started.connectAs('bob');
    bob.send('resume', { requestId: 'steal', runId: run.data.runId, afterSeq: 0 });
    expect((await bob.waitFor('error', (data) => data.requestId === 'steal')).data).toMatchObject({
      code: 'RUN_NOT_FOUND',
    });
    bob.send('resume', { requestId: 'neg', runId: run.data.runId, afterSeq: -1 });
    expect((await bob.waitFor('error', (data) => data.requestId === 'neg')).data).toMatchObject({
      code: 'VALIDATION_FAILED',
      field: 'afterSeq',
    });
    expect(bob.frames.some((frame) => frame.data.runId === run.data.runId)).toBe(false);
  });
});

describe('when the database fails', () => {
  /**
   * The real journal, with failures the test switches on: an outage as the observed dialect reports
   * one, or a value the store refuses (PostgreSQL's 22001, "value too long").
   */
  class FlakyJournal extends RunJournal {
    failBegin = false;
    failRecord = false;
    failEnd = false;
    failure: 'outage' | 'data' = 'outage';

    private error(): Error {
      return this.failure === 'outage'
        ? storageUnavailable({ cause: new Error('connection lost') })
        : Object.assign(new Error('value too long for type character varying(255)'), { code: '22001' });
    }

    override begin(start: Parameters<RunJournal['begin']>[0]): Promise<void> {
      return this.failBegin ? Promise.reject(this.error()) : super.begin(start);
    }

    override record(events: Parameters<RunJournal['record']>[0]): Promise<void> {
      return this.failRecord ? Promise.reject(this.error()) : super.record(events);
    }

    override end(end: Parameters<RunJournal['end']>[0]): Promise<boolean> {
      return this.failEnd ? Promise.reject(this.error()) : super.end(end);
    }
  }

  async function startFlaky(): Promise<{ started: TestApp; journal: FlakyJournal }> {
    model = new ScriptedModel();
    const started = await startTestApp({
      ready: true,
      override: (builder) =>
        builder.overrideProvider(LLM_PROVIDER).useValue(model).overrideProvider(RunJournal).useClass(FlakyJournal),
    });
    app = started;
    return { started, journal: started.app.get<RunJournal, FlakyJournal>(RunJournal) };
  }

  it('refuses a request it could not store with a retryable STORAGE_UNAVAILABLE, and frees its slot', async () => {
    const { started, journal } = await startFlaky();
    const alice = await started.connectAs();
    journal.failBegin = true;
    for (const requestId of ['a', 'b', 'c']) {
      alice.send('agent_request', { requestId, message: 'hello' });
      const refused = await alice.waitFor('agent_error', (data) => data.requestId === requestId);
      expect(refused.data).toMatchObject({ code: 'STORAGE_UNAVAILABLE', retryable: true });
      expect(refused.data.runId).toBeUndefined();
    }
    journal.failBegin = false;
    // Three refusals did not use up the two slots of AGENT_MAX_RUNS_PER_USER.
    await startedRun(alice, 'd');
    (await model.nextCall()).text('ok').finish();
    expect((await alice.runEnd('d')).event).toBe('agent_completed');
    expect((await started.app.get(ThreadsService).listThreads('alice', 10)).items).toHaveLength(1);
  });

  it('answers a value the store refuses with INTERNAL_ERROR (not retryable, with a logged correlation id), never STORAGE_UNAVAILABLE', async () => {
    const { started, journal } = await startFlaky();
    const alice = await started.connectAs();
    journal.failure = 'data';
    journal.failBegin = true;
    alice.send('agent_request', { requestId: 'a', message: 'hello' });
    const refused = await alice.waitFor('agent_error', (data) => data.requestId === 'a');
    expect(refused.data).toMatchObject({ code: 'INTERNAL_ERROR', retryable: false, correlationId: expect.any(String) });
    expect(started.logs.messages('error').some((line) => line.includes(String(refused.data.correlationId)))).toBe(true);
    journal.failBegin = false;

    await startedRun(alice, 'b');
    journal.failEnd = true;
    (await model.nextCall()).text('an answer').finish();
    expect((await alice.runEnd('b')).data).toMatchObject({ code: 'INTERNAL_ERROR', retryable: false });
  });

  it('keeps events whose background write failed and stores them with the outcome: a replay loses nothing', async () => {
    const { started, journal } = await startFlaky();
    const alice = await started.connectAs();
    const first = await startedRun(alice, 'r1');
    journal.failRecord = true;
    const call = await model.nextCall();
    call.text('nothing ', 'is ', 'lost');
    await alice.waitFor('agent_message_delta', (data) => data.text === 'lost');
    journal.failRecord = false;
    call.finish();
    await alice.runEnd('r1');
    const sent = alice.runFrames(first.data.runId);

    const later = await started.connectAs();
    later.send('resume', { requestId: 'replay', runId: first.data.runId, afterSeq: 0 });
    const resumed = await later.waitFor('resumed', (data) => data.requestId === 'replay');
    expect(resumed.data).toMatchObject({ recovered: true, status: 'completed', replayed: sent.length });
    await later.waitFor('agent_completed', (data) => data.runId === first.data.runId);
    expect(later.runFrames(first.data.runId)).toEqual(sent);
  });

  it('never sends agent_completed for an answer it could not store', async () => {
    const { started, journal } = await startFlaky();
    const alice = await started.connectAs();
    const first = await startedRun(alice, 'r1');
    journal.failEnd = true;
    (await model.nextCall()).text('an answer').finish();
    const end = await alice.runEnd('r1');
    expect(end.data).toMatchObject({ code: 'STORAGE_UNAVAILABLE', retryable: true });
    const history = await started.app.get(ThreadsService).history('alice', String(first.data.threadId), 10);
    expect(history.items.map((message) => message.role)).toEqual(['user']);
  });
});
