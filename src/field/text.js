// Search folding, the same as the server's (src/domain/text.rs): diacritics and case
// ignored, "đ" read as "d", whitespace runs as one space; a term matches a word that starts
// with it ("van" finds "Văn", "an" does not find "Thanh").

export function fold(s) {
  let out = "";
  for (const c of String(s ?? "").normalize("NFD")) {
    if (c === "đ" || c === "Đ") out += "d";
    else if (!/\p{M}/u.test(c)) out += c.toLowerCase();
  }
  return out.split(/\s+/u).filter(Boolean).join(" ");
}

/// The key a text is searched by: folded, with a leading space before every word.
export function searchKey(s) {
  return ` ${fold(s)}`;
}

/// The folded words of a query; each must match.
export function terms(q) {
  return fold(q).split(" ").filter(Boolean);
}

/// Whether every term starts a word of one of the keys (as the server's LIKE "% term%").
export function matches(termList, keys) {
  return termList.every((t) => keys.some((k) => k.includes(` ${t}`)));
}
