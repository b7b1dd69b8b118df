// A tiny element builder. Strings become text nodes, so user-supplied text can never turn into
// markup: there is no innerHTML anywhere in this client.

/**
 * h('li', { class: 'x', dataset: { id: 1 }, 'aria-label': 'y' }, 'text', childNode, ...)
 * Attributes are set with setAttribute (or dataset); children are appended as nodes or text.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'text') el.textContent = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** A stable, readable colour for a name's avatar (hue from a string hash). */
export function avatarHue(name) {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}

/** The first letter of a name, upper-cased, for its avatar. */
export function initial(name) {
  const first = Array.from(name.trim())[0] ?? '?';
  return first.toLocaleUpperCase();
}
