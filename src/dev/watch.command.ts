/**
 * `npm run dev`: the server from the sources, recompiled and restarted on every change in `src/`
 * (a page file in `public/` restarts it too: the page is read once at start-up). SWC compiles each
 * changed file alone, in milliseconds; the server restarts as a process, the way it deploys
 * (SIGTERM, the drain, a new `node`), so Nest, the readiness gate and the logs behave as in
 * `npm start`. No type check: the editor or `npm run typecheck` does that.
 */
import { type FSWatcher, watch } from 'node:fs';
import { join, sep } from 'node:path';
import { DevBuild, isCompiledSource } from './dev-build.js';
import { DevServer } from './dev-server.js';

/** An editor's save is several events (write, rename, chmod): they are taken together. */
const SETTLE_MS = 50;
const PAGE_FILE = /\.(html|css|js)$/u;

const say = (line: string): void => {
  process.stderr.write(`[dev] ${line}\n`);
};

const root = process.cwd();
const build = new DevBuild(root);
const server = new DevServer(build.entry, root, say);

/** Says what does not compile; true when everything does. */
function compiles(): boolean {
  for (const [path, message] of build.failing) say(`${DevBuild.display(path)} does not compile:\n${message}`);
  if (build.failing.size > 0) say('the server restarts once every file compiles');
  return build.failing.size === 0;
}

let quitting = false;
// One change at a time: a restart never overlaps another.
let work = Promise.resolve();
const pending = new Set<string>();
let settle: NodeJS.Timeout | undefined;

async function apply(changed: readonly string[]): Promise<void> {
  const sources = changed.flatMap((path) =>
    path.startsWith(`src${sep}`) && isCompiledSource(path.slice(4)) ? [path.slice(4)] : [],
  );
  const pages = changed.filter((path) => path.startsWith(`public${sep}`) && PAGE_FILE.test(path));
  if (quitting || (sources.length === 0 && pages.length === 0)) return;
  const startedAt = performance.now();
  await build.compile(sources);
  if (!compiles()) return;
  const names = [...sources.map((path) => DevBuild.display(path)), ...pages.map((path) => path.split(sep).join('/'))];
  const shown = names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', ');
  say(`${shown} changed (compiled in ${Math.round(performance.now() - startedAt)} ms): restarting`);
  await server.stop();
  if (!quitting) server.start();
}

function changed(folder: string, filename: string | null): void {
  if (quitting || filename === null) return;
  pending.add(join(folder, filename));
  clearTimeout(settle);
  settle = setTimeout(() => {
    const batch = [...pending];
    pending.clear();
    work = work.then(() => apply(batch)).catch((error: unknown) => say(`restart failed: ${String(error)}`));
  }, SETTLE_MS);
}

const startedAt = performance.now();
const count = await build.compileAll();
say(
  `compiled ${count} files with SWC in ${Math.round(performance.now() - startedAt)} ms; watching src/ and public/ (Ctrl-C stops)`,
);
const watchers: FSWatcher[] = ['src', 'public'].map((folder) =>
  watch(join(root, folder), { recursive: true }, (_event, filename) => changed(folder, filename)),
);
if (compiles()) server.start();

const quit = (signal: NodeJS.Signals): void => {
  if (!quitting) {
    quitting = true;
    clearTimeout(settle);
    for (const watcher of watchers) watcher.close();
  }
  // A second Ctrl-C is passed on too: the server then ends its drain at once.
  void server.forward(signal).then((code) => process.exit(code));
};
process.on('SIGINT', quit);
process.on('SIGTERM', quit);
process.on('exit', () => server.kill());
