import { type ChildProcess, spawn } from 'node:child_process';

/**
 * On POSIX the server runs in a process group of its own, so Ctrl-C reaches only `npm run dev`,
 * which passes it on once: a second copy straight from the terminal would end the drain at once
 * (main.ts exits on a second signal). Windows has no process groups (and `detached` opens a console).
 */
const OWN_PROCESS_GROUP = process.platform !== 'win32';

/** After the first SIGTERM, a run in flight may hold the drain for SHUTDOWN_TIMEOUT_MS; a restart does not wait that long. */
const SECOND_SIGNAL_AFTER_MS = 3_000;
/** …and a server that does not exit on the second one is killed. */
const KILL_AFTER_MS = 6_000;

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<number>;
  stopping: boolean;
}

/** The server as a child process (`node dist/main.js`, from `npm run dev`'s own build), stopped the way it deploys: SIGTERM. */
export class DevServer {
  private running: Running | undefined;

  constructor(
    private readonly entry: string,
    private readonly cwd: string,
    private readonly say: (line: string) => void,
  ) {}

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  start(): void {
    // The terminal's own stdout: the server sees a terminal and writes coloured lines (LOG_FORMAT=auto).
    const child = spawn(process.execPath, ['--enable-source-maps', this.entry], {
      cwd: this.cwd,
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: OWN_PROCESS_GROUP,
    });
    const running: Running = {
      child,
      stopping: false,
      exited: new Promise((resolve) => {
        child.once('exit', (code, signal) => {
          if (this.running === running) this.running = undefined;
          if (!running.stopping) {
            this.say(`the server exited (${signal ?? `code ${code}`}); it starts again on the next change`);
          }
          resolve(code ?? 1);
        });
      }),
    };
    this.running = running;
  }

  /** SIGTERM (the drain), again after 3 s (main.ts then exits at once), SIGKILL after 6 s. */
  async stop(): Promise<number | undefined> {
    const running = this.running;
    if (running === undefined) return undefined;
    running.stopping = true;
    running.child.kill('SIGTERM');
    const again = setTimeout(() => {
      this.say(`the server is still draining after ${SECOND_SIGNAL_AFTER_MS} ms: signalling again`);
      running.child.kill('SIGTERM');
    }, SECOND_SIGNAL_AFTER_MS);
    const kill = setTimeout(() => running.child.kill('SIGKILL'), KILL_AFTER_MS);
    try {
      return await running.exited;
    } finally {
      clearTimeout(again);
      clearTimeout(kill);
    }
  }

  /**
   * Ctrl-C or a SIGTERM to `npm run dev`: passed on (a second one ends the drain at once), and the
   * server's exit code once it is gone. Without process groups the server got Ctrl-C itself.
   */
  async forward(signal: NodeJS.Signals): Promise<number> {
    const running = this.running;
    if (running === undefined) return 0;
    running.stopping = true;
    if (OWN_PROCESS_GROUP) running.child.kill(signal);
    return running.exited;
  }

  /** When `npm run dev` itself ends unexpectedly: the server must not outlive it. */
  kill(): void {
    this.running?.child.kill('SIGKILL');
  }
}
