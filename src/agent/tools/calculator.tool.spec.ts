import { describe, expect, it } from '@jest/globals';
import { calculatorTool } from './calculator.tool.js';
import { ToolError } from './tool.js';

const live = (): AbortSignal => new AbortController().signal;

describe('calculatorTool', () => {
  it('describes itself to the model as "calculator" with a strict JSON Schema', () => {
    expect(calculatorTool.spec.name).toBe('calculator');
    expect(calculatorTool.spec.description).toMatch(/^Evaluates an arithmetic expression/);
    expect(calculatorTool.spec.parameters).toMatchObject({
      type: 'object',
      properties: { expression: { type: 'string' } },
      required: ['expression'],
      additionalProperties: false,
    });
  });

  it('evaluates a valid expression and echoes it back', async () => {
    const args = calculatorTool.args.parse({ expression: '(1 + 2) * 3 ^ 2' });
    await expect(calculatorTool.execute(args, live())).resolves.toEqual({ expression: '(1 + 2) * 3 ^ 2', result: 27 });
  });

  it.each([
    ['a number', { expression: 42 }],
    ['a missing expression', {}],
    ['an empty expression', { expression: '' }],
    ['an expression over 500 characters', { expression: '1'.repeat(501) }],
    ['an extra key', { expression: '1 + 1', precision: 2 }],
    ['null', null],
  ])('rejects arguments with %s', (_name, raw) => {
    expect(calculatorTool.args.safeParse(raw).success).toBe(false);
  });

  it('turns an evaluation error into TOOL_FAILED naming the expression and the reason', async () => {
    const failure = calculatorTool.execute({ expression: '1 / 0' }, live());
    await expect(failure).rejects.toBeInstanceOf(ToolError);
    await expect(failure).rejects.toMatchObject({
      code: 'TOOL_FAILED',
      message: 'cannot evaluate "1 / 0": division by zero at position 2',
    });
  });

  it('treats names the evaluator does not know as an evaluation error, not code', async () => {
    await expect(calculatorTool.execute({ expression: 'process.exit(1)' }, live())).rejects.toMatchObject({
      code: 'TOOL_FAILED',
      message: 'cannot evaluate "process.exit(1)": unknown name "process" at position 0',
    });
  });

  it('rejects without evaluating when the signal has already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('run cancelled'));
    await expect(calculatorTool.execute({ expression: '1 + 1' }, controller.signal)).rejects.toThrow('run cancelled');
  });
});
