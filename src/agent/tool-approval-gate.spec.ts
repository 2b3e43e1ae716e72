import { describe, expect, it } from '@jest/globals';
import { approvalListCovers } from './tool-approval-gate.js';

describe('AGENT_APPROVAL_TOOLS patterns', () => {
  it.each([
    [['calculator'], 'calculator', true],
    [['calculator'], 'current_time', false],
    [['files__*'], 'files__delete', true],
    [['files__*'], 'files', false],
    [['files__*'], 'filesystem__read', false],
    [['*'], 'anything__at_all', true],
    [[], 'calculator', false],
  ] as const)('%j covers %s: %p', (patterns, name, covered) => {
    expect(approvalListCovers(patterns, name)).toBe(covered);
  });
});
