// The duplicate rules, the same as the server's (src/domain/duplicates.rs; both are checked
// against tests/field/duplicate-cases.json): two households may be one when they share a
// phone in the commune, a head name and address in the village, or a head name in the
// village and a person (name and birth year).
import { fold as searchFold } from "./text.js";

/// A name or address as the rules compare them: folded as search folds text, punctuation
/// out, spaces collapsed.
export function fold(s) {
  return searchFold(s).replace(/[^\p{L}\p{N}]+/gu, " ").split(" ").filter(Boolean).join(" ");
}

/// A phone as a number: its digits, the country code 84 read as a leading 0; null for
/// fewer than 6 digits.
export function phone(s) {
  const text = String(s ?? "");
  let digits = text.replace(/\D/g, "");
  const international = text.trimStart().startsWith("+") || digits.startsWith("0084");
  if (international && digits.startsWith("00")) digits = digits.slice(2);
  let national = digits;
  if (digits.startsWith("84")) {
    const rest = digits.slice(2);
    if (international || (digits.length >= 11 && !rest.startsWith("0"))) national = `0${rest}`;
  }
  return national.length >= 6 ? national : null;
}

/// Every key of a household ({head_name, address, phone, members: [{full_name, birth_year,
/// phone}]}), sorted, without repeats: [{rule, key}].
export function keys(h) {
  const out = [];
  const head = fold(h.head_name);
  for (const p of [h.phone, ...(h.members || []).map((m) => m.phone)]) {
    const n = p ? phone(p) : null;
    if (n) out.push({ rule: "phone", key: n });
  }
  const address = fold(h.address);
  if (head && address) out.push({ rule: "name_address", key: `${head}|${address}` });
  if (head) {
    for (const m of h.members || []) {
      const name = fold(m.full_name);
      if (name && m.birth_year !== null && m.birth_year !== undefined) {
        out.push({ rule: "name_person", key: `${head}|${name}|${m.birth_year}` });
      }
    }
  }
  const order = ["phone", "name_address", "name_person"];
  const seen = new Set();
  return out
    .sort((a, b) => order.indexOf(a.rule) - order.indexOf(b.rule) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .filter((k) => !seen.has(`${k.rule}\n${k.key}`) && seen.add(`${k.rule}\n${k.key}`));
}

/// The households of `others` that `draft` may duplicate: [{household, rule}], the first
/// rule that matched for each. The phone rule looks at the whole commune (`communeOf` gives
/// a village's commune), the others at the draft's village.
export function candidates(draft, others, communeOf = (v) => v) {
  const mine = keys(draft);
  const out = [];
  for (const o of others) {
    if (o.id === draft.id) continue;
    const theirs = new Set(keys(o).map((k) => `${k.rule}\n${k.key}`));
    const sameVillage = o.area_id === draft.area_id;
    const sameCommune = communeOf(o.area_id) === communeOf(draft.area_id);
    const hit = mine.find((k) => theirs.has(`${k.rule}\n${k.key}`) && (k.rule === "phone" ? sameCommune : sameVillage));
    if (hit) out.push({ household: o, rule: hit.rule });
  }
  return out;
}
