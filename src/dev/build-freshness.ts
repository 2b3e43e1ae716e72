import { existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

/** Read by the build beside `src/`: a change to one of them makes `dist/` stale too. */
const BUILD_CONFIG_FILES = ['tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json'];

/**
 * Where `ensure-build.command.ts` notes that `dist/` was built, kept out of `dist/` (the package and
 * the image take that folder whole); `npm ci` wipes it, which costs one build.
 */
export const BUILD_STAMP = join('node_modules', '.cache', 'agent-gateway', 'build-stamp');

/** The `src/` files the build compiles (`tsconfig.build.json` leaves out the specs and `src/dev/`). */
export function isBuildSource(pathInSrc: string): boolean {
  const path = pathInSrc.split(sep).join('/');
  return !path.endsWith('.spec.ts') && path !== 'dev' && !path.startsWith('dev/');
}

/** When `dist/` was last built from the sources as they were then, if {@link markBuilt} ever said so. */
export function builtAt(root: string): number | undefined {
  const stamp = join(root, BUILD_STAMP);
  return existsSync(stamp) ? statSync(stamp).mtimeMs : undefined;
}

/**
 * Notes a build that began at `startedAt`: a file saved after that is a change, even one saved while
 * tsc ran. (On a file system that keeps whole seconds, FAT or HFS+, a save in the build's first
 * second can pass for older: `npm run build` then catches up.)
 */
export function markBuilt(root: string, startedAt: number): void {
  const stamp = join(root, BUILD_STAMP);
  mkdirSync(join(stamp, '..'), { recursive: true });
  writeFileSync(stamp, 'dist/ holds the sources as they were at this file’s modification time\n');
  const when = new Date(startedAt);
  utimesSync(stamp, when, when);
}

/**
 * Why `dist/` may not match the sources, or `undefined` when it does: the first build input (or
 * folder: a file added, removed or renamed) modified since `since`. Modification times, not
 * contents: a file saved unchanged costs a build, never a stale start. Fast enough to run before
 * every `npm start` (a few ms), where tsc's own incremental check parses every file (6 s or more).
 */
export function staleBecause(root: string, since: number | undefined): string | undefined {
  if (since === undefined) return 'not built by npm start or npm run token yet';
  if (!existsSync(join(root, 'dist', 'main.js'))) return 'dist/main.js is missing';
  const changed = (path: string): boolean => statSync(path).mtimeMs > since;
  const file = BUILD_CONFIG_FILES.find((name) => existsSync(join(root, name)) && changed(join(root, name)));
  if (file !== undefined) return `${file} changed`;
  const src = join(root, 'src');
  const walk = (dir: string): string | undefined => {
    if (changed(dir)) return `${relative(root, dir)}/ changed (a file added, removed or renamed)`;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (!isBuildSource(relative(src, path))) continue;
      const found = entry.isDirectory() ? walk(path) : changed(path) ? `${relative(root, path)} changed` : undefined;
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return walk(src)?.split(sep).join('/');
}
