import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { AgentSupervisor } from '../agent/agent.supervisor.js';
import { loadConfig } from '../config/load-config.js';
import type { ConnectionRegistry } from '../gateway/connection.registry.js';
import type { ReadinessService } from '../readiness/readiness.service.js';
import { GracefulShutdown } from './graceful-shutdown.service.js';

/** Resolves pending promise callbacks without moving the fake clock. */
async function settle(): Promise<void> {
  for (let index = 0; index < 10; index += 1) await Promise.resolve();
}

describe('GracefulShutdown', () => {
  const calls: string[] = [];
  let finishRuns: (result: { finished: number; interrupted: number }) => void;
  let shutdown: GracefulShutdown;
  let closeApp: jest.Mock<() => Promise<void>>;
  let drain: jest.Mock<(timeoutMs: number) => Promise<{ finished: number; interrupted: number }>>;
  let closeAll: jest.Mock<(code: number, reason: string) => Promise<{ closed: number; terminated: number }>>;

  beforeEach(() => {
    jest.useFakeTimers();
    calls.length = 0;
    const { config } = loadConfig({ SHUTDOWN_DELAY_MS: '5000', SHUTDOWN_TIMEOUT_MS: '20000' });
    const readiness = { beginDrain: () => calls.push('beginDrain') } as unknown as ReadinessService;
    drain = jest.fn((timeoutMs: number) => {
      calls.push(`drain ${timeoutMs}`);
      return new Promise((resolve) => {
        finishRuns = resolve;
      });
    });
    closeAll = jest.fn((code: number, reason: string) => {
      calls.push(`closeAll ${code} ${reason}`);
      return Promise.resolve({ closed: 3, terminated: 0 });
    });
    closeApp = jest.fn(() => {
      calls.push('closeApp');
      return Promise.resolve();
    });
    shutdown = new GracefulShutdown(
      config,
      readiness,
      { drain } as unknown as AgentSupervisor,
      { closeAll } as unknown as ConnectionRegistry,
    );
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  it('drains at once, keeps serving for SHUTDOWN_DELAY_MS, then waits for the runs, closes the sockets with 1012, and the app last', async () => {
    const done = shutdown.run('SIGTERM', closeApp);
    expect(calls).toEqual(['beginDrain']);
    expect(shutdown.step).toBe('delay');

    await jest.advanceTimersByTimeAsync(4_999);
    expect(calls).toEqual(['beginDrain']);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls).toEqual(['beginDrain', 'drain 20000']);
    expect(shutdown.step).toBe('runs');

    // Nothing closes while a run is still going, however long the runs take within their timeout.
    await jest.advanceTimersByTimeAsync(15_000);
    expect(closeAll).not.toHaveBeenCalled();
    finishRuns({ finished: 10, interrupted: 0 });
    await done;
    expect(calls).toEqual(['beginDrain', 'drain 20000', 'closeAll 1012 service restart', 'closeApp']);
    expect(shutdown.step).toBe('done');
  });

  it('runs the sequence once, however many times it is asked', async () => {
    const first = shutdown.run('SIGTERM', closeApp);
    const second = shutdown.run('SIGINT', closeApp);
    expect(second).toBe(first);
    expect(shutdown.started).toBe(true);
    await jest.advanceTimersByTimeAsync(5_000);
    finishRuns({ finished: 0, interrupted: 2 });
    await first;
    await settle();
    expect(drain).toHaveBeenCalledTimes(1);
    expect(closeApp).toHaveBeenCalledTimes(1);
  });

  it('names the step that hangs once the budget is spent, and stays quiet when the drain finishes in time', async () => {
    const overruns: string[] = [];
    void shutdown.run('SIGTERM', closeApp);
    shutdown.watch(27_000, (step) => overruns.push(step));
    await jest.advanceTimersByTimeAsync(26_999);
    expect(overruns).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(overruns).toEqual(['runs']);

    finishRuns({ finished: 1, interrupted: 0 });
    await settle();
    const quiet: string[] = [];
    shutdown.watch(1_000, (step) => quiet.push(step));
    await jest.advanceTimersByTimeAsync(1_000);
    expect(quiet).toEqual([]);
  });
});
