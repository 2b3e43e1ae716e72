import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import {
  CHROMIUM_AVAILABLE,
  CHROMIUM_SKIP_REASON,
  connectionStates,
  launchChromium,
  recordConnectionStates,
  snapshot,
  withScreenshot,
} from '../support/browser.js';
import { ServerProcess } from '../support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../support/tokens.js';

/** What the embedded model answers to `message` (it echoes it). */
const echo = (message: string): string =>
  `You said: "${message}". I am the embedded local model, so I can only echo it back to you.`;

/**
 * The chat page in real headless Chromium, against a spawned `node dist/main.js`: what a person
 * sees while the service starts, restarts, and when their session expires.
 */
describe('the chat page in Chromium', () => {
  if (!CHROMIUM_AVAILABLE) {
    it.skip(CHROMIUM_SKIP_REASON, () => {});
    return;
  }

  let browser: Browser;
  let context: BrowserContext | undefined;
  const servers: ServerProcess[] = [];
  const dirs: string[] = [];

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
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });

  async function spawn(env: Record<string, string>, port?: number): Promise<ServerProcess> {
    const server = await ServerProcess.start({ JWT_SECRET: TEST_JWT_SECRET, ...env }, port);
    servers.push(server);
    await server.waitForLine((line) => line.includes('listening on'));
    return server;
  }

  async function openPage(): Promise<Page> {
    context = await browser.newContext();
    const page = await context.newPage();
    await recordConnectionStates(page);
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

      // Count the reply's text changes as it arrives: more than one means it streamed.
      await page.evaluate(`
        window.replyUpdates = 0;
        new MutationObserver(() => { window.replyUpdates += 1; })
          .observe(document.querySelector('#messages'), { childList: true, characterData: true, subtree: true });
      `);
      await send(page, 'Hello from Chromium');
      const reply = await finishedReply(page);
      expect(reply).toEqual({ text: echo('Hello from Chromium'), status: 'completed' });
      await snapshot(page, 'service-starting-2-replied');
      expect(await page.evaluate('window.replyUpdates')).toBeGreaterThan(10);
      await expect(page.locator('#thread-list button').first().textContent()).resolves.toBe('Hello from Chromium');
    });
  });

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
      first.child.kill('SIGTERM');
      await page.locator('#connection-state[data-state="reconnecting"]').waitFor();
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
      await expect(page.locator('#messages li .text').allTextContents()).resolves.toEqual([message, echo(message)]);
      // And it answers.
      await send(page, 'Are you back?');
      await expect(finishedReply(page)).resolves.toEqual({ text: echo('Are you back?'), status: 'completed' });
      await snapshot(page, 'restart-mid-reply-2-back');
    });
  });

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
    });
  });
});
