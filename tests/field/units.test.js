// The compact first download (docs/SYNC.md) against a real gocua server: made back into
// changes (src/field/units.js), it is exactly the full form's first download.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Engine } from "../../src/field/sync.js";
import { MemoryStore } from "../../src/field/memstore.js";
import { expandUnits, uuidOf } from "../../src/field/units.js";
import { startServer, rest, token } from "./server.js";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

test("a compact id is the UUID's 16 bytes in base64url", () => {
  assert.equal(uuidOf("AAAAAAAAAAAAAAAAAAAAAA"), "00000000-0000-0000-0000-000000000000");
  assert.equal(uuidOf("_____________________w"), "ffffffff-ffff-ffff-ffff-ffffffffffff");
  // 0x01 0x23 … 0xef twice, as Node's own base64url writes it.
  const bytes = Buffer.from("0123456789abcdef0123456789abcdef", "hex");
  assert.equal(uuidOf(bytes.toString("base64url")), "01234567-89ab-cdef-0123-456789abcdef");
  assert.throws(() => uuidOf("too short"));
  assert.throws(() => uuidOf("AAAAAAAAAAAAAAAAAAAA+/"));
});

/// Every page of a new device's first download, asked for with `query`.
async function download(tok, query) {
  const device = crypto.randomUUID();
  const pages = [];
  let cursor = null;
  for (;;) {
    const q = new URLSearchParams({ device_id: device, limit: "3", ...query });
    if (cursor) q.set("cursor", cursor);
    const { status, body: page } = await rest(server.base, "GET", `/api/v1/sync/pull?${q}`, tok);
    assert.equal(status, 200, JSON.stringify(page));
    pages.push(page);
    cursor = page.cursor;
    if (!page.has_more) return pages;
  }
}

const key = (c) => `${c.entity}/${c.id}/${c.data?.campaign_id ?? ""}`;
const byKey = (a, b) => key(a).localeCompare(key(b));

test("the compact first download, made back into changes, is the full one", async () => {
  // Every kind of value in canbo's scope: the demo's statuses and visits, and a household
  // with a phone, a place, notes and a register id, with a member who has them too.
  const e = await Engine.open(new MemoryStore(), { fetch, base: server.base });
  await e.login("canbo", "gocua-demo");
  await e.sync();
  const village = e.meta.reference.areas.find((a) => a.level === "village");
  const h = await e.createHousehold({ area_id: village.id, address: "Số 7, Nà Lầu", head_name: "Lương Văn Bảo",
    phone: "0912345678", lat: 22.03, lon: 106.41, notes: "Nhà sàn" });
  await e.createMember(h, { full_name: "Lương Thị Mai", birth_year: 1990, sex: "female", phone: "0987654321",
    smartphone: "yes", priority: "quarantine", notes: "Đi làm xa" });
  await e.sync();

  const tok = await token(server.base, "canbo");
  const full = await download(tok, {});
  const compact = await download(tok, { format: "compact" });
  const snapshot = compact.filter((p) => p.units);
  assert.ok(snapshot.length > 2, `the snapshot spans pages: ${snapshot.length}`);
  for (const p of snapshot) assert.deepEqual(p.changes, [], "a compact page sends no change twice");

  const fullChanges = full.flatMap((p) => p.changes).sort(byKey);
  const compactChanges = compact.flatMap((p) => (p.units ? expandUnits(p.units) : p.changes)).sort(byKey);
  const kinds = new Set(fullChanges.map((c) => c.entity));
  assert.deepEqual([...kinds].sort(), ["adoption", "household", "member", "visit"]);
  assert.equal(compactChanges.length, fullChanges.length);
  assert.deepEqual(compactChanges, fullChanges);
  assert.deepEqual(compact.at(-1).reference, full.at(-1).reference);
  assert.equal(compact.at(-1).last_seq, full.at(-1).last_seq);

  // Nothing twice: no household id inside a member, visit or adoption row, no member id
  // inside an adoption row, and no key per record.
  const { columns } = snapshot[0].units;
  assert.ok(!columns.member.includes("household_id"));
  assert.ok(!columns.visit.includes("household_id") && !columns.visit.includes("version"));
  assert.ok(!columns.adoption.includes("member_id"));
  const text = JSON.stringify(snapshot.map((p) => p.units.rows));
  assert.ok(!text.includes(h), "ids travel as base64url, never in their usual form");
  assert.ok(!text.includes('"full_name"'));
});

test("a device on the compact form ends with the same copy as one on the full form", async () => {
  const compactPhone = await Engine.open(new MemoryStore(), { fetch, base: server.base });
  await compactPhone.login("canbo", "gocua-demo");
  await compactPhone.sync();
  // The full form, as an app of an earlier version asks for it.
  const strip = (url, init) => fetch(String(url).replace("&format=compact", ""), init);
  const fullPhone = await Engine.open(new MemoryStore(), { fetch: strip, base: server.base });
  await fullPhone.login("canbo", "gocua-demo");
  await fullPhone.sync();
  const copy = (e) => [...e.entities.entries()].sort(([a], [b]) => a.localeCompare(b));
  assert.ok(copy(compactPhone).length > 10);
  assert.deepEqual(copy(compactPhone), copy(fullPhone));
  assert.deepEqual(compactPhone.meta.seen, fullPhone.meta.seen);
});
