import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { signToken } from '../support/tokens.js';
import type { ReceivedFrame, TestClient } from '../support/ws-client.js';

interface WireMessage {
  id: string;
  threadId: string;
  role: 'user' | 'assistant';
  content: string;
  runId?: string;
  createdAt: string;
}

interface WireThread {
  id: string;
  title: string;
  createdAt: string;
  updatedAt: string;
}

interface HttpReply {
  readonly status: number;
  readonly body: any;
  readonly headers: Headers;
}

/** One run as the client saw it: the thread, both committed messages. */
interface Exchange {
  readonly threadId: string;
  readonly runId: string;
  readonly user: WireMessage;
  readonly assistant: WireMessage;
}

let requestCounter = 0;
const nextRequestId = (prefix: string): string => `${prefix}-${++requestCounter}`;

async function runAgent(client: TestClient, message: string, threadId?: string): Promise<Exchange> {
  const requestId = nextRequestId('run');
  client.send('agent_request', { requestId, message, ...(threadId === undefined ? {} : { threadId }) });
  const end = await client.runEnd(requestId);
  expect(end.event).toBe('agent_completed');
  const started = await client.waitFor('agent_started', (data) => data.requestId === requestId);
  return {
    threadId: started.data.threadId as string,
    runId: started.data.runId as string,
    user: started.data.userMessage as WireMessage,
    assistant: end.data.message as WireMessage,
  };
}

/** Sends a read request and resolves with its answer: the `result` event, or an `error` frame. */
async function ask(client: TestClient, event: string, data: Record<string, unknown>): Promise<ReceivedFrame> {
  const requestId = nextRequestId(event);
  client.send(event, { requestId, ...data });
  const reply = await client.waitFor([`${event}_result`, 'error'], (frame) => frame.requestId === requestId);
  expect(reply.data.requestId).toBe(requestId);
  return reply;
}

async function listOverWs(client: TestClient, data: Record<string, unknown> = {}) {
  const reply = await ask(client, 'thread_list', data);
  expect(reply.event).toBe('thread_list_result');
  return reply.data as unknown as { threads: WireThread[]; nextCursor?: string };
}

async function historyOverWs(client: TestClient, data: Record<string, unknown>) {
  const reply = await ask(client, 'thread_history', data);
  expect(reply.event).toBe('thread_history_result');
  return reply.data as unknown as { threadId: string; messages: WireMessage[]; nextBefore?: string };
}

async function get(app: TestApp, path: string, token?: string): Promise<HttpReply> {
  const response = await fetch(new URL(path, app.url), {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  return { status: response.status, body: await response.json(), headers: response.headers };
}

/** An HTTP error answer: the status, the shared error shape, and never cacheable. */
function expectHttpError(reply: HttpReply, status: number, code: string): void {
  expect({ status: reply.status, code: reply.body.code }).toEqual({ status, code });
  expect(typeof reply.body.message).toBe('string');
  expect(typeof reply.body.retryable).toBe('boolean');
  expect(reply.headers.get('cache-control')).toBe('no-store');
}

function expectIsoTimestamp(value: string): void {
  expect(new Date(value).toISOString()).toBe(value);
}

/** Walks `thread_history` pages back to the oldest; returns the pages, newest page first. */
async function historyPagesOverWs(client: TestClient, threadId: string, limit: number): Promise<WireMessage[][]> {
  const pages: WireMessage[][] = [];
  let before: string | undefined;
  do {
    const page = await historyOverWs(client, { threadId, limit, ...(before === undefined ? {} : { before }) });
    expect(page.threadId).toBe(threadId);
    pages.push(page.messages);
    before = page.nextBefore;
  } while (before !== undefined && pages.length < 20);
  return pages;
}

async function historyPagesOverHttp(
  app: TestApp,
  token: string,
  threadId: string,
  limit: number,
): Promise<WireMessage[][]> {
  const pages: WireMessage[][] = [];
  let before: string | undefined;
  do {
    const query = new URLSearchParams({ limit: String(limit), ...(before === undefined ? {} : { before }) });
    const reply = await get(app, `/threads/${threadId}/messages?${query.toString()}`, token);
    expect(reply.status).toBe(200);
    expect(reply.body.threadId).toBe(threadId);
    pages.push(reply.body.messages);
    before = reply.body.nextBefore;
  } while (before !== undefined && pages.length < 20);
  return pages;
}

describe('thread reads over WebSocket and HTTP', () => {
  let app: TestApp;

  /** A user of its own per test, so one test's threads never show up in another's lists. */
  async function connectAs(sub: string): Promise<{ client: TestClient; token: string }> {
    const token = signToken({ sub });
    const client = app.connect({ token });
    await client.waitFor('connection_established');
    return { client, token };
  }

  beforeAll(async () => {
    // A token delay makes each run span at least a millisecond, so "most recently active" never ties.
    app = await startTestApp({ ready: true, env: { LOCAL_LLM_TOKEN_DELAY_MS: '1' } });
  });

  afterAll(async () => {
    await app.close();
  });

  describe('thread_list and GET /threads', () => {
    it('lists the threads most recently active first, titled after their first message, paged by cursor without repeats', async () => {
      const { client, token } = await connectAs('lister');
      const a = await runAgent(client, 'thread A');
      const b = await runAgent(client, 'thread B');
      const c = await runAgent(client, 'thread C');
      const again = await runAgent(client, 'back to A', a.threadId);
      expect(again.threadId).toBe(a.threadId);
      const expected = [a.threadId, c.threadId, b.threadId];

      const all = await listOverWs(client);
      expect(all.threads.map((thread) => thread.id)).toEqual(expected);
      expect(all.nextCursor).toBeUndefined();
      expect(all.threads.map((thread) => thread.title)).toEqual(['thread A', 'thread C', 'thread B']);
      for (const thread of all.threads) {
        expectIsoTimestamp(thread.createdAt);
        expectIsoTimestamp(thread.updatedAt);
      }
      const threadA = all.threads[0];
      expect(threadA?.updatedAt).toBe(again.assistant.createdAt);
      expect(Date.parse(threadA?.updatedAt ?? '')).toBeGreaterThan(Date.parse(threadA?.createdAt ?? ''));

      const first = await listOverWs(client, { limit: 2 });
      expect(first.threads.map((thread) => thread.id)).toEqual(expected.slice(0, 2));
      expect(typeof first.nextCursor).toBe('string');
      const second = await listOverWs(client, { limit: 2, cursor: first.nextCursor });
      expect(second.threads.map((thread) => thread.id)).toEqual(expected.slice(2));
      expect(second).not.toHaveProperty('nextCursor');
      const paged = [...first.threads, ...second.threads].map((thread) => thread.id);
      expect(new Set(paged).size).toBe(paged.length);
      // A page that ends exactly at the last thread is the last page: no cursor to an empty one.
      const exact = await listOverWs(client, { limit: 3 });
      expect(exact.threads.map((thread) => thread.id)).toEqual(expected);
      expect(exact).not.toHaveProperty('nextCursor');

      const httpFirst = await get(app, '/threads?limit=2', token);
      expect(httpFirst.status).toBe(200);
      expect(httpFirst.headers.get('content-type')).toContain('application/json');
      expect(httpFirst.body).not.toHaveProperty('requestId');
      expect(httpFirst.body).toEqual({ threads: first.threads, nextCursor: expect.any(String) });
      const httpSecond = await get(
        app,
        `/threads?limit=2&cursor=${encodeURIComponent(httpFirst.body.nextCursor)}`,
        token,
      );
      expect(httpSecond.status).toBe(200);
      expect(httpSecond.body).toEqual({ threads: second.threads });
    });
  });

  describe('thread_history and GET /threads/:threadId/messages', () => {
    it('returns the messages oldest first, user and assistant alternating, each complete', async () => {
      const { client, token } = await connectAs('historian');
      const first = await runAgent(client, 'first question');
      const second = await runAgent(client, 'second question', first.threadId);
      const third = await runAgent(client, 'third question', first.threadId);
      const exchanges = [first, second, third];
      const expected = exchanges.flatMap((exchange) => [exchange.user, exchange.assistant]);

      const history = await historyOverWs(client, { threadId: first.threadId });
      expect(history).not.toHaveProperty('nextBefore');
      expect(history.messages.map((message) => message.role)).toEqual([
        'user',
        'assistant',
        'user',
        'assistant',
        'user',
        'assistant',
      ]);
      expect(history.messages.filter((message) => message.role === 'user').map((message) => message.content)).toEqual([
        'first question',
        'second question',
        'third question',
      ]);
      history.messages.forEach((message, index) => {
        const exchange = exchanges[Math.floor(index / 2)];
        expect(Object.keys(message).sort()).toEqual(['content', 'createdAt', 'id', 'role', 'runId', 'threadId']);
        expect(message.threadId).toBe(first.threadId);
        expect(message.runId).toBe(exchange?.runId);
        expectIsoTimestamp(message.createdAt);
      });
      expect(history.messages).toEqual(expected);
      const times = history.messages.map((message) => Date.parse(message.createdAt));
      expect(times).toEqual([...times].sort((x, y) => x - y));

      const overHttp = await get(app, `/threads/${first.threadId}/messages`, token);
      expect(overHttp.status).toBe(200);
      expect(overHttp.body).toEqual({ threadId: first.threadId, messages: expected });
    });

    it('pages backwards with before = nextBefore until the oldest page, and the pages add up to the whole history', async () => {
      const { client, token } = await connectAs('pager');
      const first = await runAgent(client, 'one');
      await runAgent(client, 'two', first.threadId);
      await runAgent(client, 'three', first.threadId);
      const whole = (await historyOverWs(client, { threadId: first.threadId })).messages;
      expect(whole).toHaveLength(6);

      const pages = await historyPagesOverWs(client, first.threadId, 2);
      expect(pages.map((page) => page.length)).toEqual([2, 2, 2]);
      expect([...pages].reverse().flat()).toEqual(whole);
      // The newest page comes first, and its nextBefore is the oldest message it holds.
      expect(pages[0]).toEqual(whole.slice(4));

      const uneven = await historyPagesOverWs(client, first.threadId, 4);
      expect(uneven.map((page) => page.length)).toEqual([4, 2]);
      expect([...uneven].reverse().flat()).toEqual(whole);

      const httpPages = await historyPagesOverHttp(app, token, first.threadId, 2);
      expect(httpPages).toEqual(pages);
    });
  });

  describe('ownership', () => {
    it("answers THREAD_NOT_FOUND for another user's thread exactly as for a thread that does not exist", async () => {
      const alice = await connectAs('alice-owns');
      const bob = await connectAs('bob-pries');
      const { threadId } = await runAgent(alice.client, 'my secret');
      const missing = randomUUID();
      const withoutId = (message: unknown, id: string): string => String(message).replace(id, '<id>');

      const stolen = await ask(bob.client, 'thread_history', { threadId });
      const ghost = await ask(bob.client, 'thread_history', { threadId: missing });
      expect(stolen.event).toBe('error');
      expect(ghost.event).toBe('error');
      const { requestId: _stolenId, ...stolenError } = stolen.data;
      const { requestId: _ghostId, ...ghostError } = ghost.data;
      expect(stolenError).toEqual({
        code: 'THREAD_NOT_FOUND',
        message: `thread ${threadId} not found`,
        retryable: false,
      });
      expect(ghostError).toEqual({ ...stolenError, message: `thread ${missing} not found` });
      expect(withoutId(stolenError.message, threadId)).toBe(withoutId(ghostError.message, missing));

      const stolenHttp = await get(app, `/threads/${threadId}/messages`, bob.token);
      const ghostHttp = await get(app, `/threads/${missing}/messages`, bob.token);
      expectHttpError(stolenHttp, 404, 'THREAD_NOT_FOUND');
      expectHttpError(ghostHttp, 404, 'THREAD_NOT_FOUND');
      expect(stolenHttp.body).toEqual(stolenError);
      expect(ghostHttp.body).toEqual(ghostError);

      // The thread is there all along: only its owner can read it.
      expect((await historyOverWs(alice.client, { threadId })).messages).toHaveLength(2);
    });

    it("never lists another user's threads", async () => {
      const alice = await connectAs('alice-lists');
      const bob = await connectAs('bob-lists');
      const alices = await runAgent(alice.client, 'alice only');
      const bobs = await runAgent(bob.client, 'bob only');

      const overWs = await listOverWs(bob.client);
      expect(overWs.threads.map((thread) => thread.id)).toEqual([bobs.threadId]);
      const overHttp = await get(app, '/threads', bob.token);
      expect(overHttp.status).toBe(200);
      expect((overHttp.body as { threads: WireThread[] }).threads.map((thread) => thread.id)).toEqual([bobs.threadId]);
      expect((await listOverWs(alice.client)).threads.map((thread) => thread.id)).toEqual([alices.threadId]);
    });
  });

  describe('bad input', () => {
    let client: TestClient;
    let token: string;
    let threadId: string;

    beforeAll(async () => {
      ({ client, token } = await connectAs('careless'));
      ({ threadId } = await runAgent(client, 'something to read'));
    });

    async function wsValidationField(event: string, data: Record<string, unknown>): Promise<unknown> {
      const reply = await ask(client, event, data);
      expect(reply.event).toBe('error');
      expect(reply.data).toMatchObject({ code: 'VALIDATION_FAILED', retryable: false });
      expect(String(reply.data.message)).toMatch(new RegExp(`^${String(reply.data.field)}: `, 'u'));
      return reply.data.field;
    }

    async function httpValidationField(path: string): Promise<unknown> {
      const reply = await get(app, path, token);
      expectHttpError(reply, 400, 'VALIDATION_FAILED');
      expect(reply.body.retryable).toBe(false);
      return reply.body.field;
    }

    it('refuses a malformed threadId with VALIDATION_FAILED naming threadId, before any lookup', async () => {
      expect(await wsValidationField('thread_history', { threadId: 'not-a-uuid' })).toBe('threadId');
      expect(await httpValidationField('/threads/not-a-uuid/messages')).toBe('threadId');
    });

    it.each([0, 1000, 'x'])('refuses limit %p with VALIDATION_FAILED naming limit', async (limit) => {
      expect(await wsValidationField('thread_list', { limit })).toBe('limit');
      expect(await wsValidationField('thread_history', { threadId, limit })).toBe('limit');
      const query = `limit=${encodeURIComponent(String(limit))}`;
      expect(await httpValidationField(`/threads?${query}`)).toBe('limit');
      expect(await httpValidationField(`/threads/${threadId}/messages?${query}`)).toBe('limit');
    });

    it('refuses a cursor the server did not issue with VALIDATION_FAILED naming cursor', async () => {
      const forged = Buffer.from('not a cursor').toString('base64url');
      expect(await wsValidationField('thread_list', { cursor: forged })).toBe('cursor');
      expect(await wsValidationField('thread_list', { cursor: 'x'.repeat(500) })).toBe('cursor');
      expect(await httpValidationField(`/threads?cursor=${forged}`)).toBe('cursor');
    });

    it('refuses a malformed before with VALIDATION_FAILED naming before', async () => {
      expect(await wsValidationField('thread_history', { threadId, before: 'yesterday' })).toBe('before');
      expect(await httpValidationField(`/threads/${threadId}/messages?before=yesterday`)).toBe('before');
    });

    it('keeps the connection usable after refusing bad input', async () => {
      await wsValidationField('thread_list', { limit: 0 });
      const page = await listOverWs(client);
      expect(page.threads.map((thread) => thread.id)).toEqual([threadId]);
    });
  });

  describe('HTTP authentication', () => {
    it('answers 401 UNAUTHORIZED without a token, 401 TOKEN_EXPIRED for an expired one, and 401 for a wrong signature', async () => {
      const threadPath = `/threads/${randomUUID()}/messages`;
      for (const path of ['/threads', threadPath]) {
        const missing = await get(app, path);
        expectHttpError(missing, 401, 'UNAUTHORIZED');

        const expired = await get(app, path, signToken({ sub: 'alice', exp: Math.floor(Date.now() / 1000) - 60 }));
        expectHttpError(expired, 401, 'TOKEN_EXPIRED');

        const forged = await get(app, path, signToken({ sub: 'alice' }, { secret: 'some-other-secret-0123456789' }));
        expectHttpError(forged, 401, 'UNAUTHORIZED');

        // `?token=` exists for browser WebSockets only; on HTTP the token would end up in logs.
        const inUrl = await get(app, `${path}?token=${signToken({ sub: 'alice' })}`);
        expectHttpError(inUrl, 401, 'UNAUTHORIZED');
      }
    });
  });

  describe('error responses', () => {
    it('marks every error response Cache-Control: no-store', async () => {
      const { token } = await connectAs('cache-checker');
      const errors = await Promise.all([
        get(app, '/threads'),
        get(app, '/threads?limit=0', token),
        get(app, `/threads/${randomUUID()}/messages`, token),
        get(app, '/threads/not-a-uuid/messages', token),
      ]);
      expect(errors.map((reply) => reply.status)).toEqual([401, 400, 404, 400]);
      expect((await get(app, '/threads?limit=0x10', token)).status).toBe(400);
      for (const reply of errors) expect(reply.headers.get('cache-control')).toBe('no-store');
    });
  });
});

describe('HTTP thread reads before readiness', () => {
  let app: TestApp | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('answers 503 SERVICE_NOT_READY with Retry-After while the thread store starts, then 200 once it is ready', async () => {
    app = await startTestApp({ gated: ['threads'] });
    await app.gates.reached('threads');
    const token = signToken({ sub: 'early-bird' });

    const early = await get(app, '/threads', token);
    expectHttpError(early, 503, 'SERVICE_NOT_READY');
    expect(early.body.retryable).toBe(true);
    expect(early.body.missing).toEqual(expect.arrayContaining(['threads']));
    expect(Number(early.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(early.headers.get('retry-after'))).toBe(Math.ceil(early.body.retryAfterMs / 1000));

    app.gates.release('threads');
    await app.readiness.whenReady(5_000);
    const ready = await get(app, '/threads', token);
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ threads: [] });
  });
});
