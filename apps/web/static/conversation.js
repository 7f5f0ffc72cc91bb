// One conversation of the chat page (a channel or a private one): its messages kept sorted by
// server time and deduplicated by msgid, so history pages and live messages merge with no gap
// and no double, whatever order they arrive in. No DOM here: tests/js runs it under node.
import { compareIds } from './irc.js';

/** Names compare case-insensitively (the gateways advertise CASEMAPPING=ascii). */
export const fold = (name) => name.replace(/[A-Z]/g, (c) => c.toLowerCase());

const STREAM_ID = /^\d+-\d+$/;
// A live QUIT or NICK goes out once for all its user's channels, without the id that each
// channel's history gives it: its copy in a history page is known by its text, this close.
const SAME_EVENT_MS = 10000;
// Reactions to messages not held yet (a history page newer than theirs): kept for this many.
const PENDING_REACTIONS = 500;

/** True if message `a` goes before `b`: by server time, then by stream id. */
export function before(a, b) {
  if (a.time !== b.time) return a.time < b.time;
  if (a.id && b.id && STREAM_ID.test(a.id) && STREAM_ID.test(b.id)) return compareIds(a.id, b.id) < 0;
  return false;
}

export class Buffer {
  constructor(name) {
    this.name = name;
    this.kind = /^[#&]/.test(name) ? 'channel' : 'query';
    this.messages = []; // sorted by (time, id)
    this.ids = new Set();
    this.members = new Map(); // folded nick -> {nick, prefix, away}
    this.topic = '';
    this.typing = new Map(); // nick -> timer
    this.complete = false; // no older history left
    this.readAt = null; // draft/read-marker: server time (ms) read up to; null: never said
    this.separatorAt = null; // the marker as it was when the conversation was opened
    this.joined = this.kind === 'query';
    this.loadingOlder = false;
    this.requests = []; // CHATHISTORY subcommands sent, answered in order (one batch each)
    this.pendingReactions = new Map(); // msgid -> reactions to it, until it is held
  }

  get oldestId() { return this.messages.find((m) => m.id)?.id ?? null; }
  get newestId() { return [...this.messages].reverse().find((m) => m.id)?.id ?? null; }

  /** Messages of others after the read marker (none said yet: every one held). `me` is
   * {nick, account}: another device of the account has another nick, and its messages are
   * ours too. */
  unreadCount(me) {
    return this.messages.filter((m) => this.isUnread(m, me, this.readAt)).length;
  }

  isUnread(m, me, after) {
    const mine = fold(m.nick) === fold(me.nick) || (m.account && me.account && fold(m.account) === fold(me.account));
    return m.kind !== 'info' && !m.deleted && !mine && (after === null || m.time > after);
  }

  /** The index of the first message to put below the "new messages" line, or -1. */
  separatorIndex(me) {
    if (this.separatorAt === null) return -1;
    return this.messages.findIndex((m) => this.isUnread(m, me, this.separatorAt));
  }

  /** The server time of the newest message from the server (what a MARKREAD sets), or null. */
  get newestTime() { return [...this.messages].reverse().find((m) => m.id)?.time ?? null; }

  /** Move the marker forward only (the spec's markers never go back). True if it moved. */
  markRead(time) {
    if (time === null || (this.readAt !== null && time <= this.readAt)) return false;
    this.readAt = time;
    return true;
  }

  /** Insert a message in order; false if it was already there (same msgid, or an event seen
   * live without one). Reactions that waited for it are counted on it. */
  add(message) {
    if (message.id) {
      if (this.ids.has(message.id)) return false;
      this.ids.add(message.id);
      const live = message.kind === 'info' && this.messages.find((m) => m.kind === 'info' && !m.id
        && m.text === message.text && Math.abs(m.time - message.time) < SAME_EVENT_MS);
      if (live) { live.id = message.id; return false; }
    }
    let i = this.messages.length;
    while (i > 0 && before(message, this.messages[i - 1])) i -= 1;
    this.messages.splice(i, 0, message);
    const waiting = message.id ? this.pendingReactions.get(message.id) : null;
    if (waiting) {
      this.pendingReactions.delete(message.id);
      message.reactionWords = waiting;
      countReactions(message);
    }
    return true;
  }

  /** A reaction ({time, nick, emoji, add}: a +draft/react or +draft/unreact) to message
   * `parent`, live or from a history page, in whatever order they come: for each nick and
   * emoji the latest word stands (so one replayed twice counts once), and the message's
   * `reactions` (emoji -> folded nick -> nick) are what those words leave. False when the
   * message is not held yet: the reaction waits for it. */
  react(parent, reaction) {
    const m = this.messages.find((x) => x.id === parent);
    let words = m?.reactionWords ?? this.pendingReactions.get(parent);
    if (!words) {
      words = new Map();
      if (m) m.reactionWords = words;
      else {
        if (this.pendingReactions.size >= PENDING_REACTIONS) {
          this.pendingReactions.delete(this.pendingReactions.keys().next().value); // the oldest
        }
        this.pendingReactions.set(parent, words);
      }
    }
    const key = `${fold(reaction.nick)} ${reaction.emoji}`;
    if ((words.get(key)?.time ?? -Infinity) > reaction.time) return Boolean(m); // a newer word stands
    words.set(key, reaction);
    if (m) countReactions(m);
    return Boolean(m);
  }

  /** The time for a reaction made here now: after every one counted on message `parent`, so
   * that it is the last word whatever this clock says against the server's. */
  reactionTime(parent, now) {
    const words = this.messages.find((x) => x.id === parent)?.reactionWords ?? new Map();
    return Math.max(now, ...[...words.values()].map((r) => r.time + 1));
  }
}

/** A message's `reactions` from its words: who gives each emoji now. */
function countReactions(m) {
  m.reactions = new Map();
  for (const { nick, emoji, add } of m.reactionWords.values()) {
    if (!add) continue;
    const who = m.reactions.get(emoji) ?? new Map();
    who.set(fold(nick), nick);
    m.reactions.set(emoji, who);
  }
}
