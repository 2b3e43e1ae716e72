import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import { type ConnectionState, GatewayClient } from '../../src/client/index.js';
import type { RunFrame } from '../../src/protocol/events.js';
import { deferred } from '../support/deferred.js';
import { ServerProcess } from '../support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../support/tokens.js';

/**
 * The client SDK across a real server restart in the middle of a run, on the same address and
 * database: a graceful one (SIGTERM: the run finishes on the draining instance, then 1012) and a
 * crash (SIGKILL: the run is lost, and the resume says so).
 */
describe('the client SDK across a server restart in the middle of a run', () => {
  const servers: ServerProcess[] = [];
  let client: GatewayClient | undefined;
  let dir: string | undefined;

  afterEach(async () => {
    client?.close();
    client = undefined;
    await Promise.all(servers.splice(0).map((server) => server.stop()));
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  async function boot(port?: number): Promise<ServerProcess> {
    dir ??= await mkdtemp(join(tmpdir(), 'agent-gateway-sdk-'));
    const server = await ServerProcess.start(
      {
        JWT_SECRET: TEST_JWT_SECRET,
        DATABASE_URL: `sqlite:${join(dir, 'chat.db')}`,
        LOCAL_LLM_TOKEN_DELAY_MS: '30',
        SHUTDOWN_DELAY_MS: '100',
      },
      port,
    );
    servers.push(server);
    await server.ready();
    return server;
  }

  /** A client whose run has streamed a few deltas when this resolves. */
  async function runningClient(server: ServerProcess) {
    const states: ConnectionState[] = [];
    client = new GatewayClient({
      url: `ws://127.0.0.1:${server.port}/ws`,
      token: signToken({ sub: 'dana' }),
      WebSocket,
      reconnect: { initialDelayMs: 50, maxDelayMs: 200, maxAttempts: 100 },
    });
    client.onState((state) => states.push(state));
    await client.connect();
    const run = client.run('Tell me about restarts, and take your time about it, word by word');
    const frames: RunFrame[] = [];
    const streaming = deferred();
    const consumed = (async () => {
      for await (const frame of run) {
        frames.push(frame);
        if (frame.event === 'agent_message_delta' && frame.data.seq >= 6) streaming.resolve();
      }
    })();
    await streaming.promise;
    return { run, frames, states, consumed };
  }

  /** The first state (now or later) with `status`. */
  function reaches(status: ConnectionState['status']): Promise<ConnectionState> {
    const reached = deferred<ConnectionState>();
    const stop = client?.onState((state) => {
      if (state.status === status) reached.resolve(state);
    });
    return reached.promise.finally(() => stop?.());
  }

  const seqs = (frames: readonly RunFrame[]): number[] => frames.map((frame) => frame.data.seq ?? -1);

  it('SIGTERM: the run completes on the draining instance, then 1012, then the client is back on the new one', async () => {
    const first = await boot();
    const { run, frames, consumed } = await runningClient(first);
    const reconnecting = reaches('reconnecting');
    first.child.kill('SIGTERM');
    await consumed;
    expect(await run.result).toMatchObject({ status: 'completed' });
    expect(seqs(frames)).toEqual(frames.map((_, index) => index + 1));

    expect(await reconnecting).toMatchObject({ lastClose: { code: 1012, error: { code: 'SERVICE_SHUTTING_DOWN' } } });
    expect((await first.exited).code).toBe(0);
    const back = reaches('open');
    await boot(first.port);
    await back;
    const { threads } = await (client as GatewayClient).request('thread_list', {});
    expect(threads.map((thread) => thread.id)).toEqual([run.threadId]);
  });

  it('SIGKILL: after the reconnect the resume reports the run interrupted, and every event seen was seen once', async () => {
    const first = await boot();
    const { run, frames, states, consumed } = await runningClient(first);
    await first.stop();
    await boot(first.port);
    await consumed;
    const result = await run.result;
    expect(result).toMatchObject({ status: 'interrupted', error: { code: 'RUN_INTERRUPTED', retryable: true } });
    expect(seqs(frames)).toEqual(frames.map((_, index) => index + 1));
    expect(frames.some((frame) => frame.event === 'agent_completed')).toBe(false);
    expect(states.find((state) => state.status === 'reconnecting')).toMatchObject({ lastClose: { code: 1006 } });
    expect(states.at(-1)?.status).toBe('open');
  });
});
