/**
 * Agent-run latency: the time a client waits from sending `agent_request` to receiving
 * `agent_completed`, against the built server over a real socket, compared with the embedded
 * model's own streaming time for the same request. The difference is what the gateway, the agent
 * loop and the store add (auth is per connection, so not in it).
 */
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { calculatorTool } from '../../src/agent/tools/calculator.tool.js';
import { currentTimeTool } from '../../src/agent/tools/current-time.tool.js';
import { LocalModel } from '../../src/llm/local-model.js';
import { createTestDatabase, type Engine } from '../../test/support/databases.js';
import { ServerProcess } from '../../test/support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../../test/support/tokens.js';
import { fix, percentile } from '../harness/stats.js';

export interface Percentiles {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface RunLatency {
  readonly engine: Engine;
  readonly runs: number;
  readonly endToEndMs: Percentiles;
  readonly modelMs: Percentiles;
  /** p50 and p99 of end-to-end minus those of the model alone. */
  readonly overheadMs: { readonly p50: number; readonly p99: number };
}

const MESSAGE = 'Please summarise what a readiness probe is for, in a few short sentences of plain words.';
/** A new thread every this many runs; the others continue it (the model then sees the history). */
const RUNS_PER_THREAD = 10;

export function percentiles(values: readonly number[]): Percentiles {
  return { p50: fix(percentile(values, 0.5)), p99: fix(percentile(values, 0.99)), max: fix(percentile(values, 1)) };
}

/** The embedded model alone, in this process: streaming the same reply, nothing else. */
async function modelOnly(runs: number): Promise<number[]> {
  const model = new LocalModel({ warmupMs: 0, tokenDelayMs: 0 });
  const signal = new AbortController().signal;
  await model.init(signal);
  const request = {
    messages: [{ role: 'user' as const, content: MESSAGE }],
    tools: [calculatorTool.spec, currentTimeTool.spec],
  };
  const times: number[] = [];
  for (let index = 0; index < runs; index += 1) {
    const started = performance.now();
    for await (const chunk of model.stream(request, signal)) void chunk;
    times.push(performance.now() - started);
  }
  return times;
}

export async function measureRunLatency(engine: Engine, runs: number): Promise<RunLatency> {
  const database = await createTestDatabase(engine);
  const server = await ServerProcess.start({
    ...database.env,
    JWT_SECRET: TEST_JWT_SECRET,
    NODE_ENV: 'production',
    AGENT_MAX_RUNS_PER_USER: '1000',
    // Requests are sent one after another, faster than the default 50 frames/s per connection.
    WS_MAX_MESSAGES_PER_SECOND: '1000000',
    WS_MESSAGE_BURST: '1000000',
  });
  try {
    await server.ready();
    const socket = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, {
      headers: { authorization: `Bearer ${signToken({ sub: 'bench' })}` },
      perMessageDeflate: false,
    });
    const frames: Array<(frame: { event: string; data: Record<string, unknown> }) => void> = [];
    socket.on('message', (raw) => {
      const frame = JSON.parse((raw as Buffer).toString()) as { event: string; data: Record<string, unknown> };
      for (const listener of frames) listener(frame);
    });
    await new Promise<void>((resolve) => {
      frames.push((frame) => {
        if (frame.event === 'connection_established') resolve();
      });
    });
    frames.length = 0;

    const times: number[] = [];
    let threadId: unknown;
    for (let index = 0; index < runs; index += 1) {
      const requestId = `b${index}`;
      const done = new Promise<{ event: string; data: Record<string, unknown> }>((resolve) => {
        frames[0] = (frame) => {
          if (frame.data.requestId === requestId && ['agent_completed', 'agent_error'].includes(frame.event)) {
            resolve(frame);
          }
        };
      });
      const started = performance.now();
      socket.send(
        JSON.stringify({
          event: 'agent_request',
          data:
            index % RUNS_PER_THREAD === 0 ? { requestId, message: MESSAGE } : { requestId, message: MESSAGE, threadId },
        }),
      );
      const end = await done;
      times.push(performance.now() - started);
      if (end.event !== 'agent_completed') throw new Error(`run ${index} failed: ${JSON.stringify(end.data)}`);
      threadId = end.data.threadId;
    }
    socket.close();
    const model = await modelOnly(runs);
    const endToEndMs = percentiles(times.slice(Math.min(50, runs / 10)));
    const modelMs = percentiles(model.slice(Math.min(50, runs / 10)));
    return {
      engine,
      runs,
      endToEndMs,
      modelMs,
      overheadMs: { p50: fix(endToEndMs.p50 - modelMs.p50), p99: fix(endToEndMs.p99 - modelMs.p99) },
    };
  } finally {
    await server.stop();
    await database.drop();
  }
}
