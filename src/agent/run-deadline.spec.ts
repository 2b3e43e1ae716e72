import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { RunDeadline } from './run-deadline.js';

describe('RunDeadline', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('fires after its time when never paused', () => {
    const expired = jest.fn();
    new RunDeadline(1_000, expired);
    jest.advanceTimersByTime(999);
    expect(expired).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(expired).toHaveBeenCalledTimes(1);
  });

  it('does not count the time it is paused, and goes on with the time that was left', () => {
    const expired = jest.fn();
    const deadline = new RunDeadline(1_000, expired);
    jest.advanceTimersByTime(600);
    deadline.pause();
    jest.advanceTimersByTime(10_000);
    expect(expired).not.toHaveBeenCalled();
    deadline.resume();
    jest.advanceTimersByTime(399);
    expect(expired).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(expired).toHaveBeenCalledTimes(1);
  });

  it('never fires once cleared, even when resumed after', () => {
    const expired = jest.fn();
    const deadline = new RunDeadline(100, expired);
    deadline.pause();
    deadline.clear();
    deadline.resume();
    jest.advanceTimersByTime(1_000);
    expect(expired).not.toHaveBeenCalled();
  });
});
