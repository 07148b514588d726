// When the field app syncs by itself (src/field/schedule.js), on a clock of the test's own.
// Run with `node --test tests/field/`.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Schedule, nextWait, SYNC_EVERY_MS, SYNC_AT_MOST_MS } from "../../src/field/schedule.js";

/// Timers that run only when the test moves the clock.
class Clock {
  constructor() {
    this.now = 0;
    this.timers = new Map();
    this.next = 1;
  }
  setTimeout(f, ms) {
    const id = this.next++;
    this.timers.set(id, { at: this.now + ms, f });
    return id;
  }
  clearTimeout(id) {
    this.timers.delete(id);
  }
  /// Moves the clock by `ms`, running what falls due.
  advance(ms) {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.timers].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.now = due[1].at;
      due[1].f();
    }
    this.now = end;
  }
}

/// A schedule whose syncs are counted and end at once, having moved what `moves` says.
function scheduled(moves) {
  const clock = new Clock();
  const runs = [];
  const s = new Schedule({
    timers: clock,
    run: () => {
      runs.push(clock.now);
      s.after(moves(runs.length));
    },
  });
  return { clock, runs, s };
}

const MIN = 60 * 1000;

test("the wait doubles while nothing moves, up to 15 minutes, and is 3 minutes again after a change", () => {
  assert.equal(SYNC_EVERY_MS, 3 * MIN);
  assert.equal(SYNC_AT_MOST_MS, 15 * MIN);
  const waits = [];
  let w = 0;
  for (const moved of [false, false, false, false, false, true, false]) {
    w = nextWait(w, moved);
    waits.push(w / MIN);
  }
  assert.deepEqual(waits, [3, 6, 12, 15, 15, 3, 6]);
});

test("periodic syncs back off when nothing changed and come every 3 minutes while things change", () => {
  // Syncs 1 and 2 move something; the rest do not.
  const { clock, runs, s } = scheduled((n) => n <= 2);
  s.run();
  clock.advance(60 * MIN);
  const gaps = runs.slice(1).map((t, i) => (t - runs[i]) / MIN);
  assert.deepEqual(gaps, [3, 3, 6, 12, 15, 15]);
});

test("no sync while hidden; back in sight, one at once, then the schedule again", () => {
  const { clock, runs, s } = scheduled(() => true);
  s.run();
  clock.advance(3 * MIN);
  assert.equal(runs.length, 2);
  s.pause();
  assert.equal(s.armed, false);
  clock.advance(120 * MIN);
  assert.equal(runs.length, 2, "hidden for two hours, no sync");
  // A sync that was under way when the app went out of sight ends without arming another.
  s.after(true);
  assert.equal(s.armed, false);
  clock.advance(60 * MIN);
  assert.equal(runs.length, 2);
  s.resume();
  assert.equal(runs.length, 3, "back in sight: a sync at once");
  assert.deepEqual(runs.slice(-1), [clock.now]);
  clock.advance(3 * MIN);
  assert.equal(runs.length, 4);
});

test("a sync asked for between two periodic ones moves the next one back", () => {
  const { clock, runs, s } = scheduled(() => false);
  s.run();
  clock.advance(2 * MIN);
  // An edit syncs at once; its sync sets the next wait from its own end.
  s.run();
  assert.equal(runs.length, 2);
  clock.advance(5 * MIN);
  assert.equal(runs.length, 2, "the wait after the second sync is 6 minutes, from minute 2");
  clock.advance(1 * MIN);
  assert.equal(runs.length, 3);
});
