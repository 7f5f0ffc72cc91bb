// IRCv3 draft/multiline for the page: a typed text cut into the lines of a batch, the server's
// limits, and a received batch's lines put back together. No DOM: tests/js runs it in node.

const encoder = new TextEncoder();

/** UTF-8 length of a text: what IRC's limits count. */
export const byteLength = (text) => encoder.encode(text).length;

/** The capability's value ("max-bytes=4096,max-lines=100") as {maxBytes, maxLines}; null
 * without a usable max-bytes (the spec requires it). A missing max-lines is no limit. */
export function multilineLimits(value) {
  const tokens = new Map(String(value ?? '').split(',').map((item) => item.split('=')));
  const maxBytes = Number(tokens.get('max-bytes'));
  const maxLines = tokens.has('max-lines') ? Number(tokens.get('max-lines')) : Infinity;
  if (!Number.isInteger(maxBytes) || maxBytes < 1 || !(maxLines >= 1)) return null;
  return { maxBytes, maxLines };
}

/** The bytes of a message's lines as the spec counts them: each line's, and one per line feed
 * joining two lines (a concat line joins without one). */
export function multilineBytes(lines) {
  return lines.reduce((sum, line, i) => sum + byteLength(line.text) + (i > 0 && !line.concat ? 1 : 0), 0);
}

/** The text of a batch's lines: joined by line feeds, a concat line without one. */
export function joinLines(lines) {
  return lines.map((line, i) => (i > 0 && !line.concat ? '\n' : '') + line.text).join('');
}

/**
 * A typed text as the lines of a message, [{text, concat}]: one per line of the text (blank
 * ones kept, trailing ones dropped), and a line over `budget` bytes cut into pieces sent with
 * the concat tag. As the spec recommends, a piece ends after a space where it has one (so the
 * words stay apart when the lines are shown one by one), never inside a character.
 */
export function splitText(text, budget) {
  const lines = [];
  const body = String(text).replace(/\r\n?/g, '\n').replace(/\s+$/u, '');
  for (const line of body.split('\n')) {
    let rest = line;
    let concat = false;
    while (byteLength(rest) > budget) {
      const piece = fitting(rest, budget);
      lines.push({ text: piece, concat });
      rest = rest.slice(piece.length);
      concat = true;
    }
    lines.push({ text: rest, concat });
  }
  return lines;
}

/** The longest start of `text` within `budget` bytes, cut after its last space if it has one. */
function fitting(text, budget) {
  let end = 0;
  let used = 0;
  for (const char of text) { // whole code points: never half of a character
    const size = byteLength(char);
    if (used + size > budget) break;
    used += size;
    end += char.length;
  }
  const space = text.lastIndexOf(' ', end - 1);
  return space > 0 ? text.slice(0, space + 1) : text.slice(0, end || [...text][0].length);
}
