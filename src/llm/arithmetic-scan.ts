/**
 * Finds the first run of arithmetic in a message: operands (digits and dots) joined by operators
 * (`**`, `+ - * / % ^`), with signs and parentheses around the operands, in one pass.
 *
 * It matches exactly what the regular expression
 * `[-+(]*\d[\d.]*(?:\s*(?:\*\*|[-+*\/%^])\s*[-+(]*\s*\d[\d.]*\)*)+\)*` would (a unit test compares
 * the two), but that expression backtracks: its attempt at each start position rescans the same
 * whitespace and digits, so `"1+" + spaces + "x"` or a long
 * run of digits took quadratic time. Here a failed attempt skips every start position that would
 * fail the same way (the rest of its sign run and its first operand), so no character is scanned
 * more than a fixed number of times.
 */
export function findArithmetic(text: string): string | undefined {
  const digits = /\d/gu;
  let from = 0;
  for (;;) {
    // Only a digit can start an operand: jump to the next one (natively), then back over the signs
    // and parentheses before it, which start the match when there are any.
    digits.lastIndex = from;
    const digit = digits.exec(text);
    if (digit === null) return undefined;
    let start = digit.index;
    while (start > from && isSign(text, start - 1)) start -= 1;
    const attempt = matchAt(text, start);
    if (attempt.end !== undefined) return text.slice(start, attempt.end);
    from = Math.max(digit.index + 1, attempt.skipTo);
  }
}

interface Attempt {
  /** End of the match, when the text at the start position is arithmetic. */
  readonly end?: number;
  /** The next start position that could succeed. */
  readonly skipTo: number;
}

function matchAt(text: string, start: number): Attempt {
  let index = skip(text, start, isSign);
  if (!isDigit(text, index)) return { skipTo: index };
  index = skip(text, index, isOperandChar);
  const firstOperandEnd = index;
  let matchedEnd: number | undefined;
  for (;;) {
    const next = operation(text, index);
    if (next === undefined) break;
    index = next;
    matchedEnd = next;
  }
  return matchedEnd === undefined ? { skipTo: firstOperandEnd } : { end: matchedEnd, skipTo: matchedEnd };
}

/** `\s*(?:\*\*|[-+*\/%^])\s*[-+(]*\s*\d[\d.]*\)*` at `from`: where it ends, or undefined. */
function operation(text: string, from: number): number | undefined {
  let index = skip(text, from, isSpace);
  if (text.startsWith('**', index)) index += 2;
  else if (isOperator(text, index)) index += 1;
  else return undefined;
  index = skip(text, index, isSpace);
  index = skip(text, index, isSign);
  index = skip(text, index, isSpace);
  if (!isDigit(text, index)) return undefined;
  index = skip(text, index, isOperandChar);
  return skip(text, index, isClosing);
}

function skip(text: string, from: number, accept: (text: string, index: number) => boolean): number {
  let index = from;
  while (index < text.length && accept(text, index)) index += 1;
  return index;
}

/** `\s` of a Unicode regular expression, by code unit. */
const isSpace = (text: string, index: number): boolean => {
  const code = text.charCodeAt(index);
  return (
    code === 32 ||
    (code >= 9 && code <= 13) ||
    code === 160 ||
    code === 5760 ||
    (code >= 8192 && code <= 8202) ||
    code === 8232 ||
    code === 8233 ||
    code === 8239 ||
    code === 8287 ||
    code === 12288 ||
    code === 65279
  );
};
const isDigit = (text: string, index: number): boolean => {
  const code = text.charCodeAt(index);
  return code >= 48 && code <= 57;
};
const isOperandChar = (text: string, index: number): boolean => isDigit(text, index) || text[index] === '.';
const isSign = (text: string, index: number): boolean => '-+('.includes(text[index] ?? 'x');
const isOperator = (text: string, index: number): boolean => '-+*/%^'.includes(text[index] ?? 'x');
const isClosing = (text: string, index: number): boolean => text[index] === ')';
