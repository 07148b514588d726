// When the field app syncs by itself: every 3 minutes while syncs move something, twice as
// long after each one that moved nothing (up to 15 minutes), and not at all while the app is
// hidden. An edit, the network coming back and opening the app sync at once (app.js); each
// sync, whoever asked for it, sets the next wait. No DOM here: the timers come in, so that
// `node --test` drives it with a clock of its own.

export const SYNC_EVERY_MS = 3 * 60 * 1000;
export const SYNC_AT_MOST_MS = 15 * 60 * 1000;

/// The wait after a sync: the shortest after one that moved something, else twice the last
/// wait, within the longest.
export function nextWait(lastWait, moved, every = SYNC_EVERY_MS, atMost = SYNC_AT_MOST_MS) {
  if (moved || !lastWait) return every;
  return Math.min(atMost, lastWait * 2);
}

export class Schedule {
  /// `run` starts a sync (and, when it ends, calls `after`); `timers` holds `setTimeout` and
  /// `clearTimeout`.
  constructor({ run, timers = globalThis, every = SYNC_EVERY_MS, atMost = SYNC_AT_MOST_MS }) {
    this.run = run;
    this.timers = timers;
    this.every = every;
    this.atMost = atMost;
    this.wait = 0;
    this.timer = null;
    this.paused = false;
  }

  /// A sync ended: the next one comes after the wait it earned, unless the app is hidden.
  after(moved) {
    this.wait = nextWait(this.wait, moved, this.every, this.atMost);
    this.arm();
  }

  /// The app went out of sight: no sync until it is back.
  pause() {
    this.paused = true;
    this.disarm();
  }

  /// The app is in sight again: sync at once (opening the app is a reason to).
  resume() {
    this.paused = false;
    this.disarm();
    this.run();
  }

  /// Whether a periodic sync is waiting to run.
  get armed() {
    return this.timer !== null;
  }

  arm() {
    this.disarm();
    if (this.paused) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.run();
    }, this.wait);
  }

  disarm() {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }
}
