// The chat page's logic without a browser: IRC parsing and formatting, and a conversation
// merging history pages and live messages. Run by tests/unit/test_web_js.py (node --test).
import test from 'node:test';
import assert from 'node:assert/strict';

import { parse, format, compareIds, IrcConnection } from '../../apps/web/static/irc.js';
import { Buffer, fold } from '../../apps/web/static/conversation.js';

test('a line with tags, a source and a trailing parameter', () => {
  const msg = parse('@time=2026-11-22T12:00:00.000Z;msgid=17-0;+typing=active :bob!b@h PRIVMSG #chan :hello  there');
  assert.deepEqual(msg.tags, { time: '2026-11-22T12:00:00.000Z', msgid: '17-0', '+typing': 'active' });
  assert.equal(msg.nick, 'bob');
  assert.equal(msg.command, 'PRIVMSG');
  assert.deepEqual(msg.params, ['#chan', 'hello  there']);
});

test('tag values are unescaped, and a tag without value is true', () => {
  assert.deepEqual(parse('@a=b\\sc\\:d\\\\e;flag :x CMD').tags, { a: 'b c;d\\e', flag: true });
});

test('format puts a trailing colon only where needed and escapes tags', () => {
  assert.equal(format('PRIVMSG', ['#c', 'hi there']), 'PRIVMSG #c :hi there');
  assert.equal(format('PRIVMSG', ['#c', ':)']), 'PRIVMSG #c ::)');
  assert.equal(format('NICK', ['bob']), 'NICK bob');
  assert.equal(format('TAGMSG', ['#c'], { '+typing': 'active' }), '@+typing=active TAGMSG #c');
  assert.equal(format('PRIVMSG', ['#c', 'no\r\nQUIT injection']), 'PRIVMSG #c :no  QUIT injection');
  assert.equal(format('TAGMSG', ['#c'], { '+x': 'a b;c' }), '@+x=a\\sb\\:c TAGMSG #c');
});

test('stream ids compare as numbers', () => {
  assert.ok(compareIds('10-2', '10-10') < 0);
  assert.ok(compareIds('11-0', '10-10') > 0);
  assert.equal(compareIds('5-1', '5-1'), 0);
});

const msg = (ms, seq = 0) => ({ id: `${ms}-${seq}`, time: ms, nick: 'n', text: `${ms}-${seq}`, kind: 'privmsg' });

test('history pages and live messages merge in order, each message once', () => {
  const b = new Buffer('#Chan');
  for (const m of [msg(50), msg(51), msg(52)]) b.add(m); // live
  for (const m of [msg(45), msg(48), msg(50), msg(51)]) b.add(m); // an older page overlapping
  for (const m of [msg(52), msg(53), msg(52, 1)]) b.add(m); // gap filled after a reconnect
  assert.deepEqual(b.messages.map((m) => m.id), ['45-0', '48-0', '50-0', '51-0', '52-0', '52-1', '53-0']);
  assert.equal(b.oldestId, '45-0');
  assert.equal(b.newestId, '53-0');
  assert.equal(b.add(msg(48)), false);
});

test('messages without an id (notices of the page itself) stay where they came', () => {
  const b = new Buffer('#c');
  b.add(msg(10));
  b.add({ id: null, time: 20, nick: '', text: 'x joined', kind: 'info' });
  b.add({ id: null, time: 20, nick: '', text: 'x joined', kind: 'info' });
  b.add(msg(15));
  assert.deepEqual(b.messages.map((m) => m.text), ['10-0', '15-0', 'x joined', 'x joined']);
});

test('a history page draws the events seen live once: by id, or by text and time for a QUIT', () => {
  const b = new Buffer('#c');
  const event = (id, time, text) => ({ id, time, nick: 'x', text, kind: 'info' });
  b.add(event('30-0', 30, 'x joined')); // live, with the id the history gives it
  b.add(event(null, 40000, 'x quit (bye)')); // live: one QUIT for all channels, no id
  b.add(event('30-0', 30, 'x joined')); // a page replaying both
  b.add(event('40100-0', 40100, 'x quit (bye)'));
  b.add(event('90000-0', 90000, 'x quit (bye)')); // another QUIT, later: a line of its own
  assert.deepEqual(b.messages.map((m) => [m.id, m.text]),
    [['30-0', 'x joined'], ['40100-0', 'x quit (bye)'], ['90000-0', 'x quit (bye)']]);
  assert.equal(b.newestId, '90000-0');
});

test('reactions: for each nick and emoji the latest word, whatever order they come in, waiting for their message', () => {
  const b = new Buffer('#c');
  const r = (time, nick, emoji, add = true) => ({ time, nick, emoji, add });
  const shown = () => Object.fromEntries([...b.messages[0].reactions].map(([e, who]) => [e, [...who.values()].sort()]));
  // The newest page first: a removal, and a reaction, to a message of an older page.
  assert.equal(b.react('10-0', r(30, 'Ann', '🦆', false)), false);
  assert.equal(b.react('10-0', r(25, 'bob', '👍')), false);
  b.add(msg(10)); // the older page brings the message, then its older reactions
  b.react('10-0', r(20, 'ann', '🦆'));
  b.react('10-0', r(25, 'bob', '👍')); // again (pages overlapping, a reload): once
  b.react('10-0', r(26, 'Cy', '👍'));
  assert.deepEqual(shown(), { '👍': ['Cy', 'bob'] }); // ann's duck taken back after it was given
  assert.equal(b.pendingReactions.size, 0);
  // Made here now, with a clock behind the server's: still the last word.
  const t = b.reactionTime('10-0', 5);
  assert.equal(t, 31);
  b.react('10-0', r(t, 'cy', '👍', false));
  assert.deepEqual(shown(), { '👍': ['bob'] });
  // Reactions to messages never loaded are kept for a bounded number of them.
  for (let i = 0; i < 600; i += 1) b.react(`${100 + i}-0`, r(100 + i, 'spam', '🦆'));
  assert.equal(b.pendingReactions.size, 500);
  assert.equal(b.pendingReactions.has('100-0'), false);
});

test('names fold ASCII letters only', () => {
  assert.equal(fold('#CanaDuck[]'), '#canaduck[]');
  assert.equal(new Buffer('bob').kind, 'query');
  assert.equal(new Buffer('#bob').kind, 'channel');
});

test('registered under a variant, the page says so, then names the nick it gets back', () => {
  const irc = new IrcConnection('ws://127.0.0.1/irc', { account: 'hank', token: 't' }, { reconnect: false });
  const sent = [];
  const statuses = [];
  irc.send = (command, params = []) => { sent.push([command, ...params].join(' ')); return true; };
  irc.emit = (type, detail) => { if (type === 'status') statuses.push(`${detail.state} ${irc.nick}`); };
  irc.receive(parse(':irc.test 433 * hank :Nickname is already in use'));
  assert.match(irc.nick, /^hank_\d+$/);
  assert.equal(sent.at(-1), `NICK ${irc.nick}`);
  irc.receive(parse(`:irc.test 001 ${irc.nick} :Welcome`));
  clearInterval(irc.reclaim);
  irc.receive(parse(`:${irc.nick}!~hank@host NICK hank`));
  assert.equal(irc.nick, 'hank');
  assert.match(statuses[0], /^online hank_\d+$/);
  assert.equal(statuses.at(-1), 'online hank');
});

test('unread: messages of others after the read marker, which only moves forward', () => {
  const b = new Buffer('#c');
  const me = { nick: 'kim_12', account: 'kim' };
  b.add(msg(10));
  b.add({ ...msg(11), nick: 'kim', account: 'kim' }); // the account's other device
  b.add({ ...msg(12), nick: 'Kim_12' });
  b.add({ id: null, time: 13, nick: '', text: 'x joined', kind: 'info' });
  assert.equal(b.unreadCount(me), 1); // no marker said yet: every message of others held
  assert.equal(b.separatorIndex(me), -1); // ... and no line
  assert.equal(b.markRead(10), true);
  b.add(msg(20));
  b.add(msg(21));
  assert.equal(b.unreadCount(me), 2);
  assert.equal(b.markRead(9), false); // never back
  assert.equal(b.readAt, 10);
  b.separatorAt = b.readAt;
  assert.equal(b.messages[b.separatorIndex(me)].time, 20);
  assert.equal(b.newestTime, 21);
  b.markRead(b.newestTime);
  assert.equal(b.unreadCount(me), 0);
});

test('typing: active at most every 3 s, paused and done once each, nothing after a message', async () => {
  const { TypingSender } = await import('../../apps/web/static/typing.js');
  let now = 0;
  const timers = [];
  const sent = [];
  const typing = new TypingSender((target, value) => sent.push(`${now} ${target} ${value}`), {
    now: () => now,
    setTimer: (fn, ms) => { const t = { at: now + ms, fn }; timers.push(t); return t; },
    clearTimer: (t) => { const i = timers.indexOf(t); if (i >= 0) timers.splice(i, 1); },
  });
  const advance = (to) => {
    for (;;) {
      const due = timers.filter((t) => t.at <= to).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      timers.splice(timers.indexOf(due), 1);
      now = due.at;
      due.fn();
    }
    now = to;
  };
  typing.input('#c', 'h');
  advance(1000); typing.input('#c', 'he');
  advance(3100); typing.input('#c', 'hel');
  advance(3500); typing.input('#c', ''); // cleared 0.5 s after an "active": "done" waits
  advance(7000);
  assert.deepEqual(sent, ['0 #c active', '3000 #c active', '6000 #c done']);
  sent.length = 0;
  typing.input('#c', 'hi');
  advance(20000); // stopped typing, text kept: "paused" once
  assert.deepEqual(sent, ['9000 #c active', '12000 #c paused']);
  sent.length = 0;
  typing.input('#c', '/join #x'); // a command is not typing a message: "done"
  typing.input('bob', 'hello');
  typing.sent('bob'); // the message itself ends it
  advance(60000);
  assert.deepEqual(sent, ['20000 #c done', '20000 bob active']);
});
