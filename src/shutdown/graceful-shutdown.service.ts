import { Injectable, Logger } from '@nestjs/common';
import { AgentSupervisor } from '../agent/agent.supervisor.js';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import { serviceShuttingDown } from '../errors/client-errors.js';
import { ConnectionRegistry } from '../gateway/connection.registry.js';
import { CloseCode } from '../protocol/close-codes.js';
import { ReadinessService } from '../readiness/readiness.service.js';

/** How long clients get to answer the close handshake before their sockets are terminated. */
const CLOSE_HANDSHAKE_MS = 1_000;

export type ShutdownStep = 'idle' | 'delay' | 'runs' | 'sockets' | 'app' | 'done';

/**
 * The drain, in order (SIGTERM or SIGINT; `main.ts` wires the signals and the watchdog):
 * 1. phase `draining` at once: `/health/ready` 503, new connections refused with 1012, new runs
 *    refused with `SERVICE_SHUTTING_DOWN`;
 * 2. `SHUTDOWN_DELAY_MS` of normal service, for load balancers to stop routing here;
 * 3. runs in flight finish within `SHUTDOWN_TIMEOUT_MS`, the rest are stored `interrupted`;
 * 4. every socket is closed by the app with 1012 (Nest's teardown would terminate them: 1006);
 * 5. Nest closes the HTTP server and the stores (`closeApp`).
 */
@Injectable()
export class GracefulShutdown {
  private readonly logger = new Logger('Shutdown');
  private running: Promise<void> | undefined;
  private current: ShutdownStep = 'idle';
  private startedAt = 0;

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly readiness: ReadinessService,
    private readonly supervisor: AgentSupervisor,
    private readonly connections: ConnectionRegistry,
  ) {}

  /** The step in progress, for the watchdog's last words. */
  get step(): ShutdownStep {
    return this.current;
  }

  get started(): boolean {
    return this.running !== undefined;
  }

  /** Runs the drain once; later calls return the same promise. */
  run(reason: string, closeApp: () => Promise<void>): Promise<void> {
    this.running ??= this.sequence(reason, closeApp);
    return this.running;
  }

  /**
   * Calls `onOverrun` with the step that hangs if the drain is not over `budgetMs` after this call
   * (`main.ts` then forces the exit). The timer never holds the process open.
   */
  watch(budgetMs: number, onOverrun: (step: ShutdownStep) => void): void {
    const timer = setTimeout(() => {
      if (this.current !== 'done') onOverrun(this.current);
    }, budgetMs);
    timer.unref();
  }

  private async sequence(reason: string, closeApp: () => Promise<void>): Promise<void> {
    this.startedAt = performance.now();
    const { delayMs, timeoutMs } = this.config.shutdown;
    this.readiness.beginDrain();
    this.enter('delay', `${reason}: draining; new connections and runs refused; serving for ${delayMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, delayMs));

    this.enter('runs', `waiting up to ${timeoutMs} ms for the runs in flight`);
    const runs = await this.supervisor.drain(timeoutMs);

    this.enter(
      'sockets',
      `runs: ${runs.finished} finished, ${runs.interrupted} interrupted; closing sockets with 1012`,
    );
    const sockets = await this.connections.closeAll(
      CloseCode.SERVICE_RESTART,
      'service restart',
      // By now the load balancers have stopped routing here: reconnecting at once is right.
      serviceShuttingDown({ retryAfterMs: 0 }),
      CLOSE_HANDSHAKE_MS,
    );

    this.enter('app', `sockets: ${sockets.closed} closed with 1012, ${sockets.terminated} terminated; closing the app`);
    await closeApp();
    this.enter('done', 'stopped');
  }

  private enter(step: ShutdownStep, detail: string): void {
    this.current = step;
    this.logger.log(`shutdown +${Math.round(performance.now() - this.startedAt)} ms: ${detail}`);
  }
}
