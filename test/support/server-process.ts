import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The server as production runs it: the bundle `npm run build` makes (see `src/build/bundle.command.ts`). */
export const MAIN_JS = fileURLToPath(new URL('../../dist/bundle/main.mjs', import.meta.url));
/** The same server unbundled, tsc's output, as it ran before the bundle (the start-up benchmark compares them). */
export const UNBUNDLED_MAIN_JS = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A port that was free a moment ago on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/**
 * `node dist/bundle/main.mjs` as a real child process, exactly as a container runs it, with its output
 * captured line by line.
 */
export class ServerProcess {
  readonly child: ChildProcess;
  readonly spawnedAt = performance.now();
  readonly output: string[] = [];
  readonly exited: Promise<Exit>;
  private lineWaiters: Array<{ match: (line: string) => boolean; resolve: (line: string) => void }> = [];

  private constructor(
    readonly port: number,
    env: Record<string, string>,
  ) {
    if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: run \`npm run build\` first (npm test does)`);
    this.child = spawn(process.execPath, [MAIN_JS], {
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'test',
        HOST: '127.0.0.1',
        PORT: String(port),
        LOG_FORMAT: 'json',
        // Tests that care about persistence pass their own database; the rest leave nothing behind.
        DATABASE_URL: 'sqlite::memory:',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    let pending = '';
    const onData = (chunk: Buffer): void => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) this.onLine(line);
    };
    this.child.stdout?.on('data', onData);
    this.child.stderr?.on('data', onData);
  }

  /** Spawns the server on `port` (a free one by default; pass the old one to restart "in place"). */
  static async start(env: Record<string, string> = {}, port?: number): Promise<ServerProcess> {
    return new ServerProcess(port ?? (await freePort()), env);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Milliseconds since the process was spawned. */
  elapsed(): number {
    return performance.now() - this.spawnedAt;
  }

  /** The first output line (already printed or still to come) that satisfies `match`. */
  waitForLine(match: (line: string) => boolean): Promise<string> {
    const seen = this.output.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.lineWaiters.push({ match, resolve }));
  }

  /** Resolves once `count` output lines (already printed or still to come) satisfy `match`. */
  waitForLines(match: (line: string) => boolean, count: number): Promise<void> {
    let seen = this.output.filter(match).length;
    if (seen >= count) return Promise.resolve();
    return new Promise((resolve) =>
      this.lineWaiters.push({
        match: (line) => match(line) && (seen += 1) >= count,
        resolve: () => resolve(),
      }),
    );
  }

  /**
   * Resolves once the port is open and readiness logged the phase `ready`. Both: with fast
   * dependencies readiness can flip while `listen()` is still binding the port.
   */
  async ready(): Promise<string> {
    const [, ready] = await Promise.all([
      this.waitForLine((line) => line.includes('listening on')),
      this.waitForLine((line) => line.includes('phase: starting → ready')),
    ]);
    return ready;
  }

  async stop(): Promise<Exit> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    return this.exited;
  }

  private onLine(line: string): void {
    this.output.push(line);
    this.lineWaiters = this.lineWaiters.filter((waiter) => {
      if (!waiter.match(line)) return true;
      waiter.resolve(line);
      return false;
    });
  }
}
