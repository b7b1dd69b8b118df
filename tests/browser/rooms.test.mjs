// The chat page against the real server: start screen, dialog, rooms, messages, errors.
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
  submitDialog,
  waitForMembers,
  waitForText,
  withScreenshots,
} from './support.mjs';

let server;
let browser;
const pages = [];

async function newPage(options) {
  const page = await openPage(browser, server.url, options);
  pages.push(page);
  return page;
}

async function closeAll() {
  for (const page of pages.splice(0)) await page.context().close().catch(() => {});
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await closeAll();
  await browser?.close();
  await server?.stop();
});

describe('start screen and dialog', () => {
  it('opens a labelled dialog with focus in the room field; Escape cancels', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const page = await newPage();
      assert.equal(await page.title(), 'roomcast');
      assert.equal(await page.getAttribute('html', 'lang'), 'en');
      await page.getByRole('button', { name: 'Create room' }).click();
      const dialog = page.getByRole('dialog', { name: 'Create a room' });
      await dialog.waitFor(WAIT);
      assert.equal(await page.evaluate(() => document.activeElement.id), 'room-id');
      // Every field has a label.
      await page.getByLabel('Room number').fill('12');
      await page.getByLabel('Your name').fill('someone');
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'hidden', ...WAIT });
      // Keyboard only: Tab to "Join room", Enter opens the join dialog, input was kept.
      await page.locator('#open-create').focus();
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'open-join');
      await page.keyboard.press('Enter');
      await page.getByRole('dialog', { name: 'Join a room' }).waitFor(WAIT);
      assert.equal(await page.evaluate(() => document.activeElement.id), 'room-id');
      assert.equal(await page.inputValue('#room-id'), '12');
      await page.getByRole('button', { name: 'Cancel' }).click();
      await page.locator('#room-dialog').waitFor({ state: 'hidden', ...WAIT });
    });
  });

  it('validates the room number and name before sending anything', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const page = await newPage();
      const sent = page.sentFrames;
      await page.locator('#open-create').click();
      await page.keyboard.press('Enter'); // empty form
      await waitForText(page, '#room-id-error', 'Enter a room number.');
      await waitForText(page, '#user-name-error', 'Enter your name.');
      assert.equal(await page.getAttribute('#room-id', 'aria-invalid'), 'true');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'room-id');

      await page.locator('#room-id').fill('12345');
      assert.equal(await page.inputValue('#room-id'), '1234', 'the field takes at most 4 characters');
      for (const bad of ['123', '12a4', 'abcd', ' 1 2', '１２３']) {
        await page.locator('#room-id').fill(bad);
        await page.locator('#room-id').press('Enter');
        await waitForText(page, '#room-id-error', 'The room number must be exactly 4 digits (0–9).');
      }
      await page.locator('#room-id').fill('4242');
      await page.locator('#user-name').fill('   ');
      await page.locator('#user-name').press('Enter');
      await waitForText(page, '#user-name-error', 'Enter your name.');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'user-name');
      await page.locator('#user-name').fill('x'.repeat(33));
      await page.locator('#user-name').press('Enter');
      await waitForText(page, '#user-name-error', 'The name can be at most 32 characters.');
      assert.equal(await page.locator('#room-id-error').textContent(), '');
      assert.deepEqual(sent, [], 'nothing is sent while the form is invalid');

      // 32 characters is fine, and surrounding spaces are trimmed.
      const name = 'n'.repeat(32);
      await page.locator('#user-name').fill(`  ${name}  `);
      await page.locator('#user-name').press('Enter');
      await page.locator('#room-title', { hasText: 'Room 4242' }).waitFor(WAIT);
      // It asks for the room's history and for a resume token (tests/browser/resume.test.mjs).
      assert.deepEqual(JSON.parse(sent[0]), { type: 'create', roomId: '4242', name, history: true, resume: true });
    });
  });
});

describe('a room with several people', () => {
  it('create, join, chat both ways, live members and counts, leave', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const alice = await newPage();
      const bob = await newPage();
      const carol = await newPage();

      await enterRoom(alice, 'create', '1234', 'alice');
      await waitForText(alice, '#member-count', '1 member');
      await waitForMembers(alice, ['alice']);
      assert.deepEqual(await noticeTexts(alice), ['You created room 1234. Share the number so others can join.']);
      assert.equal(await alice.evaluate(() => document.activeElement.id), 'message-input');

      await enterRoom(bob, 'join', '1234', 'bob');
      for (const page of [alice, bob]) {
        await waitForText(page, '#member-count', '2 members');
        await waitForMembers(page, ['alice', 'bob']);
      }
      await waitForText(alice, '.notice-text', 'bob joined the room');
      assert.equal(await alice.locator('.member-self .member-name').textContent(), 'alice');
      assert.equal(await bob.locator('.member-self .member-name').textContent(), 'bob');

      // A message from alice: on her side as her own, on bob's as someone else's.
      await say(alice, 'hello bob');
      for (const page of [alice, bob]) await waitForText(page, '.msg-text', 'hello bob');
      assert.equal(await alice.locator('.msg-own .msg-text').last().textContent(), 'hello bob');
      assert.equal(await bob.locator('.msg-other .msg-text').last().textContent(), 'hello bob');
      assert.equal(await bob.locator('.msg-other .msg-author').last().textContent(), 'alice');
      assert.match(await bob.locator('.msg-other .msg-time').last().textContent(), /^\d{1,2}:\d{2}/);
      assert.ok(await alice.locator('#message-input').inputValue() === '', 'the box is cleared after sending');

      // Shift+Enter is a new line; Enter sends.
      const box = bob.locator('#message-input');
      await box.click();
      await bob.keyboard.type('line one');
      await bob.keyboard.press('Shift+Enter');
      await bob.keyboard.type('line two');
      await bob.keyboard.press('Enter');
      await alice.locator('.msg-other .msg-text', { hasText: 'line two' }).waitFor(WAIT);
      assert.equal(await alice.locator('.msg-other .msg-text').last().textContent(), 'line one\nline two');

      // Empty and white-space-only messages are not sent.
      await alice.locator('#message-input').fill('   \n  ');
      assert.equal(await alice.locator('#send').isDisabled(), true);
      await alice.locator('#message-input').press('Enter');
      await say(alice, 'after the blank one');
      await bob.locator('.msg-text', { hasText: 'after the blank one' }).waitFor(WAIT);
      assert.deepEqual(await bob.locator('.msg-text').allTextContents(), [
        'hello bob',
        'line one\nline two',
        'after the blank one',
      ]);

      // A third person; then they close their tab.
      await enterRoom(carol, 'join', '1234', 'carol');
      for (const page of [alice, bob, carol]) {
        await waitForText(page, '#member-count', '3 members');
        await waitForMembers(page, ['alice', 'bob', 'carol']);
      }
      // A newcomer sees the recent messages as history (resume.test.mjs has more of it).
      await carol.locator('.msg-history .msg-text', { hasText: 'after the blank one' }).waitFor(WAIT);
      assert.deepEqual(await carol.locator('.msg-history .msg-text').allTextContents(), [
        'hello bob',
        'line one\nline two',
        'after the blank one',
      ]);
      // Closing the tab says goodbye (pagehide): the server would otherwise keep her seat for a
      // resume for --resume-grace and show her as "disconnected" only then.
      await carol.context().close();
      await waitForText(alice, '.notice-text', 'carol left the room');
      await waitForMembers(alice, ['alice', 'bob']);
      await waitForText(alice, '#member-count', '2 members');

      // bob leaves with the button and is back on the start screen.
      await bob.getByRole('button', { name: 'Leave' }).click();
      await bob.locator('#start-screen').waitFor(WAIT);
      assert.equal(await bob.locator('#room-screen').isHidden(), true);
      await waitForText(alice, '.notice-text', 'bob left the room');
      await waitForMembers(alice, ['alice']);
      await waitForText(alice, '#member-count', '1 member');

      // ...and can come back on the same connection.
      await enterRoom(bob, 'join', '1234', 'bob');
      await waitForMembers(alice, ['alice', 'bob']);
      // The old room is cleared: what is on screen again is the room's history, marked as such.
      await bob.locator('.msg-history .msg-text', { hasText: 'after the blank one' }).waitFor(WAIT);
      assert.deepEqual(await messageTexts(bob), ['hello bob', 'line one\nline two', 'after the blank one']);
      assert.equal(await bob.locator('.msg:not(.msg-history)').count(), 0, 'no live message from before');
      assert.deepEqual(bob.errorsSeen, []);
      assert.deepEqual(alice.errorsSeen, []);
    });
  });

  it('shows the server errors 5001, 5004 and 5002 next to the dialog and keeps the input', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const owner = await newPage();
      const other = await newPage();
      await enterRoom(owner, 'create', '5555', 'alice');

      const cases = [
        ['create', '5555', 'zed', '5001', 'Room 5555 already exists. Join it instead, or pick another number.'],
        ['join', '5556', 'zed', '5004', 'Room 5556 does not exist. Check the number, or create the room.'],
        ['join', '5555', 'alice', '5002', 'The name “alice” is already used in room 5555. Please pick another name.'],
      ];
      for (const [mode, room, name, code, text] of cases) {
        await submitDialog(other, mode, room, name);
        const error = other.locator(`#dialog-error[data-code="${code}"]`);
        await error.waitFor(WAIT);
        assert.equal(await error.textContent(), text);
        assert.equal(await error.getAttribute('role'), 'alert');
        assert.equal(await other.locator('#room-dialog').isVisible(), true, 'the dialog stays open');
        assert.equal(await other.locator('#room-screen').isHidden(), true);
        assert.equal(await other.inputValue('#room-id'), room);
        assert.equal(await other.inputValue('#user-name'), name);
        assert.equal(await other.locator('#dialog-submit').isEnabled(), true);
        await other.keyboard.press('Escape');
        await other.locator('#room-dialog').waitFor({ state: 'hidden', ...WAIT });
      }
      // Fixing the name gets in.
      await submitDialog(other, 'join', '5555', 'alice');
      await other.locator('#dialog-error[data-code="5002"]').waitFor(WAIT);
      await other.locator('#user-name').fill('alice2');
      await other.locator('#user-name').press('Enter');
      await other.locator('#room-title', { hasText: '5555' }).waitFor(WAIT);
      await waitForMembers(owner, ['alice', 'alice2']);
    });
  });

  it('shows user text as text, never as HTML', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const alice = await newPage();
      const mallory = await newPage();
      await enterRoom(alice, 'create', '6666', 'alice');
      const evilName = '<b id="x">mallory</b>';
      await enterRoom(mallory, 'join', '6666', evilName);
      const evil = '<img src=x onerror=alert(1)>';
      await say(mallory, evil);
      await alice.locator('.msg-text', { hasText: evil }).waitFor(WAIT);
      assert.equal(await alice.locator('.msg-other .msg-text').last().textContent(), evil);
      assert.equal(await alice.locator('.msg-other .msg-author').last().textContent(), evilName);
      await waitForMembers(alice, ['alice', evilName]);
      await waitForText(alice, '.notice-text', `${evilName} joined the room`);
      for (const page of [alice, mallory]) {
        assert.equal(await page.locator('#main img, #main b#x').count(), 0, 'no element was created');
        assert.equal(page.dialogsSeen, 0, 'no script ran');
      }
    });
  });

  it('limits a message to 100 characters (code points) with a visible counter', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const alice = await newPage();
      const bob = await newPage();
      await enterRoom(alice, 'create', '7070', 'alice');
      await enterRoom(bob, 'join', '7070', 'bob');
      const box = alice.locator('#message-input');
      await waitForText(alice, '#char-counter', '0/100');
      await box.fill('abc');
      await waitForText(alice, '#char-counter', '3/100');
      await box.fill('y'.repeat(150));
      assert.equal((await box.inputValue()).length, 100);
      await waitForText(alice, '#char-counter', '100/100');
      assert.equal(await alice.locator('#char-counter').getAttribute('data-level'), 'full');
      // Typing more at the limit changes nothing.
      await box.press('End');
      await alice.keyboard.type('zz');
      assert.equal(await box.inputValue(), 'y'.repeat(100));
      await box.press('Enter');
      await bob.locator('.msg-text', { hasText: 'y'.repeat(100) }).waitFor(WAIT);
      assert.equal((await bob.locator('.msg-text').last().textContent()).length, 100);

      // The server counts code points, and so does the page: 100 emoji (200 UTF-16 units) fit.
      await box.fill('😀'.repeat(120));
      await waitForText(alice, '#char-counter', '100/100');
      await box.press('Enter');
      await bob.locator('.msg-text', { hasText: '😀'.repeat(100) }).waitFor(WAIT);
      assert.equal(Array.from(await bob.locator('.msg-text').last().textContent()).length, 100);
      assert.equal(await alice.locator('#composer-error').isHidden(), true, 'the server accepted both');
    });
  });

  it('keeps the newest message in view unless the user scrolled up', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const alice = await newPage({ viewport: { width: 900, height: 600 } });
      const bob = await newPage();
      await enterRoom(alice, 'create', '8080', 'alice');
      await enterRoom(bob, 'join', '8080', 'bob');
      const atBottom = () =>
        alice.evaluate(() => {
          const m = document.getElementById('messages');
          return m.scrollHeight - m.scrollTop - m.clientHeight < 2;
        });
      for (let i = 1; i <= 15; i++) await say(bob, `message ${i}`);
      await alice.locator('.msg-text', { hasText: /^message 15$/ }).waitFor(WAIT);
      assert.equal(await alice.evaluate(() => {
        const m = document.getElementById('messages');
        return m.scrollHeight > m.clientHeight;
      }), true, 'the list overflows');
      assert.equal(await atBottom(), true);

      await alice.evaluate(() => {
        document.getElementById('messages').scrollTop = 0;
      });
      await say(bob, 'while you were reading');
      await alice.locator('.msg-text', { hasText: 'while you were reading' }).waitFor({ state: 'attached', ...WAIT });
      await alice.getByRole('button', { name: /New messages/ }).waitFor(WAIT);
      assert.equal(await alice.evaluate(() => document.getElementById('messages').scrollTop), 0);
      await alice.getByRole('button', { name: /New messages/ }).click();
      assert.equal(await atBottom(), true);
      await alice.locator('#jump-latest').waitFor({ state: 'hidden', ...WAIT });
    });
  });
});

describe('languages and small screens', () => {
  it('follows a Chinese browser, and the switch changes the language', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const page = await newPage({ locale: 'zh-CN' });
      assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
      await page.getByRole('button', { name: '创建房间' }).waitFor(WAIT);
      await submitDialog(page, 'join', '9998', '小明');
      await waitForText(page, '#dialog-error', '房间 9998 不存在。请检查房间号，或创建这个房间。');
      await page.keyboard.press('Escape');
      await page.getByLabel('语言').selectOption('en');
      await page.getByRole('button', { name: 'Create room' }).waitFor(WAIT);
      assert.equal(await page.getAttribute('html', 'lang'), 'en');
      await waitForText(page, '#conn-text', 'Connected');
      // The choice is remembered over a reload.
      await page.reload();
      await page.getByRole('button', { name: 'Create room' }).waitFor(WAIT);
      await enterRoom(page, 'create', '9998', '小明');
      await page.getByLabel('Language').selectOption('zh');
      await waitForText(page, '#room-title', '房间 9998');
      await waitForText(page, '.notice-text', '你创建了房间 9998，把房间号分享给朋友吧。');
      await waitForText(page, '#member-count', '1 位成员');
    });
  });

  it('works on a phone-sized screen: members behind a toggle, composer in view', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const phone = await newPage({ viewport: { width: 390, height: 844 } });
      const friend = await newPage();
      await enterRoom(phone, 'create', '3900', 'pat');
      await enterRoom(friend, 'join', '3900', 'sam');
      await waitForText(phone, '#members-toggle-count', '2');
      assert.equal(await phone.locator('#member-list').isVisible(), false);
      const toggle = phone.getByRole('button', { name: /Members/ });
      assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
      await toggle.click();
      await phone.locator('#member-list').waitFor(WAIT);
      assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
      await waitForMembers(phone, ['pat', 'sam']);
      await toggle.click();
      await phone.locator('#member-list').waitFor({ state: 'hidden', ...WAIT });
      await say(friend, 'hi from a big screen');
      await phone.locator('.msg-text', { hasText: 'hi from a big screen' }).waitFor(WAIT);
      const fits = await phone.evaluate(() => {
        const inView = (el) => {
          const r = el.getBoundingClientRect();
          return r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0 && r.right <= window.innerWidth;
        };
        return {
          input: inView(document.getElementById('message-input')),
          send: inView(document.getElementById('send')),
          leave: inView(document.getElementById('leave')),
          noSideScroll: document.documentElement.scrollWidth <= window.innerWidth,
        };
      });
      assert.deepEqual(fits, { input: true, send: true, leave: true, noSideScroll: true });
    });
  });
});

describe('client rules (web/protocol.js, in the browser)', () => {
  it('match the server: room numbers, names, code points, the WebSocket URL', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const page = await newPage();
      const results = await page.evaluate(async () => {
        const p = await import('/protocol.js');
        return {
          rooms: ['1234', '0042', '１２３４', ' 9999 ', '123', '12345', '12a4', ''].map((r) => p.checkRoomId(r)),
          names: ['bob', '\u3000 bob\u00a0', 'a'.repeat(32), 'a'.repeat(33), '😀'.repeat(32), 'a\u0007b', ' '].map(
            (n) => p.checkName(n),
          ),
          clampTyped: p.clampCodePoints(`${'x'.repeat(99)}AB`, 101),
          clampMiddle: p.clampCodePoints(`${'x'.repeat(50)}ABC${'y'.repeat(49)}`, 53),
          clampEmoji: p.clampCodePoints('😀'.repeat(101), 202),
          sendable: ['hi', ' \n\t\u3000', '\u2003'].map((s) => p.isSendable(s)),
          urls: [
            p.chatUrl(new URL('http://127.0.0.1:3000/')),
            p.chatUrl(new URL('https://chat.example/')),
            p.chatUrl(new URL('https://example.org/roomcast/?x=1#y')),
          ],
        };
      });
      assert.deepEqual(
        results.rooms.map((r) => (r.ok ? r.value : r.error)),
        ['1234', '0042', '1234', '9999', 'room_format', 'room_format', 'room_format', 'room_required'],
      );
      assert.deepEqual(
        results.names.map((r) => (r.ok ? r.value : r.error)),
        ['bob', 'bob', 'a'.repeat(32), 'name_too_long', '😀'.repeat(32), 'name_control', 'name_required'],
      );
      assert.deepEqual(results.clampTyped, { value: `${'x'.repeat(99)}A`, caret: 100 });
      assert.deepEqual(results.clampMiddle, { value: `${'x'.repeat(50)}A${'y'.repeat(49)}`, caret: 51 });
      assert.deepEqual(results.clampEmoji, { value: '😀'.repeat(100), caret: 200 });
      assert.deepEqual(results.sendable, [true, false, true]);
      assert.deepEqual(results.urls, [
        'ws://127.0.0.1:3000/ws',
        'wss://chat.example/ws',
        'wss://example.org/roomcast/ws',
      ]);
    });
  });
});
