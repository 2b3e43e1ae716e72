import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { LocalModel, tokenize } from './local-model.js';

describe('tokenize', () => {
  it('splits into words with their trailing whitespace, exactly as the reply streams', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', 'b', ' ', '\n', '\u3000'), maxLength: 30 }), (text) => {
        expect(tokenize(text)).toEqual(text.match(/\s*\S+\s*/gu) ?? []);
      }),
      { numRuns: 5_000 },
    );
  });

  it('takes a long trailing run of whitespace in one pass', () => {
    expect(tokenize(`word${' '.repeat(2_000_000)}`)).toHaveLength(1);
  });
});

describe('LocalModel streaming', () => {
  it('lets the event loop run between the tokens of a long reply, even without a token delay', async () => {
    const model = new LocalModel({ warmupMs: 0, tokenDelayMs: 0 });
    const signal = new AbortController().signal;
    await model.init(signal);
    let tokens = 0;
    let tokensWhenIoRan: number | undefined;
    setImmediate(() => (tokensWhenIoRan = tokens));
    for await (const chunk of model.stream({ messages: [{ role: 'user', content: 'word '.repeat(2_000) }] }, signal)) {
      if (chunk.type !== 'text') continue;
      tokens += 1;
      // What sending a token's frames costs the server: 20 µs of work, 40 ms for the whole reply.
      const until = performance.now() + 0.02;
      while (performance.now() < until);
    }
    expect(tokens).toBeGreaterThan(2_000);
    // I/O ran while the reply was still streaming, not after it.
    expect(tokensWhenIoRan).toBeDefined();
    expect(tokensWhenIoRan).toBeLessThan(tokens);
  });
});
