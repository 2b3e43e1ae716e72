import {
  type BeforeApplicationShutdown,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { filter, Subscription } from 'rxjs';
import type { AppDependency } from '../app.dependencies.js';
import type { AppConfig } from '../config/app-config.js';
import { InjectConfig } from '../config/config.module.js';
import { DatabaseService } from '../database/database.service.js';
import { newId } from '../database/ids.js';
import { FleetBus } from '../fleet/fleet-bus.service.js';
import { InstanceControl } from '../fleet/instance-control.js';
import { RunStreams } from '../fleet/run-streams.js';
import { AppError } from '../errors/app-error.js';
import {
  internalError,
  llmFailure,
  runInterrupted,
  runNotActive,
  runTimeout,
  serviceShuttingDown,
  storageUnavailable,
} from '../errors/client-errors.js';
import { LlmUnavailableError } from '../llm/llm.errors.js';
import { LlmService } from '../llm/llm.service.js';
import type { AgentError, AgentRequest, RunFrame } from '../protocol/events.js';
import { ReadinessService } from '../readiness/readiness.service.js';
import { RunJournal, type RunEnd } from '../threads/run-journal.service.js';
import type { RunOutcome } from '../threads/run.repository.js';
import { ThreadsService } from '../threads/threads.service.js';
import type { Message, Thread } from '../threads/thread.types.js';
import { untilAborted } from '../llm/abortable.js';
import { runAgentLoop } from './agent.loop.js';
import { toModelHistory } from './model-history.js';
import { toChatMessage } from '../threads/thread.wire.js';
import { LiveRun, toStored } from './live-run.js';
import { RunLifecycle } from './run-lifecycle.js';
import { agentErrorOf, isOutage, refusal } from './agent-errors.js';
import { RunAdmission } from './run-admission.js';
import type { RunTicket } from './run-limiter.js';
import { RunReaper } from './run-reaper.js';
import { ToolRegistry } from './tools/tool.registry.js';
import { RunDeadline } from './run-deadline.js';
import { ToolApprovalGate } from './tool-approval-gate.js';

const DEPENDENCY: AppDependency = 'agent';
const TITLE_MAX_CHARS = 80;
/** Waits before trying a run's final transaction again after a storage outage (then it is given up). */
const END_RETRY_DELAYS_MS = [100, 300, 900];
/** While the bus is down, how often cancellations sent through PostgreSQL are looked for. */
const CANCEL_POLL_MS = 500;

/** Why a run was stopped from outside its own loop: the abort reason of its signal. */
export class RunStop extends Error {
  constructor(readonly kind: 'cancelled' | 'timeout' | 'shutdown' | 'lease') {
    super(`run ${kind}`);
    this.name = 'RunStop';
  }
}

/** What starting a run gave: the run to follow, or a refusal sent as `agent_error` (nothing stored). */
export type StartOutcome = { readonly run: LiveRun } | { readonly refused: AgentError };

/**
 * Turns an `agent_request` into a run and owns it until it ends: admission (per-user and global
 * limits, queue), the user's message committed before `agent_started`, the agent loop, the answer
 * committed before `agent_completed`, cancellation and the per-run timeout. A run does not depend on
 * the connection that started it: when its client goes away it finishes and is stored, and any
 * connection of the same user can follow it again with `resume`.
 */
@Injectable()
export class AgentSupervisor implements OnApplicationBootstrap, BeforeApplicationShutdown, OnModuleDestroy {
  private readonly logger = new Logger('Agent');
  private readonly live = new Map<string, LiveRun>();
  /** The executions of the runs in flight (queued ones included), each until it has been stored. */
  private readonly executions = new Set<Promise<void>>();
  private readonly subscriptions = new Subscription();
  private cancelPoll: ReturnType<typeof setInterval> | undefined;

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly llm: LlmService,
    private readonly threads: ThreadsService,
    private readonly journal: RunJournal,
    private readonly tools: ToolRegistry,
    private readonly readiness: ReadinessService,
    private readonly lifecycle: RunLifecycle,
    private readonly database: DatabaseService,
    private readonly reaper: RunReaper,
    private readonly bus: FleetBus,
    private readonly streams: RunStreams,
    private readonly admission: RunAdmission,
    private readonly control: InstanceControl,
    private readonly approvals: ToolApprovalGate,
  ) {}

  onApplicationBootstrap(): void {
    // Declared as depending on llm and threads (and the bus), so this starts only once they are ready.
    this.readiness.track(DEPENDENCY, async (signal) => {
      await this.selfCheck(signal);
      await this.reaper.start();
    });
    this.subscriptions.add(
      this.control.commands$.pipe(filter((command) => command.type === 'cancel')).subscribe((command) => {
        const live = this.liveRun(command.ownerId, command.runId);
        if (live !== undefined && !live.done) live.abort.abort(new RunStop('cancelled'));
      }),
    );
    const lease = this.database.lease;
    if (lease !== undefined) {
      this.subscriptions.add(
        lease.state$.pipe(filter((state) => state.expired === true)).subscribe(() => {
          // Other replicas may already have marked these runs interrupted and told their followers.
          for (const run of this.live.values()) run.abort.abort(new RunStop('lease'));
        }),
      );
    }
    if (this.bus.enabled) {
      this.cancelPoll = setInterval(() => void this.pollCancellations(), CANCEL_POLL_MS);
      this.cancelPoll.unref();
    }
  }

  onModuleDestroy(): void {
    this.subscriptions.unsubscribe();
    clearInterval(this.cancelPoll);
  }

  /** A run of this process, if it is still executing here. */
  liveRun(ownerId: string, runId: string): LiveRun | undefined {
    const run = this.live.get(runId);
    return run?.identity.ownerId === ownerId ? run : undefined;
  }

  /**
   * Admits and starts a run. Rejects with `THREAD_NOT_FOUND` for a thread that is not the user's;
   * limits and storage failures come back as `refused`.
   */
  async start(ownerId: string, request: AgentRequest): Promise<StartOutcome> {
    if (this.readiness.snapshot.phase === 'draining') {
      const error = serviceShuttingDown();
      this.lifecycle.refused(request.requestId, error.code);
      return { refused: refusal(request.requestId, error) };
    }
    let ticket: RunTicket;
    let thread: Thread | undefined;
    try {
      this.admission.checkLease();
      thread = request.threadId === undefined ? undefined : await this.threads.findThread(ownerId, request.threadId);
      ticket = await this.admission.admit(ownerId);
    } catch (error) {
      if (error instanceof AppError && error.code === 'THREAD_NOT_FOUND') throw error;
      if (error instanceof AppError) this.lifecycle.refused(request.requestId, error.code);
      if (error instanceof AppError) return { refused: refusal(request.requestId, error) };
      throw error;
    }

    const now = new Date();
    const newThread: Thread | undefined =
      thread === undefined
        ? { id: newId(), ownerId, title: titleOf(request.message), createdAt: now, updatedAt: now }
        : undefined;
    const threadId = thread?.id ?? newThread?.id ?? '';
    const runId = newId();
    const userMessage: Message = {
      id: newId(),
      threadId,
      role: 'user',
      content: request.message,
      runId,
      createdAt: now,
    };
    const run = new LiveRun(
      { runId, ownerId, requestId: request.requestId, threadId },
      this.journal,
      this.streams.enabled ? this.streams : undefined,
    );
    const started = run.frame('agent_started', { threadId, userMessage: toChatMessage(userMessage) });
    try {
      await this.journal.begin({
        ...(newThread === undefined ? {} : { newThread }),
        threadId,
        runId,
        ownerId,
        requestId: request.requestId,
        userMessage,
        events: [toStored(started)],
      });
    } catch (error) {
      ticket.release();
      // Only an outage is worth sending again; anything else (a value the store refuses) would fail
      // the same way every time, so it is a bug to report, not a retry to suggest.
      const refused = isOutage(error)
        ? storageUnavailable({ what: 'the message', cause: error })
        : internalError(this.logger, `run ${runId}: storing the request failed`, error);
      if (refused.code === 'STORAGE_UNAVAILABLE') {
        this.logger.error(`run ${runId}: storing the request failed: ${String(error)}`);
      }
      this.lifecycle.refused(request.requestId, refused.code);
      return { refused: refusal(request.requestId, refused) };
    }
    this.live.set(runId, run);
    run.publish(started);
    this.lifecycle.started(run);
    const execution = this.execute(run, ticket).finally(() => {
      this.live.delete(runId);
      this.executions.delete(execution);
    });
    this.executions.add(execution);
    return { run };
  }

  /**
   * Stops a run of the user's; it ends with `agent_cancelled`. In fleet mode the run may execute on
   * another instance: the request is recorded in PostgreSQL and sent to that instance over the bus.
   */
  async cancel(ownerId: string, runId: string): Promise<void> {
    const live = this.liveRun(ownerId, runId);
    if (live !== undefined && !live.done) {
      live.abort.abort(new RunStop('cancelled'));
      return;
    }
    const run = await this.reaper.asOfNow(await this.threads.findRun(ownerId, runId));
    if (run.status === 'running' && this.bus.enabled && run.instanceId !== this.database.instanceId) {
      await this.threads.requestCancel(runId);
      await this.control.send(run.instanceId, { type: 'cancel', runId, ownerId });
      return;
    }
    throw runNotActive(runId, run.status);
  }

  /** While the bus is down, cancellations from other instances arrive through PostgreSQL. */
  private async pollCancellations(): Promise<void> {
    if (this.bus.up || this.live.size === 0) return;
    try {
      for (const runId of await this.threads.cancelRequested(this.database.instanceId)) {
        const live = this.live.get(runId);
        if (live !== undefined && !live.done) live.abort.abort(new RunStop('cancelled'));
      }
    } catch {
      // PostgreSQL unreachable too: the next poll tries again.
    }
  }

  /**
   * Shutdown: lets the runs in flight (queued ones included) finish for up to `timeoutMs`, then
   * interrupts the rest (their clients see `RUN_INTERRUPTED`); resolves once every run is stored.
   */
  async drain(timeoutMs: number): Promise<{ finished: number; interrupted: number }> {
    const inFlight = this.executions.size;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      Promise.allSettled([...this.executions]).then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    const interrupted = timedOut ? this.live.size : 0;
    if (timedOut) for (const run of this.live.values()) run.abort.abort(new RunStop('shutdown'));
    await Promise.allSettled([...this.executions]);
    return { finished: inFlight - interrupted, interrupted };
  }

  /** Interrupts every run still executing (their clients see `RUN_INTERRUPTED`) and waits for them to be stored. */
  async beforeApplicationShutdown(): Promise<void> {
    for (const run of this.live.values()) run.abort.abort(new RunStop('shutdown'));
    await Promise.allSettled([...this.executions]);
  }

  private async execute(run: LiveRun, ticket: RunTicket): Promise<void> {
    const { signal } = run.abort;
    const deadline = new RunDeadline(this.config.agent.runTimeoutMs, () => run.abort.abort(new RunStop('timeout')));
    // Waiting for a person's approval is not the agent's time: AGENT_APPROVAL_TIMEOUT_MS bounds it.
    const paused = run.approvals.waiting$.subscribe((waiting) => (waiting ? deadline.pause() : deadline.resume()));
    try {
      if (ticket.position > 0) {
        run.emit('agent_queued', { position: ticket.position });
        await untilAborted(ticket.granted, signal);
      }
      const { historyMessages, historyChars, systemPrompt } = this.config.agent;
      const stored = await this.threads.recentMessages(run.identity.threadId, historyMessages);
      const history = toModelHistory({
        messages: stored,
        systemPrompt: systemPrompt?.text,
        budget: { maxMessages: historyMessages, maxChars: historyChars },
      });
      const answer = await runAgentLoop({
        run,
        llm: this.llm,
        tools: this.tools,
        history,
        maxSteps: this.config.agent.maxSteps,
        toolTimeoutMs: this.config.agent.toolTimeoutMs,
        approvals: this.approvals,
        signal,
      });
      const at = new Date();
      const message: Message = {
        id: newId(),
        threadId: run.identity.threadId,
        role: 'assistant',
        content: answer.text,
        runId: run.identity.runId,
        createdAt: at,
      };
      const completed = run.frame('agent_completed', {
        threadId: run.identity.threadId,
        message: toChatMessage(message),
        usage: answer.usage,
      });
      await this.end(run, { status: 'completed', at, messageId: message.id, usage: answer.usage }, completed, message);
    } catch (error) {
      await this.fail(run, signal.aborted ? signal.reason : error);
    } finally {
      paused.unsubscribe();
      deadline.clear();
      ticket.release();
    }
  }

  private async fail(run: LiveRun, reason: unknown): Promise<void> {
    const at = new Date();
    if (reason instanceof RunStop && reason.kind === 'cancelled') {
      await this.end(run, { status: 'cancelled', at }, run.frame('agent_cancelled', {}));
      return;
    }
    const error = this.classify(run, reason);
    const status = error.code === 'RUN_INTERRUPTED' ? 'interrupted' : 'failed';
    const frame = run.frame('agent_error', agentErrorOf(error));
    await this.end(run, { status, at, error: { code: error.code, message: error.message } }, frame);
  }

  /**
   * Commits the run's outcome (answer, remaining events, status) in one transaction, then sends the
   * final event. If that commit fails, the client is told so instead of seeing an answer that was
   * never stored; the row stays `running` and is marked interrupted later.
   */
  private async end(run: LiveRun, outcome: RunOutcome, last: RunFrame, message?: Message): Promise<void> {
    try {
      const events = [...(await run.takeUnsaved()), toStored(last)];
      const recorded = await this.commitEnd(run, {
        runId: run.identity.runId,
        threadId: run.identity.threadId,
        outcome,
        events,
        ...(message === undefined ? {} : { assistantMessage: message }),
      });
      if (!recorded) {
        // Another replica decided this process was dead (its lease expired) and marked
        // the run interrupted: the stored truth wins over the answer in hand.
        run.finish(run.frame('agent_error', agentErrorOf(runInterrupted())));
        return;
      }
      run.finish(last);
    } catch (error) {
      const context = `run ${run.identity.runId}: storing the outcome failed`;
      if (isOutage(error)) this.logger.error(`${context}: ${String(error)}`);
      const failure = isOutage(error)
        ? storageUnavailable({ what: 'the answer', cause: error })
        : internalError(this.logger, context, error);
      run.finish(run.frame('agent_error', agentErrorOf(failure)));
    }
  }

  /**
   * The run's final transaction, tried again after a storage outage shorter than a couple of
   * seconds (a PostgreSQL restart, a failover, sessions cut under the pool): a blip must not cost
   * an answer. If a try committed but its acknowledgement was lost, the next finds the run ended
   * with this very outcome, and that counts as recorded.
   */
  private async commitEnd(run: LiveRun, end: RunEnd): Promise<boolean> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const recorded = await this.journal.end(end);
        if (recorded || attempt === 0) return recorded;
        const stored = await this.threads.findRun(run.identity.ownerId, run.identity.runId);
        return stored.status === end.outcome.status && stored.messageId === end.outcome.messageId;
      } catch (error) {
        const wait = END_RETRY_DELAYS_MS[attempt];
        if (!isOutage(error) || wait === undefined) throw error;
        this.logger.warn(`run ${run.identity.runId}: storing the outcome failed (${String(error)}); retrying`);
        await delay(wait);
      }
    }
  }

  private classify(run: LiveRun, reason: unknown): AppError {
    if (reason instanceof RunStop) {
      if (reason.kind === 'timeout') return runTimeout(this.config.agent.runTimeoutMs);
      return runInterrupted(reason.kind === 'lease' ? 'lease' : 'shutdown');
    }
    if (reason instanceof LlmUnavailableError) {
      return llmFailure(this.logger, `run ${run.identity.runId}`, reason.message, {
        misconfigured: reason.misconfigured,
      });
    }
    if (reason instanceof AppError) return reason;
    return internalError(this.logger, `run ${run.identity.runId} failed`, reason);
  }

  /** Proves the embedded model answers before the agent reports ready: one chunk, then stop. */
  private async selfCheck(signal: AbortSignal): Promise<void> {
    // A remote provider's reachability must not gate readiness (one outage would take out every replica).
    if (this.llm.provider.remote) return;
    const stream = this.llm.provider.stream({ messages: [{ role: 'user', content: 'self-check' }] }, signal);
    const first = await stream.next();
    await stream.return(undefined);
    if (first.done === true) throw new Error('the model returned an empty reply to the self-check');
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function titleOf(message: string): string {
  const oneLine = message.replace(/\s+/gu, ' ').trim();
  return oneLine.length <= TITLE_MAX_CHARS ? oneLine : `${oneLine.slice(0, TITLE_MAX_CHARS - 1)}…`;
}
