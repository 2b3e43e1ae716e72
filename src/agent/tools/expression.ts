/**
 * A small arithmetic evaluator for the calculator tool. The input comes from the model, so it is
 * parsed by hand (never `eval` or `Function`) and bounded in length and nesting depth.
 *
 * Grammar, loosest binding first:
 *
 *   expression := term (("+" | "-") term)*
 *   term       := unary (("*" | "/" | "%") unary)*
 *   unary      := ("+" | "-") unary | power
 *   power      := primary (("^" | "**") unary)?        right-associative; -2^2 = -4, 2^-1 = 0.5
 *   primary    := number | "(" expression ")" | constant | function "(" expression ("," expression)* ")"
 *
 * Numbers: `3`, `3.5`, `.5`, `1e3`, `2.5E-3` (a digit must follow "."). Constants: `pi`, `e`.
 * Functions: `sqrt abs round floor ceil` (one argument), `min max` (one or more); they behave like
 * the `Math` functions of the same name.
 */

/** Longest accepted input, in UTF-16 code units. */
export const MAX_EXPRESSION_LENGTH = 500;
/** Deepest accepted nesting of parentheses and function calls. */
export const MAX_EXPRESSION_DEPTH = 64;

/** The expression cannot be evaluated; `position` is the 0-based index where it went wrong. */
export class ExpressionError extends Error {
  constructor(
    readonly reason: string,
    readonly position: number,
  ) {
    super(`${reason} at position ${position}`);
    this.name = 'ExpressionError';
  }
}

/** Evaluates `source` to a finite number or throws an `ExpressionError`. */
export function evaluateExpression(source: string): number {
  if (source.length > MAX_EXPRESSION_LENGTH) {
    throw new ExpressionError(`expression is longer than ${MAX_EXPRESSION_LENGTH} characters`, MAX_EXPRESSION_LENGTH);
  }
  return new Parser(new Scanner(source)).parse();
}

type Operator = '+' | '-' | '*' | '/' | '%' | '^' | '(' | ')' | ',';

type Token =
  | { readonly kind: 'number'; readonly value: number; readonly text: string; readonly position: number }
  | { readonly kind: 'name'; readonly text: string; readonly position: number }
  | { readonly kind: 'operator'; readonly operator: Operator; readonly text: string; readonly position: number }
  | { readonly kind: 'end'; readonly text: ''; readonly position: number };

type Name =
  | { readonly kind: 'constant'; readonly value: number }
  | { readonly kind: 'function'; readonly arity: 'one' | 'many'; readonly apply: (...args: number[]) => number };

// A Map, not an object literal: a lookup of `constructor` or `__proto__` must find nothing.
const NAMES = new Map<string, Name>([
  ['pi', { kind: 'constant', value: Math.PI }],
  ['e', { kind: 'constant', value: Math.E }],
  ['sqrt', { kind: 'function', arity: 'one', apply: Math.sqrt }],
  ['abs', { kind: 'function', arity: 'one', apply: Math.abs }],
  ['round', { kind: 'function', arity: 'one', apply: Math.round }],
  ['floor', { kind: 'function', arity: 'one', apply: Math.floor }],
  ['ceil', { kind: 'function', arity: 'one', apply: Math.ceil }],
  ['min', { kind: 'function', arity: 'many', apply: Math.min }],
  ['max', { kind: 'function', arity: 'many', apply: Math.max }],
]);

const SINGLE_CHAR_OPERATORS: ReadonlySet<string> = new Set(['+', '-', '*', '/', '%', '^', '(', ')', ',']);

const isDigit = (char: string | undefined): boolean => char !== undefined && char >= '0' && char <= '9';
const isNameStart = (char: string | undefined): boolean => char !== undefined && /^[A-Za-z_]$/.test(char);
const isNamePart = (char: string | undefined): boolean => char !== undefined && /^[A-Za-z0-9_]$/.test(char);
const isWhitespace = (char: string | undefined): boolean => char !== undefined && /^\s$/.test(char);

/** Produces tokens on demand, so the error reported is always the leftmost one. */
class Scanner {
  private index = 0;

  constructor(private readonly source: string) {}

  next(): Token {
    const source = this.source;
    while (isWhitespace(source[this.index])) this.index++;
    const position = this.index;
    const char = source[position];
    if (char === undefined) return { kind: 'end', text: '', position };
    if (isDigit(char) || char === '.') return this.number();
    if (isNameStart(char)) {
      while (isNamePart(source[this.index])) this.index++;
      return { kind: 'name', text: source.slice(position, this.index), position };
    }
    if (char === '*' && source[position + 1] === '*') {
      this.index += 2;
      return { kind: 'operator', operator: '^', text: '**', position };
    }
    if (SINGLE_CHAR_OPERATORS.has(char)) {
      this.index++;
      return { kind: 'operator', operator: char as Operator, text: char, position };
    }
    const whole = String.fromCodePoint(source.codePointAt(position) ?? 0);
    throw new ExpressionError(`unexpected character ${JSON.stringify(whole)}`, position);
  }

  private number(): Token {
    const source = this.source;
    const position = this.index;
    this.skipDigits();
    if (source[this.index] === '.') {
      this.index++;
      if (!isDigit(source[this.index])) throw new ExpressionError('expected a digit after "."', this.index);
      this.skipDigits();
    }
    if (source[this.index] === 'e' || source[this.index] === 'E') {
      this.index++;
      if (source[this.index] === '+' || source[this.index] === '-') this.index++;
      if (!isDigit(source[this.index])) throw new ExpressionError('expected a digit in the exponent', this.index);
      this.skipDigits();
    }
    const text = source.slice(position, this.index);
    const value = Number(text);
    if (!Number.isFinite(value)) throw new ExpressionError(`number ${text} is too large`, position);
    return { kind: 'number', value, text, position };
  }

  private skipDigits(): void {
    while (isDigit(this.source[this.index])) this.index++;
  }
}

class Parser {
  private token: Token;
  private depth = 0;

  constructor(private readonly scanner: Scanner) {
    this.token = scanner.next();
  }

  parse(): number {
    const value = this.expression();
    if (this.token.kind !== 'end') throw this.unexpected('an operator or end of input');
    return value;
  }

  private expression(): number {
    let left = this.term();
    for (let op = this.operatorAt('+', '-'); op !== undefined; op = this.operatorAt('+', '-')) {
      this.advance();
      const right = this.term();
      left = finite(op.operator === '+' ? left + right : left - right, op.position);
    }
    return left;
  }

  private term(): number {
    let left = this.unary();
    for (let op = this.operatorAt('*', '/', '%'); op !== undefined; op = this.operatorAt('*', '/', '%')) {
      this.advance();
      const right = this.unary();
      if (op.operator === '*') {
        left = finite(left * right, op.position);
      } else {
        if (right === 0) throw new ExpressionError('division by zero', op.position);
        left = finite(op.operator === '/' ? left / right : left % right, op.position);
      }
    }
    return left;
  }

  private unary(): number {
    const op = this.operatorAt('+', '-');
    if (op === undefined) return this.power();
    this.advance();
    const operand = this.unary();
    return op.operator === '-' ? -operand : operand;
  }

  private power(): number {
    const base = this.primary();
    const op = this.operatorAt('^');
    if (op === undefined) return base;
    this.advance();
    // The exponent is a `unary`, which itself reaches `power` again: that is the right-associativity.
    const exponent = this.unary();
    return finite(base ** exponent, op.position);
  }

  private primary(): number {
    const token = this.token;
    if (token.kind === 'number') {
      this.advance();
      return token.value;
    }
    if (token.kind === 'operator' && token.operator === '(') {
      this.enter(token.position);
      this.advance();
      const value = this.expression();
      this.expect(')', '")"');
      this.depth--;
      return value;
    }
    if (token.kind === 'name') return this.name(token.text, token.position);
    throw this.unexpected('a number, "(" or a name');
  }

  private name(text: string, position: number): number {
    const name = NAMES.get(text);
    if (name === undefined) throw new ExpressionError(`unknown name ${JSON.stringify(text)}`, position);
    this.advance();
    if (name.kind === 'constant') return name.value;
    const open = this.expect('(', `"(" after ${text}`);
    this.enter(open.position);
    const args = [this.expression()];
    while (this.operatorAt(',') !== undefined) {
      this.advance();
      args.push(this.expression());
    }
    this.expect(')', '"," or ")"');
    this.depth--;
    if (name.arity === 'one' && args.length !== 1) {
      throw new ExpressionError(`${text} takes 1 argument but got ${args.length}`, position);
    }
    return finite(name.apply(...args), position);
  }

  private operatorAt<O extends Operator>(...operators: O[]): { operator: O; position: number } | undefined {
    const token = this.token;
    if (token.kind !== 'operator' || !(operators as Operator[]).includes(token.operator)) return undefined;
    return { operator: token.operator as O, position: token.position };
  }

  private expect(operator: Operator, expected: string): Token {
    if (this.operatorAt(operator) === undefined) throw this.unexpected(expected);
    return this.advance();
  }

  private advance(): Token {
    const token = this.token;
    this.token = this.scanner.next();
    return token;
  }

  private enter(position: number): void {
    this.depth++;
    if (this.depth > MAX_EXPRESSION_DEPTH) {
      throw new ExpressionError(`nesting is deeper than ${MAX_EXPRESSION_DEPTH} levels`, position);
    }
  }

  private unexpected(expected: string): ExpressionError {
    const found = this.token.kind === 'end' ? 'end of input' : JSON.stringify(this.token.text);
    return new ExpressionError(`expected ${expected} but found ${found}`, this.token.position);
  }
}

function finite(value: number, position: number): number {
  if (!Number.isFinite(value)) throw new ExpressionError('result is not a finite number', position);
  return value;
}
