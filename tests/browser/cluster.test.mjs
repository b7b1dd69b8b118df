// Cluster mode as people meet it: two Chromium pages reach roomcast through haproxy over wss://
// (deploy/haproxy.cfg as shipped, a self-signed certificate made by openssl here), land on two
// different nodes that share one redis-server, and chat with each other in one room.
// Every process is started here, on free ports or a unix socket, and ended by its PID.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import {
  WAIT,
  enterRoom,
  launchBrowser,
  messageTexts,
  openPage,
  say,
  startServer,
  waitForMembers,
  withScreenshots,
} from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const haproxyConfig = path.resolve(here, '../../deploy/haproxy.cfg');

/** A port nobody listens on right now (bound, then released: a node or haproxy takes it next). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * A child process whose stderr and stdout lines are kept, with a wait for a line that matches;
 * ended by its PID.
 */
class Child {
  constructor(command, args, options = {}) {
    this.name = path.basename(command);
    this.lines = [];
    this.waiters = [];
    this.process = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    live.add(this.process);
    this.exited = new Promise((resolve) => this.process.once('exit', resolve));
    this.process.once('exit', () => live.delete(this.process));
    for (const stream of [this.process.stdout, this.process.stderr]) {
      let buffered = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        buffered += chunk;
        let newline;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          this.#add(buffered.slice(0, newline));
          buffered = buffered.slice(newline + 1);
        }
      });
    }
  }

  #add(line) {
    this.lines.push(line);
    for (const waiter of [...this.waiters]) {
      if (waiter.pattern.test(line)) waiter.resolve(line);
    }
  }

  /** Resolves with the first line (seen before or after this call) that matches `pattern`. */
  waitForLine(pattern, timeout = WAIT.timeout) {
    const seen = this.lines.find((line) => pattern.test(line));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = { pattern, resolve: (line) => done(() => resolve(line)) };
      const timer = setTimeout(
        () => done(() => reject(new Error(`${this.name}: no line matching ${pattern} within ${timeout} ms\n` +
          this.lines.slice(-20).join('\n')))),
        timeout,
      );
      const done = (settle) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        settle();
      };
      this.waiters.push(waiter);
    });
  }

  async stop() {
    if (this.process.exitCode === null && this.process.signalCode === null) {
      process.kill(this.process.pid, 'SIGTERM');
      const timer = setTimeout(() => {
        if (this.process.exitCode === null) process.kill(this.process.pid, 'SIGKILL');
      }, 3000);
      await this.exited;
      clearTimeout(timer);
    }
  }
}

// Children still running when this process exits (a crash, a timeout) are killed by PID too.
const live = new Set();
process.once('exit', () => {
  for (const child of live) if (child.exitCode === null) child.kill('SIGKILL');
});

/** How many WebSocket upgrades a node has logged. */
function upgrades(node) {
  return node.log.filter((line) => line.includes('upgraded to WebSocket')).length;
}

/** Waits until `node` has logged `count` upgrades (its log arrives through a pipe). */
async function waitForUpgrades(node, count) {
  const until = Date.now() + WAIT.timeout;
  while (upgrades(node) !== count) {
    if (Date.now() > until) throw new Error(`node on port ${node.port}: ${upgrades(node)} upgrades, not ${count}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A WebSocket upgraded through haproxy and left idle: a tunnel that haproxy's leastconn counts
 * against the node it went to. Resolves with the TLS socket once the 101 has arrived.
 */
function idleWebSocket(port) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      socket.write(
        'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    let head = '';
    const timer = setTimeout(() => reject(new Error('no 101 through haproxy within 10 s')), WAIT.timeout);
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      head += chunk.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        clearTimeout(timer);
        if (head.startsWith('HTTP/1.1 101')) resolve(socket);
        else reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
      }
    });
  });
}

let work;
let redis;
const tunnels = [];
let haproxy;
let browser;
const nodes = [];
const pages = [];

before(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'roomcast-cluster-browser-'));
  // A self-signed certificate for 127.0.0.1, made for this run.
  const key = path.join(work, 'key.pem');
  const cert = path.join(work, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const pem = path.join(work, 'haproxy.pem');
  writeFileSync(pem, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));

  const socket = path.join(work, 'redis.sock');
  redis = new Child('redis-server', ['--port', '0', '--unixsocket', socket, '--save', '', '--appendonly', 'no']);
  await redis.waitForLine(/ready to accept connections/i);
  assert.ok(existsSync(socket));
  const cluster = ['--redis', `unix://${socket}`, '--proxy-protocol', 'on', '--trusted-proxy', '127.0.0.1/32'];
  nodes.push(await startServer({ extraArgs: cluster }));
  // The second node's port is chosen now, but the node starts only once the first page is in,
  // so that haproxy has one place to send that page.
  const secondPort = await freePort();
  nodes.push({ port: secondPort, args: cluster });

  const lbPort = await freePort();
  haproxy = new Child('haproxy', ['-db', '-f', haproxyConfig], {
    env: {
      ...process.env,
      ROOMCAST_LB_BIND: `127.0.0.1:${lbPort}`,
      ROOMCAST_LB_CERT: pem,
      ROOMCAST_NODE1: `127.0.0.1:${nodes[0].port}`,
      ROOMCAST_NODE2: `127.0.0.1:${secondPort}`,
      ROOMCAST_LB_CHECK_INTER: '100ms',
    },
  });
  await haproxy.waitForLine(/node2 is DOWN/);
  haproxy.url = `https://127.0.0.1:${lbPort}/`;
  haproxy.port = lbPort;
  browser = await launchBrowser();
});

after(async () => {
  for (const tunnel of tunnels.splice(0)) tunnel.destroy();
  for (const page of pages.splice(0)) await page.context().close().catch(() => {});
  await browser?.close();
  await haproxy?.stop();
  for (const node of nodes) if (node.stop) await node.stop();
  await redis?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('two nodes behind haproxy over wss://', () => {
  it('pages on different nodes chat with each other in one room', async (t) => {
    await withScreenshots(t, () => pages, async () => {
      const alice = await openPage(browser, haproxy.url, { contextOptions: { ignoreHTTPSErrors: true } });
      pages.push(alice);
      await waitForUpgrades(nodes[0], 1); // node 1 is the only one up
      await enterRoom(alice, 'create', '4321', 'alice');
      // Ten idle WebSockets on node 1 as well: however many connections the next page opens
      // (a browser opens at most six to one host), leastconn sends its WebSocket to node 2.
      for (let i = 0; i < 10; i++) tunnels.push(await idleWebSocket(haproxy.port));
      await waitForUpgrades(nodes[0], 11);

      nodes[1] = await startServer({ port: nodes[1].port, extraArgs: nodes[1].args });
      await haproxy.waitForLine(/node2 is UP/);
      // leastconn: node 1 holds eleven WebSockets, node 2 nothing.
      const bob = await openPage(browser, haproxy.url, { contextOptions: { ignoreHTTPSErrors: true } });
      pages.push(bob);
      await waitForUpgrades(nodes[1], 1);
      assert.equal(upgrades(nodes[0]), 11, 'the second page is on node 2, not node 1');
      await enterRoom(bob, 'join', '4321', 'bob');

      await waitForMembers(alice, ['alice', 'bob']);
      await waitForMembers(bob, ['alice', 'bob']);
      const shows = (page, count) =>
        page.waitForFunction(
          (n) => document.querySelectorAll('#message-list .msg .msg-text').length >= n,
          count,
          WAIT,
        );
      await say(alice, 'hello from node 1');
      await shows(bob, 1);
      await say(bob, 'hello from node 2');
      for (const page of [alice, bob]) {
        await shows(page, 2);
        assert.deepEqual(await messageTexts(page), ['hello from node 1', 'hello from node 2']);
      }
    });
  });
});
