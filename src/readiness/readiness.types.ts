/** The service as a whole. `failed` and `draining` are terminal for this process. */
export type ReadinessPhase = 'starting' | 'ready' | 'failed' | 'draining';

/** One declared dependency. It moves forward only: pending → initializing → ready | failed. */
export type DependencyState = 'pending' | 'initializing' | 'ready' | 'failed';

/**
 * A dependency is declared before any lifecycle hook runs, so readiness can never report `ready`
 * while a slow module has not registered its initialisation yet.
 */
export interface DependencyDeclaration {
  readonly name: string;
  /** Names of dependencies that must be ready before this one starts initialising. */
  readonly dependsOn?: readonly string[];
}

export interface DependencyStatus {
  readonly name: string;
  readonly state: DependencyState;
  readonly dependsOn: readonly string[];
  /** Initialisation attempts so far (failed ones are retried with backoff). */
  readonly attempts: number;
  /** Epoch milliseconds of the first attempt. */
  readonly startedAt?: number;
  /** Milliseconds from the first attempt to ready, retries included. */
  readonly durationMs?: number;
  /** The last failure, kept after a successful retry so operators can see what happened. */
  readonly lastError?: string;
}

/** An immutable picture of readiness; a new one is emitted on every change. */
export interface ReadinessSnapshot {
  readonly phase: ReadinessPhase;
  /** Epoch milliseconds when the current phase began. */
  readonly since: number;
  /** In declaration order. */
  readonly dependencies: readonly DependencyStatus[];
}

export interface ReadinessRetryOptions {
  /** Delay before the second attempt; doubled after each failure. Default 100 ms. */
  readonly initialDelayMs: number;
  /** Upper bound of the delay between attempts. Default 5000 ms. */
  readonly maxDelayMs: number;
}

export interface ReadinessOptions {
  readonly dependencies: readonly DependencyDeclaration[];
  /** From construction; not ready by then → phase `failed`. */
  readonly startupTimeoutMs: number;
  readonly retry?: Partial<ReadinessRetryOptions>;
}

/** The names of the dependencies that are not ready in `snapshot`. */
export function missingDependencies(snapshot: ReadinessSnapshot): string[] {
  return snapshot.dependencies.filter((dep) => dep.state !== 'ready').map((dep) => dep.name);
}
