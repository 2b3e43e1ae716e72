import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DevBuild } from '../../src/dev/dev-build.js';
import { freePort } from '../support/server-process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WATCH_COMMAND = join(ROOT, 'src/dev/watch.command.ts');

/** `npm run dev`'s output, line by line, and a way to wait for a line without sleeping. */
class DevRun {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private waiters: Array<{ match: (line: string) => boolean; resolve: () => void }> = [];

  constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    let pending = '';
    const onData = (chunk: Buffer): void => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        this.lines.push(line);
        this.waiters = this.waiters.filter((waiter) => !(waiter.match(line) && (waiter.resolve(), true)));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  }

  /** Resolves at the first line containing `text` printed after line number `after` (already there or to come). */
  waitFor(text: string, after = -1): Promise<number> {
    const seen = this.lines.findIndex((line, at) => at > after && line.includes(text));
    if (seen >= 0) return Promise.resolve(seen);
    return new Promise((resolve) =>
      this.waiters.push({ match: (line) => line.includes(text), resolve: () => resolve(this.lines.length - 1) }),
    );
  }
}

/**
 * `npm run dev` on a copy of the project (its own `src/`, the real `node_modules/`), so that the test
 * can edit sources: SWC's build serves the same app as tsc's (chat page, SDK, readiness gate), a
 * change restarts it, a file that does not compile does not, and a signal stops it cleanly.
 */
describe('npm run dev', () => {
  let project: string;
  let dev: DevRun;
  let port: number;

  beforeAll(async () => {
    project = mkdtempSync(join(tmpdir(), 'agent-gateway-dev-test-'));
    cpSync(join(ROOT, 'src'), join(project, 'src'), { recursive: true });
    copyFileSync(join(ROOT, 'package.json'), join(project, 'package.json'));
    for (const name of ['node_modules', 'public', 'docs'])
      symlinkSync(join(ROOT, name), join(project, name), 'junction');
    port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', WATCH_COMMAND], {
      cwd: project,
      env: {
        PATH: process.env.PATH ?? '',
        PORT: String(port),
        DATABASE_URL: 'sqlite::memory:',
        // Long enough to see the port open and readiness still 503 before the model is up.
        LOCAL_LLM_WARMUP_MS: '3000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    dev = new DevRun(child);
  });

  afterAll(async () => {
    if (dev.child.exitCode === null && dev.child.signalCode === null) dev.child.kill('SIGKILL');
    await dev.exited;
    rmSync(new DevBuild(project).root, { recursive: true, force: true });
    rmSync(project, { recursive: true, force: true });
  });

  it('serves the app as the real build does: the chat page first in the log, the port open before the dependencies are ready', async () => {
    await dev.waitFor('listening on');
    const chatPage = dev.lines.findIndex((line) => line.includes(`chat page: http://localhost:${port}/`));
    expect(chatPage).toBeGreaterThanOrEqual(0);
    expect(chatPage).toBeLessThan(dev.lines.findIndex((line) => line.includes('listening on')));
    // Stdout is a pipe here: JSON lines, as for a log shipper.
    expect(JSON.parse(dev.lines[chatPage] ?? '')).toMatchObject({ context: 'Bootstrap' });

    const url = `http://127.0.0.1:${port}`;
    expect((await fetch(`${url}/health/live`)).status).toBe(200);
    expect((await fetch(`${url}/health/ready`)).status).toBe(503);
    await dev.waitFor('phase: starting → ready');
    expect((await fetch(`${url}/health/ready`)).status).toBe(200);
    const page = await fetch(`${url}/`);
    expect({ status: page.status, type: page.headers.get('content-type') }).toEqual({
      status: 200,
      type: expect.stringMatching(/^text\/html/u),
    });
    // The SDK the page imports, compiled beside the server as in dist/.
    expect((await fetch(`${url}/sdk/client/index.js`)).status).toBe(200);
  }, 60_000);

  it('restarts on a change with the changed code, after a drain without delay', async () => {
    const main = join(project, 'src/main.ts');
    const before = dev.lines.length - 1;
    writeFileSync(main, readFileSync(main, 'utf8').replace('`chat page: ${url}/`', '`chat page (edited): ${url}/`'));
    const restart = await dev.waitFor('[dev] src/main.ts changed', before);
    // The old server drained first (SHUTDOWN_DELAY_MS is 0 outside production) and stopped…
    const drained = await dev.waitFor('serving for 0 ms', restart);
    const stopped = await dev.waitFor('shutdown +', drained);
    // …then the new one came up with the new code.
    const edited = await dev.waitFor('chat page (edited):', stopped);
    await dev.waitFor('listening on', edited);
  }, 60_000);

  it('keeps the server running while a file does not compile, and restarts once it does', async () => {
    const file = join(project, 'src/config/app-config.ts');
    const source = readFileSync(file, 'utf8');
    const before = dev.lines.length - 1;
    writeFileSync(file, `${source}\nexport const broken = ;\n`);
    await dev.waitFor('[dev] src/config/app-config.ts does not compile', before);
    const fixed = dev.lines.length - 1;
    writeFileSync(file, source);
    const restart = await dev.waitFor('[dev] src/config/app-config.ts changed', fixed);
    await dev.waitFor('listening on', restart);
    // No restart for the broken file: the only one came with the fix.
    expect(dev.lines.slice(before + 1, fixed + 1).filter((line) => line.includes('restarting'))).toEqual([]);
  }, 60_000);

  it('stops the server and itself on SIGTERM (or Ctrl-C), with the server’s exit code', async () => {
    dev.child.kill('SIGTERM');
    expect(await dev.exited).toBe(0);
    expect(dev.lines.at(-1)).toContain('stopped');
  }, 30_000);
});
