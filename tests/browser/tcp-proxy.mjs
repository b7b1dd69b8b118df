// A TCP proxy in front of roomcast that a test can cut, to drop one page's WebSocket the way a
// network does. Chromium's own offline switch (CDP Network.emulateNetworkConditions, which is
// what context.setOffline sends) does not close a WebSocket that is already open (checked with
// Debian's chromium 156: the page stayed "Connected" and kept its socket), so the cut has to
// happen below the browser. A page loaded through the proxy also opens its WebSocket through it.
import net from 'node:net';

export class CuttableProxy {
  #server;
  #pairs = new Set();
  #offline = false;

  /** Listens on an ephemeral port of 127.0.0.1 and forwards every connection to `targetPort`. */
  static async start(targetPort) {
    const proxy = new CuttableProxy(targetPort);
    await new Promise((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen(0, '127.0.0.1', resolve);
    });
    proxy.port = proxy.#server.address().port;
    proxy.url = `http://127.0.0.1:${proxy.port}/`;
    return proxy;
  }

  constructor(targetPort) {
    this.#server = net.createServer((client) => this.#accept(client, targetPort));
  }

  #accept(client, targetPort) {
    if (this.#offline) {
      // Offline: a connection attempt fails at once (a reset), so the page keeps retrying.
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream };
    this.#pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const forget = () => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', forget);
    upstream.on('error', forget);
    client.on('close', forget);
    upstream.on('close', forget);
  }

  /**
   * Drops every connection through the proxy and refuses new ones until online(). The page sees
   * its socket reset. `server`: 'reset' resets the server's side too (it sees the drop at once),
   * 'hold' leaves it open and silent, as when a network path dies and the server has not noticed.
   */
  cut({ server = 'reset' } = {}) {
    this.#offline = true;
    for (const pair of [...this.#pairs]) {
      this.#pairs.delete(pair);
      const { client, upstream } = pair;
      client.removeAllListeners('close');
      upstream.removeAllListeners('close');
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.resetAndDestroy();
      if (server === 'reset') {
        upstream.resetAndDestroy();
      } else {
        upstream.on('data', () => {}); // read and drop what the server sends, like a lost path
        this.held = [...(this.held ?? []), upstream];
      }
    }
  }

  /** Accepts connections again. */
  online() {
    this.#offline = false;
  }

  async close() {
    this.cut();
    for (const socket of this.held ?? []) socket.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}
