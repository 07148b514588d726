// Search folding, the same as the server's (src/domain/text.rs): diacritics and case
// ignored, "đ" read as "d", whitespace runs as one space; a term matches a word that starts
// with it ("van" finds "Văn", "an" does not find "Thanh").

// A character at a time, as the server folds: its decomposition without marks, "đ" as "d",
// lowercase; whitespace as " ". Each character is worked out once and remembered, so that
// folding a phone's 25,000 names is a pass of lookups.
const FOLDED = new Map();

function foldChar(c) {
  let f = FOLDED.get(c);
  if (f === undefined) {
    f = /\s/u.test(c) ? " " : c.normalize("NFD").replace(/\p{M}/gu, "").replace(/[đĐ]/g, "d").toLowerCase();
    FOLDED.set(c, f);
  }
  return f;
}

export function fold(s) {
  let out = "";
  let gap = false;
  for (const c of String(s ?? "")) {
    const f = foldChar(c);
    if (f === " ") gap = out.length > 0;
    else if (f) {
      if (gap) out += " ";
      gap = false;
      out += f;
    }
  }
  return out;
}

// The keys made so far, by text: the app makes its view of the copy again after each change,
// and the names in it rarely change.
const KEYS = new Map();
const KEYS_KEPT = 200000;

/// The key a text is searched by: folded, with a leading space before every word.
export function searchKey(s) {
  const text = String(s ?? "");
  let key = KEYS.get(text);
  if (key === undefined) {
    if (KEYS.size >= KEYS_KEPT) KEYS.clear();
    key = ` ${fold(text)}`;
    KEYS.set(text, key);
  }
  return key;
}

/// The folded words of a query; each must match.
export function terms(q) {
  return fold(q).split(" ").filter(Boolean);
}

/// Whether every term starts a word of one of the keys (as the server's LIKE "% term%").
export function matches(termList, keys) {
  return termList.every((t) => keys.some((k) => k.includes(` ${t}`)));
}
