import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { findArithmetic } from './arithmetic-scan.js';

/** The expression the scan replaces: the reference for what it must find. */
const BACKTRACKING = /[-+(]*\d[\d.]*(?:\s*(?:\*\*|[-+*/%^])\s*[-+(]*\s*\d[\d.]*\)*)+\)*/u;

/** Text made of the characters that matter to the grammar, and a few that do not. */
const arithmeticish = fc.string({
  unit: fc.constantFrom('1', '2', '0', '.', ' ', '\t', '+', '-', '*', '/', '%', '^', '(', ')', 'x', '?', '\u00a0'),
  maxLength: 40,
});

describe('findArithmetic', () => {
  it('finds the arithmetic in a question', () => {
    expect(findArithmetic('What is 12 * (3 + 4) - 2^3?')).toBe('12 * (3 + 4) - 2^3');
    expect(findArithmetic('compute 1 / 0 please')).toBe('1 / 0');
    expect(findArithmetic('what is 2 ** -3?')).toBe('2 ** -3');
    expect(findArithmetic('no numbers here')).toBeUndefined();
    expect(findArithmetic('just 42')).toBeUndefined();
  });

  it('finds exactly what the backtracking expression found, on any text', () => {
    fc.assert(
      fc.property(arithmeticish, (text) => {
        expect(findArithmetic(text)).toBe(BACKTRACKING.exec(text)?.[0]);
      }),
      { numRuns: 20_000 },
    );
  });

  // The expression needed minutes for these (quadratic: 16 000 characters took 215 ms); the scan
  // reads each character a fixed number of times, so two million are nothing.
  it.each([
    ['an operator followed by spaces and no operand', `1+${' '.repeat(2_000_000)}x`],
    ['a run of digits without an operator', '7'.repeat(2_000_000)],
    ['signs without a digit', `${'-+('.repeat(700_000)}x`],
    ['operands separated by spaces only', '1 '.repeat(1_000_000)],
  ])('scans %s in one pass', (_name, text) => {
    expect(findArithmetic(text)).toBeUndefined();
  });
});
