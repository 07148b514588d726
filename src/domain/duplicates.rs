//! When two households may be one (docs/DUPLICATES.md): the keys a household is matched by.
//! Two live households sharing a key of the same rule in the same scope are a possible
//! duplicate. The field app applies the same rules (`src/field/duplicates.js`); both are
//! checked against `tests/field/duplicate-cases.json`.

use super::text;
use super::vocabulary::DuplicateRule;

/// What the rules read of a household.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub head_name: String,
    pub address: String,
    pub phone: Option<String>,
    /// Its live members.
    pub members: Vec<PersonFacts>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonFacts {
    pub full_name: String,
    pub birth_year: Option<i64>,
    pub phone: Option<String>,
}

/// A key of a household: two households with the same rule, scope and key may be one.
/// The scope is the household's commune for `phone`, its village for the others.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub rule: DuplicateRule,
    pub key: String,
}

/// A name or address as the rules compare them: folded as search folds text (case,
/// diacritics and `đ` aside), punctuation out, spaces collapsed.
pub fn fold(s: &str) -> String {
    let folded: String = text::fold(s)
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    text::squash_spaces(&folded)
}

/// A phone as a number: its digits, the country code 84 read as a leading 0
/// (`+84 912 345 678` and `0912345678` are one phone). None for fewer than 6 digits.
pub fn phone(s: &str) -> Option<String> {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let international = s.trim_start().starts_with('+') || digits.starts_with("0084");
    let digits = digits
        .strip_prefix("00")
        .filter(|_| international)
        .unwrap_or(&digits);
    let national = match digits.strip_prefix("84") {
        Some(rest) if international || (digits.len() >= 11 && !rest.starts_with('0')) => {
            format!("0{rest}")
        }
        _ => digits.to_owned(),
    };
    (national.len() >= 6).then_some(national)
}

/// Every key of a household, sorted and without repeats.
pub fn keys(h: &Facts) -> Vec<Key> {
    let mut out = Vec::new();
    let head = fold(&h.head_name);
    let phones = h
        .phone
        .iter()
        .chain(h.members.iter().filter_map(|m| m.phone.as_ref()));
    for p in phones.filter_map(|p| phone(p)) {
        out.push(Key {
            rule: DuplicateRule::Phone,
            key: p,
        });
    }
    let address = fold(&h.address);
    if !head.is_empty() && !address.is_empty() {
        out.push(Key {
            rule: DuplicateRule::NameAddress,
            key: format!("{head}|{address}"),
        });
    }
    if !head.is_empty() {
        for m in &h.members {
            let name = fold(&m.full_name);
            if let (false, Some(year)) = (name.is_empty(), m.birth_year) {
                out.push(Key {
                    rule: DuplicateRule::NamePerson,
                    key: format!("{head}|{name}|{year}"),
                });
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// What the server stores of each live household to find its possible duplicates fast
/// (`duplicate_keys`): each phone, the household's and each member's, by commune; and the
/// folded head name, by village. Two households that share none of these match no rule; two
/// that share a head name are compared by `keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Index {
    Phone,
    Head,
}

impl Index {
    pub fn as_str(self) -> &'static str {
        match self {
            Index::Phone => "phone",
            Index::Head => "head",
        }
    }
}

/// The index keys a household's own row gives: its phone, and its folded head name.
pub fn household_index(head_name: &str, own_phone: Option<&str>) -> Vec<(Index, String)> {
    let mut out = Vec::new();
    if let Some(p) = own_phone.and_then(phone) {
        out.push((Index::Phone, p));
    }
    let head = head_key(head_name);
    if !head.is_empty() {
        out.push((Index::Head, head));
    }
    out
}

/// The index key of a head name: the name folded (empty: no key).
pub fn head_key(head_name: &str) -> String {
    fold(head_name)
}

/// The index key a member's row gives: its phone.
pub fn member_index(own_phone: Option<&str>) -> Option<(Index, String)> {
    own_phone.and_then(phone).map(|p| (Index::Phone, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_compared_as_numbers() {
        let one = Some("0912345678".to_owned());
        for p in [
            "+84 912 345 678",
            "0912.345.678",
            "84912345678",
            "0084 912345678",
        ] {
            assert_eq!(phone(p), one, "{p}");
        }
        assert_eq!(phone("12345"), None);
        assert_ne!(phone("0912345678"), phone("0912345679"));
    }

    /// The cases the field app's rules are checked against too (`tests/field/`).
    #[test]
    fn the_shared_cases_give_the_same_keys() {
        let cases: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/field/duplicate-cases.json")).unwrap();
        for case in cases.as_array().unwrap() {
            let f = &case["facts"];
            let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
            let facts = Facts {
                head_name: text(&f["head_name"]).unwrap_or_default(),
                address: text(&f["address"]).unwrap_or_default(),
                phone: text(&f["phone"]),
                members: f["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| PersonFacts {
                        full_name: text(&m["full_name"]).unwrap_or_default(),
                        birth_year: m["birth_year"].as_i64(),
                        phone: text(&m["phone"]),
                    })
                    .collect(),
            };
            let got: Vec<serde_json::Value> = keys(&facts)
                .into_iter()
                .map(|k| serde_json::json!({"rule": k.rule.as_str(), "key": k.key}))
                .collect();
            assert_eq!(serde_json::Value::Array(got), case["keys"], "{f}");
        }
    }

    #[test]
    fn names_fold_as_search_does_without_punctuation() {
        assert_eq!(fold("  Nguyễn  Văn-Đức. "), "nguyen van duc");
        assert_ne!(fold("Nguyễn Văn An"), fold("Nguyễn Văn Anh"));
    }
}
