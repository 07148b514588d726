// The copy's buckets (src/field/idbstore.js) without IndexedDB: what a commit writes, and
// that the stored texts read back into the same copy. The IndexedDB side runs in Chromium
// (tests/field_app.rs).

import { test } from "node:test";
import assert from "node:assert/strict";
import { Buckets, BUCKETS, bucketOf } from "../../src/field/idbstore.js";

const household = (id) => [`household/${id}`, { entity: "household", id, household_id: id, version: 1, data: { head_name: id } }];
const member = (id, h) => [`member/${id}`, { entity: "member", id, household_id: h, version: 1, data: { household_id: h } }];

/// What the disk holds after the answers of `apply`, as a Map(bucket -> text).
function disk(stored, answer) {
  if (answer.clear) stored.clear();
  for (const at of answer.remove) stored.delete(at);
  for (const [at, text] of answer.write) stored.set(at, text);
  return stored;
}

test("a household's records share its bucket, and the stored texts read back into the copy", () => {
  const ids = Array.from({ length: 300 }, () => crypto.randomUUID());
  const put = ids.flatMap((h) => [household(h), member(crypto.randomUUID(), h)]);
  const b = new Buckets();
  const stored = disk(new Map(), b.apply({ put, clearEntities: true }));
  assert.ok(stored.size > BUCKETS / 2 && stored.size <= BUCKETS, `${stored.size} buckets`);
  for (const [, v] of put) assert.equal(bucketOf(v), bucketOf({ id: v.household_id }));
  const back = Buckets.from([...stored]);
  assert.deepEqual(back.entities(), new Map(put));
});

test("a commit writes only the buckets it touches, removes emptied ones, and follows a moved member", () => {
  const [a, c] = [`00${crypto.randomUUID().slice(2)}`, `01${crypto.randomUUID().slice(2)}`];
  const m = crypto.randomUUID();
  const b = new Buckets();
  const stored = disk(new Map(), b.apply({ put: [household(a), household(c), member(m, a)] }));
  assert.deepEqual([...stored.keys()].sort(), [bucketOf({ id: a }), bucketOf({ id: c })].sort());

  // The member is merged into c: the same key, another household.
  const moved = b.apply({ put: [member(m, c)] });
  assert.deepEqual(moved.write.map(([at]) => at).sort(), [bucketOf({ id: a }), bucketOf({ id: c })].sort());
  disk(stored, moved);
  assert.equal(Buckets.from([...stored]).entities().get(`member/${m}`).household_id, c);

  // Deleting a's household empties its bucket: the bucket goes.
  const gone = b.apply({ del: [`household/${a}`] });
  assert.deepEqual(gone, { clear: false, write: [], remove: [bucketOf({ id: a })] });
  disk(stored, gone);
  assert.deepEqual([...Buckets.from([...stored]).entities().keys()].sort(), [`household/${c}`, `member/${m}`].sort());

  // An edit's commit (no change to the copy) writes nothing; a reset clears.
  assert.deepEqual(b.apply({}), { clear: false, write: [], remove: [] });
  const reset = b.apply({ clearEntities: true, put: [household(a)] });
  assert.equal(reset.clear, true);
  assert.deepEqual(Buckets.from([...disk(stored, reset)]).entities(), new Map([household(a)]));
});
