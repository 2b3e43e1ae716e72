/**
 * One deployed instance (or fleet) checked end to end as a client uses it, step by step, each step
 * timed: the HTTP probes, then the WebSocket path the incident broke while every HTTP check was
 * green (the upgrade, `connection_established`, one agent turn, the thread listed, a clean close).
 * It stops at the first step that fails, and says what it received instead.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import type { SmokeOptions } from './smoke-options.js';

export const SMOKE_STEPS = [
  'live',
  'ready',
  'connect',
  'established',
  'first_delta',
  'completed',
  'thread_list',
  'close',
] as const;
export type SmokeStep = (typeof SMOKE_STEPS)[number];

export interface StepResult {
  readonly step: SmokeStep;
  readonly ok: boolean;
  /** From the step's start (connect, established: from the connection's; first_delta, completed: from the request). */
  readonly ms?: number;
  readonly limitMs?: number;
  readonly detail: string;
  /** What came instead, on failure: the status and body, the close code and reason, the error frame. */
  readonly received?: unknown;
}

export interface SmokeReport {
  readonly ok: boolean;
  readonly url: string;
  readonly startedAt: string;
  readonly totalMs: number;
  readonly failedStep?: SmokeStep;
  readonly steps: readonly StepResult[];
  /** The agent turn, once started. */
  readonly run?: { readonly runId: string; readonly threadId: string; readonly tools: readonly string[] };
}

interface Frame {
  readonly event: string;
  readonly data: Record<string, unknown>;
}

/** Why a wait for a frame ended without it. */
type Interruption =
  | { readonly kind: 'closed'; readonly code: number; readonly reason: string }
  | { readonly kind: 'socket_error'; readonly message: string }
  | { readonly kind: 'timeout' };

class StepFailed extends Error {
  constructor(
    readonly step: SmokeStep,
    readonly detail: string,
    readonly received?: unknown,
    readonly ms?: number,
  ) {
    super(detail);
  }
}

const MAX_BODY_CHARS = 2_000;

function describe(interruption: Interruption): string {
  switch (interruption.kind) {
    case 'closed':
      return `the connection closed with ${interruption.code}${interruption.reason === '' ? '' : ` (${interruption.reason})`}`;
    case 'socket_error':
      return `the socket failed: ${interruption.message}`;
    case 'timeout':
      return 'no answer within --timeout';
  }
}

/** Frames in arrival order, waited for one at a time; a close or a socket error ends every wait. */
class FrameReader {
  private readonly frames: Frame[] = [];
  private ended: Interruption | undefined;
  private wake: (() => void) | undefined;

  constructor(socket: WebSocket) {
    socket.on('message', (data) => {
      const text = Buffer.isBuffer(data)
        ? data.toString('utf8')
        : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]).toString('utf8');
      try {
        const frame = JSON.parse(text) as Frame;
        this.frames.push({ event: String(frame.event), data: frame.data ?? {} });
      } catch {
        this.frames.push({ event: '(not JSON)', data: { text: text.slice(0, MAX_BODY_CHARS) } });
      }
      this.wake?.();
    });
    socket.on('close', (code, reason) => {
      this.ended ??= { kind: 'closed', code, reason: reason.toString() };
      this.wake?.();
    });
    socket.on('error', (error) => {
      this.ended ??= { kind: 'socket_error', message: error.message };
      this.wake?.();
    });
  }

  get closed(): Interruption | undefined {
    return this.ended;
  }

  /** The next frame, or why none came before the deadline. */
  async next(deadline: number): Promise<Frame | Interruption> {
    for (;;) {
      const frame = this.frames.shift();
      if (frame !== undefined) return frame;
      if (this.ended !== undefined) return this.ended;
      const remaining = deadline - performance.now();
      if (remaining <= 0) return { kind: 'timeout' };
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}

const isFrame = (value: Frame | Interruption): value is Frame => 'event' in value;

export async function runSmoke(options: SmokeOptions, token: string): Promise<SmokeReport> {
  const startedAt = new Date().toISOString();
  const start = performance.now();
  const deadline = start + options.timeoutMs;
  const steps: StepResult[] = [];
  let run: { runId: string; threadId: string; tools: string[] } | undefined;
  let socket: WebSocket | undefined;
  const elapsed = (from: number): number => Math.round((performance.now() - from) * 10) / 10;
  const within = (step: SmokeStep, ms: number, limitMs: number, detail: string): void => {
    if (ms > limitMs) throw new StepFailed(step, `took ${ms} ms, over the limit of ${limitMs} ms`, undefined, ms);
    steps.push({ step, ok: true, ms, limitMs, detail });
  };

  try {
    for (const step of ['live', 'ready'] as const) {
      const sentAt = performance.now();
      const url = new URL(`/health/${step}`, options.url);
      const response = await fetch(url, {
        signal: AbortSignal.timeout(Math.max(1, Math.ceil(deadline - sentAt))),
      }).catch((error: unknown) => {
        const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
        throw new StepFailed(step, `GET ${url.pathname} failed: ${String(error)}${cause}`);
      });
      const text = (await response.text()).slice(0, MAX_BODY_CHARS);
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: reported as text
      }
      if (response.status !== 200) {
        throw new StepFailed(
          step,
          `GET ${url.pathname} answered ${response.status}`,
          { status: response.status, body },
          elapsed(sentAt),
        );
      }
      steps.push({ step, ok: true, ms: elapsed(sentAt), detail: `GET ${url.pathname} 200` });
    }

    const wsUrl = new URL('/ws', options.url);
    wsUrl.protocol = options.url.protocol === 'https:' ? 'wss:' : 'ws:';
    const connectStart = performance.now();
    const opened = new WebSocket(wsUrl, {
      headers: { authorization: `Bearer ${token}` },
      handshakeTimeout: Math.max(1, Math.ceil(deadline - connectStart)),
    });
    socket = opened;
    const reader = new FrameReader(opened);
    const upgraded = await new Promise<{ ok: true } | { ok: false; received: unknown; detail: string }>((resolve) => {
      opened.once('open', () => resolve({ ok: true }));
      opened.once('unexpected-response', (_request, response) => {
        resolve({
          ok: false,
          detail: `the upgrade was answered ${response.statusCode ?? 0} instead of 101`,
          received: { status: response.statusCode },
        });
        response.resume();
      });
      opened.once('error', (error) =>
        resolve({ ok: false, detail: `the connection failed: ${error.message}`, received: undefined }),
      );
      opened.once('close', (code, reason) =>
        resolve({
          ok: false,
          detail: `closed with ${code} before the upgrade`,
          received: { code, reason: reason.toString() },
        }),
      );
    });
    if (!upgraded.ok) throw new StepFailed('connect', upgraded.detail, upgraded.received, elapsed(connectStart));
    within('connect', elapsed(connectStart), options.thresholds.connectMs, `${wsUrl.origin}/ws upgraded`);

    const established = await reader.next(deadline);
    if (!isFrame(established)) {
      throw new StepFailed('established', describe(established), established, elapsed(connectStart));
    }
    if (established.event !== 'connection_established') {
      throw new StepFailed(
        'established',
        `${established.event} instead of connection_established`,
        established,
        elapsed(connectStart),
      );
    }
    within(
      'established',
      elapsed(connectStart),
      options.thresholds.establishedMs,
      `user ${String(established.data.userId)}, protocol ${String(established.data.protocolVersion)}`,
    );

    const requestId = `smoke-${randomUUID()}`;
    const requestedAt = performance.now();
    opened.send(JSON.stringify({ event: 'agent_request', data: { requestId, message: options.message } }));
    let firstDeltaMs: number | undefined;
    const tools: string[] = [];
    for (;;) {
      const step = firstDeltaMs === undefined ? 'first_delta' : 'completed';
      const frame = await reader.next(deadline);
      if (!isFrame(frame)) throw new StepFailed(step, describe(frame), frame, elapsed(requestedAt));
      const { event, data } = frame;
      if (event === 'error' || (event === 'agent_error' && data.requestId === requestId)) {
        throw new StepFailed(
          step,
          `${event} ${String(data.code)}: ${String(data.message)}`,
          frame,
          elapsed(requestedAt),
        );
      }
      if (data.requestId !== requestId) continue;
      if (event === 'agent_started') run = { runId: String(data.runId), threadId: String(data.threadId), tools };
      else if (event === 'tool_executing') tools.push(String(data.tool));
      else if (event === 'tool_failed') tools.push(`${String(data.tool)} (failed)`);
      else if (event === 'agent_message_delta' && firstDeltaMs === undefined) {
        firstDeltaMs = elapsed(requestedAt);
        within(
          'first_delta',
          firstDeltaMs,
          options.thresholds.firstDeltaMs,
          tools.length === 0 ? 'no tool call' : `after ${tools.join(', ')}`,
        );
      } else if (event === 'agent_cancelled') {
        throw new StepFailed(step, 'the run was cancelled', frame, elapsed(requestedAt));
      } else if (event === 'agent_completed') {
        if (firstDeltaMs === undefined)
          throw new StepFailed(
            'first_delta',
            'agent_completed without any agent_message_delta',
            frame,
            elapsed(requestedAt),
          );
        const message = data.message as { content?: unknown } | undefined;
        const answer = typeof message?.content === 'string' ? message.content : '';
        within(
          'completed',
          elapsed(requestedAt),
          options.thresholds.completedMs,
          `${answer.length} chars${tools.length === 0 ? ', no tool call' : `, tools: ${tools.join(', ')}`}`,
        );
        break;
      }
    }

    const listId = `smoke-list-${randomUUID()}`;
    const listedAt = performance.now();
    opened.send(JSON.stringify({ event: 'thread_list', data: { requestId: listId, limit: 20 } }));
    for (;;) {
      const frame = await reader.next(deadline);
      if (!isFrame(frame)) throw new StepFailed('thread_list', describe(frame), frame, elapsed(listedAt));
      if (frame.event === 'error' && frame.data.requestId === listId) {
        throw new StepFailed(
          'thread_list',
          `error ${String(frame.data.code)}: ${String(frame.data.message)}`,
          frame,
          elapsed(listedAt),
        );
      }
      if (frame.event !== 'thread_list_result' || frame.data.requestId !== listId) continue;
      const threads = Array.isArray(frame.data.threads) ? (frame.data.threads as Array<{ id?: unknown }>) : [];
      if (!threads.some((thread) => thread.id === run?.threadId)) {
        throw new StepFailed(
          'thread_list',
          `thread ${run?.threadId ?? '?'} is not among the ${threads.length} listed`,
          frame,
          elapsed(listedAt),
        );
      }
      steps.push({
        step: 'thread_list',
        ok: true,
        ms: elapsed(listedAt),
        detail: `thread ${run?.threadId ?? '?'} listed`,
      });
      break;
    }

    const closingAt = performance.now();
    opened.close(1000, 'smoke check done');
    for (;;) {
      const ending = await reader.next(deadline);
      if (isFrame(ending)) continue;
      if (ending.kind !== 'closed' || ending.code !== 1000) {
        throw new StepFailed('close', `${describe(ending)} instead of an answered 1000`, ending, elapsed(closingAt));
      }
      steps.push({ step: 'close', ok: true, ms: elapsed(closingAt), detail: 'closed 1000 by both sides' });
      break;
    }
  } catch (error) {
    if (!(error instanceof StepFailed)) throw error;
    steps.push({
      step: error.step,
      ok: false,
      ...(error.ms === undefined ? {} : { ms: error.ms }),
      detail: error.detail,
      ...(error.received === undefined ? {} : { received: error.received }),
    });
    if (socket !== undefined && socket.readyState !== WebSocket.CLOSED) socket.terminate();
    return {
      ok: false,
      url: options.url.href,
      startedAt,
      totalMs: elapsed(start),
      failedStep: error.step,
      steps,
      ...(run === undefined ? {} : { run }),
    };
  }
  return {
    ok: true,
    url: options.url.href,
    startedAt,
    totalMs: elapsed(start),
    steps,
    ...(run === undefined ? {} : { run }),
  };
}

/** The report as lines for a person: one per step, then the verdict. */
export function formatSmokeReport(report: SmokeReport): string {
  const lines = [`smoke check of ${report.url}`];
  for (const { step, ok, ms, limitMs, detail, received } of report.steps) {
    const time = ms === undefined ? '' : `${ms} ms`;
    const limit = limitMs === undefined ? '' : ` (limit ${limitMs} ms)`;
    lines.push(`  ${ok ? 'ok  ' : 'FAIL'} ${step.padEnd(12)} ${time.padStart(10)}${limit}  ${detail}`);
    if (received !== undefined) lines.push(`       received: ${JSON.stringify(received).slice(0, MAX_BODY_CHARS)}`);
  }
  lines.push(
    report.ok
      ? `passed: ${report.steps.length} steps in ${report.totalMs} ms`
      : `failed at ${report.failedStep ?? '?'} after ${report.totalMs} ms`,
  );
  return `${lines.join('\n')}\n`;
}
