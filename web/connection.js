// One WebSocket to the server that comes back by itself: when it drops, it is opened again after
// a growing, slightly randomized delay (so that a restarted server is not hit by every page at
// the same instant), until stop(). Listeners get:
//   'state'  detail: { state: 'connecting' | 'open' | 'waiting' | 'stopped', attempt, retryAt, lastClose }
//   'open'   the socket is open (first time or again)
//   'close'  detail: { code, reason, wasOpen }
//   'frame'  detail: the text of one server frame

const CONNECT_TIMEOUT_MS = 8000;

export class Connection extends EventTarget {
  #url;
  #minDelay;
  #maxDelay;
  #socket = null;
  #timer = 0;
  #connectTimer = 0;
  #attempt = 0;
  #retryAt = 0;
  #lastClose = null;
  #stopped = false;
  state = 'connecting';

  constructor(url, { minDelay = 300, maxDelay = 10000 } = {}) {
    super();
    this.#url = url;
    this.#minDelay = minDelay;
    this.#maxDelay = maxDelay;
  }

  get attempt() {
    return this.#attempt;
  }
  get retryAt() {
    return this.#retryAt;
  }
  get lastClose() {
    return this.#lastClose;
  }
  get isOpen() {
    return this.state === 'open';
  }

  start() {
    this.#open();
  }

  /** Skips the wait before the next attempt (a "Retry now" button, or the browser going online). */
  retryNow() {
    if (this.state === 'waiting') this.#open();
  }

  /**
   * Closes the socket for good: no reconnect after it. Called from a 'close' listener too (a
   * close code that says reconnecting is pointless), before the retry would be scheduled.
   */
  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#connectTimer);
    const socket = this.#socket;
    this.#socket = null;
    socket?.close();
    this.#retryAt = 0;
    this.#setState('stopped');
  }

  send(text) {
    if (!this.#socket || this.#socket.readyState !== WebSocket.OPEN) return false;
    this.#socket.send(text);
    return true;
  }

  #setState(state) {
    this.state = state;
    this.dispatchEvent(
      new CustomEvent('state', {
        detail: { state, attempt: this.#attempt, retryAt: this.#retryAt, lastClose: this.#lastClose },
      }),
    );
  }

  #open() {
    clearTimeout(this.#timer);
    if (this.#stopped) return;
    this.#retryAt = 0;
    let socket;
    try {
      socket = new WebSocket(this.#url);
    } catch {
      this.#scheduleRetry();
      return;
    }
    this.#socket = socket;
    let wasOpen = false;
    this.#setState('connecting');
    this.#connectTimer = setTimeout(() => {
      if (socket.readyState === WebSocket.CONNECTING) socket.close();
    }, CONNECT_TIMEOUT_MS);

    socket.addEventListener('open', () => {
      if (this.#socket !== socket) return;
      clearTimeout(this.#connectTimer);
      wasOpen = true;
      this.#attempt = 0;
      this.#lastClose = null;
      this.#setState('open');
      this.dispatchEvent(new Event('open'));
    });
    socket.addEventListener('message', (event) => {
      if (this.#socket !== socket) return;
      this.dispatchEvent(new CustomEvent('frame', { detail: event.data }));
    });
    socket.addEventListener('close', (event) => {
      if (this.#socket !== socket) return;
      clearTimeout(this.#connectTimer);
      this.#socket = null;
      this.#lastClose = { code: event.code, reason: event.reason, wasOpen };
      this.dispatchEvent(new CustomEvent('close', { detail: this.#lastClose }));
      if (!this.#stopped) this.#scheduleRetry();
    });
  }

  #scheduleRetry() {
    const base = Math.min(this.#maxDelay, this.#minDelay * 2 ** this.#attempt);
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.#attempt++;
    this.#retryAt = Date.now() + delay;
    this.#setState('waiting');
    this.#timer = setTimeout(() => this.#open(), delay);
  }
}
