import { describe, expect, it } from '@jest/globals';
import type { Message } from '../threads/thread.types.js';
import { toModelHistory } from './model-history.js';

type Stored = Pick<Message, 'role' | 'content' | 'steps'>;

const wide = { maxMessages: 100, maxChars: 1_000_000 };

const user = (content: string): Stored => ({ role: 'user', content });
const answer = (content: string, steps?: Stored['steps']): Stored => ({ role: 'assistant', content, steps });

/** An answer whose run called the calculator once: 6*7 → 42. */
const calculated = answer('It is 42.', [
  { callId: 'call_1', tool: 'calculator', args: { expression: '6*7' }, result: { expression: '6*7', result: 42 } },
]);

describe('toModelHistory', () => {
  it('replays an answer that called tools as the call, its result and the answer, in the order they happened', () => {
    const history = toModelHistory({
      messages: [user('What is 6*7?'), calculated, user('Thanks')],
      systemPrompt: 'Be brief.',
      budget: wide,
    });

    expect(history).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'What is 6*7?' },
      {
        role: 'assistant',
        content: '',
        toolCalls: [{ id: 'call_1', name: 'calculator', arguments: '{"expression":"6*7"}' }],
      },
      { role: 'tool', toolCallId: 'call_1', content: '{"expression":"6*7","result":42}' },
      { role: 'assistant', content: 'It is 42.' },
      { role: 'user', content: 'Thanks' },
    ]);
  });

  it('gives a failed call its error as the model heard it, and raw (non-JSON) arguments unchanged', () => {
    const failed = answer('Sorry.', [
      {
        callId: 'call_bad',
        tool: 'calculator',
        args: '{not json',
        error: { code: 'INVALID_TOOL_ARGUMENTS', message: 'not JSON' },
      },
      { callId: 'call_ok', tool: 'current_time', args: {}, result: { iso: '2025-01-01T00:00:00Z' } },
    ]);

    const history = toModelHistory({ messages: [user('Go'), failed, user('Again')], budget: wide });

    expect(history.slice(1, 4)).toEqual([
      {
        role: 'assistant',
        content: '',
        toolCalls: [
          { id: 'call_bad', name: 'calculator', arguments: '{not json' },
          { id: 'call_ok', name: 'current_time', arguments: '{}' },
        ],
      },
      {
        role: 'tool',
        toolCallId: 'call_bad',
        content: '{"error":{"code":"INVALID_TOOL_ARGUMENTS","message":"not JSON"}}',
      },
      { role: 'tool', toolCallId: 'call_ok', content: '{"iso":"2025-01-01T00:00:00Z"}' },
    ]);
  });

  it('leaves out a call that never got an outcome rather than send a call without its result', () => {
    const cut = answer('Partial.', [{ callId: 'call_lost', tool: 'calculator', args: { expression: '1+1' } }]);

    expect(toModelHistory({ messages: [user('Hi'), cut, user('Next')], budget: wide })).toEqual([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Partial.' },
      { role: 'user', content: 'Next' },
    ]);
  });

  it('sends the system prompt first and nothing for it when there is none', () => {
    expect(toModelHistory({ messages: [user('Hi')], systemPrompt: 'S', budget: wide })).toEqual([
      { role: 'system', content: 'S' },
      { role: 'user', content: 'Hi' },
    ]);
    expect(toModelHistory({ messages: [user('Hi')], budget: wide })).toEqual([{ role: 'user', content: 'Hi' }]);
  });

  it('keeps only the newest maxMessages stored messages, an answer and its tool calls counting as one', () => {
    const history = toModelHistory({
      messages: [user('first'), answer('one'), user('What is 6*7?'), calculated, user('last')],
      budget: { maxMessages: 3, maxChars: 1_000_000 },
    });

    expect(history.map((message) => message.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'user']);
    expect(history[0]).toEqual({ role: 'user', content: 'What is 6*7?' });
  });

  it('drops the oldest messages first when maxChars is exceeded, and an answer with its calls and results together', () => {
    // Sizes: 'What is 6*7?' 12; the calculated answer 9 + (10 + 20) + 32 = 71; 'ok?' 3.
    const messages = [user('What is 6*7?'), calculated, user('ok?')];

    const all = toModelHistory({ messages, budget: { maxMessages: 100, maxChars: 86 } });
    expect(all).toHaveLength(5);

    // One character short: the oldest message goes, which leaves the window opening with an
    // answer, so that goes too, calls and results with it.
    const tight = toModelHistory({ messages, systemPrompt: 'S', budget: { maxMessages: 100, maxChars: 85 } });
    expect(tight).toEqual([
      { role: 'system', content: 'S' },
      { role: 'user', content: 'ok?' },
    ]);
    expect(tight.some((message) => message.role === 'tool')).toBe(false);
  });

  it('never splits an answer from its tool results, whatever the budget', () => {
    const messages = [user('a'), calculated, user('b'), calculated, user('c')];
    for (let maxChars = 1; maxChars <= 200; maxChars += 1) {
      const history = toModelHistory({ messages, budget: { maxMessages: 100, maxChars } });
      const calls = new Set(
        history.flatMap((message) =>
          message.role === 'assistant' ? (message.toolCalls ?? []).map((call) => call.id) : [],
        ),
      );
      const results = history.filter((message) => message.role === 'tool');
      expect(results.every((message) => message.role === 'tool' && calls.has(message.toolCallId))).toBe(true);
      expect(history[0]?.role).toBe('user');
      expect(history.at(-1)).toEqual({ role: 'user', content: 'c' });
    }
  });

  it('always keeps the newest message, even one larger than the whole budget', () => {
    const long = 'x'.repeat(50);

    expect(
      toModelHistory({
        messages: [user('old'), answer('reply'), user(long)],
        budget: { maxMessages: 10, maxChars: 10 },
      }),
    ).toEqual([{ role: 'user', content: long }]);
  });
});
