// English and Chinese texts. The language comes from the browser (navigator.languages) unless
// the user picked one with the switch, which is remembered in localStorage.
// Every text is put into the page with textContent or an attribute, never parsed as HTML, so the
// {placeholders} may safely hold user-supplied names.

const en = {
  'app.name': 'roomcast',
  'lang.label': 'Language',
  'conn.label': 'Connection',
  'conn.connecting': 'Connecting…',
  'conn.open': 'Connected',
  'conn.offline': 'Offline',
  'conn.unreachable': "Can't reach the server",
  'conn.retry_in': 'retrying in {s} s',
  'conn.retry': 'Retry now',
  'conn.rejoining': 'Rejoining room {room}…',
  'conn.stopped': 'Not connected',

  'start.title': 'Chat rooms, instantly',
  'start.lead': 'Create a room with a 4-digit number and share it, or join the room a friend created. No sign-up needed.',
  'start.create': 'Create room',
  'start.join': 'Join room',
  'start.tip1.title': 'Pick a number',
  'start.tip1.text': 'Any 4 digits that are free',
  'start.tip2.title': 'Share it',
  'start.tip2.text': 'Friends join with the number',
  'start.tip3.title': 'Chat live',
  'start.tip3.text': 'Messages arrive instantly',

  'dialog.create.title': 'Create a room',
  'dialog.join.title': 'Join a room',
  'dialog.create.hint': 'Choose a 4-digit room number that is not in use yet.',
  'dialog.join.hint': 'Enter the room number you were given and the name to show.',
  'dialog.room.label': 'Room number',
  'dialog.room.placeholder': '4 digits, e.g. 1234',
  'dialog.name.label': 'Your name',
  'dialog.name.placeholder': 'How others will see you',
  'dialog.cancel': 'Cancel',
  'dialog.close': 'Close',
  'dialog.create.submit': 'Create',
  'dialog.join.submit': 'Join',
  'dialog.create.busy': 'Creating…',
  'dialog.join.busy': 'Joining…',

  'invalid.room_required': 'Enter a room number.',
  'invalid.room_format': 'The room number must be exactly 4 digits (0–9).',
  'invalid.name_required': 'Enter your name.',
  'invalid.name_too_long': 'The name can be at most {max} characters.',
  'invalid.name_control': 'The name contains characters that are not allowed.',

  'error.room_exists': 'Room {room} already exists. Join it instead, or pick another number.',
  'error.no_such_room': 'Room {room} does not exist. Check the number, or create the room.',
  'error.name_taken': 'The name “{name}” is already used in room {room}. Please pick another name.',
  'error.unavailable': 'The chat service is briefly unavailable; nothing was sent. Please try again in a moment.',
  'error.invalid_room_id': 'The server refused the room number: it must be exactly 4 digits.',
  'error.invalid_name': 'The server refused the name: use 1 to {max} characters, without control characters.',
  'error.empty_text': 'Empty messages are not sent.',
  'error.text_too_long': 'The message is too long: at most {max} characters.',
  'error.not_in_room': 'You are not in a room any more.',
  'error.already_in_room': 'You are already in a room. Leave it first.',
  'error.malformed_frame': 'The server could not read the request.',
  'error.unknown_type': 'The server did not understand the request.',
  'error.invalid_field': 'The server did not understand the request.',
  'error.generic': 'The server refused the request: {text}',
  'error.timeout': 'The server did not answer. Please try again.',
  'error.offline': 'Not connected to the server yet. Please wait a moment and try again.',
  'error.connection_lost': 'The connection was lost before the server answered. Please try again.',
  'error.code': 'Error {code}',

  'rejoin.failed': 'Could not get back into room {room} as “{name}”.',
  'close.slow_consumer': 'The server disconnected this page because it could not keep up.',
  'close.replaced': 'This chat went on in another tab or window, so this page stopped. Reload it to chat here again.',

  'room.title': 'Room {room}',
  'room.members_one': '1 member',
  'room.members_other': '{n} members',
  'room.members': 'Members',
  'room.you': 'you',
  'room.leave': 'Leave',
  'room.offline': 'Connection lost. Messages can’t be sent until it is back.',
  'room.empty': 'No messages yet. Say hello!',
  'room.log': 'Messages',
  'room.jump': 'New messages',
  'room.earlier': 'Earlier messages',
  'room.missing': 'Some messages may be missing',

  'composer.label': 'Message',
  'composer.placeholder': 'Write a message…',
  'composer.send': 'Send',
  'composer.hint': 'Enter to send · Shift+Enter for a new line',
  'composer.counter': '{n}/{max}',
  'composer.counter_sr': '{n} of {max} characters used',

  'notice.self_create': 'You created room {room}. Share the number so others can join.',
  'notice.self_join': 'You joined room {room}.',
  'notice.self_rejoin': 'Reconnected: you are back in room {room}.',
  'notice.self_recreate': 'Reconnected: the server had restarted, so room {room} was created again.',
  'notice.self_lost': 'Connection lost. Trying to reconnect…',
  'notice.create': '{name} created the room',
  'notice.join': '{name} joined the room',
  'notice.left': '{name} left the room',
  'notice.disconnected': '{name} disconnected',
  'notice.slow_consumer': '{name} was disconnected (connection too slow)',
};

const zh = {
  'app.name': 'roomcast',
  'lang.label': '语言',
  'conn.label': '连接状态',
  'conn.connecting': '正在连接…',
  'conn.open': '已连接',
  'conn.offline': '已断开',
  'conn.unreachable': '无法连接服务器',
  'conn.retry_in': '{s} 秒后重试',
  'conn.retry': '立即重试',
  'conn.rejoining': '正在重新加入房间 {room}…',
  'conn.stopped': '未连接',

  'start.title': '即时聊天室',
  'start.lead': '用一个四位数字创建房间并分享给朋友，或者加入朋友创建的房间。无需注册。',
  'start.create': '创建房间',
  'start.join': '加入房间',
  'start.tip1.title': '选一个房间号',
  'start.tip1.text': '任意未被占用的四位数字',
  'start.tip2.title': '分享出去',
  'start.tip2.text': '朋友凭房间号加入',
  'start.tip3.title': '实时聊天',
  'start.tip3.text': '消息即时送达',

  'dialog.create.title': '创建房间',
  'dialog.join.title': '加入房间',
  'dialog.create.hint': '请选择一个尚未被使用的四位数字房间号。',
  'dialog.join.hint': '请输入别人给你的房间号，以及你想显示的名字。',
  'dialog.room.label': '房间号',
  'dialog.room.placeholder': '四位数字，例如 1234',
  'dialog.name.label': '你的名字',
  'dialog.name.placeholder': '其他人看到的名字',
  'dialog.cancel': '取消',
  'dialog.close': '关闭',
  'dialog.create.submit': '创建',
  'dialog.join.submit': '加入',
  'dialog.create.busy': '正在创建…',
  'dialog.join.busy': '正在加入…',

  'invalid.room_required': '请输入房间号。',
  'invalid.room_format': '房间号必须是 4 位数字（0–9）。',
  'invalid.name_required': '请输入名字。',
  'invalid.name_too_long': '名字最多 {max} 个字符。',
  'invalid.name_control': '名字中包含不允许的字符。',

  'error.room_exists': '房间 {room} 已存在。请直接加入，或换一个房间号。',
  'error.no_such_room': '房间 {room} 不存在。请检查房间号，或创建这个房间。',
  'error.name_taken': '房间 {room} 里已经有人叫“{name}”了，请换一个名字。',
  'error.unavailable': '聊天服务暂时不可用，没有发送任何内容。请稍后再试。',
  'error.invalid_room_id': '服务器拒绝了这个房间号：必须是 4 位数字。',
  'error.invalid_name': '服务器拒绝了这个名字：需为 1 到 {max} 个字符，且不含控制字符。',
  'error.empty_text': '不能发送空消息。',
  'error.text_too_long': '消息太长：最多 {max} 个字符。',
  'error.not_in_room': '你已经不在房间里了。',
  'error.already_in_room': '你已经在一个房间里了，请先离开。',
  'error.malformed_frame': '服务器无法读取该请求。',
  'error.unknown_type': '服务器无法理解该请求。',
  'error.invalid_field': '服务器无法理解该请求。',
  'error.generic': '服务器拒绝了请求：{text}',
  'error.timeout': '服务器没有响应，请重试。',
  'error.offline': '尚未连接到服务器，请稍候再试。',
  'error.connection_lost': '服务器响应之前连接已断开，请重试。',
  'error.code': '错误 {code}',

  'rejoin.failed': '无法以“{name}”的身份回到房间 {room}。',
  'close.slow_consumer': '由于本页面接收过慢，服务器断开了连接。',
  'close.replaced': '聊天已在另一个标签页或窗口中继续，此页面已停止连接。刷新页面即可在这里继续聊天。',

  'room.title': '房间 {room}',
  'room.members_one': '1 位成员',
  'room.members_other': '{n} 位成员',
  'room.members': '成员',
  'room.you': '我',
  'room.leave': '离开',
  'room.offline': '连接已断开，恢复之前无法发送消息。',
  'room.empty': '还没有消息，打个招呼吧！',
  'room.log': '消息',
  'room.jump': '有新消息',
  'room.earlier': '之前的消息',
  'room.missing': '部分消息可能缺失',

  'composer.label': '消息',
  'composer.placeholder': '输入消息…',
  'composer.send': '发送',
  'composer.hint': 'Enter 发送 · Shift+Enter 换行',
  'composer.counter': '{n}/{max}',
  'composer.counter_sr': '已输入 {n} / {max} 个字符',

  'notice.self_create': '你创建了房间 {room}，把房间号分享给朋友吧。',
  'notice.self_join': '你加入了房间 {room}。',
  'notice.self_rejoin': '已重新连接，你回到了房间 {room}。',
  'notice.self_recreate': '已重新连接：服务器重启过，已重新创建房间 {room}。',
  'notice.self_lost': '连接已断开，正在尝试重新连接…',
  'notice.create': '{name} 创建了房间',
  'notice.join': '{name} 加入了房间',
  'notice.left': '{name} 离开了房间',
  'notice.disconnected': '{name} 断开了连接',
  'notice.slow_consumer': '{name} 因网络过慢被断开',
};

const dictionaries = { en, zh };
export const languages = [
  { code: 'en', label: 'English', htmlLang: 'en' },
  { code: 'zh', label: '中文', htmlLang: 'zh-CN' },
];
const STORAGE_KEY = 'roomcast.lang';

let current = 'en';
const listeners = new Set();

function stored() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

/** The language to start with: the saved choice, else the browser's first Chinese or English. */
export function detectLanguage(nav = navigator) {
  const saved = stored();
  if (saved && dictionaries[saved]) return saved;
  const wanted = nav.languages && nav.languages.length ? nav.languages : [nav.language || 'en'];
  for (const tag of wanted) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (dictionaries[base]) return base;
  }
  return 'en';
}

export function language() {
  return current;
}

/** The locale to format times with. */
export function locale() {
  return languages.find((l) => l.code === current).htmlLang;
}

export function setLanguage(code, { remember = false } = {}) {
  if (!dictionaries[code]) return;
  current = code;
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, code);
    } catch {
      // Private windows may refuse storage; the switch still works for this page.
    }
  }
  document.documentElement.lang = locale();
  for (const listener of listeners) listener(code);
}

export function onLanguageChange(listener) {
  listeners.add(listener);
}

export function has(key) {
  return key in dictionaries[current];
}

/** The text for `key` with {placeholders} filled in; English, then the key, as fallbacks. */
export function t(key, params = {}) {
  const template = dictionaries[current][key] ?? en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) =>
    Object.hasOwn(params, name) ? String(params[name]) : whole,
  );
}

const ATTRIBUTES = [
  ['placeholder', 'data-i18n-placeholder'],
  ['aria-label', 'data-i18n-aria-label'],
  ['title', 'data-i18n-title'],
];

/** Fills every data-i18n (text) and data-i18n-placeholder / -aria-label / -title (attributes). */
export function translateStatic(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const [attribute, marker] of ATTRIBUTES) {
    for (const el of root.querySelectorAll(`[${marker}]`)) {
      el.setAttribute(attribute, t(el.getAttribute(marker)));
    }
  }
}
