import { describe, expect, it } from '@jest/globals';
import { evaluateExpression, ExpressionError } from './expression.js';

/** The error `source` throws; fails the test if it evaluates. */
function errorOf(source: string): ExpressionError {
  try {
    evaluateExpression(source);
  } catch (error) {
    if (error instanceof ExpressionError) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(source)} to fail`);
}

describe('evaluateExpression', () => {
  describe('numbers', () => {
    it.each([
      ['42', 42],
      ['0', 0],
      ['3.5', 3.5],
      ['.5', 0.5],
      ['007', 7],
      ['1e3', 1000],
      ['1E3', 1000],
      ['2.5e-3', 0.0025],
      ['1e+2', 100],
      ['.5e1', 5],
    ])('reads %s as %p', (source, expected) => {
      expect(evaluateExpression(source)).toBe(expected);
    });
  });

  describe('precedence and associativity', () => {
    it.each([
      ['1 + 2 * 3', 7],
      ['(1 + 2) * 3', 9],
      ['10 - 4 - 3', 3],
      ['10 - (4 - 3)', 9],
      ['100 / 10 / 5', 2],
      ['2 * 3 % 4', 2],
      ['7 % 4 * 3', 9],
      ['-7 % 3', -1],
      ['1 + 10 % 4', 3],
      ['2 ^ 3 ^ 2', 512],
      ['(2 ^ 3) ^ 2', 64],
      ['2 ** 3 ** 2', 512],
      ['2 * 3 ^ 2', 18],
      ['2 ^ 10', 1024],
      ['2 ^ -1', 0.5],
      ['2 ^ -2 ^ 2', 1 / 16],
      ['4 ^ .5', 2],
    ])('evaluates %s to %p', (source, expected) => {
      expect(evaluateExpression(source)).toBe(expected);
    });
  });

  describe('unary signs', () => {
    it.each([
      ['-3', -3],
      ['+3', 3],
      ['--3', 3],
      ['-+-3', 3],
      ['2 - -3', 5],
      ['2--3', 5],
      ['2 * -3', -6],
      ['-(2 + 3)', -5],
      ['-2 ^ 2', -4],
      ['-2 ** 2', -4],
      ['(-2) ^ 2', 4],
      ['-2 ^ -2', -0.25],
    ])('evaluates %s to %p', (source, expected) => {
      expect(evaluateExpression(source)).toBe(expected);
    });
  });

  it('ignores whitespace of any kind between tokens', () => {
    expect(evaluateExpression(' \t( 1+2 )\n*\r\n3 ')).toBe(9);
  });

  it('returns plain floating-point results without rounding them', () => {
    expect(evaluateExpression('0.1 + 0.2')).toBe(0.1 + 0.2);
  });

  describe('constants and functions', () => {
    it.each([
      ['pi', Math.PI],
      ['e', Math.E],
      ['2 * pi', 2 * Math.PI],
      ['sqrt(16)', 4],
      ['abs(-3.5)', 3.5],
      ['round(2.5)', 3],
      ['round(-2.5)', -2],
      ['floor(-1.5)', -2],
      ['ceil(1.2)', 2],
      ['min(3, 1, 2)', 1],
      ['max(3, 1 + 9, 2)', 10],
      ['max(4)', 4],
      ['sqrt(max(9, 16)) + abs(-1)', 5],
      ['-sqrt(4) ^ 2', -4],
    ])('evaluates %s to %p', (source, expected) => {
      expect(evaluateExpression(source)).toBe(expected);
    });

    it.each([
      ['sqrt(1, 2)', 'sqrt takes 1 argument but got 2', 0],
      ['sqrt 4', 'expected "(" after sqrt but found "4"', 5],
      ['sqrt', 'expected "(" after sqrt but found end of input', 4],
      ['max()', 'expected a number, "(" or a name but found ")"', 4],
      ['max(1 2)', 'expected "," or ")" but found "2"', 6],
      ['pi(2)', 'expected an operator or end of input but found "("', 2],
      ['sqrt(-1)', 'result is not a finite number', 0],
    ])('rejects %s: %s at position %p', (source, reason, position) => {
      expect(errorOf(source)).toMatchObject({ reason, position });
    });
  });

  describe('errors', () => {
    it.each([
      ['', 'expected a number, "(" or a name but found end of input', 0],
      ['   ', 'expected a number, "(" or a name but found end of input', 3],
      ['2 +', 'expected a number, "(" or a name but found end of input', 3],
      ['()', 'expected a number, "(" or a name but found ")"', 1],
      ['1..2', 'expected a digit after "."', 2],
      ['1.', 'expected a digit after "."', 2],
      ['.', 'expected a digit after "."', 1],
      ['1e', 'expected a digit in the exponent', 2],
      ['1e+', 'expected a digit in the exponent', 3],
      ['2 3', 'expected an operator or end of input but found "3"', 2],
      ['2 )', 'expected an operator or end of input but found ")"', 2],
      ['2x', 'expected an operator or end of input but found "x"', 1],
      ['(1 + 2', 'expected ")" but found end of input', 6],
      ['* 2', 'expected a number, "(" or a name but found "*"', 0],
      ['2 * * 3', 'expected a number, "(" or a name but found "*"', 4],
      ['2 *** 3', 'expected a number, "(" or a name but found "*"', 4],
      ['1, 2', 'expected an operator or end of input but found ","', 1],
      ['2 $ 3', 'unexpected character "$"', 2],
      ['1 + 😀', 'unexpected character "😀"', 4],
      ['foo + 1', 'unknown name "foo"', 0],
      ['PI', 'unknown name "PI"', 0],
      ['1 / 0', 'division by zero', 2],
      ['1 / (2 - 2)', 'division by zero', 2],
      ['5 % 0', 'division by zero', 2],
      ['0 / -0', 'division by zero', 2],
      ['10 ^ 400', 'result is not a finite number', 3],
      ['1 / 10 ^ 400', 'result is not a finite number', 7],
      ['1e308 * 10', 'result is not a finite number', 6],
      ['1e308 + 1e308', 'result is not a finite number', 6],
      ['(-8) ^ (1 / 3)', 'result is not a finite number', 5],
      ['1e400', 'number 1e400 is too large', 0],
    ])('rejects %p: %s at position %p', (source, reason, position) => {
      const error = errorOf(source);
      expect(error).toMatchObject({ name: 'ExpressionError', reason, position });
      expect(error.message).toBe(`${reason} at position ${position}`);
    });

    it.each(['process', 'constructor', '__proto__', 'globalThis', 'toString', 'hasOwnProperty', 'Math', 'eval'])(
      'rejects the identifier %s as an unknown name',
      (name) => {
        expect(errorOf(name)).toMatchObject({ reason: `unknown name "${name}"`, position: 0 });
        expect(errorOf(`1 + ${name}(1)`)).toMatchObject({ reason: `unknown name "${name}"`, position: 4 });
      },
    );

    it('rejects property access and strings, which the grammar has no place for', () => {
      expect(errorOf('pi.constructor')).toMatchObject({ reason: 'expected a digit after "."', position: 3 });
      expect(errorOf('"1"')).toMatchObject({ reason: 'unexpected character "\\""', position: 0 });
      expect(errorOf('[1]')).toMatchObject({ reason: 'unexpected character "["', position: 0 });
    });

    it('reports the leftmost problem first', () => {
      expect(errorOf('2 + ) $')).toMatchObject({ position: 4 });
    });
  });

  describe('limits', () => {
    it('accepts exactly 500 characters and rejects 501', () => {
      const ones = (count: number): string => Array.from({ length: count }, () => '1').join('+');
      expect(ones(250) + ' ').toHaveLength(500);
      expect(evaluateExpression(ones(250) + ' ')).toBe(250);
      expect(errorOf(ones(250) + '  ')).toMatchObject({
        reason: 'expression is longer than 500 characters',
        position: 500,
      });
    });

    it('accepts 64 nested parentheses and rejects the 65th at its position', () => {
      const nested = (depth: number): string => '('.repeat(depth) + '1' + ')'.repeat(depth);
      expect(evaluateExpression(nested(64))).toBe(1);
      expect(errorOf(nested(65))).toMatchObject({ reason: 'nesting is deeper than 64 levels', position: 64 });
    });

    it('counts function calls towards the nesting depth', () => {
      expect(errorOf('abs('.repeat(65) + '1' + ')'.repeat(65))).toMatchObject({
        reason: 'nesting is deeper than 64 levels',
        position: 64 * 4 + 3,
      });
    });

    it('survives long chains of unary signs and powers within the length limit', () => {
      expect(evaluateExpression('-'.repeat(498) + '1')).toBe(1);
      expect(evaluateExpression(Array.from({ length: 250 }, () => '1').join('^'))).toBe(1);
    });
  });
});

/** A tiny deterministic PRNG (mulberry32), so a failing case reproduces. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Generated {
  readonly text: string;
  readonly value: number;
  /** 1 for + -, 2 for * /, 3 for a number or a parenthesised group. */
  readonly precedence: number;
}

const OPERATORS = [
  { symbol: '+', precedence: 1, apply: (a: number, b: number) => a + b },
  { symbol: '-', precedence: 1, apply: (a: number, b: number) => a - b },
  { symbol: '*', precedence: 2, apply: (a: number, b: number) => a * b },
  { symbol: '/', precedence: 2, apply: (a: number, b: number) => a / b },
] as const;

/**
 * Builds an expression together with its value, computed over the same tree in the same order,
 * so the evaluator must agree to the last bit. Parentheses are added only where the tree needs
 * them (plus some redundant ones), so precedence and left-associativity are what is under test.
 */
function generate(next: () => number, depth: number): Generated {
  const pick = (count: number): number => Math.floor(next() * count);
  const space = (): string => (next() < 0.3 ? ' ' : '');
  if (depth === 0 || next() < 0.25) {
    const magnitude = pick(20);
    const negative = next() < 0.2;
    return {
      text: negative ? `-${magnitude}` : `${magnitude}`,
      value: negative ? -magnitude : magnitude,
      precedence: 3,
    };
  }
  const operator = OPERATORS[pick(OPERATORS.length)];
  const left = generate(next, depth - 1);
  let right = generate(next, depth - 1);
  while (operator.symbol === '/' && right.value === 0) right = generate(next, depth - 1);
  const wrap = (side: Generated, isRight: boolean): string => {
    const needed = side.precedence < operator.precedence || (isRight && side.precedence === operator.precedence);
    return needed || next() < 0.1 ? `(${space()}${side.text}${space()})` : side.text;
  };
  return {
    text: `${wrap(left, false)}${space()}${operator.symbol}${space()}${wrap(right, true)}`,
    value: operator.apply(left.value, right.value),
    precedence: operator.precedence,
  };
}

describe('evaluateExpression against generated expressions', () => {
  const next = random(20240315);
  const cases = Array.from({ length: 200 }, () => generate(next, 1 + Math.floor(next() * 5))).map(
    ({ text, value }) => [text, value] as const,
  );

  it.each(cases)('evaluates %s to %p', (text, value) => {
    expect(evaluateExpression(text)).toBe(value);
  });
});
