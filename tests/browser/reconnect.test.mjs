// The page when the server goes away: it says so, reconnects with backoff when the server is back
// on the same port, and puts its user back into the room (re-creating it after a restart): its
// resume is refused by the new server, so it joins again (resume.test.mjs: when resume works).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  WAIT,
  enterRoom,
  launchBrowser,
  noticeTexts,
  openPage,
  say,
  startServer,
  waitForMembers,
  waitForText,
  withScreenshots,
} from './support.mjs';

let browser;
const servers = [];
const pages = [];

async function serve(port = 0) {
  const server = await startServer({ port });
  servers.push(server);
  return server;
}

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  for (const page of pages.splice(0)) await page.context().close().catch(() => {});
  await browser?.close();
  for (const server of servers) await server.stop();
});

async function newPage(server, options) {
  const page = await openPage(browser, server.url, options);
  pages.push(page);
  return page;
}

describe('reconnecting', () => {
  it('survives a server restart: both people are back in the room and can chat', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const first = await serve();
      const alice = await newPage(first);
      const bob = await newPage(first);
      const idle = await newPage(first); // on the start screen, not in a room
      await enterRoom(alice, 'create', '2468', 'alice');
      await enterRoom(bob, 'join', '2468', 'bob');
      await say(alice, 'before the restart');
      await bob.locator('.msg-text', { hasText: 'before the restart' }).waitFor(WAIT);

      await first.kill();
      for (const page of [alice, bob, idle]) {
        await page.locator('#conn[data-state="waiting"], #conn[data-state="connecting"]').waitFor(WAIT);
        await waitForText(page, '#conn-text', 'Offline');
      }
      for (const page of [alice, bob]) {
        await waitForText(page, '#room-banner', 'Connection lost. Messages can’t be sent until it is back.');
        assert.equal(await page.locator('#send').isDisabled(), true);
        await waitForText(page, '.notice-text', 'Connection lost. Trying to reconnect…');
      }

      const second = await serve(first.port);
      assert.equal(second.url, first.url);
      for (const page of [alice, bob, idle]) {
        await page.locator('#conn[data-state="open"]').waitFor({ timeout: 15_000 });
      }
      for (const page of [alice, bob]) {
        // Whoever came back first created the room again, so the order is not known.
        await waitForMembers(page, ['alice', 'bob'], { anyOrder: true, timeout: 15_000 });
        await waitForText(page, '#member-count', '2 members');
        await page.locator('#room-banner').waitFor({ state: 'hidden', ...WAIT });
      }
      for (const page of [alice, bob]) {
        // The page first tried to resume its seat; the new server does not know the token (4010),
        // so it joined again, and says that messages may be missing.
        const requests = page.sentFrames.map((f) => JSON.parse(f).type).filter((type) => type !== 'message');
        assert.equal(requests[1], 'resume', JSON.stringify(requests));
        assert.ok(['join', 'create'].includes(requests[2]), JSON.stringify(requests));
        await waitForText(page, '.divider-missing', 'Some messages may be missing');
      }
      const back = [...(await noticeTexts(alice)), ...(await noticeTexts(bob))];
      assert.ok(
        back.some((n) => n.startsWith('Reconnected: the server had restarted, so room 2468 was created again.')),
        `one of them re-created the room: ${JSON.stringify(back)}`,
      );
      assert.ok(back.some((n) => n.startsWith('Reconnected')));
      assert.equal(await idle.locator('#start-screen').isVisible(), true);

      await say(bob, 'after the restart');
      await alice.locator('.msg-text', { hasText: 'after the restart' }).waitFor(WAIT);
      assert.deepEqual(await alice.locator('.msg-text').allTextContents(), ['before the restart', 'after the restart']);
    });
  });

  it('says clearly when it cannot get back in, and returns to the start screen', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const first = await serve();
      const alice = await newPage(first);
      await enterRoom(alice, 'create', '1357', 'alice');

      // While alice's browser is offline the server restarts and an impostor takes her name.
      await alice.context().setOffline(true);
      await first.kill();
      await waitForText(alice, '#conn-text', 'Offline');
      const second = await serve(first.port);
      const impostor = await newPage(second);
      await enterRoom(impostor, 'create', '1357', 'alice');
      await alice.context().setOffline(false);

      const notice = alice.locator('#start-notice');
      await notice.waitFor({ timeout: 15_000 });
      assert.equal(
        await notice.textContent(),
        'Could not get back into room 1357 as “alice”. The name “alice” is already used in room 1357. Please pick another name.',
      );
      assert.equal(await alice.locator('#room-screen').isHidden(), true);
      await waitForText(alice, '#conn-text', 'Connected');
      // The dialog is prefilled so that trying again is one step.
      await alice.locator('#open-join').click();
      assert.equal(await alice.inputValue('#room-id'), '1357');
      assert.equal(await alice.inputValue('#user-name'), 'alice');
    });
  });
});
