// draft/multiline in the page without a browser: a typed text cut into a batch's lines (by
// line breaks, long lines on word boundaries, never inside a character), the server's limits,
// the bytes the spec counts, a batch put back together, and the lines the page sends.
import test from 'node:test';
import assert from 'node:assert/strict';

import { parse, IrcConnection } from '../../apps/web/static/irc.js';
import { byteLength, joinLines, multilineBytes, multilineLimits, splitText } from '../../apps/web/static/multiline.js';

test('a text is one line per line break, blank lines kept, trailing ones dropped', () => {
  assert.deepEqual(splitText('one\n\ntwo\r\nthree\n\n  ', 100), [
    { text: 'one', concat: false }, { text: '', concat: false }, { text: 'two', concat: false },
    { text: 'three', concat: false }]);
  assert.deepEqual(splitText('single', 100), [{ text: 'single', concat: false }]);
});

test('a long line is cut after a space into concat pieces that join back to it', () => {
  const line = 'lorem ipsum dolor sit amet consectetur adipiscing elit';
  const lines = splitText(line, 20);
  assert.ok(lines.length > 2);
  assert.equal(lines[0].concat, false);
  assert.ok(lines.slice(1).every((l) => l.concat));
  assert.ok(lines.every((l) => byteLength(l.text) <= 20));
  assert.ok(lines.slice(0, -1).every((l) => l.text.endsWith(' '))); // words stay apart, shown apart
  assert.equal(joinLines(lines), line);
});

test('a word longer than a line is cut between characters, never inside one', () => {
  const word = 'é'.repeat(15) + '🦆'.repeat(5); // 2-byte and 4-byte characters
  const lines = splitText(word, 9);
  assert.ok(lines.every((l) => byteLength(l.text) <= 9 && l.text.length > 0));
  assert.ok(lines.every((l) => !/[\uD800-\uDBFF]$/.test(l.text))); // no half of a surrogate pair
  assert.equal(joinLines(lines), word);
});

test('the bytes counted are the lines and one per line feed, none for a concat', () => {
  assert.equal(multilineBytes([{ text: 'ab', concat: false }, { text: '', concat: false },
    { text: 'é', concat: true }]), 2 + 1 + 0 + 2);
});

test('the capability value gives the limits, and none without max-bytes', () => {
  assert.deepEqual(multilineLimits('max-bytes=4096,max-lines=100'), { maxBytes: 4096, maxLines: 100 });
  assert.deepEqual(multilineLimits('max-bytes=40000'), { maxBytes: 40000, maxLines: Infinity });
  assert.deepEqual(multilineLimits('future=1,max-lines=3,max-bytes=10'), { maxBytes: 10, maxLines: 3 });
  assert.equal(multilineLimits(''), null);
  assert.equal(multilineLimits('max-bytes=zero'), null);
  assert.equal(multilineLimits('max-bytes=10,max-lines=0'), null);
});

test('a batch is sent as the spec writes it: client tags on its start, concat tags on its lines', () => {
  const irc = new IrcConnection('ws://127.0.0.1/irc', { account: 'kim', token: 't' }, { reconnect: false });
  const sent = [];
  irc.socket = { readyState: 1, send: (line) => sent.push(line) };
  globalThis.WebSocket ??= { OPEN: 1 };
  irc.sendBatch('PRIVMSG', '#c', [{ text: 'hello', concat: false }, { text: '', concat: false },
    { text: 'how is ', concat: false }, { text: 'everyone?', concat: true }], { '+draft/reply': '1-0' });
  const ref = parse(sent[0]).params[0].slice(1);
  assert.deepEqual(sent, [
    `@+draft/reply=1-0 BATCH +${ref} draft/multiline #c`,
    `@batch=${ref} PRIVMSG #c hello`,
    `@batch=${ref} PRIVMSG #c :`,
    `@batch=${ref} PRIVMSG #c :how is `,
    `@batch=${ref};draft/multiline-concat PRIVMSG #c everyone?`,
    `BATCH -${ref}`]);
  irc.sendBatch('PRIVMSG', '#c', [{ text: 'again', concat: false }]);
  assert.notEqual(parse(sent.at(-3)).params[0], `+${ref}`); // a new reference for each batch
});
