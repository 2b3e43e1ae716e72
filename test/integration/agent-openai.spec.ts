import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  type FakeOpenAi,
  type FakeRequest,
  finishChunk,
  reasoningDelta,
  startFakeOpenAi,
  textDelta,
  textStream,
  toolCallDelta,
  toolCallStream,
} from '../support/fake-openai-server.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import type { ReceivedFrame, TestClient } from '../support/ws-client.js';

/** The settings every app here shares: the OpenAI provider, talking to `baseUrl` over real sockets. */
function openAiEnv(baseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return { LLM_PROVIDER: 'openai', LLM_BASE_URL: baseUrl, LLM_MODEL: 'test-model', ...extra };
}

/** A loopback port nothing listens on: bound by the OS, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  return port;
}

function names(frames: readonly ReceivedFrame[]): string[] {
  return frames.map((frame) => frame.event);
}

function only(frames: readonly ReceivedFrame[], event: string): Record<string, unknown>[] {
  return frames.filter((frame) => frame.event === event).map((frame) => frame.data);
}

function deltaTexts(frames: readonly ReceivedFrame[]): unknown[] {
  return only(frames, 'agent_message_delta').map((data) => data.text);
}

/** `/health/ready`: its status and the `llm` entry of the Terminus body. */
/**
 * What the user saw of a model failure: a generic message with a correlation id, never the
 * endpoint's own words (`detail`); those are in the log line that quotes the same id.
 */
function expectDetailLoggedNotSent(app: TestApp, error: Record<string, unknown> | undefined, detail: RegExp): void {
  expect(error?.correlationId).toEqual(expect.any(String));
  expect(String(error?.message)).not.toMatch(detail);
  expect(String(error?.message)).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|:\d{2,5}/u);
  const logged = app.logs.lines().filter((line) => line.includes(String(error?.correlationId)));
  expect(logged).toEqual([expect.stringMatching(detail)]);
}

async function probeReady(app: TestApp): Promise<{ status: number; llm: Record<string, unknown> }> {
  const response = await fetch(`${app.url}/health/ready`);
  const body = (await response.json()) as { details: Record<string, Record<string, unknown>> };
  return { status: response.status, llm: body.details.llm };
}

async function threadHistory(client: TestClient, requestId: string, threadId: unknown): Promise<any[]> {
  client.send('thread_history', { requestId, threadId });
  const result = await client.waitFor('thread_history_result', (data) => data.requestId === requestId);
  return result.data.messages as any[];
}

/** The tool messages of a request body, with their JSON content parsed. */
function toolMessages(request: FakeRequest): Array<{ tool_call_id: string; content: any }> {
  return (request.body.messages as any[])
    .filter((message) => message.role === 'tool')
    .map((message) => ({ tool_call_id: message.tool_call_id, content: JSON.parse(message.content as string) }));
}

describe('agent runs with LLM_PROVIDER=openai when nothing listens at LLM_BASE_URL', () => {
  let app: TestApp;

  beforeAll(async () => {
    const port = await closedPort();
    // `ready: true` is itself the first assertion: startTestApp rejects if readiness does not come.
    app = await startTestApp({
      ready: true,
      env: openAiEnv(`http://127.0.0.1:${port}/v1`, { LLM_MAX_RETRIES: '0', LLM_TIMEOUT_MS: '2000' }),
    });
  });

  afterAll(async () => {
    await app.close();
  });

  it('becomes ready without reaching the provider, and /health/ready answers 200 with an llm entry that is not degraded', async () => {
    expect(app.readiness.snapshot.phase).toBe('ready');
    const ready = await probeReady(app);
    expect(ready.status).toBe(200);
    expect(ready.llm).toMatchObject({ status: 'up', provider: 'openai' });
    expect(ready.llm).not.toHaveProperty('degraded');
  });

  it('ends a run with retryable LLM_UNAVAILABLE, stays ready with llm marked degraded, and keeps the user message without an answer', async () => {
    const alice = await app.connectAs();

    const frames = await alice.request('unreachable', 'Is anyone there?');

    expect(names(frames)).toEqual(['agent_started', 'agent_thinking', 'agent_error']);
    const error = frames.at(-1)?.data;
    expect(error).toMatchObject({ code: 'LLM_UNAVAILABLE', retryable: true, requestId: 'unreachable' });
    expectDetailLoggedNotSent(app, error, /unreachable.*ECONNREFUSED/);

    const ready = await probeReady(app);
    expect(ready.status).toBe(200);
    expect(ready.llm).toMatchObject({ status: 'up', provider: 'openai', degraded: true });
    expect(ready.llm.providerError).toEqual(expect.stringMatching(/unreachable/));

    const threadId = frames[0]?.data.threadId;
    const messages = await threadHistory(alice, 'history', threadId);
    expect(messages).toEqual([
      expect.objectContaining({ role: 'user', content: 'Is anyone there?', runId: frames[0]?.data.runId, threadId }),
    ]);
  });
});

describe('agent runs with LLM_PROVIDER=openai against an OpenAI-compatible server', () => {
  let fake: FakeOpenAi;
  let app: TestApp;
  /** Index of the first request the current test makes to the fake (the fake is shared). */
  let first: number;

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    app = await startTestApp({ ready: true, env: openAiEnv(fake.url, { LLM_MAX_RETRIES: '1' }) });
  });

  afterAll(async () => {
    await app.close();
    await fake.close();
  });

  beforeEach(() => {
    first = fake.requests.length;
  });

  it('streams the deltas in order and completes with their concatenation and the usage the server reported', async () => {
    fake.script(textStream(['Hel', 'lo', ', world'], { prompt_tokens: 12, completion_tokens: 3 }));
    const alice = await app.connectAs();

    const frames = await alice.request('text', 'Say hello');

    expect(names(frames)).toEqual([
      'agent_started',
      'agent_thinking',
      'agent_message_delta',
      'agent_message_delta',
      'agent_message_delta',
      'agent_completed',
    ]);
    expect(frames[1]?.data.step).toBe(1);
    expect(deltaTexts(frames)).toEqual(['Hel', 'lo', ', world']);
    expect(frames.at(-1)?.data).toMatchObject({
      message: { role: 'assistant', content: 'Hello, world' },
      usage: { promptTokens: 12, completionTokens: 3 },
    });
  });

  it('asks the server for a stream from LLM_MODEL, with the user message last and both tools offered', async () => {
    fake.script(textStream(['ok']));
    const alice = await app.connectAs();

    await alice.request('request-shape', 'What can you do?');

    expect(fake.requests).toHaveLength(first + 1);
    const { body } = await fake.received(first);
    expect(body).toMatchObject({ model: 'test-model', stream: true });
    expect((body.messages as any[]).at(-1)).toEqual({ role: 'user', content: 'What can you do?' });
    const tools = (body.tools as any[]).map((tool) => tool.function.name as string);
    expect(tools.sort()).toEqual(['calculator', 'current_time']);
  });

  it('runs a tool call streamed in fragments, then streams the answer of the second step, and sums the usage', async () => {
    fake.script(
      toolCallStream({
        id: 'call_calc',
        name: 'calculator',
        argumentFragments: ['{"expre', 'ssion": "6', '*7"}'],
        usage: { prompt_tokens: 20, completion_tokens: 8 },
      }),
      textStream(['It is ', '42.'], { prompt_tokens: 35, completion_tokens: 4 }),
    );
    const alice = await app.connectAs();

    const frames = await alice.request('tool', 'What is 6 times 7?');

    expect(names(frames)).toEqual([
      'agent_started',
      'agent_thinking',
      'tool_executing',
      'tool_completed',
      'agent_thinking',
      'agent_message_delta',
      'agent_message_delta',
      'agent_completed',
    ]);
    expect(only(frames, 'agent_thinking').map((data) => data.step)).toEqual([1, 2]);
    expect(only(frames, 'tool_executing')[0]).toMatchObject({
      callId: 'call_calc',
      tool: 'calculator',
      args: { expression: '6*7' },
    });
    expect(only(frames, 'tool_completed')[0]).toMatchObject({
      callId: 'call_calc',
      tool: 'calculator',
      result: { expression: '6*7', result: 42 },
    });
    expect(deltaTexts(frames)).toEqual(['It is ', '42.']);
    expect(frames.at(-1)?.data).toMatchObject({
      message: { content: 'It is 42.' },
      usage: { promptTokens: 55, completionTokens: 12 },
    });

    expect(fake.requests).toHaveLength(first + 2);
    const second = await fake.received(first + 1);
    const messages = second.body.messages as any[];
    expect(messages.slice(-3)).toEqual([
      { role: 'user', content: 'What is 6 times 7?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: 'call_calc',
            type: 'function',
            function: { name: 'calculator', arguments: '{"expression": "6*7"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: 'call_calc', content: expect.stringContaining('42') },
    ]);
  });

  it('reports unparseable tool arguments as tool_failed INVALID_TOOL_ARGUMENTS, tells the model, and completes with its next answer', async () => {
    fake.script(
      toolCallStream({ id: 'call_bad', name: 'calculator', argumentFragments: ['{not', ' json'] }),
      textStream(['Sorry, ', 'let me retry.']),
    );
    const alice = await app.connectAs();

    const frames = await alice.request('garbage', 'Compute something');

    expect(names(frames)).toEqual([
      'agent_started',
      'agent_thinking',
      'tool_executing',
      'tool_failed',
      'agent_thinking',
      'agent_message_delta',
      'agent_message_delta',
      'agent_completed',
    ]);
    expect(only(frames, 'tool_executing')[0]).toMatchObject({ callId: 'call_bad', args: '{not json' });
    expect(only(frames, 'tool_failed')[0]).toMatchObject({
      callId: 'call_bad',
      tool: 'calculator',
      error: { code: 'INVALID_TOOL_ARGUMENTS' },
    });
    expect(frames.at(-1)?.data).toMatchObject({ message: { content: 'Sorry, let me retry.' } });

    expect(toolMessages(await fake.received(first + 1))).toEqual([
      { tool_call_id: 'call_bad', content: { error: expect.objectContaining({ code: 'INVALID_TOOL_ARGUMENTS' }) } },
    ]);
  });

  it('fails a wrongly typed argument naming the field and an unknown tool as UNKNOWN_TOOL, and feeds both errors back', async () => {
    fake.script(
      {
        kind: 'stream',
        chunks: [
          toolCallDelta({ index: 0, id: 'call_type', name: 'calculator', arguments: '{"expression": ' }),
          toolCallDelta({ index: 1, id: 'call_ghost', name: 'weather', arguments: '{"city": "Oslo"}' }),
          toolCallDelta({ index: 0, arguments: '42}' }),
          finishChunk('tool_calls'),
        ],
      },
      textStream(['Done.']),
    );
    const alice = await app.connectAs();

    const frames = await alice.request('bad-calls', 'Two things, please');

    expect(names(frames)).toEqual([
      'agent_started',
      'agent_thinking',
      'tool_executing',
      'tool_failed',
      'tool_executing',
      'tool_failed',
      'agent_thinking',
      'agent_message_delta',
      'agent_completed',
    ]);
    const [wrongType, unknown] = only(frames, 'tool_failed') as Array<{
      callId: string;
      tool: string;
      error: { code: string; message: string };
    }>;
    expect(wrongType).toMatchObject({
      callId: 'call_type',
      tool: 'calculator',
      error: { code: 'INVALID_TOOL_ARGUMENTS' },
    });
    expect(wrongType?.error.message).toContain('expression');
    expect(unknown).toMatchObject({ callId: 'call_ghost', tool: 'weather', error: { code: 'UNKNOWN_TOOL' } });
    expect(unknown?.error.message).toContain('weather');

    expect(toolMessages(await fake.received(first + 1))).toEqual([
      { tool_call_id: 'call_type', content: { error: wrongType?.error } },
      { tool_call_id: 'call_ghost', content: { error: unknown?.error } },
    ]);
  });

  it('completes a run after a 429 because the SDK retries it, without marking the provider degraded', async () => {
    fake.script({ kind: 'status', status: 429 }, textStream(['after ', 'the wait']));
    const alice = await app.connectAs();

    const frames = await alice.request('rate-limited', 'Hello?');

    expect(frames.at(-1)?.event).toBe('agent_completed');
    expect(frames.at(-1)?.data).toMatchObject({ message: { content: 'after the wait' } });
    expect(fake.requests).toHaveLength(first + 2);
    expect((await fake.received(first + 1)).headers['x-stainless-retry-count']).toBe('1');
    expect((await probeReady(app)).llm).not.toHaveProperty('degraded');
  });

  it.each([401, 403, 404])(
    'ends a run the endpoint refuses with %i as LLM_MISCONFIGURED (not retryable), named misconfigured in /health/ready, while staying ready',
    async (status) => {
      fake.script({
        kind: 'status',
        status,
        error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' },
      });
      const alice = await app.connectAs();

      const frames = await alice.request(`refused-${status}`, 'Hello?');

      expect(frames.at(-1)?.data).toMatchObject({ code: 'LLM_MISCONFIGURED', retryable: false });
      expectDetailLoggedNotSent(app, frames.at(-1)?.data, /Incorrect API key/);
      const ready = await probeReady(app);
      expect(ready.status).toBe(200);
      expect(ready.llm).toMatchObject({ status: 'up', degraded: true, misconfigured: true });

      fake.script(textStream(['back']));
      expect((await alice.request(`after-${status}`, 'Again')).at(-1)?.event).toBe('agent_completed');
      expect((await probeReady(app)).llm).not.toHaveProperty('misconfigured');
    },
  );

  it('ends with LLM_UNAVAILABLE after the deltas that arrived before a mid-stream error, shows llm degraded while staying ready, and clears it on the next good run', async () => {
    fake.script({
      kind: 'error-mid-stream',
      chunks: [textDelta('Hel'), textDelta('lo')],
      error: { message: 'The server had an error while processing your request.', type: 'server_error', code: null },
    });
    const alice = await app.connectAs();

    const broken = await alice.request('mid-stream', 'Say hello');

    expect(names(broken)).toEqual([
      'agent_started',
      'agent_thinking',
      'agent_message_delta',
      'agent_message_delta',
      'agent_error',
    ]);
    expect(deltaTexts(broken)).toEqual(['Hel', 'lo']);
    expect(broken.at(-1)?.data).toMatchObject({ code: 'LLM_UNAVAILABLE', retryable: true });
    expectDetailLoggedNotSent(app, broken.at(-1)?.data, /The server had an error/);

    const degraded = await probeReady(app);
    expect(degraded.status).toBe(200);
    expect(degraded.llm).toMatchObject({ status: 'up', degraded: true });
    expect(degraded.llm.providerError).toEqual(expect.stringContaining('The server had an error'));

    fake.script(textStream(['back']));
    const recovered = await alice.request('after-error', 'Again');

    expect(recovered.at(-1)?.event).toBe('agent_completed');
    const ready = await probeReady(app);
    expect(ready.status).toBe(200);
    expect(ready.llm).toMatchObject({ status: 'up', provider: 'openai' });
    expect(ready.llm).not.toHaveProperty('degraded');
    expect(ready.llm).not.toHaveProperty('providerError');
  });
});

describe('agent runs with LLM_PROVIDER=openai and LLM_TIMEOUT_MS=300 when the stream stalls', () => {
  let fake: FakeOpenAi;
  let app: TestApp;

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    app = await startTestApp({
      ready: true,
      env: openAiEnv(fake.url, { LLM_TIMEOUT_MS: '300', LLM_MAX_RETRIES: '0' }),
    });
  });

  afterAll(async () => {
    await app.close();
    await fake.close();
  });

  it('ends the run with LLM_UNAVAILABLE naming the stall, and closes the stalled request', async () => {
    fake.script({ kind: 'stall', chunks: [textDelta('Hel')] });
    const alice = await app.connectAs();

    const frames = await alice.request('stall', 'Say hello slowly');

    expect(deltaTexts(frames)).toEqual(['Hel']);
    expect(frames.at(-1)?.event).toBe('agent_error');
    expect(frames.at(-1)?.data).toMatchObject({ code: 'LLM_UNAVAILABLE', retryable: true });
    expectDetailLoggedNotSent(app, frames.at(-1)?.data, /stalled.*300 ms/);
    await expect((await fake.received(0)).closed).resolves.toEqual({ completed: false });
  });
});

describe('agent runs with LLM_PROVIDER=openai and AGENT_MAX_STEPS=2 when the model keeps calling tools', () => {
  let fake: FakeOpenAi;
  let app: TestApp;

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    app = await startTestApp({ ready: true, env: openAiEnv(fake.url, { AGENT_MAX_STEPS: '2' }) });
  });

  afterAll(async () => {
    await app.close();
    await fake.close();
  });

  it('runs the tools of both steps, then ends with STEP_LIMIT_REACHED (not retryable) without a third model call', async () => {
    const again = (id: string) =>
      toolCallStream({ id, name: 'calculator', argumentFragments: ['{"expression": "1+1"}'] });
    fake.script(again('call_1'), again('call_2'), again('call_3'));
    const alice = await app.connectAs();

    const frames = await alice.request('loop', 'Keep calculating');

    expect(names(frames)).toEqual([
      'agent_started',
      'agent_thinking',
      'tool_executing',
      'tool_completed',
      'agent_thinking',
      'tool_executing',
      'tool_completed',
      'agent_error',
    ]);
    expect(only(frames, 'agent_thinking').map((data) => data.step)).toEqual([1, 2]);
    expect(frames.at(-1)?.data).toMatchObject({ code: 'STEP_LIMIT_REACHED', retryable: false });
    expect(fake.requests).toHaveLength(2);
  });
});

describe('agent runs with LLM_PROVIDER=openai, a system prompt file, LLM_TEMPERATURE, LLM_MAX_TOKENS and no LLM_API_KEY', () => {
  const PROMPT = 'You are the ACME assistant. Secret escalation word: PINEAPPLE.\n';
  let directory: string;
  let promptFile: string;
  let fake: FakeOpenAi;
  let app: TestApp;
  let first: number;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'agent-gateway-prompt-'));
    promptFile = join(directory, 'system-prompt.txt');
    writeFileSync(promptFile, PROMPT);
    fake = await startFakeOpenAi();
    app = await startTestApp({
      ready: true,
      env: openAiEnv(fake.url, {
        AGENT_SYSTEM_PROMPT_FILE: promptFile,
        LLM_TEMPERATURE: '0.3',
        LLM_MAX_TOKENS: '200',
      }),
    });
  });

  afterAll(async () => {
    await app.close();
    await fake.close();
    rmSync(directory, { recursive: true, force: true });
  });

  beforeEach(() => {
    first = fake.requests.length;
  });

  it('logs the model settings once at start-up: provider, model, URL, temperature, max tokens, prompt length and source, never the prompt', () => {
    const lines = app.logs.entries.filter((entry) => entry.message.startsWith('model: '));
    expect(lines).toEqual([
      expect.objectContaining({
        context: 'Llm',
        message: `model: provider openai, model test-model, base URL ${fake.url}, temperature 0.3, max tokens 200, API key none (no Authorization header), system prompt: ${PROMPT.length} characters from AGENT_SYSTEM_PROMPT_FILE (${promptFile})`,
      }),
    ]);
    expect(app.logs.lines().filter((line) => line.includes('PINEAPPLE'))).toEqual([]);
  });

  it('streams the reasoning as agent_thinking text after the step starts, and keeps it out of the answer', async () => {
    fake.script({
      kind: 'stream',
      chunks: [
        reasoningDelta('The user greets me; '),
        reasoningDelta('greet back.'),
        textDelta('Hello'),
        textDelta('!'),
        finishChunk('stop'),
      ],
    });
    const alice = await app.connectAs();

    const frames = await alice.request('reasoning', 'Hi');

    expect(names(frames)).toEqual([
      'agent_started',
      'agent_thinking',
      'agent_thinking',
      'agent_thinking',
      'agent_message_delta',
      'agent_message_delta',
      'agent_completed',
    ]);
    expect(only(frames, 'agent_thinking').map(({ step, text }) => ({ step, text }))).toEqual([
      { step: 1, text: undefined },
      { step: 1, text: 'The user greets me; ' },
      { step: 1, text: 'greet back.' },
    ]);
    expect(frames.at(-1)?.data).toMatchObject({ message: { content: 'Hello!' } });
    const history = await threadHistory(alice, 'reasoning-history', frames[0]?.data.threadId);
    expect(history).toEqual([
      expect.objectContaining({ role: 'user', content: 'Hi' }),
      expect.objectContaining({ role: 'assistant', content: 'Hello!' }),
    ]);
  });

  it('gives the third turn the thread as it happened: prompt, tool call, its result, both answers, then the new message', async () => {
    const alice = await app.connectAs();
    fake.script(
      toolCallStream({ id: 'call_calc', name: 'calculator', argumentFragments: ['{"expression": "6*7"}'] }),
      textStream(['It is ', '42.']),
    );
    const turn1 = await alice.request('turn-1', 'What is 6 times 7?');
    expect(turn1.at(-1)?.event).toBe('agent_completed');
    const threadId = turn1[0]?.data.threadId;
    fake.script({
      kind: 'stream',
      chunks: [reasoningDelta('They thank me.'), textDelta('You are welcome.'), finishChunk('stop')],
    });
    expect((await alice.request('turn-2', 'Thanks!', threadId)).at(-1)?.event).toBe('agent_completed');
    fake.script(textStream(['Sure.']));
    expect((await alice.request('turn-3', 'And 6 times 8?', threadId)).at(-1)?.event).toBe('agent_completed');

    expect(fake.requests).toHaveLength(first + 4);
    const third = await fake.received(first + 3);
    expect(third.body.messages).toEqual([
      { role: 'system', content: PROMPT },
      { role: 'user', content: 'What is 6 times 7?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_calc', type: 'function', function: { name: 'calculator', arguments: '{"expression":"6*7"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_calc', content: '{"expression":"6*7","result":42}' },
      { role: 'assistant', content: 'It is 42.' },
      { role: 'user', content: 'Thanks!' },
      { role: 'assistant', content: 'You are welcome.' },
      { role: 'user', content: 'And 6 times 8?' },
    ]);
    // Every model call, the second step of a turn included, starts with the prompt and carries the settings.
    for (const request of fake.requests.slice(first)) {
      expect(request.body).toMatchObject({ temperature: 0.3, max_tokens: 200 });
      expect((request.body.messages as any[])[0]).toEqual({ role: 'system', content: PROMPT });
      expect(request.headers).not.toHaveProperty('authorization');
    }
  });
});

describe('agent runs with LLM_PROVIDER=openai and a history budget of AGENT_HISTORY_CHARS=60', () => {
  let fake: FakeOpenAi;
  let app: TestApp;

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    app = await startTestApp({
      ready: true,
      env: openAiEnv(fake.url, { AGENT_HISTORY_CHARS: '60', AGENT_SYSTEM_PROMPT: 'Be brief.' }),
    });
  });

  afterAll(async () => {
    await app.close();
    await fake.close();
  });

  it('drops the oldest turn, tool call and result together, and keeps the system prompt whatever the budget', async () => {
    const alice = await app.connectAs();
    fake.script(
      toolCallStream({ id: 'call_old', name: 'calculator', argumentFragments: ['{"expression": "6*7"}'] }),
      textStream(['It is 42.']),
    );
    const turn1 = await alice.request('budget-1', 'What is 6 times 7?');
    const threadId = turn1[0]?.data.threadId;
    fake.script(textStream(['ok']));
    await alice.request('budget-2', 'Twenty characters!!', threadId);
    fake.script(textStream(['ok']));
    await alice.request('budget-3', 'Ten chars.', threadId);

    // Turn 3 sees 'Ten chars.' (10) + 'ok' (2) + 'Twenty characters!!' (19) = 31; the first turn
    // (18 + 'It is 42.' + the call and its result) would not fit in 60.
    const third = await fake.received(3);
    expect(third.body.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Twenty characters!!' },
      { role: 'assistant', content: 'ok' },
      { role: 'user', content: 'Ten chars.' },
    ]);
  });
});
