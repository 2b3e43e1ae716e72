import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';

/** Debian's Chromium (`apt-get install -y chromium`; `.ci/run` installs it when missing). */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_AVAILABLE = existsSync(CHROMIUM_PATH);
export const CHROMIUM_SKIP_REASON = `Chromium skipped: ${CHROMIUM_PATH} is missing; install it (apt-get install -y chromium) or set CHROMIUM_PATH=… to run these tests`;

/** Where a failing scenario leaves its screenshot. */
export const SCREENSHOT_DIR = fileURLToPath(new URL('../../test-output/browser/', import.meta.url));

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    // Root in CI: no sandbox. The rest keeps Chromium off a network it cannot reach.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
      '--disable-quic',
    ],
  });
}

/** Saves what the page shows now as `<name>.png` (the moments a scenario is about, for people to look at). */
export async function snapshot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: `${SCREENSHOT_DIR}${name}.png`, fullPage: true });
}

/** Runs a scenario; if it fails, saves what the page showed as `<name>.png` and fails the same way. */
export async function withScreenshot(page: Page, name: string, scenario: () => Promise<void>): Promise<void> {
  try {
    await scenario();
  } catch (error) {
    await mkdir(SCREENSHOT_DIR, { recursive: true });
    const path = `${SCREENSHOT_DIR}${name}-failed.png`;
    await page.screenshot({ path, fullPage: true }).catch(() => undefined);
    if (error instanceof Error) error.message += `\n(screenshot: ${path})`;
    throw error;
  }
}

/**
 * Records every connection state the page shows (`#connection-state`'s `data-state` and text), from
 * the first paint on: a state that lasts a few milliseconds is still seen.
 */
export async function recordConnectionStates(page: Page): Promise<void> {
  // Plain JavaScript: it runs in the page, which this project's TypeScript (no DOM types) does not describe.
  await page.addInitScript({
    content: `
      window.connectionStates = [];
      const normal = (text) => text.replace(/\\d+ s/u, 'N s');
      const watch = () => {
        const element = document.querySelector('#connection-state');
        const record = () => {
          const entry = { state: element.getAttribute('data-state') ?? '', text: element.textContent ?? '' };
          const last = window.connectionStates.at(-1);
          if (last === undefined || last.state !== entry.state || normal(last.text) !== normal(entry.text)) {
            window.connectionStates.push(entry);
          }
        };
        record();
        new MutationObserver(record).observe(element, { attributes: true, childList: true, characterData: true, subtree: true });
      };
      document.addEventListener('DOMContentLoaded', watch);
    `,
  });
}

export interface ShownState {
  readonly state: string;
  readonly text: string;
}

/** Every connection state the page showed so far, in order. */
export function connectionStates(page: Page): Promise<ShownState[]> {
  return page.evaluate<ShownState[]>('window.connectionStates');
}

/**
 * Records every text of the last element matching `selector`, each change in order, from the first
 * paint of every load of the page on (a reload starts a new list); read it with `recordedTexts`.
 */
export async function recordTexts(page: Page, selector: string): Promise<void> {
  await page.addInitScript({
    content: `(() => {
      window.recordedTexts = [];
      const record = () => {
        const all = document.querySelectorAll(${JSON.stringify(selector)});
        const text = all.length === 0 ? undefined : (all[all.length - 1].textContent ?? '');
        if (text !== undefined && window.recordedTexts.at(-1) !== text) window.recordedTexts.push(text);
      };
      document.addEventListener('DOMContentLoaded', () => {
        record();
        new MutationObserver(record).observe(document.body, { childList: true, characterData: true, subtree: true });
      });
    })();`,
  });
}

/** The texts `recordTexts` saw since the page was last loaded, in order. */
export function recordedTexts(page: Page): Promise<string[]> {
  return page.evaluate<string[]>('window.recordedTexts');
}

/**
 * What went wrong in the page that a scenario would not notice by itself: a resource that failed to
 * load (a missing favicon is only a console error, never a `response` event), an uncaught error or
 * promise rejection, anything its Content-Security-Policy blocked. The array fills as the page runs.
 */
export function recordPageProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = message.text();
    if (/Failed to load resource|Content Security Policy|^Uncaught/u.test(text)) {
      problems.push(`${text} (${message.location().url})`);
    }
  });
  return problems;
}
