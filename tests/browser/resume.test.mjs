// Room history and resume (issue 13) as people meet them: a newcomer sees the recent messages,
// marked as earlier ones; a page whose connection drops gets back into its own seat and shows what
// it missed, exactly once and in order, while the others see nobody leave or join; when the gap
// is no longer in the history, or the seat has expired, a divider says messages may be missing.
//
// Bob's page goes through a TCP proxy that the test cuts (tcp-proxy.mjs says why Chromium's own
// offline switch cannot be used); alice's page talks to the server directly.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  WAIT,
  enterRoom,
  launchBrowser,
  messageTexts,
  noticeTexts,
  openPage,
  say,
  startServer,
  waitForMembers,
  waitForText,
  withScreenshots,
} from './support.mjs';
import { CuttableProxy } from './tcp-proxy.mjs';

// Back online, the page reconnects on its own backoff (0.3 s, 0.6 s, 1.2 s... while the proxy
// refused it): allow for a few steps of it.
const BACK = { timeout: 20_000 };

let browser;
const servers = [];
const proxies = [];
const pages = [];

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  for (const page of pages.splice(0)) await page.context().close().catch(() => {});
  await browser?.close();
  for (const proxy of proxies) await proxy.close();
  for (const server of servers) await server.stop();
});

async function serve(extraArgs = []) {
  const server = await startServer({ extraArgs });
  servers.push(server);
  return server;
}

async function proxyTo(server) {
  const proxy = await CuttableProxy.start(server.port);
  proxies.push(proxy);
  return proxy;
}

async function newPage(url) {
  const page = await openPage(browser, url);
  pages.push(page);
  return page;
}

/** The message list as the user reads it: "msg:text", "history:text", "notice:text", "divider:text". */
function listItems(page) {
  return page.$$eval('#message-list > li', (items) =>
    items.map((li) => {
      if (li.classList.contains('msg')) {
        const kind = li.classList.contains('msg-history') ? 'history' : 'msg';
        return `${kind}:${li.querySelector('.msg-text').textContent}`;
      }
      if (li.classList.contains('divider')) return `divider:${li.textContent}`;
      return `notice:${li.querySelector('.notice-text').textContent}`;
    }),
  );
}

/** Waits until the page shows at least `count` chat messages. */
function waitForMessages(page, count, options = WAIT) {
  return page.waitForFunction((n) => document.querySelectorAll('#message-list .msg').length >= n, count, options);
}

/** The frames the page sent, parsed, of one type. */
function sent(page, type) {
  return page.sentFrames.map((f) => JSON.parse(f)).filter((f) => f.type === type);
}

/** Cuts bob's connection and waits until his page knows. */
async function dropBob(proxy, bob, options) {
  proxy.cut(options);
  await bob.locator('#conn[data-state="waiting"], #conn[data-state="connecting"]').waitFor(WAIT);
  await waitForText(bob, '#room-banner', 'Connection lost. Messages can’t be sent until it is back.');
}

/** Lets bob's page back in and waits until it is in the room again. */
async function bringBobBack(proxy, bob) {
  proxy.online();
  await bob.locator('#conn[data-state="open"]').waitFor(BACK);
  await bob.locator('#room-banner').waitFor({ state: 'hidden', ...WAIT });
}

const MISSING = 'Some messages may be missing';

describe('history and resume', () => {
  it('a page that drops gets what it missed once, in order; the others see no leave or join', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const server = await serve();
      const proxy = await proxyTo(server);
      const alice = await newPage(server.url);
      const bob = await newPage(proxy.url);
      await enterRoom(alice, 'create', '2020', 'alice');
      await enterRoom(bob, 'join', '2020', 'bob');
      await waitForMembers(alice, ['alice', 'bob']);
      await say(alice, 'before the drop');
      await waitForMessages(bob, 1);

      await dropBob(proxy, bob);
      for (const text of ['missed one', 'missed two', 'missed three']) await say(alice, text);
      await waitForMessages(alice, 4);
      // The server keeps bob's seat while he is away.
      await waitForText(alice, '#member-count', '2 members');
      await waitForMembers(alice, ['alice', 'bob']);

      await bringBobBack(proxy, bob);
      await waitForMessages(bob, 4);
      await say(alice, 'after the drop');
      await waitForMessages(bob, 5);
      assert.deepEqual(await listItems(bob), [
        'notice:You joined room 2020.',
        'msg:before the drop',
        'notice:Connection lost. Trying to reconnect…',
        'msg:missed one',
        'msg:missed two',
        'msg:missed three',
        'notice:Reconnected: you are back in room 2020.',
        'msg:after the drop',
      ]);
      await waitForMembers(bob, ['alice', 'bob']);
      await waitForText(bob, '#member-count', '2 members');

      // On the wire: one resume with the join's token and the seq of the last event bob saw, and
      // no second join.
      const [join] = sent(bob, 'join');
      assert.deepEqual(join, { type: 'join', roomId: '2020', name: 'bob', history: true, resume: true });
      const got = bob.receivedFrames.map((f) => JSON.parse(f));
      const joined = got.find((f) => f.event === 'join' && f.members);
      assert.match(joined.token, /^[A-Za-z0-9_-]{32}$/);
      const lastSeen = got.find((f) => f.text === 'before the drop').seq;
      assert.deepEqual(sent(bob, 'resume'), [{ type: 'resume', token: joined.token, since: lastSeen, roomId: '2020' }]);
      assert.equal(sent(bob, 'join').length, 1);

      // bob is in his old seat: what he says reaches alice.
      await say(bob, 'back again');
      await alice.locator('.msg-text', { hasText: 'back again' }).waitFor(WAIT);

      // A second drop, this time one the server does not notice (its side of the connection
      // stays open): the resume uses the newer token and takes the seat over from the old socket.
      await dropBob(proxy, bob, { server: 'hold' });
      await say(alice, 'missed four');
      await waitForMessages(alice, 7);
      await bringBobBack(proxy, bob);
      await waitForMessages(bob, 7);
      assert.deepEqual(await messageTexts(bob), [
        'before the drop',
        'missed one',
        'missed two',
        'missed three',
        'after the drop',
        'back again',
        'missed four',
      ]);
      const resumes = sent(bob, 'resume');
      assert.equal(resumes.length, 2);
      assert.notEqual(resumes[1].token, resumes[0].token, 'a token is used once; the ack brings a new one');
      assert.equal(await bob.locator('.divider-missing').count(), 0, 'nothing was missing');

      // alice saw bob join once and never leave.
      const notices = await noticeTexts(alice);
      assert.deepEqual(notices.filter((n) => n.startsWith('bob')), ['bob joined the room']);
      await waitForMembers(alice, ['alice', 'bob']);
      assert.deepEqual(bob.errorsSeen, []);
      assert.deepEqual(alice.errorsSeen, []);
    });
  });

  it('a newcomer sees the recent messages, marked as earlier ones, then the live ones', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const server = await serve();
      const alice = await newPage(server.url);
      const bob = await newPage(server.url);
      const carol = await newPage(server.url);
      await enterRoom(alice, 'create', '3030', 'alice');
      await enterRoom(bob, 'join', '3030', 'bob');
      await say(alice, 'first');
      await say(bob, 'second');
      await waitForMessages(alice, 2);

      await enterRoom(carol, 'join', '3030', 'carol');
      await waitForMessages(carol, 2);
      await say(alice, 'live one');
      await waitForMessages(carol, 3);
      assert.deepEqual(await listItems(carol), [
        'divider:Earlier messages',
        'history:first',
        'history:second',
        'notice:You joined room 3030.',
        'msg:live one',
      ]);
      // The history keeps whose message it was.
      assert.deepEqual(await carol.locator('.msg-history .msg-author').allTextContents(), ['alice', 'bob']);
      // Those already there get nothing again.
      assert.deepEqual(await messageTexts(alice), ['first', 'second', 'live one']);
      assert.equal(await alice.locator('.msg-history').count(), 0);

      await carol.getByLabel('Language').selectOption('zh');
      await waitForText(carol, '.divider-history', '之前的消息');
    });
  });

  it('when the gap is no longer in the history, a divider says that messages may be missing', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const server = await serve(['--history', '2']);
      const proxy = await proxyTo(server);
      const alice = await newPage(server.url);
      const bob = await newPage(proxy.url);
      await enterRoom(alice, 'create', '4040', 'alice');
      await enterRoom(bob, 'join', '4040', 'bob');
      await say(alice, 'seen');
      await waitForMessages(bob, 1);

      await dropBob(proxy, bob);
      for (let i = 1; i <= 4; i++) await say(alice, `gone ${i}`);
      await waitForMessages(alice, 5);
      await bringBobBack(proxy, bob);
      await bob.locator('.divider-missing').waitFor(WAIT);
      await say(alice, 'after the gap');
      await waitForMessages(bob, 2);
      assert.deepEqual(await listItems(bob), [
        'notice:You joined room 4040.',
        'msg:seen',
        'notice:Connection lost. Trying to reconnect…',
        `divider:${MISSING}`,
        'notice:Reconnected: you are back in room 4040.',
        'msg:after the gap',
      ]);
      const ack = bob.receivedFrames.map((f) => JSON.parse(f)).find((f) => f.event === 'resume');
      assert.equal(ack.recovered, false);
      assert.equal(sent(bob, 'join').length, 1, 'the seat was resumed, not joined again');
      assert.deepEqual(
        (await noticeTexts(alice)).filter((n) => n.startsWith('bob')),
        ['bob joined the room'],
      );
      await bob.getByLabel('Language').selectOption('zh');
      await waitForText(bob, '.divider-missing', '部分消息可能缺失');
    });
  });

  it('when the seat has expired, the page joins again and says messages may be missing', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const server = await serve(['--resume-grace', '300']);
      const proxy = await proxyTo(server);
      const alice = await newPage(server.url);
      const bob = await newPage(proxy.url);
      await enterRoom(alice, 'create', '5050', 'alice');
      await enterRoom(bob, 'join', '5050', 'bob');
      await say(alice, 'seen');
      await waitForMessages(bob, 1);

      await dropBob(proxy, bob);
      await waitForText(alice, '.notice-text', 'bob disconnected'); // the grace is over
      await say(alice, 'while bob was gone');
      await waitForMessages(alice, 2);
      await bringBobBack(proxy, bob);
      await waitForMembers(alice, ['alice', 'bob']);
      await waitForMessages(bob, 2);
      // The resume is refused (4010); the page joins again as before resume existed. The history
      // that comes with the join has what bob missed; what he had seen is not shown twice.
      assert.deepEqual(await listItems(bob), [
        'notice:You joined room 5050.',
        'msg:seen',
        'notice:Connection lost. Trying to reconnect…',
        `divider:${MISSING}`,
        'history:while bob was gone',
        'notice:Reconnected: you are back in room 5050.',
      ]);
      const refused = bob.receivedFrames.map((f) => JSON.parse(f)).find((f) => f.event === 'error');
      assert.equal(refused.code, 4010);
      assert.equal(sent(bob, 'resume').length, 1);
      assert.equal(sent(bob, 'join').length, 2, 'after the refused resume, a second join');
      await say(bob, 'here again');
      await alice.locator('.msg-text', { hasText: 'here again' }).waitFor(WAIT);
    });
  });

  it('without a token (--history 0) the page joins again after a drop', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const server = await serve(['--history', '0']);
      const proxy = await proxyTo(server);
      const alice = await newPage(server.url);
      const bob = await newPage(proxy.url);
      await enterRoom(alice, 'create', '7070', 'alice');
      await enterRoom(bob, 'join', '7070', 'bob');
      const joined = bob.receivedFrames.map((f) => JSON.parse(f)).find((f) => f.event === 'join' && f.members);
      assert.equal(joined.token, undefined, 'no token without history');

      await dropBob(proxy, bob);
      await waitForText(alice, '.notice-text', 'bob disconnected'); // no seat is held
      await bringBobBack(proxy, bob);
      await waitForMembers(alice, ['alice', 'bob']);
      await waitForText(bob, '.divider-missing', MISSING);
      await waitForText(bob, '.notice-text', 'Reconnected: you are back in room 7070.');
      assert.equal(sent(bob, 'resume').length, 0);
      assert.equal(sent(bob, 'join').length, 2);
      await say(bob, 'joined again');
      await alice.locator('.msg-text', { hasText: 'joined again' }).waitFor(WAIT);
    });
  });

  it('a page whose seat was resumed elsewhere (close 4100) says so and does not reconnect', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const server = await serve();
      const alice = await newPage(server.url);
      const bob = await newPage(server.url);
      await enterRoom(alice, 'create', '6060', 'alice');
      await enterRoom(bob, 'join', '6060', 'bob');
      const joined = bob.receivedFrames.map((f) => JSON.parse(f)).find((f) => f.event === 'join' && f.members);

      // Another tab with bob's token (as a duplicated tab could have) resumes his seat.
      const other = await newPage(server.url);
      const ack = await other.evaluate(
        ({ token, since }) =>
          new Promise((resolve, reject) => {
            const ws = new WebSocket(new URL('ws', location.href).href.replace(/^http/, 'ws'));
            ws.onopen = () => ws.send(JSON.stringify({ type: 'resume', token, since, roomId: '6060' }));
            ws.onmessage = (event) => resolve(JSON.parse(event.data));
            ws.onerror = () => reject(new Error('the second WebSocket failed'));
          }),
        { token: joined.token, since: joined.seq },
      );
      assert.equal(ack.event, 'resume');
      assert.equal(ack.code, 200);

      await bob.locator('#conn[data-state="stopped"]').waitFor(WAIT);
      const replaced =
        'This chat went on in another tab or window, so this page stopped. Reload it to chat here again.';
      await waitForText(bob, '#room-banner', replaced);
      await waitForText(bob, '#conn-text', 'Not connected');
      assert.equal(await bob.locator('#conn-retry').isHidden(), true);
      assert.equal(await bob.locator('#send').isDisabled(), true);
      assert.equal(sent(bob, 'resume').length, 0, 'it did not try to take the seat back');
      // The seat itself went on: alice still sees bob, and no leave.
      await waitForMembers(alice, ['alice', 'bob']);
      assert.deepEqual((await noticeTexts(alice)).filter((n) => n.startsWith('bob')), ['bob joined the room']);
    });
  });
});
