/**
 * Run by `npm start` and `npm run token` before they start `node dist/…`: builds `dist/` (`npm run
 * build`) when a source changed since the last build, and says so; silent and instant otherwise.
 * Messages go to stderr: `TOKEN=$(npm run --silent token -- alice)` reads stdout.
 */
import { spawnSync } from 'node:child_process';
import { builtAt, markBuilt, staleBecause } from './build-freshness.js';

const root = process.cwd();
const reason = staleBecause(root, builtAt(root));
if (reason !== undefined) {
  process.stderr.write(`building dist/ because ${reason}; tsc takes about 25 s from cold, a few seconds after that…\n`);
  const startedAt = Date.now();
  // Through npm, so that this is whatever the `build` script is; npm says where it is when it runs us.
  const npm = process.env.npm_execpath;
  const build =
    npm === undefined
      ? spawnSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit', shell: process.platform === 'win32' })
      : spawnSync(process.execPath, [npm, 'run', 'build', '--silent'], { stdio: 'inherit' });
  if (build.status !== 0) {
    process.stderr.write(
      `the build failed (${build.error?.message ?? `exit code ${build.status ?? build.signal}`}): see above\n`,
    );
    process.exit(build.status ?? 1);
  }
  markBuilt(root, startedAt);
  process.stderr.write(`built in ${((Date.now() - startedAt) / 1000).toFixed(1)} s\n`);
}
