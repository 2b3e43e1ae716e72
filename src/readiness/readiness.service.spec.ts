import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { CaptureLogger } from '../../test/support/capture-logger.js';
import { deferred } from '../../test/support/deferred.js';
import { DependencyGraphError, FatalInitError, NotReadyError } from './readiness.errors.js';
import { ReadinessService } from './readiness.service.js';
import type { ReadinessOptions, ReadinessSnapshot } from './readiness.types.js';

const APP_GRAPH: ReadinessOptions['dependencies'] = [
  { name: 'llm' },
  { name: 'threads' },
  { name: 'agent', dependsOn: ['llm', 'threads'] },
];

function create(overrides: Partial<ReadinessOptions> = {}): ReadinessService {
  return new ReadinessService({ dependencies: APP_GRAPH, startupTimeoutMs: 60_000, ...overrides });
}

function stateOf(snapshot: ReadinessSnapshot, name: string): string | undefined {
  return snapshot.dependencies.find((dep) => dep.name === name)?.state;
}

describe('ReadinessService', () => {
  let logs: CaptureLogger;
  let service: ReadinessService | undefined;

  beforeEach(() => {
    jest.useFakeTimers();
    logs = new CaptureLogger();
    Logger.overrideLogger(logs);
  });

  afterEach(() => {
    service?.onModuleDestroy();
    service = undefined;
    jest.useRealTimers();
    Logger.overrideLogger(false);
  });

  describe('declaration', () => {
    it('starts in phase starting with every declared dependency pending, before anything is tracked', () => {
      service = create();
      expect(service.snapshot.phase).toBe('starting');
      expect(service.snapshot.dependencies.map((dep) => [dep.name, dep.state])).toEqual([
        ['llm', 'pending'],
        ['threads', 'pending'],
        ['agent', 'pending'],
      ]);
    });

    it('rejects a dependency cycle at construction, naming the cycle', () => {
      const cyclic = [
        { name: 'a', dependsOn: ['b'] },
        { name: 'b', dependsOn: ['c'] },
        { name: 'c', dependsOn: ['a'] },
      ];
      expect(() => create({ dependencies: cyclic })).toThrow(DependencyGraphError);
      expect(() => create({ dependencies: cyclic })).toThrow('dependency cycle: a → b → c → a');
    });

    it('rejects a self-dependency, an undeclared dependency and a duplicate name', () => {
      expect(() => create({ dependencies: [{ name: 'a', dependsOn: ['a'] }] })).toThrow('dependency cycle: a → a');
      expect(() => create({ dependencies: [{ name: 'a', dependsOn: ['ghost'] }] })).toThrow('undeclared "ghost"');
      expect(() => create({ dependencies: [{ name: 'a' }, { name: 'a' }] })).toThrow('declared twice');
    });

    it('refuses to track an undeclared dependency or the same dependency twice', () => {
      service = create();
      expect(() => service?.track('cache', async () => {})).toThrow('"cache" is not declared');
      service.track('llm', async () => {});
      expect(() => service?.track('llm', async () => {})).toThrow('already tracked');
    });
  });

  describe('dependency order', () => {
    it('stays starting while one declared dependency has not even registered', async () => {
      service = create();
      service.track('llm', async () => {});
      service.track('threads', async () => {});
      await jest.advanceTimersByTimeAsync(0);
      expect(service.snapshot.phase).toBe('starting');
      expect(stateOf(service.snapshot, 'agent')).toBe('pending');
    });

    it('starts a dependent only after all of its dependencies are ready', async () => {
      service = create();
      const llm = deferred();
      const threads = deferred();
      const agentInit = jest.fn(async () => {});
      service.track('agent', agentInit);
      service.track('llm', () => llm.promise);
      service.track('threads', () => threads.promise);

      llm.resolve();
      await jest.advanceTimersByTimeAsync(0);
      expect(agentInit).not.toHaveBeenCalled();
      expect(stateOf(service.snapshot, 'agent')).toBe('pending');

      threads.resolve();
      await jest.advanceTimersByTimeAsync(0);
      expect(agentInit).toHaveBeenCalledTimes(1);
      expect(service.snapshot.phase).toBe('ready');
    });

    it('emits every transition as a new frozen snapshot, and ready exactly once', async () => {
      service = create();
      const phases: string[] = [];
      const llmStates: string[] = [];
      const readyValues: boolean[] = [];
      service.snapshot$.subscribe((snapshot) => {
        expect(Object.isFrozen(snapshot)).toBe(true);
        phases.push(snapshot.phase);
        const llmState = stateOf(snapshot, 'llm') ?? '';
        if (llmStates.at(-1) !== llmState) llmStates.push(llmState);
      });
      service.ready$.subscribe((ready) => readyValues.push(ready));
      for (const { name } of APP_GRAPH) service.track(name, async () => {});
      await jest.advanceTimersByTimeAsync(0);

      expect(llmStates).toEqual(['pending', 'initializing', 'ready']);
      expect(phases.at(-1)).toBe('ready');
      expect(phases.filter((phase) => phase === 'ready')).toHaveLength(1);
      expect(readyValues).toEqual([false, true]);
      expect(logs.messages('log').filter((line) => line.startsWith('phase: starting → ready'))).toHaveLength(1);
      expect(logs.messages('log')).toContain('dependency llm: pending → initializing (attempt 1)');
    });
  });

  describe('retry', () => {
    it('retries a failed initialisation with exponential backoff and keeps the last error', async () => {
      service = create({ retry: { initialDelayMs: 100, maxDelayMs: 1_000 } });
      const attempts: number[] = [];
      let calls = 0;
      service.track('llm', async () => {
        attempts.push(Date.now());
        calls += 1;
        if (calls <= 3) throw new Error(`connection refused #${calls}`);
      });
      service.track('threads', async () => {});
      service.track('agent', async () => {});

      await jest.advanceTimersByTimeAsync(0);
      expect(calls).toBe(1);
      const llm = service.snapshot.dependencies.find((dep) => dep.name === 'llm');
      expect(llm).toMatchObject({ state: 'initializing', attempts: 1, lastError: 'connection refused #1' });

      await jest.advanceTimersByTimeAsync(99);
      expect(calls).toBe(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(calls).toBe(2);
      await jest.advanceTimersByTimeAsync(200);
      expect(calls).toBe(3);
      await jest.advanceTimersByTimeAsync(400);
      expect(calls).toBe(4);

      expect(attempts.slice(1).map((at, i) => at - (attempts[i] ?? 0))).toEqual([100, 200, 400]);
      expect(service.snapshot.phase).toBe('ready');
      expect(service.snapshot.dependencies.find((dep) => dep.name === 'llm')).toMatchObject({
        state: 'ready',
        attempts: 4,
        durationMs: 700,
        lastError: 'connection refused #3',
      });
      expect(logs.messages('warn')).toContain(
        'dependency llm: attempt 1 failed: connection refused #1; retrying in 100 ms',
      );
    });

    it('caps the backoff at maxDelayMs', async () => {
      service = create({ retry: { initialDelayMs: 100, maxDelayMs: 150 } });
      let calls = 0;
      service.track('llm', async () => {
        calls += 1;
        throw new Error('down');
      });
      await jest.advanceTimersByTimeAsync(0);
      await jest.advanceTimersByTimeAsync(100);
      expect(calls).toBe(2);
      await jest.advanceTimersByTimeAsync(150);
      expect(calls).toBe(3);
      await jest.advanceTimersByTimeAsync(150);
      expect(calls).toBe(4);
    });
  });

  describe('failure', () => {
    it('fails at once on a FatalInitError, without retrying, and never starts the dependents', async () => {
      service = create();
      const agentInit = jest.fn(async () => {});
      let calls = 0;
      service.track('llm', async () => {
        calls += 1;
        throw new FatalInitError('LLM_MODEL is not set');
      });
      service.track('threads', async () => {});
      service.track('agent', agentInit);
      await jest.advanceTimersByTimeAsync(10_000);

      expect(calls).toBe(1);
      expect(service.snapshot.phase).toBe('failed');
      expect(service.snapshot.dependencies.find((dep) => dep.name === 'llm')).toMatchObject({
        state: 'failed',
        lastError: 'LLM_MODEL is not set',
      });
      expect(agentInit).not.toHaveBeenCalled();
      expect(logs.messages('error').some((line) => line.includes('phase: starting → failed'))).toBe(true);
    });

    it('is terminal: a dependency finishing after the failure changes nothing', async () => {
      service = create();
      const threads = deferred();
      service.track('llm', async () => {
        throw new FatalInitError('broken');
      });
      service.track('threads', () => threads.promise);
      await jest.advanceTimersByTimeAsync(0);
      threads.resolve();
      await jest.advanceTimersByTimeAsync(0);
      expect(service.snapshot.phase).toBe('failed');
      expect(stateOf(service.snapshot, 'threads')).toBe('initializing');
    });
  });

  describe('start-up timeout', () => {
    it('fails every dependency that is not ready at the deadline and says why for each', async () => {
      service = create({ startupTimeoutMs: 1_000 });
      service.track('llm', async () => {
        throw new Error('ECONNREFUSED 127.0.0.1:11434');
      });
      service.track('threads', async () => {});
      // agent is declared but no module ever tracks it
      await jest.advanceTimersByTimeAsync(999);
      expect(service.snapshot.phase).toBe('starting');
      await jest.advanceTimersByTimeAsync(1);

      expect(service.snapshot.phase).toBe('failed');
      const byName = Object.fromEntries(service.snapshot.dependencies.map((dep) => [dep.name, dep]));
      expect(byName.threads?.state).toBe('ready');
      expect(byName.llm).toMatchObject({ state: 'failed', lastError: 'still failing: ECONNREFUSED 127.0.0.1:11434' });
      expect(byName.agent).toMatchObject({ state: 'failed', lastError: 'waiting for llm' });
      const [line] = logs.messages('error').filter((entry) => entry.startsWith('not ready 1000 ms'));
      expect(line).toContain('llm (still failing: ECONNREFUSED 127.0.0.1:11434)');
      expect(line).toContain('agent (waiting for llm)');
    });

    it('names a dependency no module started, and aborts an initialisation still running', async () => {
      service = create({ startupTimeoutMs: 500, dependencies: [{ name: 'llm' }, { name: 'threads' }] });
      let signal: AbortSignal | undefined;
      service.track('llm', (abortSignal) => {
        signal = abortSignal;
        return new Promise(() => {});
      });
      await jest.advanceTimersByTimeAsync(500);
      expect(signal?.aborted).toBe(true);
      const byName = Object.fromEntries(service.snapshot.dependencies.map((dep) => [dep.name, dep]));
      expect(byName.llm?.lastError).toBe('initialisation did not finish in time');
      expect(byName.threads?.lastError).toBe('no module started its initialisation');
    });

    it('does not fire once the service is ready', async () => {
      service = create({ startupTimeoutMs: 100 });
      for (const { name } of APP_GRAPH) service.track(name, async () => {});
      await jest.advanceTimersByTimeAsync(1_000);
      expect(service.snapshot.phase).toBe('ready');
    });
  });

  describe('whenReady', () => {
    it('resolves the moment the last dependency is ready', async () => {
      service = create();
      const llm = deferred();
      service.track('llm', () => llm.promise);
      service.track('threads', async () => {});
      service.track('agent', async () => {});
      let settled: ReadinessSnapshot | undefined;
      void service.whenReady(5_000).then((snapshot) => (settled = snapshot));
      await jest.advanceTimersByTimeAsync(1_000);
      expect(settled).toBeUndefined();
      llm.resolve();
      await jest.advanceTimersByTimeAsync(0);
      expect(settled?.phase).toBe('ready');
    });

    it('rejects with the missing dependencies when the wait runs out', async () => {
      service = create();
      service.track('llm', () => new Promise(() => {}));
      service.track('threads', async () => {});
      const outcome = service.whenReady(2_000).catch((error: unknown) => error);
      await jest.advanceTimersByTimeAsync(2_000);
      const error = await outcome;
      expect(error).toBeInstanceOf(NotReadyError);
      expect((error as NotReadyError).missing).toEqual(['llm', 'agent']);
      expect((error as NotReadyError).snapshot.phase).toBe('starting');
    });

    it('rejects at once when start-up fails', async () => {
      service = create();
      const outcome = service.whenReady(60_000).catch((error: unknown) => error);
      service.track('llm', async () => {
        throw new FatalInitError('bad model path');
      });
      await jest.advanceTimersByTimeAsync(0);
      const error = (await outcome) as NotReadyError;
      expect(error.snapshot.phase).toBe('failed');
      // The message says why, so a failed start-up in a log needs nothing else to be understood.
      expect(error.message).toBe('service is failed; not ready: llm (attempt 1: bad model path), threads, agent');
    });
  });

  describe('draining', () => {
    it('enters draining from ready, turns ready$ off, and stays there', async () => {
      service = create();
      for (const { name } of APP_GRAPH) service.track(name, async () => {});
      await jest.advanceTimersByTimeAsync(0);
      const ready: boolean[] = [];
      service.ready$.subscribe((value) => ready.push(value));
      service.beginDrain();
      expect(service.snapshot.phase).toBe('draining');
      expect(ready).toEqual([true, false]);
      await expect(service.whenReady(10)).rejects.toBeInstanceOf(NotReadyError);
    });

    it('aborts initialisations still running when draining starts during start-up', async () => {
      service = create();
      let signal: AbortSignal | undefined;
      service.track('llm', (abortSignal) => {
        signal = abortSignal;
        return new Promise(() => {});
      });
      service.beginDrain();
      expect(signal?.aborted).toBe(true);
      expect(service.snapshot.phase).toBe('draining');
    });
  });
});
