// Regenerates docs/screenshots/: the start screen, the create dialog and a busy room, on a
// desktop-sized (1280x800) and a phone-sized (390x844) window, plus the room in Chinese.
// Usage: ROOMCAST_BIN=build/browser/src/roomcast node tests/browser/screenshots.mjs [out-dir]
// The pictures show Chinese text and emoji: install fonts-noto-cjk and fonts-noto-color-emoji
// first, or they come out as empty boxes.
import { spawnSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WAIT, enterRoom, launchBrowser, openPage, say, startServer, waitForMembers } from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] ?? path.join(here, '..', '..', 'docs', 'screenshots'));

const sizes = {
  desktop: { width: 1280, height: 800 },
  phone: { width: 390, height: 844 },
};

async function shoot(page, name) {
  const file = path.join(out, `${name}.png`);
  // No blinking caret or pulsing dot in the pictures.
  await page.screenshot({ path: file, animations: 'disabled', caret: 'hide' });
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

/** A room with four people, notices and a conversation, seen by `viewer`. */
async function busyRoom(browser, server, viewer, roomId) {
  const others = [];
  const join = async (name) => {
    const page = await openPage(browser, server.url);
    await enterRoom(page, 'join', roomId, name);
    others.push(page);
    return page;
  };
  await enterRoom(viewer, 'create', roomId, 'Alice');
  const bob = await join('Bob');
  await say(bob, 'Morning! Is the standup still at 10?');
  await say(viewer, 'Yes, same link as yesterday.');
  const ming = await join('小明');
  await say(ming, '大家好！我可能晚到五分钟。');
  const dana = await join('Dana Kowalski');
  await say(dana, 'I pushed the fix for the reconnect bug. Could someone review it before the standup?');
  await say(viewer, 'On it 👀');
  const eve = await join('Eve');
  await eve.locator('#leave').click();
  await say(bob, 'Thanks Dana, that one was annoying.\nWorks on my phone now.');
  await say(ming, '👍 没问题');
  await viewer.locator('.msg-text', { hasText: '没问题' }).waitFor(WAIT);
  await waitForMembers(viewer, ['Alice', 'Bob', '小明', 'Dana Kowalski']);
  await viewer.locator('#message-input').fill('Looks good to me, merging after');
  return others;
}

for (const [lang, pkg] of [['zh', 'fonts-noto-cjk'], ['und-zsye', 'fonts-noto-color-emoji']]) {
  const fonts = spawnSync('fc-list', [`:lang=${lang}`, 'family'], { encoding: 'utf8' });
  if (!fonts.stdout?.trim()) console.warn(`warning: no font for :lang=${lang}; apt-get install ${pkg}`);
}

const server = await startServer();
const browser = await launchBrowser();
try {
  await mkdir(out, { recursive: true });
  let room = 2048;
  for (const [label, viewport] of Object.entries(sizes)) {
    const page = await openPage(browser, server.url, { viewport });
    await shoot(page, `${label}-start`);

    await page.locator('#open-create').click();
    await page.locator('#room-id').fill(String(room));
    await page.locator('#user-name').fill('Alice');
    await page.locator('#room-id').focus();
    await shoot(page, `${label}-dialog`);
    await page.keyboard.press('Escape');

    // The dialog with a server error: the room number is taken.
    const taken = await openPage(browser, server.url);
    await enterRoom(taken, 'create', String(room + 1), 'Zoe');
    await page.locator('#open-create').click();
    await page.locator('#room-id').fill(String(room + 1));
    await page.locator('#user-name').fill('Alice');
    await page.keyboard.press('Enter');
    await page.locator('#dialog-error[data-code="5001"]').waitFor(WAIT);
    await shoot(page, `${label}-dialog-error`);
    await page.keyboard.press('Escape');

    const others = await busyRoom(browser, server, page, String(room));
    await shoot(page, `${label}-room`);
    if (label === 'phone') {
      await page.locator('#members-toggle').click();
      await page.locator('#member-list').waitFor(WAIT);
      await shoot(page, 'phone-room-members');
    }
    for (const other of [...others, taken, page]) await other.context().close();
    room += 10;
  }

  // The room in Chinese, on a desktop.
  const zh = await openPage(browser, server.url, { locale: 'zh-CN', viewport: sizes.desktop });
  const others = await busyRoom(browser, server, zh, String(room));
  await shoot(zh, 'desktop-room-zh');
  for (const other of [...others, zh]) await other.context().close();
} finally {
  await browser.close();
  await server.stop();
}
