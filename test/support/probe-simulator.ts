import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { parse } from 'yaml';

export type ProbeKind = 'startup' | 'readiness' | 'liveness';

/** The parts of a manifest's probe this simulator understands (HTTP GET only, as ours are). */
export interface ManifestProbe {
  readonly httpGet?: { readonly path?: string; readonly port?: number | string; readonly scheme?: string };
  readonly initialDelaySeconds?: number;
  readonly periodSeconds?: number;
  readonly timeoutSeconds?: number;
  readonly successThreshold?: number;
  readonly failureThreshold?: number;
}

/** A container as both Kubernetes and Knative spell it, reduced to what the tests read. */
export interface ManifestContainer {
  readonly name?: string;
  readonly ports?: ReadonlyArray<{ readonly name?: string; readonly containerPort: number }>;
  readonly env?: ReadonlyArray<{
    readonly name: string;
    readonly value?: string;
    readonly valueFrom?: {
      readonly secretKeyRef?: { readonly name?: string; readonly key: string; readonly optional?: boolean };
    };
  }>;
  readonly startupProbe?: ManifestProbe;
  readonly readinessProbe?: ManifestProbe;
  readonly livenessProbe?: ManifestProbe;
  readonly lifecycle?: {
    readonly preStop?: {
      readonly sleep?: { readonly seconds: number };
      readonly exec?: { readonly command?: string[] };
    };
  };
}

/** An HTTP probe with the kubelet's defaults filled in and its port resolved to a number. */
export interface HttpProbe {
  readonly kind: ProbeKind;
  readonly path: string;
  /** The container port it targets (a named port resolved; none given means the only container port, as Knative does). */
  readonly port: number;
  readonly initialDelaySeconds: number;
  readonly periodSeconds: number;
  readonly timeoutSeconds: number;
  readonly successThreshold: number;
  readonly failureThreshold: number;
}

export interface ContainerProbes {
  readonly containerPort: number;
  readonly startup?: HttpProbe;
  readonly readiness?: HttpProbe;
  readonly liveness?: HttpProbe;
}

/** Kubernetes' defaults for fields a probe leaves out. */
const KUBELET_DEFAULTS = {
  initialDelaySeconds: 0,
  periodSeconds: 10,
  timeoutSeconds: 1,
  successThreshold: 1,
  failureThreshold: 3,
} as const;

/** The container's probes, resolved; throws on anything the kubelet would reject or this simulator cannot run. */
export function containerProbes(container: ManifestContainer): ContainerProbes {
  const ports = container.ports ?? [];
  const containerPort = ports[0]?.containerPort;
  if (containerPort === undefined) throw new Error(`container ${container.name ?? '(unnamed)'} exposes no port`);
  const resolve = (kind: ProbeKind, probe: ManifestProbe | undefined): HttpProbe | undefined => {
    if (probe === undefined) return undefined;
    const get = probe.httpGet;
    if (get?.path === undefined) throw new Error(`${kind} probe: only httpGet probes with a path are simulated`);
    if ((get.scheme ?? 'HTTP') !== 'HTTP')
      throw new Error(`${kind} probe: scheme ${get.scheme} is not served by the app`);
    const port =
      get.port === undefined
        ? containerPort
        : typeof get.port === 'number'
          ? get.port
          : ports.find((candidate) => candidate.name === get.port)?.containerPort;
    if (port === undefined || !ports.some((candidate) => candidate.containerPort === port)) {
      throw new Error(`${kind} probe: port ${String(get.port)} is not a port of the container`);
    }
    const resolved = { ...KUBELET_DEFAULTS, ...probe, kind, path: get.path, port };
    if (kind !== 'readiness' && resolved.successThreshold !== 1) {
      throw new Error(`${kind} probe: successThreshold must be 1 (the API server rejects anything else)`);
    }
    return resolved;
  };
  return {
    containerPort,
    startup: resolve('startup', container.startupProbe),
    readiness: resolve('readiness', container.readinessProbe),
    liveness: resolve('liveness', container.livenessProbe),
  };
}

/** The probes of a Deployment manifest's container (the first one, or the one named). */
export function readDeploymentProbes(file: string, containerName?: string): ContainerProbes {
  const deployment = parse(readFileSync(file, 'utf8')) as {
    spec?: { template?: { spec?: { containers?: ManifestContainer[] } } };
  };
  const containers = deployment.spec?.template?.spec?.containers ?? [];
  const container =
    containerName === undefined ? containers[0] : containers.find((candidate) => candidate.name === containerName);
  if (container === undefined) throw new Error(`${file}: no container ${containerName ?? ''}`);
  return containerProbes(container);
}

export type SimulatorEvent =
  | {
      readonly type: 'probe';
      readonly kind: ProbeKind;
      readonly at: number;
      readonly ok: boolean;
      /** The HTTP status, or why there was none (connection refused, timeout). */
      readonly outcome: number | string;
    }
  /** The startup probe succeeded: liveness and readiness probing begins. */
  | { readonly type: 'started'; readonly at: number }
  /** The pod's endpoint would be added to (`ready`) or removed from the Service. */
  | { readonly type: 'endpoint'; readonly ready: boolean; readonly at: number }
  /** The kubelet would kill and restart the container. */
  | { readonly type: 'restart'; readonly kind: 'startup' | 'liveness'; readonly at: number };

export interface ProbeSimulatorOptions {
  /** Where the container port is reachable from the test (the app runs on a free port, not on the manifest's). */
  readonly host: string;
  readonly port: number;
  /**
   * Multiplies `initialDelaySeconds` and `periodSeconds`, so a test need not wait real minutes:
   * 0.1 runs a 2 s period every 200 ms. Timeouts are not scaled: they bound how long a healthy app
   * may take to answer, which does not shrink because the test is in a hurry. Default 1.
   */
  readonly timeScale?: number;
}

/**
 * Drives a running app with a container's probes the way the kubelet does
 * (pkg/kubelet/prober/worker.go):
 * - one worker per probe, probing every `periodSeconds` after `initialDelaySeconds` from the
 *   container start, never two probes of a kind at once (a slow probe delays the next);
 * - an HTTP GET without keep-alive; 200–399 within `timeoutSeconds` is a success, anything else
 *   (another status, a refused connection, a timeout) a failure;
 * - liveness and readiness are not probed until the startup probe has succeeded once;
 * - a result counts only once it has repeated `successThreshold`/`failureThreshold` times in a
 *   row: the readiness probe then adds or removes the endpoint, a failing startup or liveness
 *   probe restarts the container (here: reported, and probing stops).
 *
 * Everything it observes is an event with a timestamp (`performance.now()`); tests await events,
 * never sleep. Its timers are its job: they pace the probes.
 */
export class ProbeSimulator {
  readonly events: SimulatorEvent[] = [];
  private readonly timeScale: number;
  private readonly listeners = new Set<(event: SimulatorEvent) => void>();
  private readonly sleepers = new Map<ReturnType<typeof setTimeout>, () => void>();
  private readonly workers: Array<Promise<void>> = [];
  private readonly containerStartedAt = performance.now();
  private started = false;
  private ready = false;
  private stopped = false;

  constructor(
    private readonly probes: ContainerProbes,
    private readonly options: ProbeSimulatorOptions,
  ) {
    this.timeScale = options.timeScale ?? 1;
  }

  /** Starts probing; call it when the container starts (right after spawning the process). */
  start(): void {
    this.started = this.probes.startup === undefined;
    if (this.started && this.probes.readiness === undefined) this.setReady(true);
    for (const probe of [this.probes.startup, this.probes.readiness, this.probes.liveness]) {
      if (probe !== undefined) this.workers.push(this.work(probe));
    }
  }

  /** Whether the endpoint is currently in the Service (would receive traffic). */
  get endpointReady(): boolean {
    return this.ready;
  }

  /** Calls `listener` synchronously with every event from now on; returns the unsubscribe. */
  on(listener: (event: SimulatorEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The next event (from now on) that satisfies `match`. */
  next<T extends SimulatorEvent>(match: (event: SimulatorEvent) => event is T): Promise<T> {
    return new Promise((resolve) => {
      const off = this.on((event) => {
        if (!match(event)) return;
        off();
        resolve(event);
      });
    });
  }

  /** Stops every worker and waits for the probes in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const [timer, wake] of this.sleepers) {
      clearTimeout(timer);
      wake();
    }
    this.sleepers.clear();
    await Promise.all(this.workers);
  }

  private async work(probe: HttpProbe): Promise<void> {
    await this.sleepUntil(this.containerStartedAt + this.scaled(probe.initialDelaySeconds));
    let run = { ok: true, count: 0 };
    while (!this.stopped) {
      const tick = performance.now();
      const gated = probe.kind !== 'startup' && !this.started;
      if (!gated) {
        const { ok, outcome } = await this.probe(probe);
        if (this.stopped) return;
        run = run.ok === ok ? { ok, count: run.count + 1 } : { ok, count: 1 };
        this.emit({ type: 'probe', kind: probe.kind, at: performance.now(), ok, outcome });
        if (this.decide(probe, run)) return;
      }
      await this.sleepUntil(tick + this.scaled(probe.periodSeconds));
    }
  }

  /** Applies a run of equal results; true when this worker is done. */
  private decide(probe: HttpProbe, run: { ok: boolean; count: number }): boolean {
    const threshold = run.ok ? probe.successThreshold : probe.failureThreshold;
    if (run.count < threshold) return false;
    switch (probe.kind) {
      case 'startup':
        if (!run.ok) return this.restart('startup');
        this.started = true;
        this.emit({ type: 'started', at: performance.now() });
        if (this.probes.readiness === undefined) this.setReady(true);
        return true;
      case 'readiness':
        this.setReady(run.ok);
        return false;
      case 'liveness':
        return run.ok ? false : this.restart('liveness');
      default: {
        const exhaustive: never = probe.kind;
        return exhaustive;
      }
    }
  }

  private restart(kind: 'startup' | 'liveness'): true {
    this.setReady(false);
    this.emit({ type: 'restart', kind, at: performance.now() });
    void this.stop();
    return true;
  }

  private setReady(ready: boolean): void {
    if (this.ready === ready) return;
    this.ready = ready;
    this.emit({ type: 'endpoint', ready, at: performance.now() });
  }

  private emit(event: SimulatorEvent): void {
    this.events.push(event);
    for (const listener of [...this.listeners]) listener(event);
  }

  /** One HTTP GET as the kubelet sends it: no keep-alive, its own User-Agent, bounded by the timeout. */
  private probe(probe: HttpProbe): Promise<{ ok: boolean; outcome: number | string }> {
    return new Promise((resolve) => {
      const req = request(
        {
          host: this.options.host,
          port: this.options.port,
          path: probe.path,
          method: 'GET',
          agent: false,
          headers: { 'user-agent': 'kube-probe/1.30', accept: '*/*', connection: 'close' },
          signal: AbortSignal.timeout(probe.timeoutSeconds * 1000),
        },
        (response) => {
          const status = response.statusCode ?? 0;
          response.resume();
          response.once('end', () => resolve({ ok: status >= 200 && status < 400, outcome: status }));
          response.once('error', (error) => resolve({ ok: false, outcome: describe(error) }));
        },
      );
      req.once('error', (error) => resolve({ ok: false, outcome: describe(error) }));
      req.end();
    });
  }

  private scaled(seconds: number): number {
    return seconds * 1000 * this.timeScale;
  }

  private sleepUntil(at: number): Promise<void> {
    const ms = at - performance.now();
    if (this.stopped || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleepers.delete(timer);
        resolve();
      }, ms);
      timer.unref();
      this.sleepers.set(timer, resolve);
    });
  }
}

function describe(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  return error.name === 'TimeoutError' || error.name === 'AbortError' ? 'timeout' : (code ?? error.message);
}
