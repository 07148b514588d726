// The field app's view of its copy (src/field/sync.js `view`): made again only for the
// households the queued ops touch, it must equal the view made the simple way, from the
// whole copy and every op, whatever the ops. Run with `node --test tests/field/`.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Engine, keysOf } from "../../src/field/sync.js";
import { MemoryStore } from "../../src/field/memstore.js";
import { searchKey } from "../../src/field/text.js";

/// The view made the simple way: the copy, then every op on top, then each household
/// assembled.
function simpleView(entities, ops) {
  const households = new Map();
  const members = new Map();
  const adoptions = new Map();
  const visits = new Map();
  for (const e of entities.values()) {
    if (e.entity === "household") households.set(e.id, { id: e.id, version: e.version, ...e.data });
    else if (e.entity === "member") members.set(e.id, { id: e.id, ...e.data });
    else if (e.entity === "adoption") adoptions.set(`${e.id}/${e.data.campaign_id}`, e.data.status);
    else if (e.entity === "visit") visits.set(e.id, { id: e.id, ...e.data });
  }
  for (const op of ops) {
    const d = op.data || {};
    if (op.type === "household.upsert") households.set(op.entity_id, { ...(households.get(op.entity_id) || { id: op.entity_id }), ...d });
    if (op.type === "household.delete") households.delete(op.entity_id);
    if (op.type === "member.upsert") members.set(op.entity_id, { ...(members.get(op.entity_id) || { id: op.entity_id, household_id: op.household_id }), ...d });
    if (op.type === "member.delete") members.delete(op.entity_id);
    if (op.type === "adoption.set") adoptions.set(`${op.entity_id}/${d.campaign_id}`, d.status);
    if (op.type === "visit.record" && !visits.has(op.entity_id)) visits.set(op.entity_id, { id: op.entity_id, household_id: op.household_id, ...d });
  }
  const out = new Map();
  for (const h of households.values()) out.set(h.id, { ...h, members: [], visits: [] });
  for (const m of members.values()) out.get(m.household_id)?.members.push(m);
  for (const v of visits.values()) out.get(v.household_id)?.visits.push(v);
  for (const h of out.values()) {
    h.visits.sort((a, b) => String(b.visited_at).localeCompare(String(a.visited_at)));
    h.keys = [searchKey(`${h.head_name ?? ""} ${h.address ?? ""}`), ...h.members.map((m) => searchKey(m.full_name))];
  }
  return { households: out, members, adoptions };
}

/// A small random generator with a seed, so that a failure can be replayed.
function random(seed) {
  let s = seed >>> 0;
  return (n) => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s % n;
  };
}

const sorted = (m) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
/// The engine's households with the keys they are searched by.
const withKeys = (households) => new Map([...households].map(([id, h]) => [id, { ...h, keys: keysOf(h) }]));

test("the view made household by household equals the view made the simple way, whatever the ops", async () => {
  for (let seed = 1; seed <= 40; seed += 1) {
    const r = random(seed);
    const e = await Engine.open(new MemoryStore(), { fetch, base: "" });
    const hh = Array.from({ length: 12 }, (_, i) => `h${i}`);
    const mm = Array.from({ length: 30 }, (_, i) => `m${i}`);
    const puts = [];
    for (const h of hh.slice(0, 8)) {
      puts.push([`household/${h}`, { entity: "household", id: h, household_id: h, version: 1 + r(5),
        data: { area_id: "v1", head_name: `Nguyễn Văn ${h}`, address: `Số ${r(50)}` } }]);
    }
    for (const m of mm.slice(0, 20)) {
      const h = hh[r(8)];
      puts.push([`member/${m}`, { entity: "member", id: m, household_id: h, version: 1, data: { household_id: h, full_name: `Hoàng Thị ${m}`, birth_year: 1950 + r(60) } }]);
      if (r(2)) puts.push([`adoption/${m}/c1`, { entity: "adoption", id: m, household_id: h, version: 1, data: { member_id: m, campaign_id: "c1", status: "not_yet" } }]);
    }
    for (let v = 0; v < 6; v += 1) {
      const h = hh[r(8)];
      puts.push([`visit/v${v}`, { entity: "visit", id: `v${v}`, household_id: h, version: 1, data: { household_id: h, campaign_id: "c1", visited_at: `2020-09-0${1 + r(9)}T00:00:00Z`, outcome: "met" } }]);
    }
    await e.commit({ put: puts });
    // The view of the copy alone, then ops one by one: after each, the same view both ways.
    for (let seq = 1; seq <= 25; seq += 1) {
      const h = hh[r(hh.length)];
      const m = mm[r(mm.length)];
      const kinds = [
        { type: "household.upsert", entity_id: h, household_id: h, data: r(2) ? { head_name: `Lò Văn ${seq}` } : { area_id: "v1", address: `Số ${seq}`, head_name: `Hà ${seq}` } },
        { type: "household.delete", entity_id: h, household_id: h, data: null },
        { type: "member.upsert", entity_id: m, household_id: h, data: r(2) ? { full_name: `Vi Thị ${seq}` } : { household_id: h, full_name: `Vi Văn ${seq}`, birth_year: 1990 } },
        { type: "member.delete", entity_id: m, household_id: h, data: null },
        { type: "adoption.set", entity_id: m, household_id: h, data: { campaign_id: "c1", status: ["installed", "refused", "later"][r(3)] } },
        { type: "visit.record", entity_id: `v${r(10)}`, household_id: h, data: { campaign_id: "c1", visited_at: `2020-09-1${r(9)}T00:00:00Z`, outcome: "met" } },
      ];
      const op = { seq, op_id: `o${seq}`, state: "pending", ...kinds[r(kinds.length)] };
      await e.commit({ ops: [op] });
      const got = e.view();
      const want = simpleView(e.entities, e.overlay());
      assert.deepEqual(sorted(withKeys(got.households)), sorted(want.households), `seed ${seed}, op ${seq}: ${JSON.stringify(op)}`);
      assert.deepEqual(sorted(got.members), sorted(want.members), `seed ${seed}, op ${seq}`);
      assert.deepEqual(sorted(got.adoptions), sorted(want.adoptions), `seed ${seed}, op ${seq}`);
    }
    // A pull that brings the copy up to date: the view follows.
    await e.commit({ put: [[`household/h11`, { entity: "household", id: "h11", household_id: "h11", version: 9, data: { area_id: "v1", head_name: "Đinh Văn Mới", address: "Số 1" } }]], dropOps: [1, 2, 3] });
    assert.deepEqual(sorted(withKeys(e.view().households)), sorted(simpleView(e.entities, e.overlay()).households), `seed ${seed}, after a pull`);
  }
});
