// A snapshot page in the compact form (docs/SYNC.md, "The compact first download") made
// back into the changes of the full form, exactly: each household row holds its members and
// visits, each member row its adoptions; every UUID is its 16 bytes in base64url.

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const SIX = new Map([...B64].map((c, i) => [c, i]));
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/// A UUID from its 22 base64url characters, in its usual lowercase form.
export function uuidOf(text) {
  if (typeof text !== "string" || text.length !== 22) throw new Error(`not a compact id: ${text}`);
  let bits = 0;
  let n = 0;
  let hex = "";
  for (const c of text) {
    const v = SIX.get(c);
    if (v === undefined) throw new Error(`not a compact id: ${text}`);
    bits = (bits << 6) | v;
    n += 6;
    if (n >= 8) {
      n -= 8;
      hex += HEX[(bits >> n) & 0xff];
      bits &= (1 << n) - 1;
    }
  }
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/// The changes a compact page stands for, in the order of the full form: households, then
/// members, adoptions and visits.
export function expandUnits(units) {
  const ids = new Set(units.uuid_columns);
  const reader = (kind) => {
    const cols = units.columns[kind] || [];
    return (row) => {
      const out = {};
      cols.forEach((c, i) => {
        const v = row[i];
        out[c] = ids.has(c) && typeof v === "string" ? uuidOf(v) : v;
      });
      return [out, row[cols.length], row[cols.length + 1]];
    };
  };
  const [household, member, adoption, visit] = ["household", "member", "adoption", "visit"].map(reader);
  const hs = [];
  const ms = [];
  const ads = [];
  const vs = [];
  const upsert = (entity, id, householdId, version, data) => ({ entity, id, household_id: householdId, op: "upsert", version, data });
  for (const row of units.rows) {
    const [{ id, version, ...data }, memberRows, visitRows] = household(row);
    hs.push(upsert("household", id, id, version, data));
    for (const mrow of memberRows) {
      const [{ id: mid, version: mv, ...md }, adoptionRows] = member(mrow);
      ms.push(upsert("member", mid, id, mv, { ...md, household_id: id }));
      for (const arow of adoptionRows) {
        const [{ version: av, ...ad }] = adoption(arow);
        ads.push(upsert("adoption", mid, id, av, { ...ad, member_id: mid }));
      }
    }
    for (const vrow of visitRows) {
      const [{ id: vid, ...vd }] = visit(vrow);
      vs.push(upsert("visit", vid, id, 1, { ...vd, household_id: id }));
    }
  }
  return [...hs, ...ms, ...ads, ...vs];
}
