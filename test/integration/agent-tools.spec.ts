import { afterEach, describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { AGENT_TOOLS } from '../../src/agent/agent.constants.js';
import { calculatorTool } from '../../src/agent/tools/calculator.tool.js';
import type { Tool } from '../../src/agent/tools/tool.js';
import { LLM_PROVIDER } from '../../src/llm/llm.constants.js';
import { deferred } from '../support/deferred.js';
import { ScriptedModel } from '../support/scripted-model.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

let app: TestApp | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('built-in tools with the embedded model', () => {
  it('calls calculator for arithmetic and answers with the result', async () => {
    app = await startTestApp({ ready: true });
    const alice = await app.connectAs();
    const frames = await alice.request('math', 'What is 12 * (3 + 4) - 2^3?');
    expect(frames.map((frame) => frame.event).slice(0, 5)).toEqual([
      'agent_started',
      'agent_thinking',
      'tool_executing',
      'tool_completed',
      'agent_thinking',
    ]);
    const executing = frames[2]?.data;
    const completed = frames[3]?.data;
    expect(executing).toMatchObject({ tool: 'calculator', args: { expression: '12 * (3 + 4) - 2^3' } });
    expect(completed).toMatchObject({ tool: 'calculator', callId: executing?.callId, result: { result: 76 } });
    expect(frames[4]?.data.step).toBe(2);
    const end = frames.at(-1);
    expect(end?.event).toBe('agent_completed');
    expect((end?.data.message as { content: string }).content).toBe('12 * (3 + 4) - 2^3 = 76.');
  });

  it('calls current_time when asked for the time', async () => {
    app = await startTestApp({ ready: true });
    const alice = await app.connectAs();
    const frames = await alice.request('clock', 'What time is it?');
    const completed = frames.find((frame) => frame.event === 'tool_completed');
    expect(completed?.data).toMatchObject({ tool: 'current_time', result: { timezone: 'UTC' } });
    const iso = (completed?.data.result as { iso: string }).iso;
    expect(Math.abs(Date.parse(iso) - Date.now())).toBeLessThan(60_000);
  });

  it('reports a bad expression as tool_failed and still completes the run', async () => {
    app = await startTestApp({ ready: true });
    const alice = await app.connectAs();
    const frames = await alice.request('div', 'compute 1 / 0 please');
    const failed = frames.find((frame) => frame.event === 'tool_failed');
    expect(failed?.data).toMatchObject({ tool: 'calculator', error: { code: 'TOOL_FAILED' } });
    expect(String((failed?.data.error as { message: string }).message)).toContain('division by zero');
    expect(frames.at(-1)?.event).toBe('agent_completed');
  });
});

describe('tool failures never end the run', () => {
  const neverEnds = deferred<void>();
  /** Ignores its abort signal entirely: the registry must not wait for it. */
  const stubborn: Tool<Record<string, never>, string> = {
    spec: { name: 'stubborn', description: 'never returns', parameters: { type: 'object', properties: {} } },
    args: z.object({}).strict(),
    execute: async () => {
      await neverEnds.promise;
      return 'unreachable';
    },
  };
  const broken: Tool<Record<string, never>, string> = {
    spec: { name: 'broken', description: 'throws', parameters: { type: 'object', properties: {} } },
    args: z.object({}).strict(),
    execute: () => Promise.reject(new RangeError('disk on fire')),
  };

  it('turns a tool past AGENT_TOOL_TIMEOUT_MS into TOOL_TIMEOUT and a throwing one into TOOL_FAILED, and the model hears both', async () => {
    const model = new ScriptedModel();
    app = await startTestApp({
      ready: true,
      env: { AGENT_TOOL_TIMEOUT_MS: '50' },
      override: (builder) =>
        builder
          .overrideProvider(LLM_PROVIDER)
          .useValue(model)
          .overrideProvider(AGENT_TOOLS)
          .useValue([calculatorTool, stubborn, broken]),
    });
    const alice = await app.connectAs();
    alice.send('agent_request', { requestId: 'r1', message: 'use your tools' });
    (await model.nextCall())
      .toolCall({ id: 'c1', name: 'stubborn', arguments: '{}' })
      .toolCall({ id: 'c2', name: 'broken', arguments: '{}' })
      .finish();
    const second = await model.nextCall();
    const toolMessages = second.request.messages.filter((message) => message.role === 'tool');
    expect(toolMessages).toEqual([
      { role: 'tool', toolCallId: 'c1', content: expect.stringContaining('TOOL_TIMEOUT') },
      { role: 'tool', toolCallId: 'c2', content: expect.stringContaining('disk on fire') },
    ]);
    second.text('Both tools failed.').finish();

    const end = await alice.runEnd('r1');
    expect(end.event).toBe('agent_completed');
    const failures = alice.runFrames(end.data.runId).filter((frame) => frame.event === 'tool_failed');
    expect(failures.map((frame) => [frame.data.callId, (frame.data.error as { code: string }).code])).toEqual([
      ['c1', 'TOOL_TIMEOUT'],
      ['c2', 'TOOL_FAILED'],
    ]);
  });

  it('ends a model that keeps calling tools with STEP_LIMIT_REACHED after AGENT_MAX_STEPS', async () => {
    const model = new ScriptedModel();
    app = await startTestApp({
      ready: true,
      env: { AGENT_MAX_STEPS: '2' },
      override: (builder) => builder.overrideProvider(LLM_PROVIDER).useValue(model),
    });
    const alice = await app.connectAs();
    alice.send('agent_request', { requestId: 'loop', message: 'loop forever' });
    for (let step = 1; step <= 2; step += 1) {
      (await model.nextCall())
        .toolCall({ id: `c${step}`, name: 'calculator', arguments: '{"expression":"1+1"}' })
        .finish();
    }
    const end = await alice.runEnd('loop');
    expect(end.data).toMatchObject({ code: 'STEP_LIMIT_REACHED', retryable: false });
    expect(model.calls).toHaveLength(2);
  });
});
