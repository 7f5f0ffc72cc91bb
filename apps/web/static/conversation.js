// One conversation of the chat page (a channel or a private one): its messages kept sorted by
// server time and deduplicated by msgid, so history pages and live messages merge with no gap
// and no double, whatever order they arrive in. No DOM here: tests/js runs it under node.
import { compareIds } from './irc.js';

/** Names compare case-insensitively (the gateways advertise CASEMAPPING=ascii). */
export const fold = (name) => name.replace(/[A-Z]/g, (c) => c.toLowerCase());

const STREAM_ID = /^\d+-\d+$/;

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

  /** Insert a message in order; false if it was already there (same msgid). */
  add(message) {
    if (message.id) {
      if (this.ids.has(message.id)) return false;
      this.ids.add(message.id);
    }
    let i = this.messages.length;
    while (i > 0 && before(message, this.messages[i - 1])) i -= 1;
    this.messages.splice(i, 0, message);
    return true;
  }
}
