import { afterEach, describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { AGENT_TOOLS } from '../../src/agent/agent.constants.js';
import { AgentSupervisor } from '../../src/agent/agent.supervisor.js';
import type { Tool } from '../../src/agent/tools/tool.js';
import { LLM_PROVIDER } from '../../src/llm/llm.constants.js';
import { ThreadsService } from '../../src/threads/threads.service.js';
import { ScriptedModel } from '../support/scripted-model.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import type { ReceivedFrame, TestClient } from '../support/ws-client.js';

const MISSING_ID = '0190a3b2-0000-7000-8000-000000000000';
const APPROVE_CALCULATOR = { AGENT_APPROVAL_TOOLS: 'calculator' };

let app: TestApp | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** Starts "what is 6 * 7?" (the embedded model calls calculator) and resolves with its approval request. */
async function askedToApprove(client: TestClient, requestId: string): Promise<ReceivedFrame> {
  client.send('agent_request', { requestId, message: 'What is 6 * 7?' });
  return client.waitFor('tool_approval_required', (data) => data.requestId === requestId);
}

const eventsOf = (frames: readonly ReceivedFrame[]): string[] => frames.map((frame) => frame.event);

describe('a tool call that needs approval', () => {
  it('pauses the run on tool_approval_required and, approved, runs the tool and completes', async () => {
    app = await startTestApp({ ready: true, env: APPROVE_CALCULATOR });
    const alice = await app.connectAs();
    const request = await askedToApprove(alice, 'r1');
    const { runId, toolCallId } = request.data;
    expect(request.data).toMatchObject({ name: 'calculator', arguments: { expression: '6 * 7' }, seq: 3 });
    expect(app.app.get(AgentSupervisor).liveRun('alice', String(runId))?.approvals.pendingCallId).toBe(toolCallId);
    expect(eventsOf(alice.runFrames(runId))).toEqual(['agent_started', 'agent_thinking', 'tool_approval_required']);

    alice.send('tool_approval', { runId, toolCallId, approved: true });
    const end = await alice.runEnd('r1');
    expect(end.event).toBe('agent_completed');
    const frames = alice.runFrames(runId);
    expect(eventsOf(frames).slice(0, 5)).toEqual([
      'agent_started',
      'agent_thinking',
      'tool_approval_required',
      'tool_executing',
      'tool_completed',
    ]);
    expect(frames[3]?.data).toMatchObject({ callId: toolCallId, tool: 'calculator' });
    expect(frames[4]?.data).toMatchObject({ callId: toolCallId, result: { result: 42 } });
    expect((end.data.message as { content: string }).content).toBe('6 * 7 = 42.');
  });

  it('refused, ends the call as tool_failed TOOL_REFUSED without running it, and the model hears the reason', async () => {
    const model = new ScriptedModel();
    let executed = 0;
    const counted: Tool<{ expression: string }, number> = {
      spec: { name: 'calculator', description: 'counts', parameters: { type: 'object', properties: {} } },
      args: z.object({ expression: z.string() }),
      execute: () => Promise.resolve((executed += 1)),
    };
    app = await startTestApp({
      ready: true,
      env: APPROVE_CALCULATOR,
      override: (builder) =>
        builder.overrideProvider(LLM_PROVIDER).useValue(model).overrideProvider(AGENT_TOOLS).useValue([counted]),
    });
    const alice = await app.connectAs();
    alice.send('agent_request', { requestId: 'r1', message: 'compute' });
    (await model.nextCall()).toolCall({ id: 'c1', name: 'calculator', arguments: '{"expression":"1+1"}' }).finish();
    const request = await alice.waitFor('tool_approval_required');
    alice.send('tool_approval', {
      runId: request.data.runId,
      toolCallId: 'c1',
      approved: false,
      reason: 'not on my account',
    });
    const second = await model.nextCall();
    const heard = second.request.messages.filter((message) => message.role === 'tool');
    expect(heard).toEqual([{ role: 'tool', toolCallId: 'c1', content: expect.stringContaining('TOOL_REFUSED') }]);
    expect(heard[0]?.content).toContain('not on my account');
    second.text('Understood.').finish();

    expect((await alice.runEnd('r1')).event).toBe('agent_completed');
    expect(executed).toBe(0);
    const frames = alice.runFrames(request.data.runId);
    expect(eventsOf(frames)).not.toContain('tool_executing');
    const failed = frames.find((frame) => frame.event === 'tool_failed');
    expect(failed?.data).toMatchObject({ callId: 'c1', tool: 'calculator', error: { code: 'TOOL_REFUSED' } });
    expect((failed?.data.error as { message: string }).message).toContain('not on my account');

    const threadId = (await alice.waitFor('agent_started')).data.threadId;
    alice.send('thread_history', { requestId: 'h1', threadId });
    const history = await alice.waitFor('thread_history_result', (data) => data.requestId === 'h1');
    const answer = (history.data.messages as Array<{ role: string; steps?: unknown }>).at(-1);
    expect(answer?.steps).toEqual([
      {
        callId: 'c1',
        tool: 'calculator',
        args: { expression: '1+1' },
        error: { code: 'TOOL_REFUSED', message: expect.stringContaining('not on my account') as unknown },
      },
    ]);
  });

  it('is refused when nobody answers within AGENT_APPROVAL_TIMEOUT_MS, and the run goes on', async () => {
    app = await startTestApp({ ready: true, env: { ...APPROVE_CALCULATOR, AGENT_APPROVAL_TIMEOUT_MS: '10' } });
    const alice = await app.connectAs();
    alice.send('agent_request', { requestId: 'r1', message: 'What is 6 * 7?' });
    const end = await alice.runEnd('r1');
    expect(end.event).toBe('agent_completed');
    const frames = alice.runFrames(end.data.runId);
    expect(eventsOf(frames)).toContain('tool_approval_required');
    expect(eventsOf(frames)).not.toContain('tool_executing');
    const failed = frames.find((frame) => frame.event === 'tool_failed');
    expect(failed?.data.error).toEqual({
      code: 'TOOL_REFUSED',
      message: expect.stringMatching(/within 10 ms .*timed out/u) as unknown,
    });
  });

  it('stops the AGENT_RUN_TIMEOUT_MS clock while it waits: a wait longer than the run timeout does not fail the run', async () => {
    app = await startTestApp({
      ready: true,
      env: { ...APPROVE_CALCULATOR, AGENT_RUN_TIMEOUT_MS: '100', AGENT_APPROVAL_TIMEOUT_MS: '400' },
    });
    const alice = await app.connectAs();
    alice.send('agent_request', { requestId: 'r1', message: 'What is 6 * 7?' });
    const end = await alice.runEnd('r1');
    expect(end.event).toBe('agent_completed');
    const failed = alice.runFrames(end.data.runId).find((frame) => frame.event === 'tool_failed');
    expect(failed?.data.error).toMatchObject({ code: 'TOOL_REFUSED' });
  });

  it('also waits for a tool marked requiresApproval, with AGENT_APPROVAL_TOOLS unset', async () => {
    const model = new ScriptedModel();
    const guarded: Tool<Record<string, never>, string> = {
      spec: { name: 'guarded', description: 'asks first', parameters: { type: 'object', properties: {} } },
      args: z.object({}),
      requiresApproval: true,
      execute: () => Promise.resolve('done'),
    };
    app = await startTestApp({
      ready: true,
      override: (builder) =>
        builder.overrideProvider(LLM_PROVIDER).useValue(model).overrideProvider(AGENT_TOOLS).useValue([guarded]),
    });
    const alice = await app.connectAs();
    alice.send('agent_request', { requestId: 'r1', message: 'go' });
    (await model.nextCall()).toolCall({ id: 'g1', name: 'guarded', arguments: '{}' }).finish();
    const request = await alice.waitFor('tool_approval_required');
    expect(request.data).toMatchObject({ toolCallId: 'g1', name: 'guarded', arguments: {} });
    alice.send('tool_approval', { runId: request.data.runId, toolCallId: 'g1', approved: true });
    await alice.waitFor('tool_completed', (data) => data.callId === 'g1');
    (await model.nextCall()).text('ok').finish();
    expect((await alice.runEnd('r1')).event).toBe('agent_completed');
  });

  it('ends the run as cancelled when agent_cancel arrives during the pause', async () => {
    app = await startTestApp({ ready: true, env: APPROVE_CALCULATOR });
    const alice = await app.connectAs();
    const request = await askedToApprove(alice, 'r1');
    alice.send('agent_cancel', { runId: request.data.runId });
    expect((await alice.runEnd('r1')).event).toBe('agent_cancelled');
    expect((await app.app.get(ThreadsService).findRun('alice', String(request.data.runId))).status).toBe('cancelled');
    expect(eventsOf(alice.runFrames(request.data.runId))).not.toContain('tool_executing');
  });
});

describe('who may answer', () => {
  it("is answered from the user's second connection, and the first one sees the tool run", async () => {
    app = await startTestApp({ ready: true, env: APPROVE_CALCULATOR });
    const phone = await app.connectAs('alice');
    const request = await askedToApprove(phone, 'r1');
    const laptop = await app.connectAs('alice');
    laptop.send('resume', { runId: request.data.runId, afterSeq: 0 });
    const replayed = await laptop.waitFor('tool_approval_required');
    expect(replayed.data).toEqual(request.data);

    laptop.send('tool_approval', { runId: request.data.runId, toolCallId: request.data.toolCallId, approved: true });
    expect((await phone.runEnd('r1')).event).toBe('agent_completed');
    expect(eventsOf(phone.runFrames(request.data.runId))).toContain('tool_completed');
    await laptop.runEnd('r1');
    expect(laptop.runFrames(request.data.runId)).toEqual(phone.runFrames(request.data.runId));
  });

  it("refuses another user's answer as RUN_NOT_FOUND, and the call still waits for its owner", async () => {
    app = await startTestApp({ ready: true, env: APPROVE_CALCULATOR });
    const alice = await app.connectAs('alice');
    const bob = await app.connectAs('bob');
    const request = await askedToApprove(alice, 'r1');
    const { runId, toolCallId } = request.data;
    bob.send('tool_approval', { requestId: 'steal', runId, toolCallId, approved: true });
    bob.send('tool_approval', { requestId: 'ghost', runId: MISSING_ID, toolCallId, approved: true });
    const steal = await bob.waitFor('error', (data) => data.requestId === 'steal');
    const ghost = await bob.waitFor('error', (data) => data.requestId === 'ghost');
    expect(steal.data).toMatchObject({ code: 'RUN_NOT_FOUND', message: `run ${String(runId)} not found` });
    expect(ghost.data).toMatchObject({ code: 'RUN_NOT_FOUND', message: `run ${MISSING_ID} not found` });
    expect(app.app.get(AgentSupervisor).liveRun('alice', String(runId))?.approvals.pendingCallId).toBe(toolCallId);

    alice.send('tool_approval', { runId, toolCallId, approved: true });
    expect((await alice.runEnd('r1')).event).toBe('agent_completed');
  });

  it('answers TOOL_CALL_NOT_PENDING for an unknown or already answered call, RUN_NOT_ACTIVE once the run ended, VALIDATION_FAILED for a malformed frame', async () => {
    const model = new ScriptedModel();
    app = await startTestApp({
      ready: true,
      env: APPROVE_CALCULATOR,
      override: (builder) => builder.overrideProvider(LLM_PROVIDER).useValue(model),
    });
    const alice = await app.connectAs();
    alice.send('agent_request', { requestId: 'r1', message: 'compute' });
    (await model.nextCall()).toolCall({ id: 'c1', name: 'calculator', arguments: '{"expression":"1+1"}' }).finish();
    const request = await alice.waitFor('tool_approval_required');
    const { runId } = request.data;

    alice.send('tool_approval', { requestId: 'unknown', runId, toolCallId: 'c9', approved: true });
    const unknown = await alice.waitFor('error', (data) => data.requestId === 'unknown');
    expect(unknown.data).toMatchObject({ code: 'TOOL_CALL_NOT_PENDING', retryable: false });
    expect(String(unknown.data.message)).toContain('"c9"');

    alice.send('tool_approval', { requestId: 'first', runId, toolCallId: 'c1', approved: true });
    alice.send('tool_approval', { requestId: 'again', runId, toolCallId: 'c1', approved: false });
    const again = await alice.waitFor('error', (data) => data.requestId === 'again');
    expect(again.data).toMatchObject({ code: 'TOOL_CALL_NOT_PENDING' });
    await alice.waitFor('tool_completed', (data) => data.callId === 'c1');
    expect(alice.frames.filter((frame) => frame.data.requestId === 'first')).toEqual([]);

    (await model.nextCall()).text('2').finish();
    await alice.runEnd('r1');
    alice.send('tool_approval', { requestId: 'late', runId, toolCallId: 'c1', approved: true });
    const late = await alice.waitFor('error', (data) => data.requestId === 'late');
    expect(late.data).toMatchObject({ code: 'RUN_NOT_ACTIVE', retryable: false });

    alice.send('tool_approval', { requestId: 'bad', runId, toolCallId: 'c1', approved: 'yes' });
    const bad = await alice.waitFor('error', (data) => data.requestId === 'bad');
    expect(bad.data).toMatchObject({ code: 'VALIDATION_FAILED', field: 'approved' });
  });
});

describe('a pause and a reconnect', () => {
  it('replays the pending request on resume after a reconnect, and the new connection answers it', async () => {
    app = await startTestApp({ ready: true, env: APPROVE_CALCULATOR });
    const first = await app.connectAs('alice');
    const request = await askedToApprove(first, 'r1');
    const lastSeq = Number(request.data.seq);
    await first.close();

    const again = await app.connectAs('alice');
    again.send('resume', { requestId: 'back', runId: request.data.runId, afterSeq: lastSeq - 1 });
    const resumed = await again.waitFor('resumed', (data) => data.requestId === 'back');
    expect(resumed.data).toMatchObject({ recovered: true, status: 'running', replayed: 1 });
    const replayed = await again.waitFor('tool_approval_required');
    expect(replayed.data).toEqual(request.data);

    again.send('tool_approval', { runId: request.data.runId, toolCallId: request.data.toolCallId, approved: true });
    const end = await again.runEnd('r1');
    expect(end.event).toBe('agent_completed');
    expect(eventsOf(again.runFrames(request.data.runId)).slice(0, 3)).toEqual([
      'tool_approval_required',
      'tool_executing',
      'tool_completed',
    ]);
  });
});
