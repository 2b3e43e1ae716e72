import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtAt, isBuildSource, markBuilt, staleBecause } from './build-freshness.js';

/** A moment every file of the fake project predates. */
const BUILD_STARTED_AT = Date.parse('2026-01-01T12:00:00Z');
const BEFORE = new Date(BUILD_STARTED_AT - 60_000);
const AFTER = new Date(BUILD_STARTED_AT + 1_000);

describe('the freshness of dist/ (npm start, npm run token)', () => {
  let root: string;

  /** Creates the file (and its folders), dated before the build. */
  function file(path: string): string {
    const full = join(root, path);
    mkdirSync(join(full, '..'), { recursive: true });
    writeFileSync(full, '');
    utimesSync(full, BEFORE, BEFORE);
    return full;
  }

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'build-freshness-'));
    for (const path of [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'dist/main.js',
      'src/main.ts',
      'src/config/load-config.ts',
      'src/config/load-config.spec.ts',
      'src/dev/watch.command.ts',
    ]) {
      file(path);
    }
    for (const dir of ['src', 'src/config', 'src/dev']) utimesSync(join(root, dir), BEFORE, BEFORE);
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('is fresh when nothing the build reads changed since the build began', () => {
    markBuilt(root, BUILD_STARTED_AT);
    expect(builtAt(root)).toBe(BUILD_STARTED_AT);
    expect(staleBecause(root, builtAt(root))).toBeUndefined();
  });

  it('is stale before the first build, and when dist/main.js is missing', () => {
    expect(staleBecause(root, builtAt(root))).toMatch(/not built/u);
    markBuilt(root, BUILD_STARTED_AT);
    rmSync(join(root, 'dist/main.js'));
    expect(staleBecause(root, builtAt(root))).toBe('dist/main.js is missing');
  });

  it('names the source, the config file or the folder that changed after the build began, even during it', () => {
    markBuilt(root, BUILD_STARTED_AT);
    utimesSync(join(root, 'src/config/load-config.ts'), AFTER, AFTER);
    expect(staleBecause(root, builtAt(root))).toBe('src/config/load-config.ts changed');

    utimesSync(join(root, 'src/config/load-config.ts'), BEFORE, BEFORE);
    utimesSync(join(root, 'tsconfig.build.json'), AFTER, AFTER);
    expect(staleBecause(root, builtAt(root))).toBe('tsconfig.build.json changed');

    utimesSync(join(root, 'tsconfig.build.json'), BEFORE, BEFORE);
    // A file deleted or renamed leaves no file newer than the build; its folder is.
    utimesSync(join(root, 'src/config'), AFTER, AFTER);
    expect(staleBecause(root, builtAt(root))).toMatch(/^src\/config\/ changed/u);
  });

  it('ignores what the build leaves out: the specs and src/dev/', () => {
    markBuilt(root, BUILD_STARTED_AT);
    for (const path of ['src/config/load-config.spec.ts', 'src/dev/watch.command.ts', 'src/dev']) {
      utimesSync(join(root, path), AFTER, AFTER);
    }
    expect(staleBecause(root, builtAt(root))).toBeUndefined();
    expect(['main.ts', 'dev', 'dev/watch.command.ts', 'auth/token.command.spec.ts'].map(isBuildSource)).toEqual([
      true,
      false,
      false,
      false,
    ]);
  });
});
