import { afterEach, describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import { GatewayClient } from '../../src/client/index.js';
import { LLM_PROVIDER } from '../../src/llm/llm.constants.js';
import type { RunFrame, ThreadHistoryResult, ThreadListResult } from '../../src/protocol/events.js';
import { ScriptedModel } from '../support/scripted-model.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';

let app: TestApp | undefined;
let model: ScriptedModel;
const clients: GatewayClient[] = [];

async function start(): Promise<TestApp> {
  model = new ScriptedModel();
  app = await startTestApp({
    ready: true,
    override: (builder) => builder.overrideProvider(LLM_PROVIDER).useValue(model),
  });
  return app;
}

/** A page of the chat front-end: an SDK client of user `sub`. */
function page(started: TestApp, sub = 'alice'): GatewayClient {
  const client = new GatewayClient({
    url: `${started.url.replace(/^http/u, 'ws')}/ws`,
    token: signToken({ sub }),
    WebSocket,
  });
  clients.push(client);
  return client;
}

async function http<T>(started: TestApp, path: string, sub = 'alice'): Promise<T> {
  const response = await fetch(`${started.url}${path}`, { headers: { authorization: `Bearer ${signToken({ sub })}` } });
  expect(response.status).toBe(200);
  return (await response.json()) as T;
}

/** Reads `run` until `count` deltas arrived; the rest stays to be read. */
async function deltas(iterator: AsyncIterator<RunFrame>, count: number): Promise<RunFrame[]> {
  const frames: RunFrame[] = [];
  while (frames.filter((frame) => frame.event === 'agent_message_delta').length < count) {
    const next = await iterator.next();
    if (next.done === true) break;
    frames.push(next.value);
  }
  return frames;
}

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await app?.close();
  app = undefined;
});

describe('a thread knows its run in flight', () => {
  it('lists the activeRunId and gives the history its activeRun (runId, afterSeq) until the run ends, over WebSocket and HTTP', async () => {
    const started = await start();
    const alice = page(started);
    const run = alice.run('count to three');
    const iterator = run[Symbol.asyncIterator]();
    const call = await model.nextCall();
    call.text('one ');
    await deltas(iterator, 1);
    const { runId, threadId } = run as { runId: string; threadId: string };

    const list = await alice.request('thread_list', {});
    expect(list.threads).toEqual([expect.objectContaining({ id: threadId, activeRunId: runId })]);
    const history = await alice.request('thread_history', { threadId });
    expect(history.activeRun).toEqual({ runId, afterSeq: 1 });
    expect(history.messages.map((message) => message.role)).toEqual(['user']);
    expect(await http<ThreadListResult>(started, '/threads')).toEqual({ threads: list.threads });
    const { requestId: _requestId, ...overWs } = history;
    expect(await http<ThreadHistoryResult>(started, `/threads/${threadId}/messages`)).toEqual(overWs);
    // An older page does not carry it: the run's events come after the newest message.
    const older = await alice.request('thread_history', { threadId, before: history.messages[0]?.id ?? '' });
    expect(older.activeRun).toBeUndefined();

    call.text('two').finish();
    expect(await run.result).toMatchObject({ status: 'completed' });
    const after = await alice.request('thread_history', { threadId });
    expect(after.activeRun).toBeUndefined();
    expect(after.messages.map((message) => [message.role, message.content])).toEqual([
      ['user', 'count to three'],
      ['assistant', 'one two'],
    ]);
    expect((await alice.request('thread_list', {})).threads[0]?.activeRunId).toBeUndefined();
  });

  it("shows an answer's tool steps in history, as the live view showed them, successes and failures", async () => {
    const started = await start();
    const alice = page(started);
    const run = alice.run('what is 6*7, and use a tool that does not exist');
    (await model.nextCall())
      .toolCall({ id: 'c1', name: 'calculator', arguments: '{"expression":"6*7"}' })
      .toolCall({ id: 'c2', name: 'teleport', arguments: '{}' })
      .finish();
    (await model.nextCall()).text('It is 42.').finish();
    const live: RunFrame[] = [];
    for await (const frame of run) live.push(frame);
    const result = await run.result;
    const threadId = run.threadId ?? '';

    const history = await alice.request('thread_history', { threadId });
    const answer = history.messages.find((message) => message.role === 'assistant');
    expect(answer?.content).toBe('It is 42.');
    const completed = live.find((frame) => frame.event === 'tool_completed');
    expect(answer?.steps).toEqual([
      {
        callId: 'c1',
        tool: 'calculator',
        args: { expression: '6*7' },
        result: completed?.event === 'tool_completed' ? completed.data.result : 'missing',
      },
      { callId: 'c2', tool: 'teleport', args: {}, error: { code: 'UNKNOWN_TOOL', message: expect.any(String) } },
    ]);
    expect(history.messages.find((message) => message.role === 'user')?.steps).toBeUndefined();
    // The live answer message itself (agent_completed) has no steps: the events carried them.
    expect(result.status === 'completed' ? result.message.steps : 'not completed').toBeUndefined();
    const overHttp = await http<ThreadHistoryResult>(started, `/threads/${threadId}/messages`);
    expect(overHttp.messages).toEqual(history.messages);
  });
});

describe('client.attach: re-attaching after a reload', () => {
  it('continues a streaming reply on a new page: every event after the history exactly once, and the whole text', async () => {
    const started = await start();
    const before = page(started);
    const run = before.run('say four words');
    const iterator = run[Symbol.asyncIterator]();
    const call = await model.nextCall();
    call.text('one ', 'two ');
    const seen = await deltas(iterator, 2);
    const threadId = run.threadId ?? '';
    before.close(); // the reload

    const after = page(started);
    // What the reloaded page does: the history says which run is streaming and where it leaves off.
    const { activeRun } = await after.request('thread_history', { threadId });
    expect(activeRun).toEqual({ runId: run.runId, afterSeq: 1 });
    const attached = after.attach(activeRun?.runId ?? '', { afterSeq: activeRun?.afterSeq ?? 0 });
    expect(after.attach(activeRun?.runId ?? '')).toBe(attached);
    const reading = (async () => {
      const frames: RunFrame[] = [];
      for await (const frame of attached) frames.push(frame);
      return frames;
    })();
    call.text('three ', 'four').finish();
    const frames = await reading;

    // seq 2, 3, …: the replay of what the first page saw, then the rest live, no gap, no repeat.
    expect(frames.map((frame) => frame.data.seq)).toEqual(frames.map((_, index) => index + 2));
    expect(frames.filter((frame) => frame.event === 'agent_message_delta').slice(0, 2)).toEqual(
      seen.filter((frame) => frame.event === 'agent_message_delta'),
    );
    const text = frames.map((frame) => (frame.event === 'agent_message_delta' ? frame.data.text : '')).join('');
    expect(text).toBe('one two three four');
    const result = await attached.result;
    expect(result).toMatchObject({ status: 'completed', threadId, message: { content: 'one two three four' } });
  });

  it('ends an attached run that has already ended with its stored outcome, and fails one that is not the user’s', async () => {
    const started = await start();
    const alice = page(started);
    const run = alice.run('quick');
    (await model.nextCall()).text('done').finish();
    await run.result;

    // Attached on a client not yet connected: resumed once the connection is established.
    const later = page(started);
    const attached = later.attach(run.runId ?? '', { afterSeq: 1 });
    const frames: RunFrame[] = [];
    for await (const frame of attached) frames.push(frame);
    expect(frames.at(-1)?.event).toBe('agent_completed');
    expect(await attached.result).toMatchObject({ status: 'completed', message: { content: 'done' } });

    const mallory = page(started, 'mallory');
    expect(await mallory.attach(run.runId ?? '').result).toMatchObject({
      status: 'failed',
      error: { code: 'RUN_NOT_FOUND' },
    });
  });
});
