import { afterEach, describe, expect, it } from '@jest/globals';
import { fileURLToPath } from 'node:url';
import { ProbeSimulator, readDeploymentProbes, type SimulatorEvent } from '../support/probe-simulator.js';
import { ServerProcess } from '../support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../support/tokens.js';
import { type CloseInfo, TestClient } from '../support/ws-client.js';

const DEPLOYMENT = fileURLToPath(new URL('../../k8s/base/deployment.yaml', import.meta.url));
/**
 * Probe periods and initial delays run at a fifth of real time (a 2 s period every 400 ms). The
 * app's own start is not scaled, so this also shrinks the startup probe's 70 s window to 14 s:
 * enough for the 3 s warm-up on a loaded machine (at a tenth, 7 s, a busy CI box restarted it).
 */
const TIME_SCALE = 0.2;

type ProbeEvent = Extract<SimulatorEvent, { type: 'probe' }>;
type EndpointEvent = Extract<SimulatorEvent, { type: 'endpoint' }>;
type RestartEvent = Extract<SimulatorEvent, { type: 'restart' }>;

/** The events, one line each, times from the first: what a failure message needs. */
const timeline = (events: readonly SimulatorEvent[]): string =>
  events
    .map((event) => {
      const at = Math.round(event.at - (events[0]?.at ?? 0));
      switch (event.type) {
        case 'probe':
          return `${at} ms ${event.kind} ${event.ok ? 'ok' : 'FAILED'} (${event.outcome})`;
        case 'started':
          return `${at} ms started`;
        case 'endpoint':
          return `${at} ms endpoint ${event.ready ? 'added' : 'removed'}`;
        case 'restart':
          return `${at} ms RESTART (${event.kind})`;
        default: {
          const exhaustive: never = event;
          return exhaustive;
        }
      }
    })
    .join('\n');

const isEndpoint =
  (ready: boolean) =>
  (event: SimulatorEvent): event is EndpointEvent =>
    event.type === 'endpoint' && event.ready === ready;
const isProbe =
  (kind: ProbeEvent['kind'], ok: boolean) =>
  (event: SimulatorEvent): event is ProbeEvent =>
    event.type === 'probe' && event.kind === kind && event.ok === ok;

/**
 * The probes of k8s/base/deployment.yaml, run the way the kubelet runs them, against the built
 * server: traffic may only be routed while the app can serve it.
 */
describe('the base Deployment probes, driven like the kubelet against the real process', () => {
  let server: ServerProcess | undefined;
  let simulator: ProbeSimulator | undefined;
  const clients: TestClient[] = [];

  afterEach(async () => {
    await simulator?.stop();
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await server?.stop();
    server = undefined;
    simulator = undefined;
  });

  function connect(running: ServerProcess, user: string): TestClient {
    const client = new TestClient(running.url, { token: signToken({ sub: user }) });
    clients.push(client);
    return client;
  }

  it('routes to the pod only once it is ready, never restarts it, and takes it out of service before the drain closes a socket', async () => {
    const probes = readDeploymentProbes(DEPLOYMENT);
    const { startup, readiness, liveness } = probes;
    if (startup === undefined || readiness === undefined || liveness === undefined) {
      throw new Error('k8s/base/deployment.yaml must declare startup, readiness and liveness probes');
    }
    const scaledMs = (seconds: number): number => seconds * 1000 * TIME_SCALE;
    // Long enough for the readiness probe to take the endpoint out (failureThreshold periods plus
    // one probe's timeout) twice over, and for liveness probes to land inside the drain.
    const removalWindowMs =
      scaledMs(readiness.periodSeconds * readiness.failureThreshold) + readiness.timeoutSeconds * 1000;
    const shutdownDelayMs = Math.ceil(Math.max(2 * removalWindowMs, 2 * scaledMs(liveness.periodSeconds)));

    server = await ServerProcess.start({
      JWT_SECRET: TEST_JWT_SECRET,
      // The slow start: 3 s of model warm-up with the port already open.
      LOCAL_LLM_WARMUP_MS: '3000',
      // A connection opened before ready is refused at once (1013) instead of held, so a client
      // sent in when the endpoint is marked ready proves the app really was ready.
      WS_READY_WAIT_MS: '0',
      SHUTDOWN_DELAY_MS: String(shutdownDelayMs),
      SHUTDOWN_TIMEOUT_MS: '2000',
    });
    const running = server;
    const sim = new ProbeSimulator(probes, { host: '127.0.0.1', port: running.port, timeScale: TIME_SCALE });
    simulator = sim;
    // Every wait below also ends, with the probe timeline, if the kubelet would restart the
    // container or the process dies first: a broken scenario fails instead of hanging.
    const restarted = sim.next((event): event is RestartEvent => event.type === 'restart');
    const step = <T>(what: string, promise: Promise<T>, { mayExit = false } = {}): Promise<T> =>
      Promise.race([
        promise,
        restarted.then((event) => {
          throw new Error(`${what}: the ${event.kind} probe would restart the container\n${timeline(sim.events)}`);
        }),
        ...(mayExit
          ? []
          : [
              running.exited.then((exit) => {
                throw new Error(`${what}: the process exited (${exit.code})\n${running.output.join('\n')}`);
              }),
            ]),
      ]);

    // (a) The first client arrives the instant the endpoint is marked ready, as a router would send it.
    let first: TestClient | undefined;
    sim.on((event) => {
      if (event.type === 'endpoint' && event.ready && first === undefined) first = connect(running, 'first');
    });
    sim.start();

    const routed = await step('waiting to be routed', sim.next(isEndpoint(true)));
    if (first === undefined) throw new Error('no client was sent in when the endpoint became ready');
    const greeting = await step('the first client', first.waitFor(['connection_established', 'error']));
    expect(greeting.event).toBe('connection_established');

    // Steady state: a run completes, and liveness and a few more readiness probes pass.
    first.send('agent_request', { requestId: 'steady', message: 'what is 6 * 7?' });
    expect((await step('a run', first.runEnd('steady'))).event).toBe('agent_completed');
    await step('steady liveness', sim.next(isProbe('liveness', true)));
    for (let passes = 0; passes < 3; passes += 1) await step('steady readiness', sim.next(isProbe('readiness', true)));
    if (!sim.endpointReady) throw new Error(`taken out of service in steady state\n${timeline(sim.events)}`);

    // (c) SIGTERM, as the kubelet sends it after the preStop hook. The first readiness failure
    // leaves the endpoint in service (failureThreshold > 1): a client a stale router sends in then
    // must get a clean, retryable refusal.
    let late: TestClient | undefined;
    let lateSentWhileRouted = false;
    sim.on((event) => {
      if (event.type === 'probe' && event.kind === 'readiness' && !event.ok && late === undefined) {
        lateSentWhileRouted = sim.endpointReady;
        late = connect(running, 'late');
      }
    });
    const firstClosed: Promise<CloseInfo & { at: number }> = first.closed.then((close) => ({
      ...close,
      at: performance.now(),
    }));
    const signalledAt = performance.now();
    running.child.kill('SIGTERM');

    const removed = await step('the drain', sim.next(isEndpoint(false)), { mayExit: true });
    const [firstClose, exit] = await Promise.all([firstClosed, running.exited]);
    await sim.stop();
    if (late === undefined) throw new Error('no readiness failure was seen during the drain');
    const lateClose = await late.closed;

    const events = sim.events;
    const indexOf = (event: SimulatorEvent): number => events.indexOf(event);
    const probesBefore = (event: SimulatorEvent, kind: ProbeEvent['kind']): ProbeEvent[] =>
      events
        .slice(0, indexOf(event))
        .filter((candidate): candidate is ProbeEvent => candidate.type === 'probe' && candidate.kind === kind);

    // (a) Never routed before ready: one ready marking, after the startup probe passed and right
    // after `successThreshold` readiness 200s; before it the start-up probe saw the open port answer
    // 503 (where a TCP probe would already have routed traffic).
    expect(events.filter(isEndpoint(true))).toEqual([routed]);
    const started = events.find((event) => event.type === 'started');
    if (started === undefined) throw new Error('the startup probe never passed');
    expect(indexOf(started)).toBeLessThan(indexOf(routed));
    expect(
      probesBefore(routed, 'readiness')
        .slice(-readiness.successThreshold)
        .map((event) => event.outcome),
    ).toEqual(Array.from({ length: readiness.successThreshold }, () => 200));
    expect(probesBefore(started, 'startup').some((event) => event.outcome === 503)).toBe(true);
    // Liveness and readiness wait for the startup probe, so the slow start cannot get the pod restarted.
    expect([...probesBefore(started, 'liveness'), ...probesBefore(started, 'readiness')]).toEqual([]);

    // (b) No restart through the slow start or the drain: liveness passed every time until the app
    // started closing its sockets, drain included.
    expect(events.filter((event) => event.type === 'restart')).toEqual([]);
    const livenessUntilClose = events.filter(
      (event): event is ProbeEvent => event.type === 'probe' && event.kind === 'liveness' && event.at < firstClose.at,
    );
    expect(livenessUntilClose.every((event) => event.ok)).toBe(true);
    expect(livenessUntilClose.some((event) => event.at > signalledAt)).toBe(true);

    // (c) Out of service after exactly failureThreshold readiness failures, within SHUTDOWN_DELAY_MS
    // and before the app closed any socket; the client sent in meanwhile was refused with 1012.
    expect(
      probesBefore(removed, 'readiness')
        .slice(-readiness.failureThreshold)
        .map((event) => event.outcome),
    ).toEqual(Array.from({ length: readiness.failureThreshold }, () => 503));
    expect(removed.at).toBeGreaterThan(signalledAt);
    expect(removed.at - signalledAt).toBeLessThan(shutdownDelayMs);
    expect(removed.at).toBeLessThan(firstClose.at);
    expect(lateSentWhileRouted).toBe(true);
    expect(late.frames[0]?.data).toMatchObject({ code: 'SERVICE_SHUTTING_DOWN', retryable: true });
    expect(lateClose.code).toBe(1012);
    expect(firstClose.code).toBe(1012);
    expect(first.frames.at(-1)?.data).toMatchObject({ code: 'SERVICE_SHUTTING_DOWN', retryable: true });

    // (d) A clean exit.
    expect(exit).toEqual({ code: 0, signal: null });
  }, 60_000);
});
