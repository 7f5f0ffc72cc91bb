// IRC for the browser: message parsing and formatting (RFC 1459 framing with IRCv3 message
// tags) and a connection over WebSocket (IRCv3 WebSocket: subprotocol text.ircv3.net, one
// line per text frame, no CRLF) that negotiates capabilities, logs in with SASL PLAIN and
// reconnects by itself.

const TAG_ESCAPES = { ':': ';', s: ' ', '\\': '\\', r: '\r', n: '\n' };

function unescapeTag(value) {
  return value.replace(/\\(.?)/g, (_, c) => (c in TAG_ESCAPES ? TAG_ESCAPES[c] : c));
}

function escapeTag(value) {
  return String(value).replace(/[\\; \r\n]/g, (c) => ({ '\\': '\\\\', ';': '\\:', ' ': '\\s',
                                                           '\r': '\\r', '\n': '\\n' })[c]);
}

/** One IRC line -> {tags, source, nick, command, params}. */
export function parse(line) {
  let rest = line;
  const tags = {};
  if (rest.startsWith('@')) {
    const end = rest.indexOf(' ');
    for (const item of rest.slice(1, end).split(';')) {
      if (!item) continue;
      const eq = item.indexOf('=');
      if (eq < 0) tags[item] = true;
      else tags[item.slice(0, eq)] = unescapeTag(item.slice(eq + 1));
    }
    rest = rest.slice(end + 1).trimStart();
  }
  let source = '';
  if (rest.startsWith(':')) {
    const end = rest.indexOf(' ');
    source = rest.slice(1, end);
    rest = rest.slice(end + 1).trimStart();
  }
  const params = [];
  while (rest.length) {
    if (rest.startsWith(':')) { params.push(rest.slice(1)); break; }
    const end = rest.indexOf(' ');
    if (end < 0) { params.push(rest); break; }
    params.push(rest.slice(0, end));
    rest = rest.slice(end + 1).trimStart();
  }
  const command = (params.shift() ?? '').toUpperCase();
  const nick = source.split('!')[0];
  return { tags, source, nick, command, params };
}

/** A line from a command, its parameters (the last one may hold spaces) and client tags. */
export function format(command, params = [], tags = {}) {
  const parts = [];
  const tagText = Object.entries(tags)
    .map(([k, v]) => (v === true || v === '' ? k : `${k}=${escapeTag(v)}`)).join(';');
  if (tagText) parts.push(`@${tagText}`);
  parts.push(command);
  params.forEach((param, i) => {
    const text = String(param).replace(/[\r\n\0]/g, ' ');
    const last = i === params.length - 1;
    if (last && (text === '' || text.includes(' ') || text.startsWith(':'))) parts.push(`:${text}`);
    else parts.push(text);
  });
  return parts.join(' ');
}

/** Compare two message ids of the history ("<ms>-<seq>", a Redis Stream id). */
export function compareIds(a, b) {
  const [ma, sa] = a.split('-').map(Number);
  const [mb, sb] = b.split('-').map(Number);
  return ma - mb || (sa || 0) - (sb || 0);
}

/** base64 of a UTF-8 string (SASL PLAIN payloads). */
function base64(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** The capabilities the page uses when the server offers them. With draft/event-playback a
 * history page holds the channel's joins, parts, topics... and reactions too, so that a reload
 * draws what was seen live. */
export const WANTED_CAPS = ['sasl', 'message-tags', 'server-time', 'echo-message', 'batch',
  'draft/chathistory', 'chathistory', 'draft/event-playback', 'away-notify', 'account-tag',
  'multi-prefix', 'labeled-response', 'draft/read-marker',
  'draft/message-redaction', 'draft/multiline'];

/**
 * An IRC session over WebSocket. Events (EventTarget): `status` {state, detail}, `registered`
 * {nick, caps}, `message` (a parsed line), `closed`. `login` is {account, token}: SASL PLAIN
 * with the session token as the password (never the account's password).
 */
export class IrcConnection extends EventTarget {
  constructor(url, login, { reconnect = true } = {}) {
    super();
    this.url = url;
    this.login = login;
    this.reconnect = reconnect;
    this.caps = new Set();
    this.available = new Map();
    this.nick = login.account;
    this.registered = false;
    this.retries = 0;
    this.stopped = false;
    this.socket = null;
    this.isupport = {};
    this.batches = 0;
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  open() {
    this.stopped = false;
    this.caps = new Set();
    this.available = new Map();
    this.registered = false;
    this.emit('status', { state: 'connecting' });
    const socket = new WebSocket(this.url, ['text.ircv3.net']);
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.send('CAP', ['LS', '302']);
      this.send('NICK', [this.nick]);
      this.send('USER', [this.login.account, '0', '*', this.login.account]);
    });
    socket.addEventListener('message', (e) => {
      const text = typeof e.data === 'string' ? e.data : '';
      for (const line of text.split(/\r?\n/)) if (line) this.receive(parse(line));
    });
    socket.addEventListener('close', (e) => this.closed(socket, e));
  }

  closed(socket, event) {
    if (socket !== this.socket) return;
    this.socket = null;
    const wasRegistered = this.registered;
    this.registered = false;
    this.emit('closed', { code: event.code, wasRegistered });
    if (this.stopped || !this.reconnect) {
      this.emit('status', { state: 'offline' });
      return;
    }
    if (wasRegistered) this.retries = 0;
    const delay = Math.min(8000, 250 * 2 ** this.retries++) * (0.75 + Math.random() / 2);
    this.emit('status', { state: 'reconnecting', detail: `in ${(delay / 1000).toFixed(1)} s` });
    setTimeout(() => { if (!this.stopped) this.open(); }, delay);
  }

  close() {
    this.stopped = true;
    if (this.socket && this.socket.readyState <= 1) {
      try { this.send('QUIT', ['bye']); } catch { /* closing anyway */ }
      this.socket.close(1000);
    }
  }

  send(command, params = [], tags = {}) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(format(command, params, tags));
    return true;
  }

  has(cap) { return this.caps.has(cap); }

  /** One message of several lines as a draft/multiline batch: `lines` are [{text, concat}],
   * `tags` the message's client tags, which the spec puts on the opening BATCH. */
  sendBatch(command, target, lines, tags = {}) {
    const ref = `ml${(this.batches += 1)}`;
    if (!this.send('BATCH', [`+${ref}`, 'draft/multiline', target], tags)) return false;
    for (const line of lines) {
      this.send(command, [target, line.text], line.concat ? { batch: ref, 'draft/multiline-concat': true } : { batch: ref });
    }
    return this.send('BATCH', [`-${ref}`]);
  }

  historyCap() {
    return this.has('draft/chathistory') || this.has('chathistory');
  }

  receive(msg) {
    switch (msg.command) {
      case 'PING': this.send('PONG', msg.params); return;
      case 'CAP': this.onCap(msg); return;
      case 'AUTHENTICATE':
        if (msg.params[0] === '+') {
          const { account, token } = this.login;
          this.send('AUTHENTICATE', [base64(`${account}\0${account}\0${token}`)]);
        }
        return;
      case '903': this.send('CAP', ['END']); return; // SASL success
      case '902': case '904': case '905': case '906': case '908':
        this.emit('status', { state: 'error', detail: `login refused (${msg.params.at(-1)})` });
        this.stopped = true;
        this.send('QUIT', ['login refused']);
        return;
      case '001':
        this.nick = msg.params[0];
        this.registered = true;
        this.reclaimNick();
        this.emit('status', { state: 'online' });
        this.emit('registered', { nick: this.nick, caps: [...this.caps] });
        break;
      case '005':
        for (const token of msg.params.slice(1, -1)) {
          const [k, v = true] = token.split('=');
          this.isupport[k] = v;
        }
        break;
      case '433': // nick in use while registering: take a variant (the account stays the same)
        if (!this.registered) {
          this.nick = `${this.login.account}_${Math.floor(Math.random() * 1000)}`;
          this.send('NICK', [this.nick]);
        }
        break;
      case 'NICK': // ours: a reclaimed account nick, or a /nick; the status names it
        if (msg.nick === this.nick) {
          this.nick = msg.params[0];
          if (this.registered) this.emit('status', { state: 'online' });
        }
        break;
      default:
        break;
    }
    this.emit('message', msg);
  }

  /** Registered under a variant (the account's nick still held by a link that died with its
   * gateway, until the server lets it go): ask for the account's own nick again now and then. */
  reclaimNick() {
    clearInterval(this.reclaim);
    if (this.nick.toLowerCase() === this.login.account.toLowerCase()) return;
    this.reclaim = setInterval(() => {
      if (!this.registered || this.nick.toLowerCase() === this.login.account.toLowerCase()) {
        clearInterval(this.reclaim);
      } else {
        this.send('NICK', [this.login.account]);
      }
    }, 10000);
  }

  onCap(msg) {
    const sub = msg.params[1];
    const more = msg.params[2] === '*';
    const list = msg.params.at(-1);
    if (sub === 'LS') {
      for (const item of list.split(' ').filter(Boolean)) {
        const [name, value = ''] = item.split(/=(.*)/s);
        this.available.set(name, value);
      }
      if (more) return;
      const wanted = WANTED_CAPS.filter((c) => this.available.has(c));
      if (wanted.length) this.send('CAP', ['REQ', wanted.join(' ')]);
      else this.send('CAP', ['END']);
    } else if (sub === 'ACK') {
      for (const name of list.split(' ').filter(Boolean)) {
        if (name.startsWith('-')) this.caps.delete(name.slice(1));
        else this.caps.add(name);
      }
      if (this.caps.has('sasl') && !this.registered) this.send('AUTHENTICATE', ['PLAIN']);
      else if (!this.registered) this.send('CAP', ['END']);
    } else if (sub === 'NAK') {
      if (!this.registered) this.send('CAP', ['END']);
    }
  }
}
