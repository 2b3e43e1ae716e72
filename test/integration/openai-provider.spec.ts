import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { LlmUnavailableError } from '../../src/llm/llm.errors.js';
import type { LlmChunk, LlmMessage, LlmToolSpec } from '../../src/llm/llm.types.js';
import { OpenAiProvider, type OpenAiProviderOptions } from '../../src/llm/openai.provider.js';
import {
  type FakeOpenAi,
  finishChunk,
  reasoningDelta,
  startFakeOpenAi,
  textDelta,
  textStream,
  toolCallDelta,
  toolCallStream,
} from '../support/fake-openai-server.js';

const API_KEY = 'sk-test-secret-0123456789';
const hello: LlmMessage[] = [{ role: 'user', content: 'Say hello' }];

async function startProvider(baseUrl: string, options: Partial<OpenAiProviderOptions> = {}): Promise<OpenAiProvider> {
  const provider = new OpenAiProvider({
    baseUrl,
    apiKey: API_KEY,
    model: 'gpt-test',
    timeoutMs: 5_000,
    maxRetries: 2,
    ...options,
  });
  await provider.init(new AbortController().signal);
  return provider;
}

/** Everything the stream yielded before it ended or failed, and the failure if any. */
async function drain(stream: AsyncGenerator<LlmChunk>): Promise<{ chunks: LlmChunk[]; error: unknown }> {
  const chunks: LlmChunk[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk);
    return { chunks, error: undefined };
  } catch (error) {
    return { chunks, error };
  }
}

describe('OpenAiProvider against an OpenAI-compatible server', () => {
  let fake: FakeOpenAi;
  let provider: OpenAiProvider;
  const signal = new AbortController().signal;

  beforeEach(async () => {
    fake = await startFakeOpenAi();
    provider = await startProvider(fake.url);
  });

  afterEach(async () => {
    await fake.close();
  });

  it('streams text deltas in order, ends with the usage, and sends the conversation and tools in OpenAI form', async () => {
    fake.script(textStream(['Hel', 'lo', ', world'], { prompt_tokens: 42, completion_tokens: 3 }));
    const messages: LlmMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Weather in Oslo?' },
      {
        role: 'assistant',
        content: '',
        toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Oslo"}' }],
      },
      { role: 'tool', toolCallId: 'call_1', content: '{"celsius":3}' },
    ];
    const parameters = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    const tools: LlmToolSpec[] = [{ name: 'get_weather', description: 'Current weather in a city', parameters }];

    const { chunks, error } = await drain(provider.stream({ messages, tools }, signal));

    expect(error).toBeUndefined();
    expect(chunks).toEqual([
      { type: 'text', text: 'Hel' },
      { type: 'text', text: 'lo' },
      { type: 'text', text: ', world' },
      { type: 'finish', usage: { promptTokens: 42, completionTokens: 3 } },
    ]);
    expect(fake.requests).toHaveLength(1);
    const [request] = fake.requests;
    expect(request.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(request.body).toEqual({
      model: 'gpt-test',
      stream: true,
      stream_options: { include_usage: true },
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Weather in Oslo?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '{"celsius":3}' },
      ],
      tools: [
        { type: 'function', function: { name: 'get_weather', description: 'Current weather in a city', parameters } },
      ],
    });
  });

  it('leaves `tools` out of the request when the list is empty, and reports zero usage when the server sends none', async () => {
    fake.script(textStream(['hi']));

    const { chunks } = await drain(provider.stream({ messages: hello, tools: [] }, signal));

    expect(fake.requests[0].body).not.toHaveProperty('tools');
    expect(chunks.at(-1)).toEqual({ type: 'finish', usage: { promptTokens: 0, completionTokens: 0 } });
  });

  it('sends temperature and max_tokens when they are set', async () => {
    const tuned = await startProvider(fake.url, { temperature: 0.2, maxTokens: 256 });
    fake.script(textStream(['hi']));

    await drain(tuned.stream({ messages: hello }, signal));

    expect(fake.requests[0].body).toMatchObject({ model: 'gpt-test', temperature: 0.2, max_tokens: 256 });
  });

  it('sends temperature 0 rather than leaving it to the server', async () => {
    const greedy = await startProvider(fake.url, { temperature: 0 });
    fake.script(textStream(['hi']));

    await drain(greedy.stream({ messages: hello }, signal));

    expect(fake.requests[0].body).toHaveProperty('temperature', 0);
    expect(fake.requests[0].body).not.toHaveProperty('max_tokens');
  });

  it('sends no Authorization header at all without an API key, even with OPENAI_API_KEY in the environment', async () => {
    const previous = process.env.OPENAI_API_KEY;
    process.env.OPENAI_API_KEY = 'sk-from-the-environment';
    try {
      const keyless = await startProvider(fake.url, { apiKey: undefined });
      fake.script(textStream(['hi']), { kind: 'status', status: 500 }, textStream(['again']));

      expect((await drain(keyless.stream({ messages: hello }, signal))).error).toBeUndefined();
      // A retried request is built again: it must not regain the header either.
      expect((await drain(keyless.stream({ messages: hello }, signal))).error).toBeUndefined();

      expect(fake.requests).toHaveLength(3);
      for (const request of fake.requests) {
        expect(request.headers).not.toHaveProperty('authorization');
        expect(request.headers).not.toHaveProperty('api-key');
      }
    } finally {
      if (previous === undefined) delete process.env.OPENAI_API_KEY;
      else process.env.OPENAI_API_KEY = previous;
    }
  });

  it('yields reasoning_content deltas as reasoning, apart from the text of the answer', async () => {
    fake.script({
      kind: 'stream',
      chunks: [reasoningDelta('The user '), reasoningDelta('greets me.'), textDelta('Hello'), finishChunk('stop')],
    });

    const { chunks, error } = await drain(provider.stream({ messages: hello }, signal));

    expect(error).toBeUndefined();
    expect(chunks).toEqual([
      { type: 'reasoning', text: 'The user ' },
      { type: 'reasoning', text: 'greets me.' },
      { type: 'text', text: 'Hello' },
      { type: 'finish', usage: { promptTokens: 0, completionTokens: 0 } },
    ]);
  });

  it('assembles a tool call streamed in fragments and yields it once, complete, with its id and name', async () => {
    fake.script(
      toolCallStream({
        id: 'call_abc',
        name: 'get_weather',
        argumentFragments: ['{"ci', 'ty": "Os', 'lo", "unit"', ': "C"}'],
        usage: { prompt_tokens: 10, completion_tokens: 7 },
      }),
    );

    const { chunks, error } = await drain(provider.stream({ messages: hello }, signal));

    expect(error).toBeUndefined();
    expect(chunks).toEqual([
      { type: 'tool_call', call: { id: 'call_abc', name: 'get_weather', arguments: '{"city": "Oslo", "unit": "C"}' } },
      { type: 'finish', usage: { promptTokens: 10, completionTokens: 7 } },
    ]);
  });

  it('keeps interleaved parallel tool calls apart by index and gives id-less calls distinct generated ids', async () => {
    fake.script({
      kind: 'stream',
      chunks: [
        toolCallDelta({ index: 0, name: 'lookup', arguments: '{"q":' }),
        toolCallDelta({ index: 1, name: 'clock', arguments: '{' }),
        toolCallDelta({ index: 0, arguments: '"a"}' }),
        toolCallDelta({ index: 1, arguments: '}' }),
        finishChunk('tool_calls'),
      ],
    });

    const { chunks } = await drain(provider.stream({ messages: hello }, signal));

    const calls = chunks.flatMap((chunk) => (chunk.type === 'tool_call' ? [chunk.call] : []));
    expect(calls).toEqual([
      { id: expect.stringMatching(/^call_/), name: 'lookup', arguments: '{"q":"a"}' },
      { id: expect.stringMatching(/^call_/), name: 'clock', arguments: '{}' },
    ]);
    expect(calls[0].id).not.toBe(calls[1].id);
  });

  it('succeeds after a 429 because the SDK retries it', async () => {
    fake.script({ kind: 'status', status: 429 }, textStream(['ok']));

    const { chunks, error } = await drain(provider.stream({ messages: hello }, signal));

    expect(error).toBeUndefined();
    expect(chunks[0]).toEqual({ type: 'text', text: 'ok' });
    expect(fake.requests).toHaveLength(2);
    expect(fake.requests[1].headers['x-stainless-retry-count']).toBe('1');
  });

  it('rejects with the abort at once when the caller aborts while the SDK waits out a retry-after', async () => {
    const rateLimited = { kind: 'status', status: 429, headers: { 'retry-after-ms': '1000' }, holdBody: true } as const;
    fake.script(rateLimited, textStream(['too late']));
    const caller = new AbortController();
    const result = drain(provider.stream({ messages: hello }, caller.signal));

    // The SDK cancels the held 429 body just before its retry sleep, which closes the exchange.
    await expect((await fake.received(0)).closed).resolves.toEqual({ completed: false });
    caller.abort();

    // The 500 ms test timeout is the assertion that the SDK's 1000 ms retry sleep was not waited out.
    expect((await result).error).toBe(caller.signal.reason);
    expect(fake.requests).toHaveLength(1);
  }, 500);

  it('succeeds after a 500 because the SDK retries it', async () => {
    fake.script({ kind: 'status', status: 500 }, textStream(['ok']));

    const { chunks, error } = await drain(provider.stream({ messages: hello }, signal));

    expect(error).toBeUndefined();
    expect(chunks[0]).toEqual({ type: 'text', text: 'ok' });
    expect(fake.requests).toHaveLength(2);
  });

  it('fails with LlmUnavailableError naming the 500 once maxRetries is used up', async () => {
    fake.script({ kind: 'status', status: 500 }, { kind: 'status', status: 500 }, { kind: 'status', status: 500 });

    const { error } = await drain(provider.stream({ messages: hello }, signal));

    expect(error).toBeInstanceOf(LlmUnavailableError);
    expect((error as Error).message).toContain('500');
    expect(fake.requests).toHaveLength(3);
  });

  it('reports a 401 as a configuration problem, without retrying and without repeating the API key', async () => {
    const refusal = {
      message: `Incorrect API key provided: ${API_KEY}`,
      type: 'invalid_request_error',
      code: 'invalid_api_key',
    };
    fake.script({ kind: 'status', status: 401, error: refusal });

    const { error } = await drain(provider.stream({ messages: hello }, signal));

    expect(error).toBeInstanceOf(LlmUnavailableError);
    expect((error as Error).message).toMatch(/^LLM endpoint rejected the request: 401 .*configuration/);
    expect((error as Error).message).not.toContain(API_KEY);
    expect(fake.requests).toHaveLength(1);
  });

  it('yields the deltas that arrived before an error object mid-stream, then fails with LlmUnavailableError', async () => {
    const error = {
      message: 'The server had an error while processing your request.',
      type: 'server_error',
      code: null,
    };
    fake.script({ kind: 'error-mid-stream', chunks: [textDelta('Hel'), textDelta('lo')], error });

    const result = await drain(provider.stream({ messages: hello }, signal));

    expect(result.chunks).toEqual([
      { type: 'text', text: 'Hel' },
      { type: 'text', text: 'lo' },
    ]);
    expect(result.error).toBeInstanceOf(LlmUnavailableError);
    expect((result.error as Error).message).toContain('The server had an error');
  });

  it('fails with LlmUnavailableError when the connection drops mid-stream', async () => {
    fake.script({ kind: 'drop-mid-stream', chunks: [textDelta('Hel')] });

    const { chunks, error } = await drain(provider.stream({ messages: hello }, signal));

    expect(chunks).toEqual([{ type: 'text', text: 'Hel' }]);
    expect(error).toBeInstanceOf(LlmUnavailableError);
  });

  it('fails with LlmUnavailableError when the stream stalls longer than timeoutMs, and closes the request', async () => {
    const impatient = await startProvider(fake.url, { timeoutMs: 200 });
    fake.script({ kind: 'stall', chunks: [textDelta('Hel')] });

    const { chunks, error } = await drain(impatient.stream({ messages: hello }, signal));

    expect(chunks).toEqual([{ type: 'text', text: 'Hel' }]);
    expect(error).toBeInstanceOf(LlmUnavailableError);
    expect((error as Error).message).toMatch(/stalled.*200 ms/);
    await expect(fake.requests[0].closed).resolves.toEqual({ completed: false });
  });

  it('rejects with the abort, not LlmUnavailableError, when the caller aborts mid-stream, and closes the connection', async () => {
    fake.script({ kind: 'stall', chunks: [textDelta('Hel')] });
    const caller = new AbortController();
    const stream = provider.stream({ messages: hello }, caller.signal);

    await expect(stream.next()).resolves.toEqual({ done: false, value: { type: 'text', text: 'Hel' } });
    const next = stream.next();
    caller.abort();

    await expect(next).rejects.toBe(caller.signal.reason);
    expect((caller.signal.reason as Error).name).toBe('AbortError');
    await expect(fake.requests[0].closed).resolves.toEqual({ completed: false });
  });

  it('fails with LlmUnavailableError when nothing listens at the base URL', async () => {
    const gone = await startFakeOpenAi();
    await gone.close();
    const unreachable = await startProvider(gone.url, { maxRetries: 0 });

    const { error } = await drain(unreachable.stream({ messages: hello }, signal));

    expect(error).toBeInstanceOf(LlmUnavailableError);
    expect((error as Error).message).toMatch(/unreachable.*ECONNREFUSED/);
  });
});
