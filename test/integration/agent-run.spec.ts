import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LLM_PROVIDER } from '../../src/llm/llm.constants.js';
import type { LlmProvider, LlmRequest } from '../../src/llm/llm.types.js';
import { LocalModel } from '../../src/llm/local-model.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';
import type { ReceivedFrame, TestClient } from '../support/ws-client.js';

async function runOf(client: TestClient, requestId: string): Promise<ReceivedFrame[]> {
  const last = await client.waitFor('agent_completed', (data) => data.requestId === requestId);
  const runId = last.data.runId;
  return client.frames.filter((frame) => frame.data.runId === runId);
}

describe('agent runs over the gateway', () => {
  let app: TestApp;
  let alice: TestClient;

  beforeAll(async () => {
    app = await startTestApp({ ready: true, env: { LOCAL_LLM_TOKEN_DELAY_MS: '1' } });
    alice = app.connect({ token: signToken({ sub: 'alice' }) });
    await alice.waitFor('connection_established');
  });

  afterAll(async () => {
    await app.close();
  });

  it('streams agent_started, agent_thinking, deltas and agent_completed, numbered 1, 2, 3 … within the run', async () => {
    alice.send('agent_request', { requestId: 'r1', message: 'What is a readiness probe?' });
    const events = await runOf(alice, 'r1');

    const names = events.map((frame) => frame.event);
    expect(names.slice(0, 2)).toEqual(['agent_started', 'agent_thinking']);
    expect(names.at(-1)).toBe('agent_completed');
    const deltas = events.filter((frame) => frame.event === 'agent_message_delta');
    expect(deltas.length).toBeGreaterThan(1);
    expect(names.slice(2, -1).every((name) => name === 'agent_message_delta')).toBe(true);
    expect(events.map((frame) => frame.data.seq)).toEqual(events.map((_, index) => index + 1));
    for (const frame of events) expect(frame.data.requestId).toBe('r1');

    const started = events[0]?.data;
    const completed = events.at(-1)?.data as {
      threadId: string;
      message: { content: string; role: string; threadId: string };
    };
    expect(completed.threadId).toBe(started?.threadId);
    expect(completed.message).toMatchObject({ role: 'assistant', threadId: started?.threadId });
    const streamed = deltas.map((frame) => frame.data.text).join('');
    expect(completed.message.content).toBe(streamed);
    expect(streamed).toBe(LocalModel.reply({ messages: [{ role: 'user', content: 'What is a readiness probe?' }] }));
  });

  it('continues an existing thread when the request names it', async () => {
    alice.send('agent_request', { requestId: 'first', message: 'one' });
    const [started] = await runOf(alice, 'first');
    const threadId = started?.data.threadId;
    alice.send('agent_request', { requestId: 'second', message: 'two', threadId });
    const second = await runOf(alice, 'second');
    expect(second[0]?.data.threadId).toBe(threadId);
    expect(second[0]?.data.runId).not.toBe(started?.data.runId);
  });

  it("answers THREAD_NOT_FOUND for a missing thread and for another user's thread alike", async () => {
    alice.send('agent_request', { requestId: 'mine', message: 'private' });
    const [started] = await runOf(alice, 'mine');
    const bob = app.connect({ token: signToken({ sub: 'bob' }) });
    await bob.waitFor('connection_established');

    bob.send('agent_request', { requestId: 'steal', message: 'hi', threadId: started?.data.threadId });
    const missing = '0190a3b2-0000-7000-8000-000000000000';
    bob.send('agent_request', { requestId: 'ghost', message: 'hi', threadId: missing });
    const steal = await bob.waitFor('error', (data) => data.requestId === 'steal');
    const ghost = await bob.waitFor('error', (data) => data.requestId === 'ghost');
    const { requestId: _a, ...stealRest } = steal.data;
    const { requestId: _b, ...ghostRest } = ghost.data;
    expect(stealRest).toMatchObject({ code: 'THREAD_NOT_FOUND', retryable: false });
    expect(stealRest.message).toBe(`thread ${String(started?.data.threadId)} not found`);
    expect(ghostRest.message).toBe(`thread ${missing} not found`);
    expect(bob.events().filter((event) => event.startsWith('agent_'))).toEqual([]);
  });

  it('runs requests of several connections concurrently without mixing their events', async () => {
    const clients = Array.from({ length: 5 }, (_, index) =>
      app.connect({ token: signToken({ sub: `user-${index}` }) }),
    );
    await Promise.all(clients.map((client) => client.waitFor('connection_established')));
    clients.forEach((client, index) =>
      client.send('agent_request', { requestId: 'same-id', message: `message ${index}` }),
    );
    const runs = await Promise.all(clients.map((client) => runOf(client, 'same-id')));
    runs.forEach((events, index) => {
      const completed = events.at(-1)?.data.message as { content: string };
      expect(completed.content).toContain(`message ${index}`);
    });
  });
});

describe('agent runs on the embedded model with AGENT_SYSTEM_PROMPT', () => {
  let app: TestApp;
  /** What the embedded model was asked, call by call. */
  const requests: LlmRequest[] = [];

  beforeAll(async () => {
    const local = new LocalModel({ warmupMs: 0, tokenDelayMs: 0 });
    const recording: LlmProvider = {
      name: local.name,
      remote: local.remote,
      init: (signal) => local.init(signal),
      stream: (request, signal) => {
        requests.push(request);
        return local.stream(request, signal);
      },
    };
    app = await startTestApp({
      ready: true,
      env: { AGENT_SYSTEM_PROMPT: 'You are a careful assistant.' },
      override: (builder) => builder.overrideProvider(LLM_PROVIDER).useValue(recording),
    });
  });

  afterAll(async () => {
    await app.close();
  });

  it('keeps working with the system message first and earlier tool calls replayed in the history', async () => {
    const alice = await app.connectAs();
    const before = requests.length; // the readiness self-check

    const turn1 = await alice.request('local-1', 'What is 6 * 7?');
    const turn2 = await alice.request('local-2', 'Thanks', turn1[0]?.data.threadId);

    expect(turn1.map((frame) => frame.event)).toContain('tool_completed');
    expect(turn1.at(-1)?.data).toMatchObject({ message: { content: '6 * 7 = 42.' } });
    expect(turn2.at(-1)?.event).toBe('agent_completed');
    expect(turn2.at(-1)?.data).toMatchObject({ message: { content: expect.stringContaining('You said: "Thanks"') } });
    const calls = requests.slice(before);
    expect(calls).toHaveLength(3);
    expect(calls.map((request) => request.messages[0])).toEqual(
      calls.map(() => ({ role: 'system', content: 'You are a careful assistant.' })),
    );
    expect(calls[2]?.messages.map((message) => message.role)).toEqual([
      'system',
      'user',
      'assistant',
      'tool',
      'assistant',
      'user',
    ]);
  });
});
