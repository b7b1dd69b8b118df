// The client's side of the roomcast wire protocol (docs/protocol.md): the rules the server
// applies to room numbers, names and chat text, and the frames the client sends. Pure functions,
// no DOM, so the rules are easy to read next to the server's own (src/rules.cpp).

/** Longest chat message the server accepts, in Unicode code points (its --max-text default). */
export const MAX_TEXT = 100;
/** Longest name, in code points, after trimming. */
export const MAX_NAME = 32;

// The white space the server trims: ASCII white space, U+00A0 and U+3000 (ideographic space).
const SPACE = new Set([' ', '\t', '\n', '\v', '\f', '\r', '\u00a0', '\u3000']);

/** Number of code points (what the server counts), not UTF-16 units. */
export function codePointLength(text) {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** `text` without the leading and trailing white space the server would remove. */
export function trimLikeServer(text) {
  let start = 0;
  let end = text.length;
  while (start < end && SPACE.has(text[start])) start++;
  while (end > start && SPACE.has(text[end - 1])) end--;
  return text.slice(start, end);
}

/** Room numbers are exactly four ASCII digits ("0042" included). */
export function checkRoomId(value) {
  // Full-width digits, as a Chinese input method may type them, count as digits.
  const v = String(value)
    .trim()
    .replace(/[\uff10-\uff19]/g, (d) => String.fromCharCode(d.charCodeAt(0) - 0xfee0));
  if (v === '') return { ok: false, error: 'room_required' };
  if (!/^[0-9]{4}$/.test(v)) return { ok: false, error: 'room_format' };
  return { ok: true, value: v };
}

// C0 and C1 control characters and DEL, which the server refuses in names.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** A name is 1..32 code points once trimmed, with no control characters. */
export function checkName(value) {
  const v = trimLikeServer(String(value));
  if (v === '') return { ok: false, error: 'name_required' };
  if (codePointLength(v) > MAX_NAME) return { ok: false, error: 'name_too_long' };
  if (CONTROL.test(v)) return { ok: false, error: 'name_control' };
  return { ok: true, value: v };
}

/** Whether `text` is worth sending: not empty and not white space only. */
export function isSendable(text) {
  const t = trimLikeServer(text);
  return t !== '' && codePointLength(t) <= MAX_TEXT;
}

/**
 * Cuts `value` down to `max` code points by removing the code points just before `caret`
 * (what was just typed or pasted), then from the end. Returns the new value and caret.
 */
export function clampCodePoints(value, caret, max = MAX_TEXT) {
  const total = codePointLength(value);
  if (total <= max) return { value, caret };
  let excess = total - max;
  const before = Array.from(value.slice(0, caret));
  const after = Array.from(value.slice(caret));
  const cut = Math.min(excess, before.length);
  before.length -= cut;
  excess -= cut;
  if (excess > 0) after.length -= excess;
  const head = before.join('');
  return { value: head + after.join(''), caret: head.length };
}

/** The chat endpoint next to the page: same host and port, ws: or wss: to match the page. */
export function chatUrl(location) {
  const url = new URL('ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  return url.href;
}

// create and join ask for the room's recent messages (shown as history) and for a resume token
// (to get back into the same seat, with what was missed, after a dropped connection).
export const frames = {
  create: (roomId, name) => JSON.stringify({ type: 'create', roomId, name, history: true, resume: true }),
  join: (roomId, name) => JSON.stringify({ type: 'join', roomId, name, history: true, resume: true }),
  resume: (token, since, roomId) => JSON.stringify({ type: 'resume', token, since, roomId }),
  message: (text) => JSON.stringify({ type: 'message', text }),
  leave: () => JSON.stringify({ type: 'leave' }),
};

/** Parses a server frame; null for anything that is not a JSON object. */
export function parseFrame(data) {
  if (typeof data !== 'string') return null;
  try {
    const frame = JSON.parse(data);
    return frame && typeof frame === 'object' && !Array.isArray(frame) ? frame : null;
  } catch {
    return null;
  }
}

/** Room numbers come back as the creator wrote them (string or number): compare as text. */
export function sameRoom(a, b) {
  return a !== undefined && a !== null && b !== undefined && b !== null && String(a) === String(b);
}

/** A close code the page must not reconnect after: another connection resumed its seat. */
export const CLOSE_REPLACED = 4100;
