import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { BehaviorSubject, distinctUntilChanged, filter, firstValueFrom, map, type Observable, of, timeout } from 'rxjs';
import { validateDependencyGraph } from './dependency-graph.js';
import { READINESS_OPTIONS } from './readiness.constants.js';
import { FatalInitError, NotReadyError } from './readiness.errors.js';
import {
  type DependencyStatus,
  type ReadinessOptions,
  type ReadinessPhase,
  type ReadinessRetryOptions,
  type ReadinessSnapshot,
} from './readiness.types.js';

/** Does the real work of one dependency; it should stop early when `signal` aborts. */
export type DependencyInitializer = (signal: AbortSignal) => Promise<void>;

/**
 * What a dependency's owner knows beyond its readiness, read when a probe asks (the model
 * provider's availability, the database's): shown in that dependency's `/health/ready` entry,
 * never a reason to be unready. Cheap and synchronous: it reads state the owner already keeps.
 */
export type DependencyDetails = () => Readonly<Record<string, unknown>>;

export interface TrackOptions {
  readonly details?: DependencyDetails;
}

const DEFAULT_RETRY: ReadinessRetryOptions = { initialDelayMs: 100, maxDelayMs: 5_000 };

/**
 * The single source of truth for "can this instance serve?". Holds one `BehaviorSubject` of an
 * immutable {@link ReadinessSnapshot}; the gateway and the health indicators subscribe to it.
 *
 * Dependencies are declared up front (see {@link ReadinessOptions}); modules hand over their
 * initialisation with {@link track} from `onApplicationBootstrap`. `track` returns at once on
 * purpose: Nest's `app.listen()` awaits every bootstrap hook, so awaiting the initialisation
 * there would keep the port closed and the liveness probe failing.
 */
@Injectable()
export class ReadinessService implements OnModuleDestroy {
  private readonly logger = new Logger('Readiness');
  private readonly subject: BehaviorSubject<ReadinessSnapshot>;
  private readonly retry: ReadinessRetryOptions;
  private readonly tracked = new Set<string>();
  private readonly detailsOf = new Map<string, DependencyDetails>();
  /** Aborted when initialisation must stop: deadline, drain or shutdown. */
  private readonly stop = new AbortController();
  private readonly createdAt = performance.now();
  private readonly firstAttemptAt = new Map<string, number>();
  private deadline: ReturnType<typeof setTimeout> | undefined;

  /** Every snapshot, starting with the current one. */
  readonly snapshot$: Observable<ReadinessSnapshot>;
  /** `true` while the phase is `ready`; emits only on change. */
  readonly ready$: Observable<boolean>;

  /** How long start-up may take before the instance gives up (`STARTUP_TIMEOUT_MS`). */
  get startupTimeoutMs(): number {
    return this.options.startupTimeoutMs;
  }

  constructor(@Inject(READINESS_OPTIONS) private readonly options: ReadinessOptions) {
    validateDependencyGraph(options.dependencies);
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.subject = new BehaviorSubject<ReadinessSnapshot>(
      Object.freeze({
        phase: 'starting',
        since: Date.now(),
        dependencies: Object.freeze(
          options.dependencies.map((declaration) =>
            Object.freeze({
              name: declaration.name,
              state: 'pending' as const,
              dependsOn: Object.freeze([...(declaration.dependsOn ?? [])]),
              attempts: 0,
            }),
          ),
        ),
      }),
    );
    this.snapshot$ = this.subject.asObservable();
    this.ready$ = this.snapshot$.pipe(
      map((snapshot) => snapshot.phase === 'ready'),
      distinctUntilChanged(),
    );
    this.deadline = setTimeout(() => this.expire(), options.startupTimeoutMs);
    this.deadline.unref();
  }

  /** The current snapshot. Prefer {@link snapshot$} for anything that must react to changes. */
  get snapshot(): ReadinessSnapshot {
    return this.subject.getValue();
  }

  /**
   * Starts the initialisation of a declared dependency in the background, after the dependencies
   * it depends on are ready. A failure is retried with exponential backoff until the start-up
   * deadline, except a {@link FatalInitError}, which fails the dependency at once.
   */
  track(name: string, initialize: DependencyInitializer, options: TrackOptions = {}): void {
    this.status(name);
    if (this.tracked.has(name)) throw new Error(`readiness: dependency "${name}" is already tracked`);
    this.tracked.add(name);
    if (options.details !== undefined) this.detailsOf.set(name, options.details);
    this.run(name, initialize).catch((error: unknown) => {
      // run() handles every initialiser failure itself; reaching this is a bug in run().
      this.logger.error(`dependency ${name}: tracking crashed: ${describe(error)}`);
    });
  }

  /** What the owner of `name` publishes about it (see {@link DependencyDetails}); nothing if it publishes nothing. */
  details(name: string): Readonly<Record<string, unknown>> {
    return this.detailsOf.get(name)?.() ?? {};
  }

  /**
   * Resolves with the snapshot once the phase is `ready`; rejects with {@link NotReadyError} if it
   * becomes `failed` or `draining`, or is still `starting` after `timeoutMs`.
   */
  async whenReady(timeoutMs: number): Promise<ReadinessSnapshot> {
    const settled = await firstValueFrom(
      this.snapshot$.pipe(
        filter((snapshot) => snapshot.phase !== 'starting'),
        timeout({ first: timeoutMs, with: () => of(this.snapshot) }),
      ),
      // The stream completes when the app closes: that is a "not ready", not an EmptyError.
      { defaultValue: this.snapshot },
    );
    if (settled.phase !== 'ready') throw new NotReadyError(settled);
    return settled;
  }

  /**
   * Enters the terminal `draining` phase: probes answer 503 and new clients are refused.
   * Initialisations still in flight are aborted.
   */
  beginDrain(): void {
    this.setPhase('draining', this.snapshot.dependencies);
  }

  onModuleDestroy(): void {
    this.clearDeadline();
    this.stop.abort();
    this.subject.complete();
  }

  private async run(name: string, initialize: DependencyInitializer): Promise<void> {
    const { dependsOn } = this.status(name);
    if (dependsOn.length > 0) {
      const upstream = await firstValueFrom(
        this.snapshot$.pipe(
          filter(
            (snapshot) =>
              snapshot.phase !== 'starting' ||
              dependsOn.every((required) => findStatus(snapshot, required).state === 'ready'),
          ),
        ),
        { defaultValue: undefined },
      );
      if (upstream?.phase !== 'starting') return;
    }

    let delayMs = this.retry.initialDelayMs;
    for (;;) {
      if (this.snapshot.phase !== 'starting') return;
      const attempt = this.status(name).attempts + 1;
      if (!this.firstAttemptAt.has(name)) this.firstAttemptAt.set(name, performance.now());
      this.updateDependency(name, (dep) => ({
        state: 'initializing',
        attempts: attempt,
        startedAt: dep.startedAt ?? Date.now(),
      }));
      try {
        await initialize(this.stop.signal);
        if (this.snapshot.phase !== 'starting') return;
        this.updateDependency(name, () => ({
          state: 'ready',
          durationMs: Math.round(performance.now() - (this.firstAttemptAt.get(name) ?? 0)),
        }));
        return;
      } catch (error) {
        if (this.snapshot.phase !== 'starting') return;
        const lastError = describe(error);
        if (error instanceof FatalInitError) {
          this.updateDependency(name, () => ({ state: 'failed', lastError }));
          return;
        }
        this.updateDependency(name, () => ({ lastError }));
        this.logger.warn(`dependency ${name}: attempt ${attempt} failed: ${lastError}; retrying in ${delayMs} ms`);
        if (!(await pause(delayMs, this.stop.signal))) return;
        delayMs = Math.min(delayMs * 2, this.retry.maxDelayMs);
      }
    }
  }

  /** The start-up deadline passed: whatever is not ready now has failed, and says why. */
  private expire(): void {
    this.deadline = undefined;
    const current = this.snapshot;
    if (current.phase !== 'starting') return;
    const dependencies = current.dependencies.map((dep) => {
      if (dep.state === 'ready') return dep;
      return Object.freeze({ ...dep, state: 'failed' as const, lastError: this.reasonNotReady(current, dep) });
    });
    const reasons = dependencies.filter((dep) => dep.state === 'failed').map((dep) => `${dep.name} (${dep.lastError})`);
    this.logger.error(`not ready ${this.options.startupTimeoutMs} ms after start; missing: ${reasons.join(', ')}`);
    this.setPhase('failed', dependencies);
  }

  private reasonNotReady(snapshot: ReadinessSnapshot, dep: DependencyStatus): string {
    if (dep.state === 'failed' || dep.lastError !== undefined) {
      return `${dep.state === 'failed' ? '' : 'still failing: '}${dep.lastError ?? 'failed'}`;
    }
    if (dep.state === 'initializing') return 'initialisation did not finish in time';
    const waitingFor = dep.dependsOn.filter((required) => findStatus(snapshot, required).state !== 'ready');
    if (waitingFor.length > 0) return `waiting for ${waitingFor.join(', ')}`;
    return this.tracked.has(dep.name) ? 'did not start' : 'no module started its initialisation';
  }

  private updateDependency(
    name: string,
    change: (dep: DependencyStatus) => Partial<Omit<DependencyStatus, 'name' | 'dependsOn'>>,
  ): void {
    const current = this.snapshot;
    const dependencies = current.dependencies.map((dep) => {
      if (dep.name !== name) return dep;
      const next = Object.freeze({ ...dep, ...change(dep) });
      if (next.state !== dep.state) this.logDependencyChange(dep, next);
      return next;
    });
    this.setPhase(derivePhase(current.phase, dependencies), dependencies);
  }

  private setPhase(phase: ReadinessPhase, dependencies: readonly DependencyStatus[]): void {
    const previous = this.snapshot;
    const changed = phase !== previous.phase;
    if (changed && phase !== 'starting') {
      this.clearDeadline();
      if (phase !== 'ready') this.stop.abort();
    }
    this.subject.next(
      Object.freeze({
        phase,
        since: changed ? Date.now() : previous.since,
        dependencies: Object.freeze([...dependencies]),
      }),
    );
    if (changed) this.logPhaseChange(previous.phase, phase, dependencies);
  }

  private logDependencyChange(from: DependencyStatus, to: DependencyStatus): void {
    const detail =
      to.state === 'initializing'
        ? `attempt ${to.attempts}`
        : to.state === 'ready'
          ? `in ${to.durationMs} ms after ${to.attempts} attempt(s)`
          : `error: ${to.lastError}`;
    const line = `dependency ${to.name}: ${from.state} → ${to.state} (${detail})`;
    if (to.state === 'failed') this.logger.error(line);
    else this.logger.log(line);
  }

  private logPhaseChange(from: ReadinessPhase, to: ReadinessPhase, dependencies: readonly DependencyStatus[]): void {
    const elapsed = Math.round(performance.now() - this.createdAt);
    const timings = dependencies
      .map((dep) => `${dep.name} ${dep.state}${dep.durationMs === undefined ? '' : ` ${dep.durationMs} ms`}`)
      .join(', ');
    // The reasons of a failure are in the dependency or deadline line just before this one.
    const line = `phase: ${from} → ${to} ${elapsed} ms after start (${timings})`;
    if (to === 'failed') this.logger.error(line);
    else this.logger.log(line);
  }

  private status(name: string): DependencyStatus {
    return findStatus(this.snapshot, name);
  }

  private clearDeadline(): void {
    if (this.deadline !== undefined) clearTimeout(this.deadline);
    this.deadline = undefined;
  }
}

function findStatus(snapshot: ReadinessSnapshot, name: string): DependencyStatus {
  const status = snapshot.dependencies.find((dep) => dep.name === name);
  if (status === undefined) throw new Error(`readiness: dependency "${name}" is not declared`);
  return status;
}

/** `failed` and `draining` are terminal; otherwise the dependencies decide. */
function derivePhase(current: ReadinessPhase, dependencies: readonly DependencyStatus[]): ReadinessPhase {
  switch (current) {
    case 'failed':
    case 'draining':
      return current;
    case 'starting':
    case 'ready':
      if (dependencies.some((dep) => dep.state === 'failed')) return 'failed';
      return dependencies.every((dep) => dep.state === 'ready') ? 'ready' : 'starting';
    default: {
      const exhaustive: never = current;
      return exhaustive;
    }
  }
}

/** Resolves `true` after `ms`, or `false` as soon as `signal` aborts. The timer never holds the process open. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    timer.unref();
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
