import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from '@jest/globals';
import { ConnectionRegistry } from '../../src/gateway/connection.registry.js';
import { LLM_PROVIDER } from '../../src/llm/llm.constants.js';
import { ScriptedModel } from '../support/scripted-model.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';

let app: TestApp | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** A word no log line could contain by chance; letters only, so the embedded model sees no arithmetic in it. */
function distinctive(prefix: string): string {
  return `${prefix}${randomUUID().replace(/[^a-f]/gu, '')}`;
}

/** The whole token and its signature alone (the part that makes it a credential). */
function secretsOf(token: string): string[] {
  return [token, token.split('.')[2] ?? token];
}

/** The lines of `logs` that contain any of `needles`, to show what leaked when the test fails. */
function linesContaining(current: TestApp, needles: readonly string[]): string[] {
  return current.logs.lines().filter((line) => needles.some((needle) => line.includes(needle)));
}

describe('structured logs', () => {
  it('log each connection and run with ids, codes and durations, and never a token or a message body', async () => {
    app = await startTestApp({ ready: true, env: { AGENT_MESSAGE_MAX_CHARS: '500' } });
    const marker = distinctive('zebra');
    const aliceToken = signToken({ sub: 'alice' });
    const bobToken = signToken({ sub: 'bob' });
    const forgedToken = signToken({ sub: 'mallory' }, { secret: 'forged-secret-0123456789-abcdefghijkl' });
    const expiredToken = signToken({ sub: 'carol', exp: Math.floor(Date.now() / 1000) - 60 });

    const alice = app.connect({ token: aliceToken });
    const bob = app.connect({ token: bobToken, via: 'query' });
    const aliceId = String((await alice.waitFor('connection_established')).data.connectionId);
    await bob.waitFor('connection_established');

    // The embedded model calls the calculator for the first and quotes the second back.
    const calculated = await alice.request('r1', `${marker} what is 12 * (3 + 4)?`);
    expect(calculated.map((frame) => frame.event)).toContain('tool_completed');
    expect(calculated.at(-1)?.event).toBe('agent_completed');
    const quoted = await bob.request('r2', `${marker} repeat after me`);
    expect(JSON.stringify(quoted.at(-1)?.data)).toContain(marker);

    // Error paths that carry the body: malformed JSON, a message over the limit, an unknown event.
    alice.sendRaw(`{"event":"agent_request","data":{"requestId":"r3","message":"${marker}"`);
    await alice.waitFor('error', (data) => data.code === 'BAD_REQUEST');
    alice.send('agent_request', { requestId: 'r4', message: `${marker} ${'x'.repeat(600)}` });
    expect((await alice.waitFor('error', (data) => data.requestId === 'r4')).data.code).toBe('VALIDATION_FAILED');
    alice.send(`${marker}-event`, { requestId: 'r5' });
    expect((await alice.waitFor('error', (data) => data.requestId === 'r5')).data.code).toBe('UNKNOWN_EVENT');

    // Refused tokens, over WebSocket and HTTP.
    expect((await app.connect({ token: forgedToken }).closed).code).toBe(1008);
    expect((await app.connect({ token: expiredToken, via: 'query' }).closed).code).toBe(1008);
    const http = async (token: string): Promise<number> =>
      (await fetch(new URL('/threads', app?.url), { headers: { authorization: `Bearer ${token}` } })).status;
    expect(await http(aliceToken)).toBe(200);
    expect(await http(forgedToken)).toBe(401);

    await Promise.all([alice.close(), bob.close()]);
    expect(await app.app.get(ConnectionRegistry).whenAllClosed(5_000)).toBe(true);

    const secrets = [aliceToken, bobToken, forgedToken, expiredToken].flatMap(secretsOf);
    expect(linesContaining(app, secrets)).toEqual([]);
    expect(linesContaining(app, [marker, 'repeat after me', 'what is 12'])).toEqual([]);

    // …and the lines that must be there.
    const established = app.logs.find('connection established', 'Gateway').map((entry) => entry.params?.userId);
    expect(established.sort()).toEqual(['alice', 'bob']);
    const refused = app.logs.find('connection refused', 'Gateway').map((entry) => entry.params);
    expect(refused).toEqual([
      expect.objectContaining({ outcome: 'unauthorized', errorCode: 'UNAUTHORIZED' }),
      expect.objectContaining({ outcome: 'token_expired', errorCode: 'TOKEN_EXPIRED' }),
    ]);
    const closed = app.logs.find('connection closed', 'Gateway').map((entry) => entry.params);
    expect(closed).toHaveLength(4);
    expect(closed).toContainEqual({
      connectionId: aliceId,
      userId: 'alice',
      code: 1000,
      durationMs: expect.any(Number),
    });
    expect(closed.filter((params) => params?.code === 1008)).toHaveLength(2);

    const runIds = [calculated, quoted].map((frames) => frames[0]?.data.runId);
    const started = app.logs.find('run started', 'Agent').map((entry) => entry.params);
    expect(started.map((params) => params?.runId)).toEqual(runIds);
    const ended = app.logs.find('run ended', 'Agent').map((entry) => entry.params);
    expect(ended).toEqual(
      [calculated, quoted].map((frames) =>
        expect.objectContaining({
          runId: frames[0]?.data.runId,
          threadId: frames[0]?.data.threadId,
          status: 'completed',
          durationMs: expect.any(Number),
        }),
      ),
    );
  });

  it('log a run that crashed and a refused request with their codes, and never the message or the partial answer', async () => {
    const model = new ScriptedModel();
    app = await startTestApp({
      ready: true,
      env: { AGENT_MAX_RUNS_PER_USER: '1' },
      override: (builder) => builder.overrideProvider(LLM_PROVIDER).useValue(model),
    });
    const marker = distinctive('okapi');
    const token = signToken({ sub: 'alice' });
    const alice = app.connect({ token });
    await alice.waitFor('connection_established');

    alice.send('agent_request', { requestId: 'r1', message: `${marker} first` });
    const started = await alice.waitFor('agent_started', (data) => data.requestId === 'r1');
    alice.send('agent_request', { requestId: 'r2', message: `${marker} second` });
    expect((await alice.waitFor('agent_error', (data) => data.requestId === 'r2')).data.code).toBe('RATE_LIMITED');
    (await model.nextCall()).text(`${marker} partial answer `).fail(new TypeError('model adapter crashed'));
    const end = await alice.runEnd('r1');
    expect(end.data).toMatchObject({ code: 'INTERNAL_ERROR', correlationId: expect.any(String) });

    // The crash is logged with its stack under the correlation id the client got.
    expect(linesContaining(app, [String(end.data.correlationId)]).join('\n')).toContain('model adapter crashed');
    expect(linesContaining(app, [marker, ...secretsOf(token)])).toEqual([]);
    expect(app.logs.find('run refused', 'Agent').map((entry) => entry.params)).toEqual([
      { requestId: 'r2', errorCode: 'RATE_LIMITED' },
    ]);
    expect(app.logs.find('run ended', 'Agent').map((entry) => entry.params)).toEqual([
      {
        runId: started.data.runId,
        threadId: started.data.threadId,
        status: 'failed',
        errorCode: 'INTERNAL_ERROR',
        durationMs: expect.any(Number),
      },
    ]);
  });
});
