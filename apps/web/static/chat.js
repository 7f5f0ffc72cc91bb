// The chat page: an IRC client over WebSocket (irc.js) plus the users service's login.
// Conversations ("buffers") keep their messages sorted by server time and deduplicated by
// msgid, so history fetched by CHATHISTORY and live messages merge with no gap and no double.
import { el, clock } from './dom.js';
import { IrcConnection } from './irc.js';
import { Buffer, fold } from './conversation.js';
import { TypingSender } from './typing.js';
import { byteLength, joinLines, multilineBytes, multilineLimits, splitText } from './multiline.js';

const SESSION_KEY = 'canaduck.session';
const HISTORY_PAGE = 50;
// IRCv3 typing: others are taken as typing for 6 s after "active", 30 s after "paused".
const TYPING_SHOWN_MS = new Map([['active', 6000], ['paused', 30000]]);

const $ = (id) => document.getElementById(id);
const isChannel = (name) => /^[#&]/.test(name);

// --- session (the users service) ---------------------------------------------------------

function savedSession() {
  try { return JSON.parse(sessionStorage.getItem(SESSION_KEY)); } catch { return null; }
}

function saveSession(session) {
  if (session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(SESSION_KEY);
}

async function api(path, { method = 'GET', body, token } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  if (response.status !== 204) {
    try { data = await response.json(); } catch { data = null; }
  }
  return { ok: response.ok, status: response.status, data };
}

// --- state ---------------------------------------------------------------------------------

const state = {
  session: null,
  irc: null,
  buffers: new Map(), // folded name -> Buffer
  current: null,
  batches: new Map(), // ref -> {type, target, messages, reactions, count, start, outer, lines}
  names: new Map(), // channel -> members being listed (353 until 366)
  channelList: [],
  typing: new TypingSender((target, value) => {
    if (state.irc?.registered && state.irc.has('message-tags')) state.irc.send('TAGMSG', [target], { '+typing': value });
  }),
  away: false,
  reply: null, // {id, target}: the message the next one answers
  search: null, // {query, target, next}: the search shown, and where its older results start
};

function buffer(name, create = true) {
  const key = fold(name);
  let found = state.buffers.get(key);
  if (!found && create) {
    found = new Buffer(name);
    state.buffers.set(key, found);
    // A channel's marker comes with its JOIN; a private conversation's is asked for.
    if (found.kind === 'query' && state.irc?.registered) askMarker(found);
    renderBuffers();
  }
  return found;
}

function rememberChannels() {
  if (!state.session) return;
  state.session.channels = [...state.buffers.values()].filter((b) => b.kind === 'channel' && b.joined)
    .map((b) => b.name);
  state.session.current = state.current;
  saveSession(state.session);
}

// --- rendering -------------------------------------------------------------------------------

function setStatus(stateName, text) {
  const status = $('conn-status');
  status.dataset.state = stateName;
  status.textContent = text;
}

function renderBuffers() {
  const list = $('buffers');
  const items = [...state.buffers.values()].sort((a, b) => (a.kind === b.kind ? (fold(a.name) < fold(b.name) ? -1 : 1)
    : (a.kind === 'channel' ? -1 : 1)));
  list.replaceChildren(...items.map((b) => {
    const current = state.current && fold(state.current) === fold(b.name);
    return el('li', {},
      el('button', { type: 'button', class: `buffer${current ? ' current' : ''}`,
                     'data-buffer': b.name, 'aria-current': current ? 'true' : null,
                     onclick: () => show(b.name) },
        b.name, unreadBadge(b)));
  }));
}

function me() { return { nick: state.irc?.nick ?? '', account: state.session?.account ?? null }; }

function unreadBadge(b) {
  const count = b.unreadCount(me());
  return count ? el('span', { class: 'unread', 'data-count': count, text: ` (${count} new)` }) : null;
}

function messageItem(m, b) {
  const attrs = { 'data-msgid': m.id ?? null, 'data-nick': m.nick, class: `msg ${m.kind}` };
  if (m.kind === 'info') return el('li', attrs, el('time', { text: clock(m.time) }), ' ', el('span', { class: 'text', text: m.text }));
  const who = m.kind === 'action' ? `* ${m.nick}` : m.nick;
  const stamp = el('time', { datetime: new Date(m.time).toISOString(), text: clock(m.time) });
  const nick = el('span', { class: 'nick', text: m.kind === 'notice' ? `-${who}-` : (m.kind === 'action' ? who : `<${who}>`) });
  if (m.deleted) {
    attrs.class += ' deleted';
    return el('li', attrs, stamp, ' ', nick, ' ', el('span', { class: 'text', text: m.deleted }));
  }
  return el('li', attrs, m.replyTo ? parentLine(b, m.replyTo) : null, stamp, ' ', nick, ' ', el('span', { class: 'text', text: m.text }),
    m.id && state.irc?.has('message-tags')
      ? el('button', { type: 'button', class: 'reply', 'aria-label': `Reply to ${m.nick}`, onclick: () => replyTo(m) }, 'Reply') : null,
    ...reactionButtons(m),
    mayDelete(b, m) ? el('button', { type: 'button', class: 'delete', title: 'Delete this message for everyone',
                                     'aria-label': `Delete the message of ${m.nick}`, onclick: deleteClicked }, 'Delete') : null);
}

function renderLog({ keepBottomOffset = false } = {}) {
  const log = $('log');
  const b = state.current ? buffer(state.current, false) : null;
  const fromBottom = log.scrollHeight - log.scrollTop;
  const atBottom = fromBottom - log.clientHeight < 40;
  const items = b ? b.messages.map((m) => messageItem(m, b)) : [];
  const line = b ? b.separatorIndex(me()) : -1;
  if (line >= 0) items.splice(line, 0, el('li', { class: 'new-line', role: 'separator', text: 'New messages' }));
  log.replaceChildren(...items);
  if (keepBottomOffset) log.scrollTop = log.scrollHeight - fromBottom;
  else if (atBottom) log.scrollTop = log.scrollHeight;
  const older = $('older-button');
  older.hidden = !b || (!historyAvailable() && b.kind !== 'channel');
  if (b) {
    older.disabled = b.complete || b.loadingOlder;
    older.textContent = b.complete ? 'Beginning of the history' : (b.loadingOlder ? 'Loading…' : 'Load older messages');
  }
}

function renderMembers() {
  const b = state.current ? buffer(state.current, false) : null;
  const members = b ? [...b.members.values()].sort((x, y) => (fold(x.nick) < fold(y.nick) ? -1 : 1)) : [];
  $('member-count').textContent = b && b.kind === 'channel' ? `(${members.length})` : '';
  $('members').replaceChildren(...members.map((m) => el('li', { 'data-nick': m.nick, 'data-away': m.away ? 'true' : 'false' },
    el('button', { type: 'button', class: 'member', title: `Private message to ${m.nick}`,
                   onclick: () => openQuery(m.nick) },
      `${m.prefix ?? ''}${m.nick}`),
    m.away ? el('span', { class: 'away', text: ' away' }) : el('span', { class: 'here', text: ' online' }))));
}

function renderTyping() {
  const b = state.current ? buffer(state.current, false) : null;
  const nicks = b ? [...b.typing.keys()] : [];
  $('typing').textContent = nicks.length ? `${nicks.join(', ')} ${nicks.length > 1 ? 'are' : 'is'} typing…` : '';
}

function renderHeader() {
  const b = state.current ? buffer(state.current, false) : null;
  $('title').textContent = b ? b.name : 'No conversation';
  $('topic').textContent = b?.topic ?? '';
  $('part-button').hidden = !b || b.kind !== 'channel';
  $('search-form').hidden = !b;
  $('search-q').placeholder = b ? `Search ${b.name}` : 'Search this conversation';
  const online = state.irc?.registered;
  $('message').disabled = !b || !online;
  $('send-button').disabled = !b || !online;
  $('message').placeholder = b ? `Message ${b.name}` : 'Join a channel first (or /join #name, /msg nick text, /away reason)';
}

function show(name) {
  if (!state.current || fold(state.current) !== fold(name)) { closeSearch(); cancelReply(); }
  const switched = !state.current || fold(state.current) !== fold(name);
  state.current = name;
  const b = buffer(name);
  if (switched) b.separatorAt = b.readAt; // the line stays where it was until another is shown
  markRead(b);
  renderBuffers();
  renderHeader();
  renderLog();
  $('log').scrollTop = $('log').scrollHeight;
  renderMembers();
  renderTyping();
  rememberChannels();
  if (b.kind === 'query' && !b.messages.length && !b.complete) loadLatest(b); // a channel's comes with its JOIN
}

function changed(b, { older = false } = {}) {
  if (state.current && fold(state.current) === fold(b.name)) {
    renderLog({ keepBottomOffset: older });
    markRead(b);
  }
  renderBuffers();
}

// --- desktop notifications (mentions and private messages) -----------------------------------

// The browser asks the user only after a click on "Notify me of mentions", never by itself.
const notifications = () => ('Notification' in window ? window.Notification : null);

function renderNotifyButton() {
  const api = notifications();
  const button = $('notify-button');
  button.hidden = !api || api.permission === 'denied';
  button.disabled = api?.permission === 'granted';
  button.textContent = api?.permission === 'granted' ? 'Notifications on' : 'Notify me of mentions';
}

async function askNotifications() {
  const api = notifications();
  if (api && api.permission === 'default') await api.requestPermission();
  renderNotifyButton();
}

/** A word of the text is the nick (in any case): a mention. */
function mentions(text, nick) {
  const words = text.split(/[^\p{L}\p{N}_\-[\]\\`^{}|]+/u);
  return words.some((w) => fold(w) === fold(nick));
}

function notify(b, m) {
  const api = notifications();
  if (!api || api.permission !== 'granted' || mine(m) || m.kind === 'info') return;
  if (reading(b) || (b.kind === 'channel' && !mentions(m.text, state.irc.nick))) return;
  const title = b.kind === 'channel' ? `${m.nick} in ${b.name}` : `${m.nick} (private)`;
  const shown = new api(title, { body: m.text, tag: m.id ?? undefined });
  shown.onclick = () => { window.focus(); show(b.name); shown.close(); };
}

// --- read markers (draft/read-marker) ---------------------------------------------------------

/** The user reads a conversation when it is shown and the window is in front of them. */
function reading(b) {
  return state.current && fold(state.current) === fold(b.name)
    && document.visibilityState === 'visible' && document.hasFocus();
}

/** Read up to the newest message: tell the server (which tells the account's other devices). */
function markRead(b) {
  if (!reading(b) || !b.markRead(b.newestTime)) return;
  if (state.irc?.registered && state.irc.has('draft/read-marker')) {
    state.irc.send('MARKREAD', [b.name, `timestamp=${new Date(b.readAt).toISOString()}`]);
  }
  renderBuffers();
}

function askMarker(b) {
  if (state.irc?.has('draft/read-marker')) state.irc.send('MARKREAD', [b.name]);
}

function markerFrom(msg) { // MARKREAD <target> timestamp=<time> | *
  const b = buffer(msg.params[0], false);
  const value = msg.params[1] ?? '*';
  if (!b || !value.startsWith('timestamp=')) return;
  const time = Date.parse(value.slice('timestamp='.length));
  if (Number.isNaN(time)) return;
  const current = state.current && fold(state.current) === fold(b.name);
  // Shown before its marker came (just joined): the line goes where the marker was.
  if (current && b.separatorAt === null) b.separatorAt = time;
  if (b.markRead(time) || current) { renderBuffers(); if (current) renderLog(); }
}

/** A line of the page's own in conversation `b`; for an IRC event, `msg` gives its msgid and
 * server time, by which its copy in a history page is known. */
function info(b, text, msg = null) {
  b.add(infoItem(text, msg));
  changed(b);
}

function infoItem(text, msg) {
  const time = msg?.tags.time ? Date.parse(msg.tags.time) : Date.now();
  return { id: msg?.tags.msgid ?? null, time, nick: msg?.nick ?? '', text, kind: 'info' };
}

/** What the conversation says of a channel event (draft/event-playback keeps these). */
function eventText(msg) {
  const p = msg.params;
  switch (msg.command) {
    case 'JOIN': return `${msg.nick} joined`;
    case 'PART': return `${msg.nick} left`;
    case 'KICK': return `${p[1]} was kicked by ${msg.nick}`;
    case 'QUIT': return `${msg.nick} quit (${p[0] ?? ''})`;
    case 'NICK': return `${msg.nick} is now known as ${p[0]}`;
    case 'TOPIC': return `${msg.nick} set the topic: ${p[1] ?? ''}`;
    case 'MODE': return `${msg.nick} set mode ${p.slice(1).join(' ')}`;
    default: return null;
  }
}

// --- replies (the +draft/reply client tag) ----------------------------------------------------

/** The line above a reply: the message it answers, when this conversation holds it. */
function parentLine(b, id) {
  const parent = b.messages.find((x) => x.id === id);
  const quoted = !parent ? 'a message not loaded' : (parent.deleted ? 'a deleted message'
    : `${parent.nick}: ${oneLine(parent.text, 80)}`);
  return el('span', { class: 'parent', text: `↪ in reply to ${quoted}` });
}

/** A quote of a message on one line: its line breaks as spaces, at most `length` characters. */
function oneLine(text, length) {
  const flat = text.replace(/\n+/g, ' ');
  return flat.length > length ? `${flat.slice(0, length)}…` : flat;
}

function replyTo(m) {
  state.reply = { id: m.id, target: state.current };
  $('reply-text').textContent = `Replying to ${m.nick}: ${oneLine(m.text, 60)}`;
  $('reply-bar').hidden = false;
  $('message').focus();
}

function cancelReply() {
  state.reply = null;
  $('reply-bar').hidden = true;
}

// --- reactions (the +draft/react client tag, in a TAGMSG replying to the message) -------------

const QUICK_REACTION = '👍';

/** One button per reaction (its count; pressed when one of ours), and a quick 👍. */
function reactionButtons(m) {
  if (!m.id || !state.irc?.has('message-tags')) return [];
  const reactions = m.reactions ?? new Map();
  const buttons = [...reactions].map(([emoji, who]) => {
    const ours = who.has(fold(state.irc.nick));
    return el('button', { type: 'button', class: 'react', 'data-emoji': emoji, 'aria-pressed': String(ours),
                          'aria-label': `${emoji} from ${[...who.values()].join(', ')}`, onclick: () => react(m, emoji, !ours) },
      `${emoji} ${who.size}`);
  });
  if (!reactions.has(QUICK_REACTION)) {
    buttons.push(el('button', { type: 'button', class: 'react', 'data-emoji': QUICK_REACTION, 'aria-pressed': 'false',
                                'aria-label': `React ${QUICK_REACTION}`, onclick: () => react(m, QUICK_REACTION, true) }, QUICK_REACTION));
  }
  return buttons;
}

function react(m, emoji, add) {
  if (!state.current) return;
  state.irc?.send('TAGMSG', [state.current], { [add ? '+draft/react' : '+draft/unreact']: emoji, '+draft/reply': m.id });
  const b = buffer(state.current, false);
  if (!b) return; // counted whether or not the server echoes it
  if (b.react(m.id, { time: b.reactionTime(m.id, Date.now()), nick: state.irc.nick, emoji, add })) changed(b, { older: true });
}

/** A TAGMSG's reaction ({parent, time, nick, emoji, add}), or null when it carries none. */
function reactionOf(msg) {
  const emoji = msg.tags['+draft/react'] ?? msg.tags['+draft/unreact'];
  const parent = msg.tags['+draft/reply'] ?? msg.tags['+reply'];
  if (typeof emoji !== 'string' || !emoji || emoji.length > 32 || typeof parent !== 'string') return null;
  return { parent, time: msg.tags.time ? Date.parse(msg.tags.time) : Date.now(), nick: msg.nick, emoji,
           add: '+draft/react' in msg.tags };
}

// --- deleting messages (draft/message-redaction) ----------------------------------------------

const OPERATOR = /[~&@]/; // founder, admin, operator: may take others' messages out of a channel

function mine(m) {
  return fold(m.nick) === fold(state.irc?.nick ?? '')
    || Boolean(m.account && state.session && fold(m.account) === fold(state.session.account));
}

function mayDelete(b, m) {
  if (!m.id || !state.irc?.has('draft/message-redaction')) return false;
  if (mine(m)) return true;
  return b.kind === 'channel' && OPERATOR.test(b.members.get(fold(state.irc.nick))?.prefix ?? '');
}

function deleteClicked(event) {
  // The id is read from the line itself, as it is drawn.
  const msgid = event.currentTarget.closest('li')?.dataset.msgid;
  if (!msgid || !state.current) return;
  if (!window.confirm('Delete this message for everyone?')) return;
  state.irc?.send('REDACT', [state.current, msgid]);
}

/** REDACT <target> <msgid> [reason]: the message is gone from the history; the view says so. */
function redacted(msg) {
  const [target, msgid, reason] = msg.params;
  const b = buffer(isChannel(target) || fold(target) !== fold(state.irc.nick) ? target : msg.nick, false);
  const m = b?.messages.find((x) => x.id === msgid);
  if (!m) return;
  const by = fold(msg.nick) === fold(m.nick) ? '' : ` by ${msg.nick}`;
  m.deleted = `message deleted${by}${reason ? ` (${reason})` : ''}`;
  changed(b, { older: true });
}

/** MODE <channel> <changes> <args>: keep the members' status prefixes (who is an operator). */
function channelMode(msg) {
  const b = buffer(msg.params[0], false);
  if (!b) return;
  const isupport = state.irc.isupport;
  const [, letters = 'ov', symbols = '@+'] = /^\((\w*)\)(.*)$/.exec(isupport.PREFIX ?? '') ?? [];
  const [listModes = 'beI', always = 'k', whenSet = 'l'] = String(isupport.CHANMODES ?? '').split(',');
  const args = msg.params.slice(2);
  let adding = true;
  for (const c of msg.params[1] ?? '') {
    if (c === '+' || c === '-') { adding = c === '+'; continue; }
    const status = letters.indexOf(c);
    if (status >= 0) {
      const member = b.members.get(fold(args.shift() ?? ''));
      if (!member) continue;
      const held = new Set(member.prefix);
      if (adding) held.add(symbols[status]); else held.delete(symbols[status]);
      member.prefix = [...symbols].filter((s) => held.has(s)).join(''); // highest first
    } else if (listModes.includes(c) || always.includes(c) || (adding && whenSet.includes(c))) {
      args.shift();
    }
  }
  renderMembers();
  info(b, eventText(msg), msg);
}

// --- history ---------------------------------------------------------------------------------

function historyAvailable() { return Boolean(state.irc?.historyCap()); }

function requestHistory(b, subcommand, ...args) {
  if (!state.irc?.registered) return;
  if (historyAvailable()) {
    b.requests.push(subcommand);
    state.irc.send('CHATHISTORY', [subcommand, b.name, ...args]);
  } else if (b.kind === 'channel') {
    httpHistory(b, subcommand, args);
  }
}

function loadLatest(b) {
  const newest = b.newestId;
  if (newest) requestHistory(b, 'AFTER', `msgid=${newest}`, String(HISTORY_PAGE * 2));
  else requestHistory(b, 'LATEST', '*', String(HISTORY_PAGE));
}

function loadOlder(b) {
  if (b.complete || b.loadingOlder) return;
  const oldest = b.oldestId;
  b.loadingOlder = true;
  renderLog();
  if (oldest) requestHistory(b, 'BEFORE', `msgid=${oldest}`, String(HISTORY_PAGE));
  else requestHistory(b, 'LATEST', '*', String(HISTORY_PAGE));
}

/** Without the chathistory capability: the messages service's HTTP API, same semantics. */
async function httpHistory(b, subcommand, args) {
  const params = new URLSearchParams({ limit: String(HISTORY_PAGE) });
  const ref = (args[0] ?? '').replace(/^msgid=/, '');
  if (subcommand === 'BEFORE' && ref) params.set('before', ref);
  if (subcommand === 'AFTER' && ref) params.set('after', ref);
  const answer = await api(`/api/messages/${encodeURIComponent(b.name)}?${params}`, { token: state.session?.token });
  b.loadingOlder = false;
  if (!answer.ok) { info(b, `history unavailable (${answer.status})`); return; }
  const records = answer.data?.messages ?? [];
  const fresh = records.map((r) => ({ id: r.id, time: r.time, nick: (r.from ?? '').split('!')[0],
                                      text: r.text, kind: r.command === 'NOTICE' ? 'notice' : 'privmsg' }));
  mergeHistory(b, fresh, subcommand, records.length);
}

/** An entry of a history page that is not a message (draft/event-playback): a reaction is
 * counted on its message, a channel event is a line of the conversation; none is acted on (a
 * TOPIC replayed is not the topic now). */
function historyEvent(batch, msg) {
  if (msg.command === 'TAGMSG') {
    const reaction = reactionOf(msg);
    if (reaction) batch.reactions.push(reaction);
    return;
  }
  const text = eventText(msg);
  if (text) batch.messages.push(infoItem(text, msg));
}

function mergeHistory(b, messages, subcommand, count, reactions = []) {
  let added = 0;
  for (const m of messages) if (b.add(m)) added += 1;
  for (const { parent, ...reaction } of reactions) b.react(parent, reaction); // their messages first
  if ((subcommand === 'BEFORE' || subcommand === 'LATEST') && count < HISTORY_PAGE) b.complete = true;
  b.loadingOlder = false;
  changed(b, { older: subcommand === 'BEFORE' });
  if (subcommand === 'AFTER' && count >= HISTORY_PAGE * 2) loadLatest(b); // more to catch up
  return added;
}

// --- search (the messages service: GET /api/messages/search/...) ------------------------------

const SEARCH_PAGE = 20;

/** The search route of a conversation: a channel's, or the private one of the session with the
 * other party (its account when one of its messages named it, otherwise its nick, which an
 * account's nick is). */
function searchPath(b) {
  if (b.kind === 'channel') return `/api/messages/search/${encodeURIComponent(b.name)}`;
  return `/api/messages/search/private/${encodeURIComponent(b.account ?? b.name)}`;
}

/** The text with each searched word marked (whole words, in any case, as the server matches). */
function highlighted(text, terms) {
  const wanted = new Set(terms);
  const parts = text.split(/([\p{L}\p{N}_]+)/u);
  return parts.map((part, i) => (i % 2 === 1 && wanted.has(part.normalize('NFKC').toLowerCase())
    ? el('mark', { text: part }) : part));
}

function searchItem(record, terms) {
  const time = record.time;
  const nick = (record.from ?? '').split('!')[0];
  return el('li', { 'data-msgid': record.id, class: 'msg privmsg' },
    el('time', { datetime: new Date(time).toISOString(), text: `${new Date(time).toLocaleDateString()} ${clock(time)}` }), ' ',
    el('span', { class: 'nick', text: `<${nick}>` }), ' ',
    el('span', { class: 'text' }, ...highlighted(record.text ?? '', terms)));
}

async function search(query, before = null) {
  const b = state.current && buffer(state.current, false);
  if (!b || !query.trim()) return;
  const params = new URLSearchParams({ q: query, limit: String(SEARCH_PAGE) });
  if (before) params.set('before', before);
  const panel = $('search-results');
  panel.hidden = false;
  $('search-title').textContent = `Search in ${b.name}: “${query}”`;
  $('search-status').textContent = 'Searching…';
  $('search-more').hidden = true;
  if (!before) $('search-list').replaceChildren();
  state.search = { query, target: b.name };
  const answer = await api(`${searchPath(b)}?${params}`, { token: state.session?.token });
  if (state.search?.query !== query || state.search?.target !== b.name) return; // superseded
  if (!answer.ok) {
    $('search-status').textContent = answer.data?.error ?? `Search failed (${answer.status}).`;
    return;
  }
  const { messages, next_before: next, terms } = answer.data;
  $('search-list').append(...messages.map((m) => searchItem(m, terms)));
  const shown = $('search-list').children.length;
  const found = shown ? `${shown} message${shown > 1 ? 's' : ''} found, newest first` : 'No message found';
  // A search looks at a bounded number of candidates: say so when it stopped before the end.
  $('search-status').textContent = next && messages.length < SEARCH_PAGE
    ? `${found} so far: “Older results” looks further back.` : `${found}.`;
  state.search.next = next;
  $('search-more').hidden = !next;
}

function closeSearch() {
  state.search = null;
  $('search-results').hidden = true;
  $('search-list').replaceChildren();
  $('search-q').value = '';
}

// --- IRC events ------------------------------------------------------------------------------

function messageFrom(msg) {
  const text = msg.params[1] ?? '';
  const action = /^\x01ACTION (.*)\x01?$/.exec(text);
  const time = msg.tags.time ? Date.parse(msg.tags.time) : Date.now();
  const parent = msg.tags['+draft/reply'] ?? msg.tags['+reply'];
  return { id: msg.tags.msgid ?? null, time, nick: msg.nick, account: msg.tags.account ?? null,
           replyTo: typeof parent === 'string' && parent ? parent : null,
           text: action ? action[1] : text,
           kind: action ? 'action' : (msg.command === 'NOTICE' ? 'notice' : 'privmsg') };
}

function conversationOf(msg) {
  const target = msg.params[0];
  if (isChannel(target)) return target;
  return fold(msg.nick) === fold(state.irc.nick) ? target : msg.nick; // own echo: the recipient
}

function stopTyping(b, nick) {
  clearTimeout(b.typing.get(nick));
  if (b.typing.delete(nick)) renderTyping();
}

/** A draft/multiline batch received whole: one message, its tags (msgid, time...) those of the
 * batch's start, its text the lines joined. Inside a chathistory batch it is one of the page's
 * history; otherwise it is handled as any message that arrives. */
function multilineDone(done) {
  const { batch: outer, ...tags } = done.start.tags;
  const whole = { tags, source: done.start.source, nick: done.start.nick, command: done.command ?? 'PRIVMSG',
                  params: [done.target, joinLines(done.lines)] };
  const history = outer ? state.batches.get(outer) : null;
  if (history) history.messages.push(messageFrom(whole));
  else if (!outer) onMessage(whole);
}

function onMessage(msg) {
  const irc = state.irc;
  const batch = msg.tags.batch ? state.batches.get(msg.tags.batch) : null;
  if (batch?.type === 'chathistory') {
    // The page's entries, whatever they are (a multiline message one: its BATCH start).
    if (msg.command !== 'BATCH' || msg.params[0]?.startsWith('+')) batch.count += 1;
    if (!['PRIVMSG', 'NOTICE', 'BATCH'].includes(msg.command)) { historyEvent(batch, msg); return; }
  }
  switch (msg.command) {
    case 'BATCH': {
      const ref = msg.params[0].slice(1);
      if (msg.params[0].startsWith('+')) {
        state.batches.set(ref, { type: msg.params[1], target: msg.params[2], messages: [], reactions: [],
                                 count: 0, lines: [], start: msg, outer: msg.tags.batch ?? null });
      } else {
        const done = state.batches.get(ref);
        state.batches.delete(ref);
        if (done && done.type === 'draft/multiline' && done.target) multilineDone(done);
        if (done && done.type === 'chathistory' && done.target) {
          const b = buffer(done.target);
          mergeHistory(b, done.messages, b.requests.shift() ?? 'LATEST', done.count, done.reactions);
        }
      }
      return;
    }
    case 'PRIVMSG': case 'NOTICE': {
      if (!msg.nick || msg.nick.includes('.') && !msg.source.includes('!')) {
        if (!batch) info(serverBuffer(), `${msg.nick || 'server'}: ${msg.params.at(-1)}`);
        return;
      }
      if (batch?.type === 'draft/multiline') {
        batch.lines.push({ text: msg.params[1] ?? '', concat: 'draft/multiline-concat' in msg.tags });
        batch.command = msg.command;
        return;
      }
      if (batch) { batch.messages.push(messageFrom(msg)); return; }
      const b = buffer(conversationOf(msg));
      if (b.kind === 'query' && msg.tags.account && fold(msg.nick) === fold(b.name)) b.account = msg.tags.account;
      stopTyping(b, msg.nick);
      const m = messageFrom(msg);
      if (b.add(m)) { changed(b); notify(b, m); }
      return;
    }
    case 'TAGMSG': {
      const reaction = reactionOf(msg);
      if (reaction && !batch) {
        const b = buffer(conversationOf(msg), false);
        const { parent, ...rest } = reaction;
        if (b?.react(parent, rest)) changed(b, { older: true });
      }
      const typing = msg.tags['+typing'] ?? msg.tags['+draft/typing'];
      if (!typing || batch || mine({ nick: msg.nick, account: msg.tags.account })) return; // not our own devices'
      const b = buffer(conversationOf(msg), isChannel(msg.params[0]));
      if (!b) return;
      clearTimeout(b.typing.get(msg.nick));
      const shown = TYPING_SHOWN_MS.get(typing);
      if (!shown) b.typing.delete(msg.nick); // done, or a value we do not know
      else b.typing.set(msg.nick, setTimeout(() => stopTyping(b, msg.nick), shown));
      renderTyping();
      return;
    }
    case 'JOIN': {
      const b = buffer(msg.params[0]);
      if (fold(msg.nick) === fold(irc.nick)) {
        b.joined = true;
        irc.send('WHO', [b.name]);
        loadLatest(b); // the latest page, or after a reconnect everything since the newest held
        rememberChannels();
        if (!state.current || fold(state.current) === fold(b.name) || !state.buffers.get(fold(state.current))?.joined) show(b.name);
        renderHeader();
      } else {
        b.members.set(fold(msg.nick), { nick: msg.nick, prefix: '', away: false });
        info(b, eventText(msg), msg);
        renderMembers();
      }
      return;
    }
    case 'PART': case 'KICK': {
      const channel = msg.params[0];
      const who = msg.command === 'KICK' ? msg.params[1] : msg.nick;
      const b = buffer(channel, false);
      if (!b) return;
      if (fold(who) === fold(irc.nick)) {
        state.buffers.delete(fold(channel));
        if (state.current && fold(state.current) === fold(channel)) {
          state.current = [...state.buffers.values()][0]?.name ?? null;
          if (state.current) show(state.current);
          else { renderHeader(); renderLog(); renderMembers(); }
        }
        renderBuffers();
        rememberChannels();
      } else {
        b.members.delete(fold(who));
        stopTyping(b, who);
        info(b, eventText(msg), msg);
        renderMembers();
      }
      return;
    }
    case 'QUIT':
      for (const b of state.buffers.values()) {
        if (b.members.delete(fold(msg.nick))) { stopTyping(b, msg.nick); info(b, eventText(msg), msg); }
      }
      renderMembers();
      return;
    case 'NICK':
      for (const b of state.buffers.values()) {
        const m = b.members.get(fold(msg.nick));
        if (!m) continue;
        b.members.delete(fold(msg.nick)); m.nick = msg.params[0]; b.members.set(fold(m.nick), m);
        if (b.kind === 'channel') info(b, eventText(msg), msg);
      }
      renderMembers();
      return;
    case 'AWAY':
      for (const b of state.buffers.values()) {
        const m = b.members.get(fold(msg.nick));
        if (m) m.away = Boolean(msg.params[0]);
      }
      renderMembers();
      return;
    case 'TOPIC': {
      const b = buffer(msg.params[0]);
      b.topic = msg.params[1] ?? '';
      info(b, eventText(msg), msg);
      renderHeader();
      return;
    }
    case 'MARKREAD': markerFrom(msg); return;
    case 'REDACT': if (msg.params[1]) redacted(msg); return;
    case 'MODE': if (isChannel(msg.params[0] ?? '')) channelMode(msg); return;
    case '332': buffer(msg.params[1]).topic = msg.params[2] ?? ''; renderHeader(); return;
    case '353': { // RPL_NAMREPLY: me, symbol, channel, names
      const list = state.names.get(fold(msg.params[2])) ?? [];
      for (const item of (msg.params[3] ?? '').split(' ').filter(Boolean)) {
        const [, prefix, nick] = /^([~&@%+]*)(.*)$/.exec(item.split('!')[0]);
        list.push({ nick, prefix, away: false });
      }
      state.names.set(fold(msg.params[2]), list);
      return;
    }
    case '366': { // RPL_ENDOFNAMES
      const b = buffer(msg.params[1], false);
      const list = state.names.get(fold(msg.params[1])) ?? [];
      state.names.delete(fold(msg.params[1]));
      if (b) {
        const before = b.members;
        b.members = new Map(list.map((m) => [fold(m.nick), { ...m, away: before.get(fold(m.nick))?.away ?? false }]));
        renderMembers();
      }
      return;
    }
    case '352': { // RPL_WHOREPLY: me, channel, user, host, server, nick, flags, hops+realname
      const b = buffer(msg.params[1], false);
      const m = b?.members.get(fold(msg.params[5]));
      if (m) { m.away = (msg.params[6] ?? '').startsWith('G'); renderMembers(); }
      return;
    }
    case '305': case '306': // RPL_UNAWAY / RPL_NOWAWAY
      state.away = msg.command === '306';
      $('away-button').setAttribute('aria-pressed', String(state.away));
      $('away-button').textContent = state.away ? 'Back (away now)' : 'Set away';
      return;
    case '321': state.channelList = []; return;
    case '322': state.channelList.push({ name: msg.params[1], users: msg.params[2], topic: msg.params[3] ?? '' }); return;
    case '323': renderChannelList(); return;
    case 'FAIL': {
      if (msg.params[0] === 'REDACT') { // FAIL REDACT <code> <target> [msgid] :description
        const target = msg.params[2];
        const b = (target && buffer(target, false)) || serverBuffer();
        info(b, `Could not delete the message: ${msg.params.at(-1)}`);
        return;
      }
      if (msg.params[0] === 'CHATHISTORY') {
        const b = msg.params[2] ? buffer(msg.params[2], false) : null;
        if (b) { b.requests.shift(); b.loadingOlder = false; info(b, `history: ${msg.params.at(-1)}`); }
      }
      return;
    }
    case 'ERROR':
      setStatus('down', `server closed the link: ${msg.params[0] ?? ''}`);
      return;
    default:
      if (/^[45]\d\d$/.test(msg.command)) {
        info(serverBuffer(true), `${msg.params.slice(1).join(' ')}`);
      }
  }
}

function serverBuffer(preferCurrent = true) {
  if (preferCurrent && state.current) return buffer(state.current);
  return buffer('*server*');
}

function renderChannelList() {
  const list = $('channel-list');
  if (!state.channelList.length) {
    list.replaceChildren(el('li', { class: 'empty', text: 'No channel yet: join one to create it.' }));
    return;
  }
  list.replaceChildren(...state.channelList.sort((a, b) => b.users - a.users).map((c) => el('li', {},
    el('button', { type: 'button', class: 'link', onclick: () => join(c.name) }, `${c.name} (${c.users})`),
    c.topic ? el('span', { class: 'topic', text: ` ${c.topic}` }) : null)));
}

// --- actions ---------------------------------------------------------------------------------

function join(name) {
  const channel = name.startsWith('#') || name.startsWith('&') ? name : `#${name}`;
  // In it already (another device of this account joined it, say): the server answers a JOIN
  // to a channel one is in with nothing, so show it here.
  const known = state.buffers.get(fold(channel));
  if (known?.joined) show(known.name);
  else state.irc?.send('JOIN', [channel]);
}

function openQuery(nick) {
  if (fold(nick) === fold(state.irc?.nick ?? '')) return;
  const b = buffer(nick);
  b.joined = true;
  show(nick);
}

function sendText(text) {
  const irc = state.irc;
  if (!irc?.registered) return;
  const command = /^\/(\w+)\s*(.*)$/.exec(text);
  if (command) {
    const [, name, rest] = command;
    switch (name.toLowerCase()) {
      case 'join': join(rest.trim()); return;
      case 'part': case 'leave': if (state.current && isChannel(state.current)) irc.send('PART', [state.current]); return;
      case 'msg': case 'query': {
        const [, nick, body] = /^(\S+)\s*(.*)$/.exec(rest) ?? [];
        if (!nick) return;
        openQuery(nick);
        if (body) sendText(body);
        return;
      }
      case 'away': irc.send('AWAY', rest ? [rest] : []); return;
      case 'back': irc.send('AWAY', []); return;
      case 'me': if (state.current) send(state.current, `\x01ACTION ${rest}\x01`); return;
      case 'topic': if (state.current) irc.send('TOPIC', [state.current, rest]); return;
      default: info(serverBuffer(), `unknown command /${name}`); return;
    }
  }
  return state.current ? send(state.current, text) : false;
}

/** Bytes of text one PRIVMSG line may carry once the server has put our nick!user@host in
 * front of it: the spec's reckoning, with its safety margin and room for a host of 63. */
function lineBudget(target) {
  const nick = byteLength(state.irc?.nick ?? '');
  const user = byteLength(state.session?.account ?? '') + 1;
  return 512 - 14 - 10 - nick - user - 63 - byteLength(target);
}

/** Send a message; false when it cannot go (too long for the server's multiline limits: the
 * text stays in the box). Several lines (or one too long for a line) go as one draft/multiline
 * batch when the server offers it, else as one message per line. */
function send(target, text) {
  const irc = state.irc;
  // A reply names the message it answers (the spec's tag, and its draft name that clients use).
  const reply = state.reply && fold(state.reply.target) === fold(target) && irc.has('message-tags')
    ? { '+draft/reply': state.reply.id, '+reply': state.reply.id } : {};
  const lines = splitText(text, lineBudget(target));
  const limits = irc.has('draft/multiline') && irc.has('batch') ? multilineLimits(irc.available.get('draft/multiline')) : null;
  if (lines.length === 1) {
    irc.send('PRIVMSG', [target, lines[0].text], reply);
  } else if (limits) {
    if (multilineBytes(lines) > limits.maxBytes || lines.length > limits.maxLines) {
      info(buffer(target), `Not sent: a message may hold ${limits.maxBytes} bytes in ${limits.maxLines} lines at most.`);
      return false;
    }
    irc.sendBatch('PRIVMSG', target, lines, reply);
  } else {
    lines.filter((line) => line.text).forEach((line, i) => irc.send('PRIVMSG', [target, line.text], i ? {} : reply));
  }
  cancelReply();
  state.typing.sent(target);
  if (!irc.has('echo-message')) {
    const b = buffer(target);
    b.add({ id: null, time: Date.now(), nick: irc.nick, text: joinLines(lines), kind: 'privmsg' });
    changed(b);
  }
  return true;
}

/** The message box grows with its lines, up to six, then scrolls. */
function fitBox() {
  const box = $('message');
  box.rows = Math.min(6, Math.max(1, box.value.split('\n').length));
}

function typing(value) {
  if (state.irc?.registered && state.irc.has('message-tags') && state.current) state.typing.input(state.current, value);
}

// --- connecting ------------------------------------------------------------------------------

function connect(session) {
  state.session = session;
  $('auth').hidden = true;
  $('app').hidden = false;
  $('me').textContent = session.account;
  renderNotifyButton();
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/irc`;
  const irc = new IrcConnection(url, { account: session.account, token: session.token });
  state.irc = irc;
  irc.addEventListener('status', (e) => {
    const { state: s, detail } = e.detail;
    const text = { connecting: 'connecting…', online: `online as ${irc.nick}`, reconnecting: `connection lost: reconnecting ${detail ?? ''}`,
                   offline: 'offline', error: detail ?? 'error' }[s] ?? s;
    setStatus(s === 'online' ? 'live' : (s === 'connecting' ? 'connecting' : 'down'), text);
    renderHeader();
  });
  irc.addEventListener('registered', () => {
    // Back in every channel (a reconnection may land on another gateway), then fill the gap
    // since the newest message we hold: CHATHISTORY AFTER, deduplicated by msgid.
    const channels = new Set([...state.buffers.values()].filter((b) => b.kind === 'channel').map((b) => b.name));
    for (const name of session.channels ?? []) channels.add(name);
    for (const name of channels) {
      buffer(name);
      irc.send('JOIN', [name]);
    }
    for (const b of state.buffers.values()) {
      if (b.kind === 'query') askMarker(b);
      if (b.kind === 'query' && b.messages.length) loadLatest(b);
    }
    if (session.current && !state.current) state.current = session.current;
    if (state.away) irc.send('AWAY', ['away']);
    renderHeader();
  });
  irc.addEventListener('message', (e) => onMessage(e.detail));
  irc.open();
}

async function start() {
  const session = savedSession();
  if (!session?.token) return;
  const me = await api('/api/users/me', { token: session.token });
  if (me.ok) connect(session);
  else if (me.status === 401) saveSession(null);
  else $('auth-error').textContent = `The users service cannot be reached (${me.status}).`;
}

async function authenticate(action) {
  const account = $('account').value.trim();
  const password = $('password').value;
  const error = $('auth-error');
  error.textContent = '';
  if (!account || !password) { error.textContent = 'Give an account name and a password.'; return; }
  if (action === 'register') {
    const created = await api('/api/users/register', { method: 'POST', body: { account, password } });
    if (!created.ok) { error.textContent = created.data?.error ?? `Could not create the account (${created.status}).`; return; }
  }
  const login = await api('/api/users/login', { method: 'POST', body: { account, password } });
  $('password').value = ''; // the page keeps the token, never the password
  if (!login.ok) { error.textContent = login.status === 401 ? 'Wrong account or password.' : (login.data?.error ?? `Login failed (${login.status}).`); return; }
  const session = { account: login.data.account, token: login.data.token, channels: [] };
  saveSession(session);
  connect(session);
}

async function logout() {
  const session = state.session;
  state.irc?.close();
  state.irc = null;
  if (session?.token) await api('/api/users/logout', { method: 'POST', token: session.token });
  saveSession(null);
  state.session = null;
  state.buffers.clear();
  state.current = null;
  $('app').hidden = true;
  $('auth').hidden = false;
  setStatus('offline', 'logged out');
  renderBuffers();
  $('account').focus();
}

// --- wiring ----------------------------------------------------------------------------------

$('auth-form').addEventListener('submit', (e) => {
  e.preventDefault();
  authenticate(e.submitter?.value === 'register' ? 'register' : 'login');
});
$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('join-name').value.trim();
  if (name) join(name);
  $('join-name').value = '';
});
$('compose').addEventListener('submit', (e) => {
  e.preventDefault();
  const box = $('message');
  if (!box.value.trim()) return;
  if (sendText(box.value) === false) return; // refused: the text stays to be shortened
  box.value = '';
  fitBox();
});
// Enter sends; Shift+Enter is a new line in the message (a multiline message).
$('message').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $('compose').requestSubmit();
  }
});
$('message').addEventListener('input', (e) => { typing(e.target.value); fitBox(); });
$('part-button').addEventListener('click', () => { if (state.current) state.irc?.send('PART', [state.current]); });
$('list-button').addEventListener('click', () => state.irc?.send('LIST'));
$('away-button').addEventListener('click', () => state.irc?.send('AWAY', state.away ? [] : ['away']));
$('logout-button').addEventListener('click', logout);
$('notify-button').addEventListener('click', askNotifications);
$('reply-cancel').addEventListener('click', () => { cancelReply(); $('message').focus(); });
$('older-button').addEventListener('click', () => { const b = state.current && buffer(state.current, false); if (b) loadOlder(b); });
$('search-form').addEventListener('submit', (e) => {
  e.preventDefault();
  search($('search-q').value.trim());
});
$('search-more').addEventListener('click', () => { if (state.search?.next) search(state.search.query, state.search.next); });
$('search-close').addEventListener('click', () => { closeSearch(); $('message').focus(); });
$('search-results').addEventListener('keydown', (e) => { if (e.key === 'Escape') closeSearch(); });
// Coming back to the window reads what it shows.
const readCurrent = () => { const b = state.current && buffer(state.current, false); if (b) markRead(b); };
window.addEventListener('focus', readCurrent);
document.addEventListener('visibilitychange', readCurrent);
$('log').addEventListener('scroll', (e) => {
  const b = state.current && buffer(state.current, false);
  if (b && e.target.scrollTop === 0 && b.messages.length && !b.complete) loadOlder(b);
});

start();
