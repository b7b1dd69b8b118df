// The seed article's own Vue client (extracted and built by extract.mjs into build/dist/, never
// committed), unmodified, in Debian's chromium against the real roomcast binary.
//
// The client hard-codes `new WebSocket('ws://localhost:3000')`. roomcast runs on an ephemeral
// port instead, so every page routes that URL with page.routeWebSocket() to a bridge here in
// Node that opens a real WebSocket to roomcast and relays every frame and close, both ways,
// unchanged. (playwright-core's WebSocketRoute.connectToServer() takes no URL: it always
// connects to the page's own URL, so it cannot point the client at another port.)
// The bridge also records the frames, which the test checks and dumps on failure.
import { CHROMIUM, CHROMIUM_ARGS } from '../browser/chromium-options.mjs';
import { spawnRoomcast } from '../browser/roomcast-process.mjs';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.join(here, 'build', 'dist');
const ARTIFACTS = path.join(here, 'artifacts');
const SEED_WS_URL = 'ws://localhost:3000/'; // what `new WebSocket('ws://localhost:3000')` reports
const WAIT = { timeout: 10_000 };

// roomcast's English texts (src/protocol.cpp); the seed's own server sent Chinese ones.
const TEXT = {
  noSuchRoom: 'That room does not exist.',
  nameTaken: 'That name is already used in this room.',
  roomExists: 'That room number already exists.',
};

// ---------------------------------------------------------------------------------------------
// roomcast and the static file server

const startRoomcast = () => spawnRoomcast(['--port', '0']);

async function stopRoomcast(server) {
  if (!server || server.child.exitCode !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  process.kill(server.child.pid, 'SIGTERM');
  const timer = setTimeout(() => process.kill(server.child.pid, 'SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

function startStatic() {
  const server = http.createServer(async (req, res) => {
    const pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = path.join(DIST, pathname === '/' ? 'index.html' : pathname);
    if (!file.startsWith(DIST + path.sep) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    res.end(await readFile(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// ---------------------------------------------------------------------------------------------
// One user = one browser context with the seed UI and a bridged WebSocket

/** Relays the page's routed WebSocket to roomcast; `frames` gets {dir: 'out'|'in', data}. */
async function bridge(route, upstreamUrl, frames) {
  const upstream = new WebSocket(upstreamUrl);
  try {
    await new Promise((resolve, reject) => {
      upstream.once('open', resolve);
      upstream.once('error', reject);
    });
  } catch (error) {
    frames.push({ dir: 'error', data: String(error) });
    await route.close({ code: 1011, reason: 'bridge could not reach roomcast' });
    return;
  }
  let pageClosed = false;
  route.onMessage((message) => {
    frames.push({ dir: 'out', data: String(message) });
    upstream.send(message);
  });
  route.onClose((code, reason) => {
    pageClosed = true;
    frames.push({ dir: 'page-close', data: code ?? null });
    if (code === undefined) upstream.close();
    else upstream.close(code, reason);
  });
  upstream.on('message', (data, isBinary) => {
    const message = isBinary ? data : data.toString('utf8');
    frames.push({ dir: 'in', data: String(message) });
    route.send(message);
  });
  upstream.on('close', (code, reason) => {
    frames.push({ dir: 'server-close', data: code });
    if (pageClosed) return;
    if (code === 1005 || code === 1006) route.close();
    else route.close({ code, reason: reason.toString('utf8') });
  });
}

const json = (frame) => JSON.parse(frame.data);
const sent = (user) => user.frames.filter((f) => f.dir === 'out').map(json);
const received = (user) => user.frames.filter((f) => f.dir === 'in').map(json);

async function newUser(browser, name, pageUrl, roomcastPort) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  const page = await context.newPage();
  const user = { name, context, page, frames: [], console: [] };
  page.on('console', (msg) => user.console.push(`${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (error) => user.console.push(`pageerror: ${error.message}`));
  await page.routeWebSocket(SEED_WS_URL, (route) => bridge(route, `ws://127.0.0.1:${roomcastPort}/`, user.frames));
  await page.goto(pageUrl);
  await startScreen(user);
  return user;
}

/** The seed's CreateChat screen: its two buttons, no room header. */
async function startScreen(user) {
  await user.page.getByRole('button', { name: '创建房间' }).waitFor(WAIT);
  await user.page.getByRole('button', { name: '加入房间' }).waitFor(WAIT);
  assert.equal(await user.page.getByText('房间号：').count(), 0, `${user.name} should not be in a room`);
}

/** Clicks 创建房间 or 加入房间, fills the seed's dialog and presses its OK button. */
async function enter(user, action, roomId, name) {
  const { page } = user;
  await page.getByRole('button', { name: action === 'create' ? '创建房间' : '加入房间' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor(WAIT);
  await dialog.getByPlaceholder('请输入4位数字房间号').fill(roomId);
  await dialog.getByPlaceholder('请输入姓名').fill(name);
  await dialog.getByRole('button', { name: 'OK' }).click();
}

async function inRoom(user, roomId, users) {
  await user.page.getByText(`房间号：${roomId}`, { exact: true }).waitFor(WAIT);
  await user.page.getByText(`当前房间人数：${users}`, { exact: true }).waitFor(WAIT);
}

async function count(user) {
  return (await user.page.getByText('当前房间人数：').textContent()).trim();
}

async function sees(user, text) {
  await user.page.locator('.message .msg').filter({ hasText: text }).first().waitFor(WAIT);
}

async function say(user, text) {
  await user.page.getByPlaceholder('输入消息...').fill(text);
  await user.page.getByText('发送', { exact: true }).click();
}

/** The seed shows a failed create/join with ant-design's message.error(msg.text). */
async function showsError(user, text) {
  await user.page.locator('.ant-message-notice').filter({ hasText: text }).waitFor(WAIT);
}

// ---------------------------------------------------------------------------------------------

describe('the seed article client, unmodified, against roomcast', () => {
  let roomcast;
  let staticServer;
  let browser;
  let pageUrl;
  const users = {};
  let failed = false;

  before(async () => {
    assert.ok(existsSync(path.join(DIST, 'index.html')), 'build/dist is missing: run run.sh (it extracts and builds the seed client)');
    [roomcast, staticServer, browser] = await Promise.all([
      startRoomcast(),
      startStatic(),
      chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS }),
    ]);
    pageUrl = `http://127.0.0.1:${staticServer.address().port}/`;
    for (const name of ['alice', 'bob']) users[name] = await newUser(browser, name, pageUrl, roomcast.port);
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await new Promise((resolve) => (staticServer ? staticServer.close(resolve) : resolve()));
    await stopRoomcast(roomcast);
    if (failed && roomcast) {
      await mkdir(ARTIFACTS, { recursive: true });
      await writeFile(path.join(ARTIFACTS, 'roomcast.log'), `${roomcast.log.join('\n')}\n`);
    }
  });

  /** A step of the scenario: skipped after an earlier failure; on failure saves screenshots. */
  function step(title, fn) {
    it(title, async (t) => {
      if (failed) {
        t.skip('an earlier step failed');
        return;
      }
      try {
        await fn();
      } catch (error) {
        failed = true;
        await mkdir(ARTIFACTS, { recursive: true });
        const slug = title.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase();
        for (const user of Object.values(users)) {
          await user.page.screenshot({ path: path.join(ARTIFACTS, `${slug}--${user.name}.png` ) }).catch(() => {});
          const dump = { frames: user.frames, console: user.console };
          await writeFile(path.join(ARTIFACTS, `${slug}--${user.name}.json`), JSON.stringify(dump, null, 2)).catch(() => {});
        }
        throw error;
      }
    });
  }

  step('alice creates room 1234', async () => {
    const { alice } = users;
    await enter(alice, 'create', '1234', 'alice');
    await inRoom(alice, 1234, 1);
    await sees(alice, 'alice created the room');
    // The seed's first frame: its whole state, the roomId a number (input type="number").
    const [first] = sent(alice);
    assert.deepEqual({ ...first, id: typeof first.id }, { name: 'alice', roomId: 1234, type: 'create', text: '', id: 'number' });
  });

  step('bob joins room 1234: both count 2', async () => {
    const { alice, bob } = users;
    await enter(bob, 'join', '1234', 'bob');
    await inRoom(bob, 1234, 2);
    await alice.page.getByText('当前房间人数：2', { exact: true }).waitFor(WAIT);
    await sees(alice, 'bob joined the room');
    await sees(bob, 'bob joined the room');
  });

  step('bob sends a message with 发送: both see it', async () => {
    const { alice, bob } = users;
    await say(bob, '你好 alice!');
    await sees(alice, '你好 alice!');
    await sees(bob, '你好 alice!');
    // The click event became `type`: JSON.stringify(MouseEvent) keeps its own properties,
    // isTrusted and the `_vts` timestamp Vue's event handler sets on it: an object, so chat.
    const chat = sent(bob).at(-1);
    assert.deepEqual(Object.keys(chat.type).sort(), ['_vts', 'isTrusted']);
    assert.equal(chat.type.isTrusted, true);
    assert.equal(chat.text, '你好 alice!');
    // Rendered with the sender's name and the server's time (id).
    const item = alice.page.locator('.message .item').filter({ hasText: '你好 alice!' });
    await item.getByText('bob', { exact: true }).waitFor(WAIT);
    assert.match(await item.locator('.time').textContent(), /\d{1,2}:\d{2}:\d{2}/);
  });

  step('carol joins the missing room 9999: error shown, back to the start screen', async () => {
    const carol = (users.carol = await newUser(browser, 'carol', pageUrl, roomcast.port));
    await enter(carol, 'join', '9999', 'carol');
    await showsError(carol, TEXT.noSuchRoom);
    await startScreen(carol);
    assert.deepEqual(
      received(carol).map(({ code, roomId, name }) => ({ code, roomId, name })),
      [{ code: 5004, roomId: 9999, name: 'carol' }],
    );
  });

  step('dave joins 1234 as alice: name-taken error shown, back to the start screen', async () => {
    const dave = (users.dave = await newUser(browser, 'dave', pageUrl, roomcast.port));
    await enter(dave, 'join', '1234', 'alice');
    await showsError(dave, TEXT.nameTaken);
    await startScreen(dave);
    assert.deepEqual(received(dave).map((m) => m.code), [5002]);
  });

  step('eve creates 1234: room-exists error shown, back to the start screen', async () => {
    const eve = (users.eve = await newUser(browser, 'eve', pageUrl, roomcast.port));
    await enter(eve, 'create', '1234', 'eve');
    await showsError(eve, TEXT.roomExists);
    await startScreen(eve);
    assert.deepEqual(received(eve).map((m) => m.code), [5001]);
  });

  step('an empty message from alice does not eject her', async () => {
    const { alice, bob } = users;
    await say(alice, '');
    assert.equal(sent(alice).at(-1).text, '');
    // A later message is the barrier: frames arrive in order, so once it is shown the error
    // answer to the empty one has been handled by the client.
    await say(alice, 'still here');
    await sees(alice, 'still here');
    await sees(bob, 'still here');
    await inRoom(alice, 1234, 2);
    assert.equal(await count(alice), '当前房间人数：2');
    // roomcast answered the empty text with 4005 without roomId/name, so the seed kept the room;
    // the errors of carol, dave and eve were sent to them only.
    const errors = received(alice).filter((m) => m.code !== 200);
    assert.deepEqual(errors.map((m) => [m.code, m.name, m.roomId]), [[4005, undefined, undefined]]);
    assert.deepEqual(received(bob).filter((m) => m.code !== 200), []);
  });

  step('bob clicks 退出房间: alice sees his leave and counts 1', async () => {
    const { alice, bob } = users;
    await bob.page.getByRole('button', { name: '退出房间' }).click();
    await sees(alice, 'bob left the room');
    await alice.page.getByText('当前房间人数：1', { exact: true }).waitFor(WAIT);
    await startScreen(bob);
    await inRoom(alice, 1234, 1);
    const leave = sent(bob).at(-1);
    assert.equal(leave.type, 'leave');
    const notice = received(alice).at(-1);
    assert.deepEqual([notice.code, notice.event, notice.name, notice.users], [200, 'leave', 'bob', 1]);
  });

  step('no page threw or logged an error', async () => {
    for (const user of Object.values(users)) {
      const bad = user.console.filter((line) => /^(pageerror|error):/.test(line));
      assert.deepEqual(bad, [], `${user.name}'s page`);
    }
  });
});
