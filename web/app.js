// roomcast's browser client: the start screen, the create/join dialog and the room screen, on one
// WebSocket that reconnects by itself and puts the user back into their room: into the same seat
// with what was missed when the server still holds it (a resume token), else by joining again.
// All user-supplied text reaches the page through textContent (see dom.js), never as HTML.

import { Connection } from './connection.js';
import { $, h, avatarHue, initial } from './dom.js';
import {
  detectLanguage,
  has,
  language,
  languages,
  locale,
  onLanguageChange,
  setLanguage,
  t,
  translateStatic,
} from './i18n.js';
import * as proto from './protocol.js';

const REQUEST_TIMEOUT_MS = 8000; // a create/join the server has not answered by then has failed
const NEAR_BOTTOM_PX = 48; // closer than this to the bottom counts as "reading the newest"
const NAME_TAKEN_RETRIES = 2; // a rejoin may race our own old connection still being removed
const ROOM_SWITCHES = 4; // rejoin: join, on 5004 create, on 5001 join again, ... at most this often

const ui = {
  conn: $('#conn'),
  connText: $('#conn-text'),
  connDetail: $('#conn-detail'),
  connRetry: $('#conn-retry'),
  langSelect: $('#lang-select'),
  startScreen: $('#start-screen'),
  startNotice: $('#start-notice'),
  openCreate: $('#open-create'),
  openJoin: $('#open-join'),
  roomScreen: $('#room-screen'),
  roomTitle: $('#room-title'),
  memberCount: $('#member-count'),
  membersToggle: $('#members-toggle'),
  membersToggleCount: $('#members-toggle-count'),
  membersPanel: $('#members-panel'),
  memberList: $('#member-list'),
  leave: $('#leave'),
  roomBanner: $('#room-banner'),
  messages: $('#messages'),
  messagesEmpty: $('#messages-empty'),
  messageList: $('#message-list'),
  jumpLatest: $('#jump-latest'),
  composer: $('#composer'),
  composerError: $('#composer-error'),
  input: $('#message-input'),
  send: $('#send'),
  counter: $('#char-counter'),
  counterSr: $('#char-counter-sr'),
  dialog: $('#room-dialog'),
  form: $('#room-form'),
  dialogTitle: $('#dialog-title'),
  dialogHint: $('#dialog-hint'),
  roomInput: $('#room-id'),
  roomError: $('#room-id-error'),
  nameInput: $('#user-name'),
  nameError: $('#user-name-error'),
  dialogError: $('#dialog-error'),
  dialogCancel: $('#dialog-cancel'),
  dialogX: $('#dialog-x'),
  dialogSubmit: $('#dialog-submit'),
};

const app = {
  dialogMode: 'create',
  /** A create/join from the dialog: { type, roomId, name, sent, timer }. */
  pending: null,
  /** A create/join nobody waits for any more (dialog closed, room left): leave if it succeeds. */
  abandoned: null,
  /** The room on screen: { roomId, name }; set from the first ack until "Leave". */
  room: null,
  /** Whether the server counts us in `room` (false while the connection is down or rejoining). */
  inRoom: false,
  /** Getting back into `room` after a reconnect: { step: 'resume'|'join'|'create', switches, nameTaken, timer }. */
  rejoin: null,
  /**
   * What a resume needs, from our own create/join frame and every resume answer: the newest
   * token (each is good for one resume), the room's epoch and the highest event seq handled.
   */
  seat: { token: null, epoch: null, seq: 0 },
  /**
   * Events from before our admission or resume (history, a resume's replay) arrive after its
   * answer: they go before that answer's notice `el`. { el, upTo (highest seq that counts as
   * earlier), shown (history up to this seq is on screen already), label (separator key or null) }.
   */
  earlier: null,
  members: [],
  users: 0,
  /** Things on screen whose text depends on the language: functions that re-render them. */
  renderers: [],
  unseen: 0,
  /** Whether the message list is scrolled to the newest message (and should stay there). */
  stick: true,
};

// Texts shown in alerts are kept as functions so a language switch re-renders them.
const alerts = new Map();
function showAlert(el, render, code) {
  if (!render) {
    alerts.delete(el);
    el.hidden = true;
    el.textContent = '';
    delete el.dataset.code;
    return;
  }
  alerts.set(el, render);
  el.textContent = render();
  if (code !== undefined) el.dataset.code = String(code);
  else delete el.dataset.code;
  el.hidden = false;
}

// ---------------------------------------------------------------- connection

const conn = new Connection(proto.chatUrl(window.location));
let countdown = 0;

function renderConnection() {
  const { state } = conn;
  let shown = state;
  let text;
  let detail = '';
  if (state === 'open') {
    if (app.rejoin && app.room) {
      shown = 'rejoining';
      text = t('conn.rejoining', { room: app.room.roomId });
    } else {
      text = t('conn.open');
    }
  } else if (state === 'stopped') {
    text = t('conn.stopped');
  } else if (state === 'connecting') {
    text = conn.attempt > 0 ? t('conn.offline') : t('conn.connecting');
    if (conn.attempt > 0) detail = t('conn.connecting');
  } else {
    text = conn.attempt >= 4 ? t('conn.unreachable') : t('conn.offline');
    const seconds = Math.max(0, Math.ceil((conn.retryAt - Date.now()) / 1000));
    detail = t('conn.retry_in', { s: seconds });
  }
  ui.conn.dataset.state = shown;
  if (ui.connText.textContent !== text) ui.connText.textContent = text;
  ui.connDetail.textContent = detail;
  ui.connDetail.hidden = detail === '';
  ui.connRetry.hidden = state !== 'waiting';
  clearInterval(countdown);
  if (state === 'waiting') countdown = setInterval(renderConnection, 500);
  renderComposerState();
}

conn.addEventListener('state', renderConnection);

conn.addEventListener('open', () => {
  if (app.pending && !app.pending.sent) sendPending();
  if (app.room && !app.inRoom) startRejoin();
});

conn.addEventListener('close', (event) => {
  const { code } = event.detail;
  // Another connection took our seat over with our token: coming back would only take it back.
  const replaced = code === proto.CLOSE_REPLACED;
  if (replaced) conn.stop();
  if (app.pending && app.pending.sent) {
    failPending(() => t('error.connection_lost'));
  }
  if (app.room) {
    if (app.inRoom) addNotice(() => t(replaced ? 'close.replaced' : 'notice.self_lost'), 'notice-warn');
    app.inRoom = false;
    stopRejoin();
    showAlert(ui.roomBanner, () => t(closeReason(code)));
  }
  renderConnection();
});

function closeReason(code) {
  if (code === proto.CLOSE_REPLACED) return 'close.replaced';
  return code === 1008 ? 'close.slow_consumer' : 'room.offline';
}

conn.addEventListener('frame', (event) => {
  const frame = proto.parseFrame(event.detail);
  if (frame) handleFrame(frame);
});

ui.connRetry.addEventListener('click', () => conn.retryNow());
window.addEventListener('online', () => conn.retryNow());
// A closed tab or a reload cannot resume (the token lives in this page's memory only), so say
// goodbye: otherwise the server would keep the seat for its resume grace and the others would
// see us in the room for that long. A page kept in the back/forward cache may come back and
// resume, so it keeps its seat.
window.addEventListener('pagehide', (event) => {
  if (app.inRoom && !event.persisted) conn.send(proto.frames.leave());
});

// ---------------------------------------------------------------- frames

function isAdmission(frame, roomId, name) {
  return (
    (frame.event === 'create' || frame.event === 'join') &&
    proto.sameRoom(frame.roomId, roomId) &&
    frame.name === name
  );
}

function isResumed(frame, roomId) {
  return frame.event === 'resume' && proto.sameRoom(frame.roomId, roomId);
}

function handleFrame(frame) {
  if (frame.event === 'error' || frame.code !== 200) {
    handleError(frame);
    return;
  }
  const { pending, rejoin, room, abandoned } = app;
  if (pending && pending.sent && isAdmission(frame, pending.roomId, pending.name)) {
    admitted(frame);
    return;
  }
  if (rejoin && room && isAdmission(frame, room.roomId, room.name)) {
    rejoined(frame);
    return;
  }
  if (rejoin && room && rejoin.step === 'resume' && isResumed(frame, room.roomId)) {
    resumed(frame);
    return;
  }
  if (!app.inRoom) {
    if (abandoned && isAdmission(frame, abandoned.roomId, abandoned.name)) {
      // Admitted after the user gave up waiting: leave again so the server agrees with the page.
      app.abandoned = null;
      conn.send(proto.frames.leave());
    }
    return; // leftovers of a room we left, or events before our own admission
  }
  if (!proto.sameRoom(frame.roomId, room.roomId)) return;
  roomEvent(frame);
}

function errorText(frame, context = {}) {
  const key = `error.${frame.error}`;
  if (frame.error && has(key)) {
    return t(key, {
      room: frame.roomId ?? context.roomId ?? '',
      name: frame.name ?? context.name ?? '',
      max: frame.error === 'invalid_name' ? proto.MAX_NAME : proto.MAX_TEXT,
    });
  }
  if (typeof frame.text === 'string' && frame.text) return t('error.generic', { text: frame.text });
  return t('error.code', { code: frame.code });
}

function handleError(frame) {
  const answersAdmission =
    frame.roomId !== undefined || frame.name !== undefined || frame.error === 'already_in_room';
  // Nothing but the resume is in flight while resuming, so any error answers it.
  if (app.rejoin && (answersAdmission || app.rejoin.step === 'resume')) {
    rejoinError(frame);
    return;
  }
  if (app.pending && app.pending.sent && answersAdmission) {
    const pending = app.pending;
    if (frame.error === 'already_in_room' && !pending.retried) {
      // The server still has us in a room the page already left: leave it, then ask again.
      pending.retried = true;
      conn.send(proto.frames.leave());
      conn.send(proto.frames[pending.type](pending.roomId, pending.name));
      return;
    }
    failPending(() => errorText(frame, pending), frame);
    return;
  }
  if (app.inRoom) {
    showAlert(ui.composerError, () => errorText(frame, app.room), frame.code);
  }
}

// ---------------------------------------------------------------- create / join

function sendPending() {
  const pending = app.pending;
  pending.sent = conn.send(proto.frames[pending.type](pending.roomId, pending.name));
  if (!pending.sent) conn.retryNow();
}

function request(type, roomId, name) {
  app.abandoned = null;
  const pending = { type, roomId, name, sent: false, retried: false, timer: 0 };
  app.pending = pending;
  pending.timer = setTimeout(() => {
    if (app.pending !== pending) return;
    if (pending.sent) app.abandoned = { roomId, name };
    failPending(() => t(pending.sent ? 'error.timeout' : 'error.offline'));
  }, REQUEST_TIMEOUT_MS);
  renderDialogBusy();
  sendPending();
}

function failPending(render, frame) {
  const pending = app.pending;
  if (!pending) return;
  clearTimeout(pending.timer);
  app.pending = null;
  renderDialogBusy();
  showAlert(ui.dialogError, render, frame?.code);
  if (frame?.error === 'name_taken' || frame?.error === 'invalid_name') {
    ui.nameInput.focus();
    ui.nameInput.select();
  } else if (frame) {
    ui.roomInput.focus();
    ui.roomInput.select();
  }
}

function admitted(frame) {
  const pending = app.pending;
  clearTimeout(pending.timer);
  app.pending = null;
  renderDialogBusy();
  if (ui.dialog.open) ui.dialog.close();
  enterRoom(pending.roomId, frame.name);
  app.inRoom = true;
  updateRoster(frame);
  const room = pending.roomId;
  const notice = addNotice(() => t(pending.type === 'create' ? 'notice.self_create' : 'notice.self_join', { room }));
  seated(frame, notice, { shown: 0, label: 'room.earlier' });
  renderConnection();
  ui.input.focus();
}

// ---------------------------------------------------------------- rejoin after a reconnect

function startRejoin() {
  stopRejoin();
  // With a token the server may still hold our seat and what we missed; without one (history
  // off) joining again is the only way back.
  const step = app.seat.token ? 'resume' : 'join';
  app.rejoin = { step, switches: 0, nameTaken: 0, timer: 0 };
  sendRejoin();
  renderConnection();
}

function sendRejoin() {
  const { rejoin, room } = app;
  clearTimeout(rejoin.timer);
  rejoin.timer = setTimeout(() => {
    if (app.rejoin === rejoin) rejoinFailed(() => t('error.timeout'));
  }, REQUEST_TIMEOUT_MS);
  if (rejoin.step === 'resume') conn.send(proto.frames.resume(app.seat.token, app.seat.seq, room.roomId));
  else conn.send(proto.frames[rejoin.step](room.roomId, room.name));
}

function stopRejoin() {
  if (app.rejoin) clearTimeout(app.rejoin.timer);
  app.rejoin = null;
}

function rejoinError(frame) {
  const rejoin = app.rejoin;
  clearTimeout(rejoin.timer);
  if (rejoin.step === 'resume') {
    // The seat is gone (4010 the token expired or the server restarted, 4011 wrong room, 4012
    // the room was made anew) or the server does not know resume: join again as before.
    rejoin.step = 'join';
    sendRejoin();
  } else if (frame.error === 'no_such_room' && rejoin.switches < ROOM_SWITCHES) {
    // The room is gone (the server restarted): open it again.
    rejoin.switches++;
    rejoin.step = 'create';
    sendRejoin();
  } else if (frame.error === 'room_exists' && rejoin.switches < ROOM_SWITCHES) {
    // Someone else re-created it first: join them.
    rejoin.switches++;
    rejoin.step = 'join';
    sendRejoin();
  } else if (frame.error === 'name_taken' && rejoin.nameTaken < NAME_TAKEN_RETRIES) {
    // Perhaps our previous connection is still being removed; ask again shortly.
    rejoin.nameTaken++;
    rejoin.step = 'join';
    rejoin.timer = setTimeout(() => {
      if (app.rejoin === rejoin) sendRejoin();
    }, 1000 * rejoin.nameTaken);
  } else {
    const { roomId, name } = app.room;
    rejoinFailed(() => errorText(frame, { roomId, name }));
  }
}

function rejoined(frame) {
  const step = app.rejoin.step;
  stopRejoin();
  app.inRoom = true;
  updateRoster(frame);
  const room = app.room.roomId;
  // A new seat: what happened while we were away is not replayed, at most some of it is in the
  // history that follows (without the joins and leaves).
  addDivider('room.missing', 'divider-missing');
  const notice = addNotice(
    () => t(step === 'create' ? 'notice.self_recreate' : 'notice.self_rejoin', { room }),
    'notice-ok',
  );
  // The same room (epoch) as before: the history up to what we saw is on screen already.
  const sameRoom = typeof frame.epoch === 'string' && frame.epoch === app.seat.epoch;
  seated(frame, notice, { shown: sameRoom ? app.seat.seq : 0, label: null });
  showAlert(ui.roomBanner, null);
  renderConnection();
}

// Back in our own seat: the roster is the room's now, and when `recovered` the events we missed
// follow this answer (replayed with their seq); otherwise they are gone and a divider says so.
function resumed(frame) {
  const since = app.seat.seq;
  stopRejoin();
  app.inRoom = true;
  updateRoster(frame);
  const recovered = frame.recovered === true;
  const last = typeof frame.last === 'number' ? frame.last : since;
  if (!recovered) addDivider('room.missing', 'divider-missing');
  const room = app.room.roomId;
  const notice = addNotice(() => t('notice.self_rejoin', { room }), 'notice-ok');
  keepSeat(frame, recovered ? since : Math.max(since, last));
  app.earlier = { el: notice, upTo: last, shown: 0, label: null };
  showAlert(ui.roomBanner, null);
  renderConnection();
}

function rejoinFailed(renderReason) {
  const { roomId, name } = app.room;
  if (app.rejoin) app.abandoned = { roomId, name };
  stopRejoin();
  showStart();
  ui.roomInput.value = roomId;
  ui.nameInput.value = name;
  showAlert(ui.startNotice, () => `${t('rejoin.failed', { room: roomId, name })} ${renderReason()}`);
  ui.openJoin.focus();
}

// ---------------------------------------------------------------- seat: token, epoch, seq

/** Keeps what the next resume needs; tokens are single-use, so always the newest one. */
function keepSeat(frame, seq) {
  app.seat = {
    token: typeof frame.token === 'string' ? frame.token : null,
    epoch: typeof frame.epoch === 'string' ? frame.epoch : null,
    seq,
  };
}

/** Our own create/join frame: its seq is where the live events start, history comes before. */
function seated(frame, notice, { shown, label }) {
  const seq = typeof frame.seq === 'number' ? frame.seq : 0;
  keepSeat(frame, seq);
  app.earlier = { el: notice, upTo: seq, shown, label };
}

function forgetSeat() {
  app.seat = { token: null, epoch: null, seq: 0 };
  app.earlier = null;
}

/** History frames, and a resume's replay: events from before our admission or resume answer. */
function isEarlier(frame) {
  if (!app.earlier) return false;
  return frame.history === true || (typeof frame.seq === 'number' && frame.seq <= app.earlier.upTo);
}

/** Already handled: a replay overlapping what came before the drop, or history still on screen. */
function isSeen(frame) {
  if (typeof frame.seq !== 'number') return false;
  if (frame.history === true) return frame.seq <= (app.earlier?.shown ?? 0);
  return frame.seq <= app.seat.seq;
}

// ---------------------------------------------------------------- room screen

function enterRoom(roomId, name) {
  app.room = { roomId, name };
  forgetSeat();
  app.members = [];
  app.users = 0;
  app.renderers = [];
  app.unseen = 0;
  app.stick = true;
  ui.messageList.replaceChildren();
  showAlert(ui.startNotice, null);
  showAlert(ui.roomBanner, null);
  showAlert(ui.composerError, null);
  ui.input.value = '';
  setMembersOpen(false);
  ui.startScreen.hidden = true;
  ui.roomScreen.hidden = false;
  renderRoomHeader();
  renderComposer();
  renderEmpty();
  ui.jumpLatest.hidden = true;
}

function showStart() {
  app.room = null;
  app.inRoom = false;
  forgetSeat();
  app.renderers = [];
  ui.messageList.replaceChildren();
  ui.memberList.replaceChildren();
  showAlert(ui.roomBanner, null);
  showAlert(ui.composerError, null);
  ui.roomScreen.hidden = true;
  ui.startScreen.hidden = false;
  renderTitle();
  renderConnection();
}

function leaveRoom() {
  if (!app.room) return;
  if (app.inRoom) conn.send(proto.frames.leave());
  else if (app.rejoin) app.abandoned = { roomId: app.room.roomId, name: app.room.name };
  stopRejoin();
  showStart();
  ui.openCreate.focus();
}

// The whole roster comes once, with our own create/join; after that each join and leave says
// who came or went, and the list is kept here.
function updateRoster(frame) {
  if (typeof frame.users === 'number') app.users = frame.users;
  if (Array.isArray(frame.members)) {
    app.members = frame.members.filter((m) => typeof m === 'string');
    renderMembers();
  } else if (frame.code === 200 && typeof frame.name === 'string') {
    if (frame.event === 'join' && !app.members.includes(frame.name)) {
      app.members = [...app.members, frame.name];
      renderMembers();
    } else if (frame.event === 'leave') {
      app.members = app.members.filter((m) => m !== frame.name);
      renderMembers();
    }
  }
  renderRoomHeader();
}

function renderTitle() {
  document.title = app.room ? `${t('room.title', { room: app.room.roomId })} · roomcast` : 'roomcast';
}

function renderRoomHeader() {
  renderTitle();
  if (!app.room) return;
  ui.roomTitle.textContent = t('room.title', { room: app.room.roomId });
  const n = app.users;
  ui.memberCount.textContent = t(n === 1 ? 'room.members_one' : 'room.members_other', { n });
  ui.membersToggleCount.textContent = String(n);
}

function renderMembers() {
  const me = app.room?.name;
  ui.memberList.replaceChildren(
    ...app.members.map((name) =>
      h(
        'li',
        { class: name === me ? 'member member-self' : 'member' },
        avatar(name),
        h('span', { class: 'member-name' }, name),
        name === me ? h('span', { class: 'you-badge' }, t('room.you')) : null,
      ),
    ),
  );
}

function avatar(name) {
  const el = h('span', { class: 'avatar', 'aria-hidden': 'true' }, initial(name));
  el.style.setProperty('--hue', String(avatarHue(name)));
  return el;
}

function setMembersOpen(open) {
  ui.membersToggle.setAttribute('aria-expanded', String(open));
  ui.membersPanel.classList.toggle('open', open);
}

ui.membersToggle.addEventListener('click', () => {
  setMembersOpen(ui.membersToggle.getAttribute('aria-expanded') !== 'true');
});
// The phone-sized member list is a drop-down: Escape or a click elsewhere closes it.
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && ui.membersPanel.classList.contains('open') && !ui.dialog.open) {
    setMembersOpen(false);
    ui.membersToggle.focus();
  }
});
document.addEventListener('click', (event) => {
  if (!ui.membersPanel.classList.contains('open')) return;
  if (!ui.membersPanel.contains(event.target) && !ui.membersToggle.contains(event.target)) setMembersOpen(false);
});
ui.leave.addEventListener('click', leaveRoom);

// ---------------------------------------------------------------- messages

function roomEvent(frame) {
  if (isSeen(frame)) return;
  if (typeof frame.seq === 'number' && !frame.history) app.seat.seq = Math.max(app.seat.seq, frame.seq);
  const earlier = isEarlier(frame);
  // The roster came whole with our admission or resume: earlier events would only make it stale.
  if (!earlier) updateRoster(frame);
  const before = earlier ? earlierSlot() : null;
  const me = app.room.name;
  const name = typeof frame.name === 'string' ? frame.name : '';
  switch (frame.event) {
    case 'message':
      addMessage(frame, name === me, before);
      break;
    case 'create':
    case 'join':
      if (name !== me) addNotice(() => t(`notice.${frame.event}`, { name }), '', before);
      break;
    case 'leave':
      if (name !== me) {
        const reason = ['left', 'disconnected', 'slow_consumer'].includes(frame.reason) ? frame.reason : 'left';
        addNotice(() => t(`notice.${reason}`, { name }), 'notice-leave', before);
      }
      break;
    default:
      break;
  }
}

/** Where the next earlier event goes; the first one of a history block gets a separator. */
function earlierSlot() {
  const earlier = app.earlier;
  if (earlier.label) {
    addDivider(earlier.label, 'divider-history', earlier.el);
    earlier.label = null;
  }
  return earlier.el;
}

function formatTime(ms) {
  const date = new Date(typeof ms === 'number' ? ms : Date.now());
  return {
    short: date.toLocaleTimeString(locale(), { hour: 'numeric', minute: '2-digit' }),
    long: date.toLocaleString(locale()),
    iso: date.toISOString(),
  };
}

function addMessage(frame, own, before = null) {
  const name = typeof frame.name === 'string' ? frame.name : '';
  const text = typeof frame.text === 'string' ? frame.text : '';
  const time = h('time', { class: 'msg-time', datetime: formatTime(frame.id).iso });
  const renderTime = () => {
    const f = formatTime(frame.id);
    time.textContent = f.short;
    time.title = f.long;
  };
  renderTime();
  app.renderers.push(renderTime);
  const history = frame.history === true;
  const item = h(
    'li',
    {
      class: `msg ${own ? 'msg-own' : 'msg-other'}${history ? ' msg-history' : ''}`,
      dataset: { seq: frame.seq ?? '' },
    },
    own ? null : avatar(name),
    h(
      'div',
      { class: 'msg-body' },
      h('div', { class: 'msg-meta' }, h('span', { class: 'msg-author' }, name), time),
      h('p', { class: 'msg-text' }, text),
    ),
  );
  append(item, own && !before, before);
}

function addNotice(render, variant = '', before = null) {
  const text = h('span', { class: 'notice-text' });
  const time = h('time', { class: 'notice-time' });
  const stamp = Date.now();
  const rerender = () => {
    text.textContent = render();
    time.textContent = formatTime(stamp).short;
  };
  rerender();
  app.renderers.push(rerender);
  const item = h('li', { class: `notice ${variant}`.trim() }, text, time);
  append(item, false, before);
  return item;
}

/** A line across the list with a text: where history starts, where messages may be missing. */
function addDivider(key, variant, before = null) {
  const text = h('span', { class: 'divider-text' });
  const render = () => {
    text.textContent = t(key);
  };
  render();
  app.renderers.push(render);
  append(h('li', { class: `divider ${variant}` }, text), false, before);
}

function nearBottom() {
  const m = ui.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < NEAR_BOTTOM_PX;
}

function scrollToBottom() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
  app.stick = true;
  app.unseen = 0;
  ui.jumpLatest.hidden = true;
}

function append(item, force, before = null) {
  const stick = force || app.stick;
  ui.messageList.insertBefore(item, before);
  renderEmpty();
  if (stick) {
    scrollToBottom();
  } else {
    app.unseen++;
    ui.jumpLatest.hidden = false;
  }
}

function renderEmpty() {
  ui.messagesEmpty.hidden = ui.messageList.querySelector('.msg') !== null;
}

ui.messages.addEventListener('scroll', () => {
  app.stick = nearBottom();
  if (app.stick) {
    app.unseen = 0;
    ui.jumpLatest.hidden = true;
  }
});
// The list gets shorter when the message box grows (or the phone keyboard opens): stay on the
// newest message if that is where the user was.
new ResizeObserver(() => {
  if (app.stick) ui.messages.scrollTop = ui.messages.scrollHeight;
}).observe(ui.messages);
ui.jumpLatest.addEventListener('click', () => {
  scrollToBottom();
  ui.input.focus();
});

// ---------------------------------------------------------------- composer

function renderComposer() {
  const n = proto.codePointLength(ui.input.value);
  ui.counter.textContent = t('composer.counter', { n, max: proto.MAX_TEXT });
  ui.counterSr.textContent = t('composer.counter_sr', { n, max: proto.MAX_TEXT });
  ui.counter.dataset.level = n >= proto.MAX_TEXT ? 'full' : n >= proto.MAX_TEXT - 10 ? 'near' : '';
  // Grow with the text, up to the max-height in the CSS.
  ui.input.style.height = 'auto';
  ui.input.style.height = `${ui.input.scrollHeight + 2}px`;
  renderComposerState();
}

function renderComposerState() {
  ui.send.disabled = !(app.inRoom && conn.isOpen && proto.isSendable(ui.input.value));
}

function clampInput() {
  const { value, caret } = proto.clampCodePoints(ui.input.value, ui.input.selectionEnd ?? ui.input.value.length);
  if (value !== ui.input.value) {
    ui.input.value = value;
    ui.input.setSelectionRange(caret, caret);
  }
}

function sendMessage() {
  const text = proto.trimLikeServer(ui.input.value);
  if (!proto.isSendable(text)) return;
  if (!app.inRoom || !conn.isOpen) return;
  if (!conn.send(proto.frames.message(text))) return;
  showAlert(ui.composerError, null);
  ui.input.value = '';
  renderComposer();
  scrollToBottom();
}

ui.input.addEventListener('input', (event) => {
  if (!event.isComposing) clampInput();
  renderComposer();
});
ui.input.addEventListener('compositionend', () => {
  clampInput();
  renderComposer();
});
ui.input.addEventListener('keydown', (event) => {
  // Enter also confirms an input method's composition (Chinese, Japanese...): not a send then.
  if (event.key !== 'Enter' || event.shiftKey || event.isComposing || event.keyCode === 229) return;
  event.preventDefault();
  sendMessage();
});
ui.composer.addEventListener('submit', (event) => {
  event.preventDefault();
  sendMessage();
  ui.input.focus();
});

// ---------------------------------------------------------------- dialog

function renderDialog() {
  const mode = app.dialogMode;
  ui.dialogTitle.textContent = t(`dialog.${mode}.title`);
  ui.dialogHint.textContent = t(`dialog.${mode}.hint`);
  renderDialogBusy();
}

function renderDialogBusy() {
  const busy = app.pending !== null;
  ui.dialogSubmit.textContent = t(`dialog.${app.dialogMode}.${busy ? 'busy' : 'submit'}`);
  ui.dialogSubmit.disabled = busy;
  ui.form.setAttribute('aria-busy', String(busy));
}

function setFieldError(input, errorEl, key) {
  if (key) {
    errorEl.textContent = t(`invalid.${key}`, { max: proto.MAX_NAME });
    errorEl.dataset.key = key;
    input.setAttribute('aria-invalid', 'true');
  } else {
    errorEl.textContent = '';
    delete errorEl.dataset.key;
    input.removeAttribute('aria-invalid');
  }
}

function openDialog(mode) {
  app.dialogMode = mode;
  setFieldError(ui.roomInput, ui.roomError, null);
  setFieldError(ui.nameInput, ui.nameError, null);
  showAlert(ui.dialogError, null);
  renderDialog();
  ui.dialog.showModal();
  ui.roomInput.focus();
  ui.roomInput.select();
}

function closeDialog() {
  if (ui.dialog.open) ui.dialog.close();
}

ui.dialog.addEventListener('close', () => {
  if (app.pending) {
    // The user gave up waiting; if the server admits us anyway, leave at once.
    clearTimeout(app.pending.timer);
    if (app.pending.sent) app.abandoned = { roomId: app.pending.roomId, name: app.pending.name };
    app.pending = null;
    renderDialogBusy();
  }
});

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (app.pending) return;
  const room = proto.checkRoomId(ui.roomInput.value);
  const name = proto.checkName(ui.nameInput.value);
  setFieldError(ui.roomInput, ui.roomError, room.ok ? null : room.error);
  setFieldError(ui.nameInput, ui.nameError, name.ok ? null : name.error);
  showAlert(ui.dialogError, null);
  if (!room.ok) {
    ui.roomInput.focus();
    return;
  }
  if (!name.ok) {
    ui.nameInput.focus();
    return;
  }
  ui.roomInput.value = room.value;
  request(app.dialogMode, room.value, name.value);
});

for (const [input, errorEl] of [
  [ui.roomInput, ui.roomError],
  [ui.nameInput, ui.nameError],
]) {
  input.addEventListener('input', () => {
    setFieldError(input, errorEl, null);
    showAlert(ui.dialogError, null);
  });
}

ui.dialogCancel.addEventListener('click', closeDialog);
ui.dialogX.addEventListener('click', closeDialog);
ui.dialog.addEventListener('click', (event) => {
  // A click on the backdrop (the dialog element itself, outside the form) closes it.
  if (event.target === ui.dialog) closeDialog();
});
ui.openCreate.addEventListener('click', () => openDialog('create'));
ui.openJoin.addEventListener('click', () => openDialog('join'));

// ---------------------------------------------------------------- language

function renderLanguage() {
  translateStatic();
  ui.langSelect.value = language();
  renderDialog();
  for (const el of [ui.roomError, ui.nameError]) {
    if (el.dataset.key) el.textContent = t(`invalid.${el.dataset.key}`, { max: proto.MAX_NAME });
  }
  for (const [el, render] of alerts) el.textContent = render();
  renderConnection();
  renderRoomHeader();
  renderMembers();
  renderComposer();
  for (const render of app.renderers) render();
}

ui.langSelect.replaceChildren(...languages.map((l) => h('option', { value: l.code, lang: l.htmlLang }, l.label)));
ui.langSelect.addEventListener('change', () => setLanguage(ui.langSelect.value, { remember: true }));
onLanguageChange(renderLanguage);

// ---------------------------------------------------------------- start

setLanguage(detectLanguage());
conn.start();
