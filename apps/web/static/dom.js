// Small DOM helpers shared by the two pages. Text always goes in as text (textContent),
// never as HTML: names, messages and events come from other people.

/** An element with attributes (`class`, `data-*`, aria...) and children (nodes or text). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** "12:03:04" for a unix time in seconds or milliseconds (local time). */
export function clock(at) {
  const ms = at > 1e11 ? at : at * 1000;
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

/** A number for display: "–" when missing. */
export function num(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return Number(value).toLocaleString('en', { maximumFractionDigits: digits,
                                              minimumFractionDigits: digits });
}
