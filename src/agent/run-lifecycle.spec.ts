import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { CaptureLogger } from '../../test/support/capture-logger.js';
import type { RunFrame } from '../protocol/events.js';
import type { RunJournal } from '../threads/run-journal.service.js';
import { LiveRun } from './live-run.js';
import { RunLifecycle, type RunLifecycleEvent } from './run-lifecycle.js';

const identity = { runId: 'run-1', ownerId: 'alice', requestId: 'r1', threadId: 'thread-1' };

/** A run that has sent `agent_started` (nothing in these tests stores events). */
function startedRun(): LiveRun {
  const run = new LiveRun(identity, {} as RunJournal);
  run.publish(
    run.frame('agent_started', {
      threadId: identity.threadId,
      userMessage: { id: 'm1', threadId: identity.threadId, role: 'user', content: 'hi', createdAt: '' },
    }),
  );
  return run;
}

const LAST_EVENTS: ReadonlyArray<[string, string, string | undefined, (run: LiveRun) => RunFrame]> = [
  [
    'agent_completed',
    'completed',
    undefined,
    (run) =>
      run.frame('agent_completed', {
        threadId: identity.threadId,
        message: { id: 'm2', threadId: identity.threadId, role: 'assistant', content: 'hello', createdAt: '' },
        usage: { promptTokens: 1, completionTokens: 1 },
      }),
  ],
  ['agent_cancelled', 'cancelled', undefined, (run) => run.frame('agent_cancelled', {})],
  [
    'agent_error RUN_INTERRUPTED',
    'interrupted',
    'RUN_INTERRUPTED',
    (run) => run.frame('agent_error', { code: 'RUN_INTERRUPTED', message: 'shutting down', retryable: true }),
  ],
  [
    'agent_error RUN_TIMEOUT',
    'failed',
    'RUN_TIMEOUT',
    (run) => run.frame('agent_error', { code: 'RUN_TIMEOUT', message: 'too long', retryable: true }),
  ],
];

describe('RunLifecycle', () => {
  let lifecycle: RunLifecycle;
  let events: RunLifecycleEvent[];

  beforeEach(() => {
    Logger.overrideLogger(new CaptureLogger());
    lifecycle = new RunLifecycle();
    events = [];
    lifecycle.events$.subscribe((event) => events.push(event));
  });

  afterEach(() => {
    lifecycle.onModuleDestroy();
    Logger.overrideLogger(false);
  });

  it.each(LAST_EVENTS)('reads how a run ended from its last event: %s is %s', (_name, status, errorCode, last) => {
    const run = startedRun();
    lifecycle.started(run);
    expect(events).toEqual([{ type: 'started', runId: 'run-1', threadId: 'thread-1', userId: 'alice' }]);

    run.finish(last(run));
    expect(events.slice(1)).toEqual([
      {
        type: 'ended',
        runId: 'run-1',
        threadId: 'thread-1',
        status,
        durationMs: expect.any(Number),
        ...(errorCode === undefined ? {} : { errorCode }),
      },
    ]);
  });

  it('reports a refusal with its code', () => {
    lifecycle.refused('r9', 'SERVER_BUSY');
    expect(events).toEqual([{ type: 'refused', errorCode: 'SERVER_BUSY' }]);
  });
});
