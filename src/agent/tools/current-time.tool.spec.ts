import { describe, expect, it } from '@jest/globals';
import { createCurrentTimeTool, currentTimeTool } from './current-time.tool.js';

const live = (): AbortSignal => new AbortController().signal;
const fixed = new Date('2024-03-15T12:30:00.000Z');
const tool = createCurrentTimeTool(() => fixed);

describe('currentTimeTool', () => {
  it('describes itself to the model as "current_time" with an optional timezone', () => {
    expect(tool.spec.name).toBe('current_time');
    expect(tool.spec.parameters).toMatchObject({
      type: 'object',
      properties: { timezone: { type: 'string' } },
      additionalProperties: false,
    });
    expect(tool.spec.parameters).not.toHaveProperty('required');
  });

  it('reports the injected clock in UTC by default', async () => {
    await expect(tool.execute(tool.args.parse({}), live())).resolves.toEqual({
      iso: '2024-03-15T12:30:00.000Z',
      timezone: 'UTC',
      local: expect.stringContaining('12:30:00'),
    });
  });

  it('writes the local time in the requested zone while the ISO instant stays UTC', async () => {
    const result = await tool.execute(tool.args.parse({ timezone: 'Asia/Tokyo' }), live());
    expect(result.iso).toBe('2024-03-15T12:30:00.000Z');
    expect(result.timezone).toBe('Asia/Tokyo');
    expect(result.local).toContain('21:30:00');
    expect(result.local).toContain('15 March 2024');
  });

  it('rolls the date over when the zone is past midnight', async () => {
    const late = createCurrentTimeTool(() => new Date('2024-03-15T23:00:00.000Z'));
    const result = await late.execute({ timezone: 'Asia/Tokyo' }, live());
    expect(result.local).toContain('16 March 2024');
    expect(result.local).toContain('08:00:00');
  });

  it.each([
    ['an unknown zone', { timezone: 'Mars/Olympus_Mons' }],
    ['an empty zone', { timezone: '' }],
    ['a zone over 64 characters', { timezone: 'A'.repeat(65) }],
    ['a number', { timezone: 9 }],
    ['an extra key', { timezone: 'UTC', format: 'iso' }],
  ])('rejects arguments with %s', (_name, raw) => {
    expect(tool.args.safeParse(raw).success).toBe(false);
  });

  it('names an unknown zone in the validation issue', () => {
    const parsed = tool.args.safeParse({ timezone: 'Mars/Olympus_Mons' });
    expect(parsed.error?.issues).toEqual([
      expect.objectContaining({ path: ['timezone'], message: 'unknown time zone' }),
    ]);
  });

  it('uses the real clock when none is injected', async () => {
    const before = Date.now();
    const result = await currentTimeTool.execute({}, live());
    expect(Date.parse(result.iso)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(result.iso)).toBeLessThanOrEqual(Date.now());
  });

  it('rejects when the signal has already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('run cancelled'));
    await expect(tool.execute({}, controller.signal)).rejects.toThrow('run cancelled');
  });
});
