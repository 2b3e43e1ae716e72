import * as z from 'zod';
import { evaluateExpression, ExpressionError, MAX_EXPRESSION_LENGTH } from './expression.js';
import { type Tool, ToolError, toolSpec } from './tool.js';

export interface CalculatorArgs {
  readonly expression: string;
}

export interface CalculatorResult {
  readonly expression: string;
  readonly result: number;
}

const args = z
  .object({
    expression: z
      .string()
      .min(1)
      .max(MAX_EXPRESSION_LENGTH)
      .describe(`The expression to evaluate, at most ${MAX_EXPRESSION_LENGTH} characters, e.g. "(1 + 2) * 3 ^ 2".`),
  })
  .strict();

/** Evaluates arithmetic exactly as `evaluateExpression` does; a bad expression is a `TOOL_FAILED` the model can fix. */
export const calculatorTool: Tool<CalculatorArgs, CalculatorResult> = {
  spec: toolSpec(
    'calculator',
    'Evaluates an arithmetic expression and returns its numeric value. Supports numbers (3, 2.5, .5, 1e3), ' +
      '+ - * / %, ^ or ** for powers, parentheses, the constants pi and e, and the functions ' +
      'sqrt, abs, round, floor, ceil, min and max. Use it instead of doing arithmetic yourself.',
    args,
  ),
  args,
  async execute({ expression }, signal) {
    signal.throwIfAborted();
    try {
      return { expression, result: evaluateExpression(expression) };
    } catch (error) {
      if (error instanceof ExpressionError) {
        throw new ToolError('TOOL_FAILED', `cannot evaluate ${JSON.stringify(expression)}: ${error.message}`);
      }
      throw error;
    }
  },
};
