// Shared pieces of the browser tests: the real roomcast server on an ephemeral port, Debian's
// chromium through playwright-core, and a few page helpers that wait (never sleep).
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { CHROMIUM, CHROMIUM_ARGS } from './chromium-options.mjs';
import { spawnRoomcast } from './roomcast-process.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS = path.join(here, 'artifacts');

export { CHROMIUM, CHROMIUM_ARGS };

/** How long a wait for something the page should show may take. */
export const WAIT = { timeout: 10_000 };

/**
 * Starts `roomcast --port PORT` (0: any free port) and resolves once it reports its port. The page
 * files come from the binary, or from disk when ROOMCAST_WEB_ROOT is set in the environment (the
 * server reads that variable itself).
 */
export async function startServer({ port = 0, extraArgs = [] } = {}) {
  const started = await spawnRoomcast(['--port', String(port), ...extraArgs]);
  return new ServerProcess(started.child, started.port, started.log);
}

// Servers still running when this process exits (a crash, a timeout) are killed by PID too.
const live = new Set();
process.once('exit', () => {
  for (const server of live) if (server.running) process.kill(server.pid, 'SIGKILL');
});

class ServerProcess {
  constructor(child, port, log) {
    live.add(this);
    child.once('exit', () => live.delete(this));
    this.child = child;
    this.pid = child.pid;
    this.port = port;
    this.url = `http://127.0.0.1:${port}/`;
    this.log = log;
    this.expectExit = false;
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    child.once('exit', (code, signal) => {
      if (this.expectExit) return;
      // Every test after this would fail for want of a server: say why, once, here.
      console.error(
        `roomcast (pid ${this.pid}, port ${port}) exited unexpectedly: code ${code}, signal ${signal}\n` +
          `--- last lines of its stderr ---\n${log.slice(-20).join('\n')}`,
      );
    });
  }

  get running() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Kills the process by its PID (SIGKILL: a crash, no goodbye to the clients). */
  async kill() {
    this.expectExit = true;
    if (this.running) process.kill(this.pid, 'SIGKILL');
    await this.exited;
  }

  /** SIGTERM, then SIGKILL if it has not exited after 3 s. */
  async stop() {
    this.expectExit = true;
    if (!this.running) return;
    process.kill(this.pid, 'SIGTERM');
    const timer = setTimeout(() => {
      if (this.running) process.kill(this.pid, 'SIGKILL');
    }, 3000);
    await this.exited;
    clearTimeout(timer);
  }
}

export async function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/**
 * A fresh browser context (its own storage, like another person) with one page open at `url`,
 * connected to the server. `locale` sets navigator.language; `contextOptions` go to
 * browser.newContext (e.g. ignoreHTTPSErrors for a self-signed certificate).
 */
export async function openPage(
  browser,
  url,
  { locale = 'en-US', viewport = { width: 1280, height: 800 }, contextOptions = {} } = {},
) {
  const context = await browser.newContext({ locale, viewport, ...contextOptions });
  const page = await context.newPage();
  // alert()/confirm() calls (none expected: the XSS test counts them) and uncaught exceptions.
  page.dialogsSeen = 0;
  page.on('dialog', (dialog) => {
    page.dialogsSeen++;
    dialog.dismiss().catch(() => {});
  });
  page.errorsSeen = [];
  page.on('pageerror', (error) => page.errorsSeen.push(String(error)));
  // Every frame the page sends and gets, for tests that check what went over the wire.
  page.sentFrames = [];
  page.receivedFrames = [];
  page.on('websocket', (ws) => {
    ws.on('framesent', (frame) => page.sentFrames.push(frame.payload));
    ws.on('framereceived', (frame) => page.receivedFrames.push(frame.payload));
  });
  await page.goto(url);
  await page.locator('#conn[data-state="open"]').waitFor(WAIT);
  return page;
}

/** Fills the create/join dialog with the keyboard only and submits it with Enter. */
export async function submitDialog(page, mode, roomId, name) {
  await page.locator(mode === 'create' ? '#open-create' : '#open-join').click();
  await page.locator('#room-dialog[open]').waitFor(WAIT);
  await page.locator('#room-id').fill(roomId);
  await page.keyboard.press('Tab');
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.insertText(name);
  await page.keyboard.press('Enter');
}

/** Creates or joins a room and waits for the room screen. */
export async function enterRoom(page, mode, roomId, name) {
  await submitDialog(page, mode, roomId, name);
  await page.locator('#room-title', { hasText: roomId }).waitFor(WAIT);
}

/** Types a message in the composer and presses Enter. */
export async function say(page, text) {
  await page.locator('#message-input').fill(text);
  await page.locator('#send:not([disabled])').waitFor(WAIT);
  await page.locator('#message-input').press('Enter');
}

/** Waits until the element has exactly this text (after trimming). */
export async function waitForText(page, selector, text, options = WAIT) {
  const exact = new RegExp(`^\\s*${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`);
  await page.locator(selector, { hasText: exact }).first().waitFor(options);
}

/** Waits until the member list shows exactly `names`, in order unless `anyOrder`. */
export async function waitForMembers(page, names, { anyOrder = false, timeout = WAIT.timeout } = {}) {
  await page.waitForFunction(
    ([expected, unordered]) => {
      const shown = [...document.querySelectorAll('#member-list .member-name')].map((el) => el.textContent);
      if (unordered) shown.sort();
      return JSON.stringify(shown) === JSON.stringify(expected);
    },
    [anyOrder ? [...names].sort() : names, anyOrder],
    { timeout },
  );
}

/** Texts of the chat messages on screen, oldest first. */
export function messageTexts(page) {
  return page.locator('#message-list .msg .msg-text').allTextContents();
}

/** Texts of the notices on screen, without their times. */
export function noticeTexts(page) {
  return page.locator('#message-list .notice .notice-text').allTextContents();
}

/**
 * Runs `body`; if it throws, saves a full-page screenshot of every page in `pages()` to
 * artifacts/ (named after the test) before rethrowing.
 */
export async function withScreenshots(t, pages, body) {
  try {
    await body();
  } catch (error) {
    await mkdir(ARTIFACTS, { recursive: true });
    const base = t.name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').slice(0, 80);
    let i = 0;
    for (const page of pages()) {
      i++;
      if (!page || page.isClosed()) continue;
      const file = path.join(ARTIFACTS, `${base}-${i}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
      console.error(`screenshot saved: ${path.relative(process.cwd(), file)}`);
    }
    throw error;
  }
}
