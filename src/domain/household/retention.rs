//! What anonymization removes from a household unit, with no database. A campaign's personal
//! data is anonymized once its retention period has run out, and one person's (or one
//! household's) on request (`crate::retention` decides which units; `write` writes
//! them). Names, addresses, phones, notes and positions go; a member's birth year becomes
//! the decade it falls in; statuses (smartphone, priority, sex, installs) and visit outcomes
//! stay, so that every report figure stays true.

use super::records::{Household, Member, Visit};
use super::rules::{household_search_key, malformed, member_search_key};
use super::Error;
use crate::domain::merge::{self, FieldMeta};
use crate::domain::Time;
use serde_json::Value;

/// The household fields that anonymization empties.
pub const HOUSEHOLD_FIELDS: &[&str] = &["address", "head_name", "phone", "lat", "lon", "notes"];

/// The member fields that anonymization empties (the birth year is kept as its decade).
pub const MEMBER_FIELDS: &[&str] = &["full_name", "birth_year", "phone", "notes"];

/// The writer of anonymizing writes in field versions. A value that loses to such a write
/// (an edit made before it, pushed after it) is dropped, not booked as a conflict: booking
/// it would keep the removed data.
pub const WRITER: &str = "retention";

/// The first year of the decade of a birth year: 1987 → 1980.
pub fn birth_decade(year: i32) -> i32 {
    year.div_euclid(10) * 10
}

/// Marks `fields` as written by `write` in the stored field versions `stored`.
fn rewrite_metas(stored: &str, fields: &[&str], write: &FieldMeta) -> Result<String, Error> {
    let mut metas = merge::decode(stored).map_err(malformed)?;
    for f in fields {
        metas.insert((*f).to_owned(), write.clone());
    }
    Ok(merge::encode(&metas))
}

/// Empties a household's personal fields. `write` is the field version of this write.
pub fn anonymize_household(h: &mut Household, write: &FieldMeta, now: Time) -> Result<(), Error> {
    h.field_meta = rewrite_metas(&h.field_meta, HOUSEHOLD_FIELDS, write)?;
    h.address = String::new();
    h.head_name = String::new();
    h.phone = None;
    h.lat = None;
    h.lon = None;
    h.notes = String::new();
    h.search_key = household_search_key("", "");
    h.anonymized_at = Some(now);
    Ok(())
}

/// Empties a member's personal fields, keeping the decade of the birth year.
pub fn anonymize_member(m: &mut Member, write: &FieldMeta, now: Time) -> Result<(), Error> {
    m.field_meta = rewrite_metas(&m.field_meta, MEMBER_FIELDS, write)?;
    if let Some(year) = m.birth_year.take() {
        m.birth_decade = Some(birth_decade(year));
    }
    m.full_name = String::new();
    m.phone = None;
    m.notes = String::new();
    m.search_key = member_search_key("");
    m.anonymized_at = Some(now);
    Ok(())
}

/// Empties a visit's notes and position; its campaign, time and outcome stay.
pub fn anonymize_visit(v: &mut Visit) {
    v.notes = String::new();
    v.lat = None;
    v.lon = None;
}

/// Whether a household's head is this member: the same name, as searched (case and accents
/// aside). Erasing the member then empties the household's head name too.
pub fn heads(h: &Household, m: &Member) -> bool {
    !m.full_name.trim().is_empty()
        && member_search_key(&m.full_name) == member_search_key(&h.head_name)
}

/// Empties the household fields that name or reach one member: the head's name, and the
/// phone when it is the member's.
pub fn forget_head(h: &mut Household, m: &Member, write: &FieldMeta) -> Result<(), Error> {
    let mut fields = vec!["head_name"];
    if h.phone.is_some() && h.phone == m.phone {
        fields.push("phone");
        h.phone = None;
    }
    h.field_meta = rewrite_metas(&h.field_meta, &fields, write)?;
    h.head_name = String::new();
    h.search_key = household_search_key("", &h.address);
    Ok(())
}

/// A conflict's value with the removed data taken out. `field` is the conflict's field:
/// one of `personal`, its value goes; `*` (an edit of a deleted record, the edit's data),
/// the personal fields go from it. Other values (statuses) stay.
pub fn scrub_value(field: &str, personal: &[&str], value: Value) -> Value {
    match (field, value) {
        ("*", Value::Object(mut data)) => {
            for f in personal {
                data.remove(*f);
            }
            Value::Object(data)
        }
        (f, _) if personal.contains(&f) => Value::Null,
        (_, v) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decades() {
        assert_eq!(birth_decade(1987), 1980);
        assert_eq!(birth_decade(1980), 1980);
        assert_eq!(birth_decade(2009), 2000);
        assert_eq!(birth_decade(1899), 1890);
    }

    #[test]
    fn scrubbing() {
        let data = json!({"full_name": "Lò Văn A", "phone": "0912", "smartphone": "yes"});
        assert_eq!(
            scrub_value("*", MEMBER_FIELDS, data),
            json!({"smartphone": "yes"})
        );
        assert_eq!(
            scrub_value("full_name", MEMBER_FIELDS, json!("Lò Văn A")),
            Value::Null
        );
        assert_eq!(
            scrub_value("priority", MEMBER_FIELDS, json!("quarantine_home")),
            json!("quarantine_home")
        );
        assert_eq!(
            scrub_value("status", MEMBER_FIELDS, json!("installed")),
            json!("installed")
        );
    }
}
