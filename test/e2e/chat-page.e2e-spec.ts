import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import {
  CHROMIUM_AVAILABLE,
  CHROMIUM_SKIP_REASON,
  connectionStates,
  launchChromium,
  recordConnectionStates,
  recordedTexts,
  recordPageProblems,
  recordTexts,
  snapshot,
  withScreenshot,
} from '../support/browser.js';
import {
  type FakeOpenAi,
  finishChunk,
  reasoningDelta,
  startFakeOpenAi,
  textDelta,
  toolCallDelta,
} from '../support/fake-openai-server.js';
import { ServerProcess } from '../support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../support/tokens.js';

/** What the embedded model answers to `message` (it echoes it). */
const echo = (message: string): string =>
  `You said: "${message}". I am the embedded local model, so I can only echo it back to you.`;

/** What the embedded model answers to a message with this arithmetic (after calling `calculator`). */
const CALCULATION = {
  message: 'what is 12 * (3 + 4)?',
  step: '⚙ calculator({"expression":"12 * (3 + 4)"}) → {"expression":"12 * (3 + 4)","result":84}',
  answer: '12 * (3 + 4) = 84.',
};

/** A phone's screen (an iPhone 12 to 15 in portrait). */
const PHONE = { width: 390, height: 844 };

/**
 * The chat page in real headless Chromium, against a spawned `node dist/bundle/main.mjs`: what a person
 * sees while the service starts, restarts, and when their session expires; a reload in the middle
 * of a reply, a phone's screen, signing out, and tool steps in history.
 */
describe('the chat page in Chromium', () => {
  if (!CHROMIUM_AVAILABLE) {
    it.skip(CHROMIUM_SKIP_REASON, () => {});
    return;
  }

  let browser: Browser;
  let context: BrowserContext | undefined;
  /** 404s (the favicon), uncaught errors and CSP refusals of the test's page: none, each test checks. */
  let problems: string[] = [];
  const servers: ServerProcess[] = [];
  const dirs: string[] = [];
  const fakes: FakeOpenAi[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser.close();
  });

  afterEach(async () => {
    await context?.close();
    context = undefined;
    await Promise.all(servers.splice(0).map((server) => server.stop()));
    await Promise.all(fakes.splice(0).map((fake) => fake.close()));
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });

  async function spawn(env: Record<string, string>, port?: number): Promise<ServerProcess> {
    const server = await ServerProcess.start({ JWT_SECRET: TEST_JWT_SECRET, ...env }, port);
    servers.push(server);
    await server.waitForLine((line) => line.includes('listening on'));
    return server;
  }

  async function openPage(viewport?: { width: number; height: number }): Promise<Page> {
    context = await browser.newContext(viewport === undefined ? {} : { viewport });
    const page = await context.newPage();
    problems = recordPageProblems(page);
    await recordConnectionStates(page);
    return page;
  }

  async function signedInPage(server: ServerProcess, name: string, viewport?: typeof PHONE): Promise<Page> {
    const page = await openPage(viewport);
    await page.goto(server.url);
    await signIn(page, name);
    await page.locator('#connection-state[data-state="open"]').waitFor();
    return page;
  }

  async function signIn(page: Page, name: string): Promise<void> {
    await page.getByLabel('Your name').fill(name);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  async function send(page: Page, message: string): Promise<void> {
    await page.getByLabel('Message').fill(message);
    await page.getByRole('button', { name: 'Send' }).click();
  }

  const messages = (page: Page): Promise<string[]> => page.locator('#messages li').allTextContents();
  const threadTitles = (page: Page): Promise<string[]> => page.locator('#thread-list button').allTextContents();

  /** The edges of the viewport `locator` crosses: none when it is all on screen. */
  async function offScreen(page: Page, locator: Locator): Promise<string[]> {
    const box = await locator.boundingBox();
    const viewport = page.viewportSize();
    if (box === null || viewport === null) return ['not shown'];
    return [
      ...(box.x < 0 ? ['left'] : []),
      ...(box.y < 0 ? ['top'] : []),
      ...(box.x + box.width > viewport.width ? ['right'] : []),
      ...(box.y + box.height > viewport.height ? ['bottom'] : []),
    ];
  }

  /** The last assistant reply once it has ended, with how it ended. */
  async function finishedReply(page: Page): Promise<{ text: string; status: string }> {
    const reply = page.locator('#messages li.message-assistant[data-status]').last();
    await reply.waitFor();
    return {
      text: (await reply.locator('.text').textContent()) ?? '',
      status: (await reply.getAttribute('data-status')) ?? '',
    };
  }

  it('opens during a 3 s model warm-up, says the service is starting, connects by itself once ready, and streams a reply', async () => {
    // The browser first, so that all of the warm-up is left for the page to see (Playwright's
    // first steps in a Jest worker take seconds).
    const page = await openPage();
    await page.setContent('<p>waiting for the server</p>');
    const server = await spawn({
      LOCAL_LLM_WARMUP_MS: '3000',
      LOCAL_LLM_TOKEN_DELAY_MS: '15',
      WS_READY_WAIT_MS: '100',
    });
    await withScreenshot(page, 'service-starting', async () => {
      await page.goto(server.url);
      await signIn(page, 'alice');
      await page.locator('#connection-state[data-state="reconnecting"]').waitFor();
      // Count the reply's text changes as it arrives: more than one means it streamed.
      await page.evaluate(`
        window.replyUpdates = 0;
        new MutationObserver(() => { window.replyUpdates += 1; })
          .observe(document.querySelector('#messages'), { childList: true, characterData: true, subtree: true });
      `);
      // Sent while the service is starting: the reply's bubble says what it is waiting for.
      await send(page, 'Hello from Chromium');
      await page
        .locator('#messages li.message-assistant.waiting .run-status')
        .filter({ hasText: /^waiting for the service to start…$/u })
        .waitFor();
      await snapshot(page, 'service-starting-1-waiting');
      await page.locator('#connection-state[data-state="open"]').waitFor({ timeout: 15_000 });
      expect((await fetch(`${server.url}/health/ready`)).status).toBe(200);

      const shown = await connectionStates(page);
      const states = shown.map((entry) => entry.state);
      // Held while the model loads, refused with 1013 when each 100 ms hold runs out (the page
      // connects about a second into the 3 s warm-up), told when it will try again, then connected.
      expect(states).toContain('waiting_for_service');
      expect(shown.find((entry) => entry.state === 'reconnecting')?.text).toMatch(
        /^Service starting — connecting in \d+ s…$/u,
      );
      expect(states.indexOf('waiting_for_service')).toBeLessThan(states.indexOf('open'));
      expect(shown.at(-1)).toEqual({ state: 'open', text: 'Connected as alice' });

      // Sent once the service is ready, it streams.
      const reply = await finishedReply(page);
      expect(reply).toEqual({ text: echo('Hello from Chromium'), status: 'completed' });
      await snapshot(page, 'service-starting-2-replied');
      expect(await page.evaluate('window.replyUpdates')).toBeGreaterThan(10);
      await expect(page.locator('#thread-list button').first().textContent()).resolves.toBe('Hello from Chromium');
      expect(problems).toEqual([]);
    });
  }, 60_000);

  it('survives a SIGTERM in the middle of a reply and a restart: shows the restart, reconnects, and the reply is whole', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agent-gateway-browser-'));
    dirs.push(dir);
    const env = {
      DATABASE_URL: `sqlite:${join(dir, 'chat.db')}`,
      LOCAL_LLM_TOKEN_DELAY_MS: '40',
      SHUTDOWN_DELAY_MS: '200',
      SHUTDOWN_TIMEOUT_MS: '10000',
    };
    const first = await spawn(env);
    await first.ready();
    const page = await openPage();
    await withScreenshot(page, 'restart-mid-reply', async () => {
      await page.goto(first.url);
      await signIn(page, 'bob');
      await page.locator('#connection-state[data-state="open"]').waitFor();

      const message = 'Please tell me a long story about a service that restarts while it is talking to me';
      await send(page, message);
      // A few words in: the orchestrator stops the instance.
      await page
        .locator('#messages li.message-assistant .text')
        .filter({ hasText: /^(?:\S+\s+){4}/u })
        .waitFor();
      // Recorded as it changes, not waited for on screen: the first retry comes after a random 0–500 ms
      // (full jitter), sooner than a locator may look again.
      await page.evaluate(`(() => {
        const status = document.querySelector('#connection-state');
        window.closeReasons = [];
        new MutationObserver(() => {
          if (status.dataset.reason !== undefined) window.closeReasons.push(status.dataset.reason);
        }).observe(status, { attributes: true, attributeFilter: ['data-reason'] });
      })()`);
      first.child.kill('SIGTERM');
      // The draining instance closes with 1012: the page says it is restarting, not that the connection was lost.
      // A function, not a string: waitForFunction evals a string, which the page's policy refuses.
      await page.waitForFunction(() => (globalThis as unknown as { closeReasons: string[] }).closeReasons.length > 0);
      expect(await page.evaluate('window.closeReasons[0]')).toBe('service_restarting');
      await snapshot(page, 'restart-mid-reply-1-reconnecting');
      expect((await first.exited).code).toBe(0);

      // Its replacement comes up on the same address and the same database.
      const second = await spawn(env, first.port);
      await second.ready();
      await page.locator('#connection-state[data-state="open"]').waitFor({ timeout: 15_000 });

      const reply = await finishedReply(page);
      expect(reply).toEqual({ text: echo(message), status: 'completed' });
      const shown = await connectionStates(page);
      const restart = shown.find((entry) => entry.state === 'reconnecting');
      expect(restart?.text).toMatch(/^Service restarting — connecting in \d+ s…$/u);
      expect(shown.at(-1)?.state).toBe('open');

      // The new instance has the whole conversation: open it from the thread list.
      await page.locator('#thread-list button').first().click();
      // The history arrives after the click: wait for both messages before reading them.
      await page.locator('#messages li .text').nth(1).waitFor();
      await expect(page.locator('#messages li .text').allTextContents()).resolves.toEqual([message, echo(message)]);
      // And it answers.
      await send(page, 'Are you back?');
      await expect(finishedReply(page)).resolves.toEqual({ text: echo('Are you back?'), status: 'completed' });
      await snapshot(page, 'restart-mid-reply-2-back');
      expect(problems).toEqual([]);
    });
  }, 60_000);

  it('asks for a new sign-in when the token has expired, instead of reconnecting in a loop', async () => {
    const server = await spawn({});
    await server.ready();
    const page = await openPage();
    const sockets: string[] = [];
    page.on('websocket', (socket) => sockets.push(socket.url()));
    const expired = signToken({ sub: 'carol', exp: Math.floor(Date.now() / 1000) - 60 });
    await page.addInitScript({
      content: `if (!sessionStorage.getItem('agent-gateway-token')) sessionStorage.setItem('agent-gateway-token', '${expired}');`,
    });
    await withScreenshot(page, 'expired-token', async () => {
      await page.goto(server.url);
      const notice = page.locator('#sign-in-message');
      await notice.waitFor();
      await expect(notice.textContent()).resolves.toBe('Your session expired. Sign in again to continue.');
      await page.locator('#connection-state[data-state="refreshing_token"]').waitFor();
      expect(await page.locator('#chat').isHidden()).toBe(true);
      expect(sockets).toHaveLength(1);
      await snapshot(page, 'expired-token-1-sign-in-again');
      const refused = await (await fetch(`${server.url}/metrics`)).text();
      expect(refused).toContain('agent_gateway_ws_connections_total{outcome="token_expired"} 1');

      await signIn(page, 'carol');
      await page.locator('#connection-state[data-state="open"]').waitFor();
      await expect(page.locator('#connection-state').textContent()).resolves.toBe('Connected as carol');
      await snapshot(page, 'expired-token-2-connected');
      expect(sockets).toHaveLength(2);
      expect(problems).toEqual([]);
    });
  });

  it('re-attaches after a reload in the middle of a reply: the reply continues where it was, every word once', async () => {
    const server = await spawn({ LOCAL_LLM_TOKEN_DELAY_MS: '50' });
    await server.ready();
    const page = await openPage();
    const replyText = '#messages li.message-assistant .text';
    await recordTexts(page, replyText);
    await withScreenshot(page, 'reload-mid-reply', async () => {
      await page.goto(server.url);
      await signIn(page, 'erin');
      await page.locator('#connection-state[data-state="open"]').waitFor();

      // About 55 words at 50 ms each: the reload lands early in a reply that streams for seconds.
      const message =
        'Please tell me a long story about a page that is reloaded while the service is still writing its reply, ' +
        'and about how the reply carries on from where it was without losing or repeating a single word';
      await send(page, message);
      await page
        .locator(replyText)
        .filter({ hasText: /^(?:\S+\s+){5}/u })
        .waitFor();
      const before = (await page.locator(replyText).textContent()) ?? '';
      await snapshot(page, 'reload-mid-reply-1-before');

      await page.reload();
      // Back by itself: signed in, the same thread, the reply past where it was and still streaming.
      const words = before.trim().split(/\s+/u).length;
      await page
        .locator(replyText)
        .filter({ hasText: new RegExp(`^(?:\\S+\\s+){${words + 1}}`, 'u') })
        .waitFor();
      await snapshot(page, 'reload-mid-reply-2-continuing');
      expect(await page.locator('#sign-out').isVisible()).toBe(true);

      const reply = await finishedReply(page);
      expect(reply).toEqual({ text: echo(message), status: 'completed' });
      expect(reply.text.startsWith(before)).toBe(true);
      // Every text the reply showed since the reload is the start of the final one: no word was
      // missing or repeated on the way (the replayed part, then the live one) …
      const shown = await recordedTexts(page);
      expect(shown.find((text) => !reply.text.startsWith(text))).toBeUndefined();
      // … and it was still growing after the reload, rather than appearing whole at the end.
      expect(shown.filter((text) => text.length >= before.length && text.length < reply.text.length)).not.toEqual([]);
      await expect(messages(page)).resolves.toEqual([message, echo(message)]);
      await expect(page.locator('#thread-list button[aria-current="true"]').count()).resolves.toBe(1);
      await snapshot(page, 'reload-mid-reply-3-whole');
      expect(problems).toEqual([]);
    });
  }, 60_000);

  it('fits a 390 px wide screen: the composer and Send on screen, the thread list behind a button', async () => {
    const server = await spawn({});
    await server.ready();
    const page = await signedInPage(server, 'heidi', PHONE);
    await withScreenshot(page, 'small-screen', async () => {
      const composer = [page.getByLabel('Message'), page.getByRole('button', { name: 'Send' })];
      const threadsButton = page.getByRole('button', { name: 'Threads' });
      for (const control of composer) await expect(offScreen(page, control)).resolves.toEqual([]);
      expect(await page.locator('#thread-list').isVisible()).toBe(false);
      expect(await threadsButton.getAttribute('aria-expanded')).toBe('false');

      const message =
        'Hello from a phone, with a message long enough to wrap over several lines of its bubble on a narrow screen';
      await send(page, message);
      await expect(finishedReply(page)).resolves.toEqual({ text: echo(message), status: 'completed' });
      for (const control of composer) await expect(offScreen(page, control)).resolves.toEqual([]);
      expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(PHONE.width);
      // The bubble is on the right; its lines are not each pushed to the right.
      expect(await page.evaluate("getComputedStyle(document.querySelector('.message-user .text')).textAlign")).toBe(
        'left',
      );
      await snapshot(page, 'small-screen-1-conversation');

      // The thread list opens in the conversation's place …
      await threadsButton.click();
      const thread = page.locator('#thread-list button', { hasText: message.slice(0, 40) });
      await thread.waitFor();
      expect(await threadsButton.getAttribute('aria-expanded')).toBe('true');
      expect(await page.getByLabel('Message').isVisible()).toBe(false);
      await snapshot(page, 'small-screen-2-thread-list');
      // … a new chat closes it …
      await page.getByRole('button', { name: 'New chat' }).click();
      await page.getByLabel('Message').waitFor();
      await expect(messages(page)).resolves.toEqual([]);
      // … and so does choosing a thread, which shows its history.
      await threadsButton.click();
      await thread.click();
      await page.locator('#messages li.message-assistant').waitFor();
      await expect(messages(page)).resolves.toEqual([message, echo(message)]);
      expect(await page.locator('#thread-list').isVisible()).toBe(false);
      for (const control of composer) await expect(offScreen(page, control)).resolves.toEqual([]);
      await snapshot(page, 'small-screen-3-thread-reopened');
      expect(problems).toEqual([]);
    });
  });

  it('shows Sign out after a reload; signing out leaves nothing of the user on the page', async () => {
    const server = await spawn({});
    await server.ready();
    const page = await signedInPage(server, 'ivan');
    await withScreenshot(page, 'sign-out-after-reload', async () => {
      await send(page, 'Hello before the reload');
      await finishedReply(page);
      await page.reload();
      await page.locator('#connection-state[data-state="open"]').waitFor();
      // The thread that was open is open again, and the way out is there.
      await page.locator('#messages li.message-assistant').waitFor();
      await expect(messages(page)).resolves.toEqual(['Hello before the reload', echo('Hello before the reload')]);
      const signOut = page.getByRole('button', { name: 'Sign out' });
      expect(await signOut.isVisible()).toBe(true);
      await snapshot(page, 'sign-out-after-reload-1-reloaded');

      await signOut.click();
      await page.getByLabel('Your name').waitFor();
      expect(await page.locator('#chat').isHidden()).toBe(true);
      expect(await signOut.isHidden()).toBe(true);
      expect(await page.evaluate('sessionStorage.length')).toBe(0);
      await snapshot(page, 'sign-out-after-reload-2-signed-out');

      // Someone else signs in on the same page: none of ivan's threads, and a new chat of their own.
      await signIn(page, 'judy');
      await page.locator('#connection-state[data-state="open"]').waitFor();
      await expect(messages(page)).resolves.toEqual([]);
      await send(page, 'Hello from judy');
      await expect(finishedReply(page)).resolves.toEqual({ text: echo('Hello from judy'), status: 'completed' });
      await page.locator('#thread-list button').first().waitFor();
      await expect(threadTitles(page)).resolves.toEqual(['Hello from judy']);
      expect(problems).toEqual([]);
    });
  });

  it('shows the tool steps of a reopened thread as the live view did, and titles each thread after its first message', async () => {
    const server = await spawn({});
    await server.ready();
    const page = await signedInPage(server, 'kim');
    await withScreenshot(page, 'tool-steps', async () => {
      await send(page, CALCULATION.message);
      await expect(finishedReply(page)).resolves.toEqual({ text: CALCULATION.answer, status: 'completed' });
      const live = await messages(page);
      expect(live).toEqual([CALCULATION.message, CALCULATION.step, CALCULATION.answer]);
      await snapshot(page, 'tool-steps-1-live');

      await page.getByRole('button', { name: 'New chat' }).click();
      await send(page, 'Hello in a second thread');
      await finishedReply(page);
      await page.locator('#thread-list button').nth(1).waitFor();
      await expect(threadTitles(page)).resolves.toEqual(['Hello in a second thread', CALCULATION.message]);

      await page.getByRole('button', { name: CALCULATION.message }).click();
      await page.locator('#messages li.tool').waitFor();
      await expect(messages(page)).resolves.toEqual(live);
      await expect(page.locator('#conversation-title').textContent()).resolves.toBe(CALCULATION.message);
      await snapshot(page, 'tool-steps-2-reopened');
      // And after a reload, which reopens it from the same history.
      await page.reload();
      await page.locator('#messages li.tool').waitFor();
      await expect(messages(page)).resolves.toEqual(live);
      expect(problems).toEqual([]);
    });
  });

  it('asks before a tool call with Approve / Reject: approved, the step runs; rejected, it is shown refused', async () => {
    const server = await spawn({ AGENT_APPROVAL_TOOLS: 'calculator' });
    await server.ready();
    const page = await signedInPage(server, 'lee');
    await withScreenshot(page, 'tool-approval', async () => {
      await send(page, CALCULATION.message);
      const request = page.locator('#messages li.approval');
      await request.waitFor();
      await expect(request.textContent()).resolves.toContain('calculator({"expression":"12 * (3 + 4)"})');
      await snapshot(page, 'tool-approval-1-asked');
      await request.getByRole('button', { name: 'Approve' }).click();
      await expect(finishedReply(page)).resolves.toEqual({ text: CALCULATION.answer, status: 'completed' });
      await expect(messages(page)).resolves.toEqual([CALCULATION.message, CALCULATION.step, CALCULATION.answer]);
      await expect(request.count()).resolves.toBe(0);

      await page.getByRole('button', { name: 'New chat' }).click();
      await send(page, CALCULATION.message);
      await request.waitFor();
      await request.getByRole('button', { name: 'Reject' }).click();
      await expect(finishedReply(page)).resolves.toMatchObject({ status: 'completed' });
      const refused = page.locator('#messages li.tool');
      await expect(refused.textContent()).resolves.toContain('failed: the user refused this call');
      await expect(request.count()).resolves.toBe(0);
      expect(problems).toEqual([]);
    });
  });
  it("shows a reasoning model's reasoning above the answer, muted and apart from it, and collapses it once the reply has ended", async () => {
    // A reasoning model behind an OpenAI-compatible server: it reasons, calls the calculator (which
    // waits for approval, so the page is looked at mid-run), then reasons again and answers.
    const fake = await startFakeOpenAi();
    fakes.push(fake);
    fake.script(
      {
        kind: 'stream',
        chunks: [
          reasoningDelta('The user wants a product; '),
          reasoningDelta('the calculator is exact.'),
          toolCallDelta({ index: 0, id: 'call_1', name: 'calculator', arguments: '{"expression":"6*7"}' }),
          finishChunk('tool_calls'),
        ],
      },
      {
        kind: 'stream',
        chunks: [
          reasoningDelta('It says 42; '),
          reasoningDelta('answer briefly.'),
          textDelta('6 × 7 = '),
          textDelta('42.'),
          finishChunk('stop'),
        ],
      },
    );
    const server = await spawn({
      LLM_PROVIDER: 'openai',
      LLM_BASE_URL: fake.url,
      LLM_MODEL: 'fake-model',
      AGENT_APPROVAL_TOOLS: 'calculator',
    });
    await server.ready();
    const page = await signedInPage(server, 'mia');
    const reasoning = page.locator('#messages li.reasoning');
    await withScreenshot(page, 'reasoning', async () => {
      await send(page, 'What is 6 times 7?');
      await page.locator('#messages li.approval').waitFor();
      // Mid-run: the first step's reasoning is open above the reply, which has no answer text yet.
      await expect(reasoning.locator('.reasoning-text').allTextContents()).resolves.toEqual([
        'The user wants a product; the calculator is exact.',
      ]);
      await expect(reasoning.locator('summary').textContent()).resolves.toBe('Reasoning');
      await expect(reasoning.locator('details').getAttribute('open')).resolves.toBe('');
      await expect(page.locator('#messages li.message-assistant .text').textContent()).resolves.toBe('');
      // Muted: the page's muted colour (--muted), as tool steps are.
      expect(await page.evaluate("getComputedStyle(document.querySelector('#messages li.reasoning')).color")).toBe(
        'rgb(107, 114, 128)',
      );
      await snapshot(page, 'reasoning-1-mid-run');

      await page.getByRole('button', { name: 'Approve' }).click();
      // The answer is the deltas alone; each step's reasoning stays, in order, collapsed.
      await expect(finishedReply(page)).resolves.toEqual({ text: '6 × 7 = 42.', status: 'completed' });
      expect(
        await page.evaluate("[...document.querySelectorAll('#messages > li')].map((item) => item.className)"),
      ).toEqual(['message-user', 'reasoning', 'tool', 'reasoning', 'message-assistant']);
      await expect(reasoning.locator('.reasoning-text').allTextContents()).resolves.toEqual([
        'The user wants a product; the calculator is exact.',
        'It says 42; answer briefly.',
      ]);
      await expect(reasoning.locator('details[open]').count()).resolves.toBe(0);
      expect(await reasoning.last().locator('.reasoning-text').isVisible()).toBe(false);
      await snapshot(page, 'reasoning-2-collapsed');
      // Collapsible, not gone: a click opens it again.
      await reasoning.last().locator('summary').click();
      expect(await reasoning.last().locator('.reasoning-text').isVisible()).toBe(true);
      await snapshot(page, 'reasoning-3-reopened');
      // What the model hears next is the answer alone: its reasoning was never sent back.
      expect(fake.requests).toHaveLength(2);
      expect(JSON.stringify((await fake.received(1)).body.messages)).not.toContain('calculator is exact');
      expect(problems).toEqual([]);
    });
  }, 60_000);
});
