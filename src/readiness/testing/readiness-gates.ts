import type { TestingModuleBuilder } from '@nestjs/testing';
import { READINESS_OPTIONS } from '../readiness.constants.js';
import { type DependencyInitializer, ReadinessService, type TrackOptions } from '../readiness.service.js';
import type { ReadinessOptions } from '../readiness.types.js';

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

class Gate {
  open = false;
  readonly queuedFailures: unknown[] = [];
  waiter: Waiter | undefined;
  private arrivals: Array<() => void> = [];

  async pass(signal: AbortSignal): Promise<void> {
    if (this.open) return;
    if (this.queuedFailures.length > 0) throw this.queuedFailures.shift();
    const held = new Promise<void>((resolve, reject) => {
      this.waiter = { resolve, reject };
      signal.addEventListener('abort', () => reject(new Error('initialisation aborted')), { once: true });
    });
    const arrivals = this.arrivals;
    this.arrivals = [];
    for (const notify of arrivals) notify();
    await held;
  }

  reached(): Promise<void> {
    if (this.waiter !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.arrivals.push(resolve));
  }
}

/**
 * Test helper: holds the initialisation of chosen dependencies open until the test releases or
 * fails it, so start-up races can be replayed deterministically, without sleeps.
 *
 * ```ts
 * const gates = new ReadinessGates(['llm']);
 * const moduleRef = await gates.apply(Test.createTestingModule({ imports: [AppModule.forRoot(config)] })).compile();
 * // … connect clients, they are held …
 * gates.release('llm'); // readiness flips as soon as the real initialiser finishes
 * ```
 */
export class ReadinessGates {
  private readonly gates = new Map<string, Gate>();

  constructor(names: Iterable<string>) {
    for (const name of names) this.gates.set(name, new Gate());
  }

  /** Replaces the module's `ReadinessService` with one whose gated dependencies wait for this object. */
  apply(builder: TestingModuleBuilder): TestingModuleBuilder {
    return builder.overrideProvider(ReadinessService).useFactory({
      factory: (options: ReadinessOptions) => new GatedReadinessService(options, this),
      inject: [READINESS_OPTIONS],
    });
  }

  /** Resolves once an initialisation attempt of `name` is waiting at its gate. */
  reached(name: string): Promise<void> {
    return this.gate(name).reached();
  }

  /** Lets the waiting attempt of `name` (and every later one) run the real initialiser. */
  release(name: string): void {
    const gate = this.gate(name);
    gate.open = true;
    gate.waiter?.resolve();
    gate.waiter = undefined;
  }

  /**
   * Fails the waiting attempt of `name` (or the next one) with `error`; later attempts wait again.
   * A `FatalInitError` fails the dependency at once; any other error is retried with backoff.
   */
  fail(name: string, error: unknown): void {
    const gate = this.gate(name);
    if (gate.waiter === undefined) {
      gate.queuedFailures.push(error);
      return;
    }
    gate.waiter.reject(error);
    // Cleared now, not when the attempt unwinds, so reached() waits for the next attempt.
    gate.waiter = undefined;
  }

  /** @internal Used by the gated service. */
  wrap(name: string, initialize: DependencyInitializer): DependencyInitializer {
    const gate = this.gates.get(name);
    if (gate === undefined) return initialize;
    return async (signal) => {
      await gate.pass(signal);
      await initialize(signal);
    };
  }

  private gate(name: string): Gate {
    const gate = this.gates.get(name);
    if (gate === undefined) throw new Error(`ReadinessGates: "${name}" was not gated`);
    return gate;
  }
}

class GatedReadinessService extends ReadinessService {
  constructor(
    options: ReadinessOptions,
    private readonly gates: ReadinessGates,
  ) {
    super(options);
  }

  override track(name: string, initialize: DependencyInitializer, options?: TrackOptions): void {
    super.track(name, this.gates.wrap(name, initialize), options);
  }
}
