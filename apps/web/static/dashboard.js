// The dashboard: one EventSource on /dashboard/feed. `snapshot` repaints every card, `event`
// adds a line to the log; between snapshots each TTL counts down on its own.
import { el, clock, num } from './dom.js';

const GONE_FOR_MS = 5000; // how long a row that dropped out stays visible, marked
const rows = new Map(); // "service/instance" -> {row, deadline}
const status = document.getElementById('feed-status');
const directoryBody = document.querySelector('#directory tbody');

function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

function fill(container, figures) {
  for (const dd of container.querySelectorAll('dd[data-field]')) {
    const value = figures[dd.dataset.field];
    dd.textContent = typeof value === 'number' ? num(value, Number.isInteger(value) ? 0 : 1)
      : (value ?? '–');
  }
}

function ttlCell() {
  const meter = el('meter', { min: 0, max: 10, value: 0, 'aria-hidden': 'true' });
  const text = el('span', { class: 'ttl-text' });
  return el('td', { class: 'ttl' }, meter, text);
}

function paintTtl(entry, now) {
  const cell = entry.row.querySelector('.ttl');
  const [meter, text] = cell.children;
  if (entry.deadline === null) {
    meter.value = meter.max;
    text.textContent = 'static';
    return;
  }
  const left = Math.max(0, (entry.deadline - now) / 1000);
  meter.max = Math.max(10, entry.max);
  meter.value = left;
  text.textContent = `${left.toFixed(1)} s`;
  entry.row.classList.toggle('low', left < 4);
}

function renderDirectory(instances) {
  const now = performance.now();
  const seen = new Set();
  for (const item of instances) {
    const key = `${item.service}/${item.instance}`;
    seen.add(key);
    let entry = rows.get(key);
    if (!entry || entry.row.dataset.state === 'gone') {
      entry?.row.remove();
      const row = el('tr', { 'data-instance': key, 'data-state': 'live' },
        el('td', { text: item.service }), el('td', { text: item.instance }),
        el('td', { class: 'url', text: item.url }), ttlCell(),
        el('td', { class: 'num rps' }));
      entry = { row, deadline: null, max: 10 };
      rows.set(key, entry);
    }
    entry.deadline = item.ttl === null ? null : now + item.ttl * 1000;
    entry.max = Math.max(entry.max, item.ttl ?? 0);
    entry.row.querySelector('.rps').textContent = item.reporting ? num(item.requests_per_s, 1) : '–';
    paintTtl(entry, now);
  }
  for (const [key, entry] of rows) {
    if (seen.has(key) || entry.row.dataset.state === 'gone') continue;
    entry.row.dataset.state = 'gone';
    entry.row.classList.add('gone');
    entry.row.querySelector('.ttl-text').textContent = 'dropped out';
    setTimeout(() => {
      if (rows.get(key) === entry) { rows.delete(key); entry.row.remove(); }
    }, GONE_FOR_MS);
  }
  // Sorted by service then instance, as the feed sends them; rows dropping out keep their place.
  const order = [...rows.keys()].sort((a, b) => {
    const [sa, ia] = a.split('/');
    const [sb, ib] = b.split('/');
    return sa === sb ? (ia < ib ? -1 : ia > ib ? 1 : 0) : (sa < sb ? -1 : 1);
  });
  for (const key of order) directoryBody.append(rows.get(key).row);
  document.getElementById('instance-count').textContent = `(${instances.length})`;
}

function tick() {
  const now = performance.now();
  for (const entry of rows.values()) {
    if (entry.row.dataset.state === 'live') paintTtl(entry, now);
  }
}

function renderRally(rally) {
  const players = Object.values(rally.players ?? {});
  fill(document.getElementById('rally'), {
    transport: rally.transport || '–',
    current: rally.current_rally?.id ? `#${rally.current_rally.id}` : '–',
    hits: rally.current_rally?.hits ?? 0,
    misses: players.reduce((sum, p) => sum + (p.misses ?? 0), 0),
    longest: rally.longest_rally,
    shots_per_s: rally.shots_per_s,
    p50: rally.round_trip_ms?.p50 == null ? '–' : `${num(rally.round_trip_ms.p50, 2)} ms`,
    p99: rally.round_trip_ms?.p99 == null ? '–' : `${num(rally.round_trip_ms.p99, 2)} ms`,
  });
  const list = document.getElementById('players');
  list.replaceChildren(...Object.entries(rally.players ?? {}).map(([name, p]) =>
    el('li', { 'data-status': p.status },
      el('strong', { text: name }), ` ${p.status} · ${num(p.points)} points · ${num(p.misses)} misses`)));
}

function renderMult(mult) {
  const list = document.getElementById('mult');
  list.replaceChildren(...mult.replicas.map((r) => {
    const share = r.share ?? 0;
    const lit = r.per_s > 0;
    return el('li', { 'data-instance': r.instance, class: lit ? 'lit' : 'idle',
                      'data-requests': r.requests, 'data-share': share },
      el('span', { class: 'bar-label', text: r.instance }),
      el('span', { class: 'bar', role: 'img',
                   'aria-label': `${r.instance}: ${Math.round(share * 100)} percent` },
        el('span', { class: 'bar-fill', style: null, 'data-share': share })),
      el('span', { class: 'bar-value', text: `${Math.round(share * 100)} % · ${num(r.per_s, 1)}/s · ${num(r.requests)} total` }));
  }));
  // Widths set through the CSSOM: the page's CSP allows no inline style attribute.
  for (const fillBar of list.querySelectorAll('.bar-fill')) {
    fillBar.style.width = `${Number(fillBar.dataset.share) * 100}%`;
  }
  document.getElementById('mult-rate').textContent =
    mult.replicas.length ? `Now ${num(mult.per_s, 1)} requests/s.` : 'No mult replica is registered.';
}

function renderChat(chat) {
  fill(document.getElementById('chat'), chat);
  const body = document.querySelector('#gateways tbody');
  if (!chat.gateways.length) {
    body.replaceChildren(el('tr', {}, el('td', { colspan: 4, class: 'empty',
      text: 'No IRC gateway in the directory.' })));
    return;
  }
  body.replaceChildren(...chat.gateways.map((g) => el('tr', { 'data-instance': g.instance },
    el('td', { text: g.instance }), el('td', { class: 'num', text: num(g.connections) }),
    el('td', { class: 'num', text: num(g.messages_per_s, 1) }),
    el('td', { class: 'num', text: num(g.deliveries_per_s, 1) }))));
}

function render(snapshot) {
  renderDirectory(snapshot.instances);
  renderRally(snapshot.rally);
  fill(document.getElementById('broker'), snapshot.broker);
  renderMult(snapshot.mult);
  const cache = { ...snapshot.cache };
  cache.hit_ratio = cache.hit_ratio == null ? '–' : `${Math.round(cache.hit_ratio * 100)} %`;
  fill(document.getElementById('cache'), cache);
  renderChat(snapshot.chat);
  document.body.dataset.snapshotAt = String(snapshot.at);
  setStatus('live', `live · ${clock(snapshot.at)}`);
}

const EVENTS_SHOWN = 40;

function describe(event) {
  const who = `${event.service ?? '?'}/${event.instance ?? '?'}`;
  switch (event.kind) {
    case 'registered': return `${who} registered`;
    case 'deregistered': return `${who} left (SIGTERM: entry removed at once)`;
    case 'expired': return `${who} dropped out: ${event.detail ?? 'TTL ran out'}`;
    case 'miss': return `${who}: a miss in rally #${event.rally ?? '?'} after ${event.hit ?? '?'} hits`;
    case 'stall': return `${who}: rally stalled (${event.status ?? ''})`;
    case 'resumed': return `${who}: rally resumed`;
    default: return `${who}: ${event.kind}`;
  }
}

function addEvent(event) {
  const list = document.getElementById('events');
  const at = typeof event.at === 'number' ? event.at : Date.now() / 1000;
  list.prepend(el('li', { 'data-kind': event.kind },
    el('time', { text: clock(at) }), ' ', describe(event)));
  while (list.children.length > EVENTS_SHOWN) list.lastElementChild.remove();
}

const feed = new EventSource('/dashboard/feed');
feed.addEventListener('open', () => setStatus('live', 'live'));
feed.addEventListener('error', () => setStatus('down', 'feed lost: reconnecting…'));
feed.addEventListener('snapshot', (e) => render(JSON.parse(e.data)));
feed.addEventListener('event', (e) => addEvent(JSON.parse(e.data)));
feed.addEventListener('events', (e) => JSON.parse(e.data).forEach(addEvent));
feed.addEventListener('status', (e) => {
  const s = JSON.parse(e.data);
  if (s.redis === false) setStatus('down', `Redis unreachable (${s.error}): showing the last snapshot`);
});
setInterval(tick, 100);
