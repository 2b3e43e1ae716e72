import { missingDependencies, type ReadinessSnapshot } from './readiness.types.js';

/** The declared dependency graph is unusable (unknown name, duplicate, cycle). Thrown at boot. */
export class DependencyGraphError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DependencyGraphError';
  }
}

/**
 * Thrown by an initialiser when retrying cannot help (invalid settings, a missing file):
 * the dependency fails at once instead of retrying until the start-up deadline.
 */
export class FatalInitError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FatalInitError';
  }
}

/** Rejection of `whenReady`: the wait ran out, or the service failed or is draining. */
export class NotReadyError extends Error {
  readonly missing: readonly string[];

  constructor(readonly snapshot: ReadinessSnapshot) {
    const missing = missingDependencies(snapshot);
    // Why each one is missing, where it said: what someone reading a failed start-up needs first.
    const reasons = missing.map((name) => {
      const dep = snapshot.dependencies.find((candidate) => candidate.name === name);
      return dep?.lastError === undefined ? name : `${name} (attempt ${dep.attempts}: ${dep.lastError})`;
    });
    super(`service is ${snapshot.phase}; not ready: ${reasons.join(', ') || 'none'}`);
    this.name = 'NotReadyError';
    this.missing = missing;
  }
}
