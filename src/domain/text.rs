//! Vietnamese-aware text folding for search and name cleaning.

use unicode_normalization::UnicodeNormalization;

/// Folds text for diacritic- and case-insensitive search: "Nguyễn Văn Mạnh" -> "nguyen van manh",
/// "Đạo" -> "dao". Whitespace runs become one space.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfd() {
        let c = match c {
            'đ' | 'Đ' => 'd',
            c if unicode_normalization::char::is_combining_mark(c) => continue,
            c => c,
        };
        for l in c.to_lowercase() {
            out.push(l);
        }
    }
    squash_spaces(&out)
}

/// Trims and collapses runs of whitespace (the official lists have doubled and stray spaces).
pub fn squash_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The stored search key of a text: folded, with a leading space so that every word, the
/// first included, starts after a space (see `like_pattern`).
pub fn search_key(s: &str) -> String {
    format!(" {}", fold(s))
}

/// The search terms of a query: folded words, each of which must appear.
pub fn search_terms(q: &str) -> Vec<String> {
    fold(q)
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A LIKE pattern matching a search key that has a word starting with `term` ("van" finds
/// "Văn", "an" does not find "Thanh"), with `\` as the escape character.
pub fn like_pattern(term: &str) -> String {
    let mut p = String::from("% ");
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_vietnamese() {
        assert_eq!(fold("  Hoàng  Văn Mạnh "), "hoang van manh");
        assert_eq!(fold("Đường Đội Cấn"), "duong doi can");
        assert_eq!(fold("Xã Quý Hòa"), "xa quy hoa");
        assert_eq!(fold("Nguyễn Thị Ánh"), "nguyen thi anh");
    }

    #[test]
    fn escapes_like() {
        assert_eq!(like_pattern("a%b_c"), "% a\\%b\\_c%");
        assert_eq!(search_key("Đào"), " dao");
    }
}
