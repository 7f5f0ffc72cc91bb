// What the page says of its own typing (the IRCv3 client tag +typing), per conversation. No
// DOM and no socket here: `send(target, state)` is given, so tests/js runs it under node.
// The spec: "active" continuously while the user edits the text (not a /command), "paused"
// once when they stop without clearing it, "done" once when they clear it; and no
// notification within 3 s of another one for the same target.

export const TYPING_EVERY_MS = 3000;
export const TYPING_PAUSED_AFTER_MS = 5000; // no keystroke for this long: "paused"

export class TypingSender {
  constructor(send, { now = () => Date.now(), setTimer = (fn, ms) => setTimeout(fn, ms),
                      clearTimer = (timer) => clearTimeout(timer) } = {}) {
    this.send = send;
    this.now = now;
    this.setTimer = setTimer;
    this.clearTimer = clearTimer;
    this.targets = new Map(); // target -> {sentAt, last, wanted, timer, pauseTimer}
  }

  entry(target) {
    let e = this.targets.get(target);
    if (!e) { e = { sentAt: -Infinity, last: null, wanted: null, timer: null, pauseTimer: null }; this.targets.set(target, e); }
    return e;
  }

  /** The text box of `target` now holds `value`. */
  input(target, value) {
    const e = this.entry(target);
    this.clearTimer(e.pauseTimer);
    if (!value || value.startsWith('/')) {
      if (e.last === 'active' || e.last === 'paused' || e.wanted === 'active') this.want(target, 'done');
      return;
    }
    this.want(target, 'active');
    e.pauseTimer = this.setTimer(() => this.want(target, 'paused'), TYPING_PAUSED_AFTER_MS);
  }

  /** A message went to `target`: that ends the typing without a notification. */
  sent(target) {
    const e = this.targets.get(target);
    if (!e) return;
    this.clearTimer(e.pauseTimer);
    this.clearTimer(e.timer);
    this.targets.delete(target);
  }

  want(target, state) {
    const e = this.entry(target);
    e.wanted = state;
    if (state !== 'active' && e.last === state) return; // paused and done: once
    const wait = e.sentAt + TYPING_EVERY_MS - this.now();
    if (wait <= 0) { this.flush(target); return; }
    // Too soon: whatever is wanted by then is sent as soon as it is allowed.
    if (!e.timer) e.timer = this.setTimer(() => { e.timer = null; this.flush(target); }, wait);
  }

  flush(target) {
    const e = this.entry(target);
    if (!e.wanted || (e.wanted !== 'active' && e.wanted === e.last)) return;
    if (e.wanted === 'done' && e.last === null) { e.wanted = null; return; } // never said it typed
    this.send(target, e.wanted);
    e.last = e.wanted;
    e.sentAt = this.now();
    e.wanted = null;
  }
}
