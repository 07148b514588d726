// The field app's duplicate rules (src/field/duplicates.js) give the keys the server's do
// (src/domain/duplicates.rs) on the shared cases, and find the candidates a canvasser is
// warned of before saving.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { candidates, fold, keys, phone } from "../../src/field/duplicates.js";

const cases = JSON.parse(readFileSync(new URL("./duplicate-cases.json", import.meta.url)));

test("the shared cases give the server's keys", () => {
  for (const c of cases) assert.deepEqual(keys(c.facts), c.keys, JSON.stringify(c.facts));
});

test("phones are numbers and names fold as search does", () => {
  for (const p of ["+84 912 345 678", "0912.345.678", "84912345678", "0084 912345678"]) {
    assert.equal(phone(p), "0912345678", p);
  }
  assert.equal(phone("12345"), null);
  assert.equal(fold("  Nguyễn  Văn-Đức. "), "nguyen van duc");
  assert.notEqual(fold("Nguyễn Văn An"), fold("Nguyễn Văn Anh"));
});

test("candidates: the phone in the commune, the others in the village, near misses not", () => {
  const commune = { v1: "c1", v2: "c1", v3: "c2" };
  const others = [
    { id: "a", area_id: "v2", head_name: "Lò Thị Hoa", address: "Bản trên", phone: "+84 912 345 678", members: [] },
    { id: "b", area_id: "v1", head_name: "Nông Văn Đức", address: "Số 9", members: [] },
    { id: "c", area_id: "v3", head_name: "Lò Văn Tám", address: "Số 1", phone: "0912345678", members: [] },
    { id: "d", area_id: "v1", head_name: "Nông Văn Đứ", address: "Số 9", members: [] },
    { id: "e", area_id: "v2", head_name: "nong van duc", address: "so 9", members: [] },
  ];
  const draft = { area_id: "v1", head_name: "nông văn đức", address: "số 9", phone: "0912 345 678", members: [] };
  const found = candidates(draft, others, (v) => commune[v]).map((c) => [c.household.id, c.rule]);
  assert.deepEqual(found, [["a", "phone"], ["b", "name_address"]]);
});
