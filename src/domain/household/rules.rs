//! The rules of a write to a household unit, with no database: a record's fields by name,
//! the merge of an update into a record, an adoption's status and when it counts from, the
//! values of a create, and the search keys.

use super::{AdoptionStatus, Error};
use crate::domain::fields::Patch;
use crate::domain::merge::{self, Author, CreateMetas, FieldMetas, Loss};
use crate::domain::{text, Time, UserId};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A record's mergeable fields, one at a time by name: an update merges only the fields its
/// patch names, with no map of the whole record. `record_fields!` implements it.
pub trait Fields {
    /// The field's value as JSON (as a patch would give it).
    fn get(&self, field: &str) -> Result<Value, Error>;
    /// Sets the field from a merged value.
    fn set(&mut self, field: &str, value: Value) -> Result<(), Error>;

    /// The current values of the fields `patch` names.
    fn state(&self, patch: &Patch) -> Result<Map<String, Value>, Error> {
        patch
            .fields()
            .keys()
            .map(|k| Ok((k.clone(), self.get(k)?)))
            .collect()
    }
}

/// A value that does not fit the record: a bug, or damaged stored data.
pub fn malformed(what: impl std::fmt::Display) -> Error {
    Error::Malformed(what.to_string())
}

/// Declares a record's fields once: the struct of its values as a patch names them (what a
/// create writes), what each field accepts (the entity the validator and the request schemas
/// read), and the record's `Fields` (those an update may change, after `;`). Each field is
/// `name: RustType = constructor(kind…)`, the constructor one of `domain::fields`'
/// (`required`, `field`, `defaulted`, `fixed`).
macro_rules! record_fields {
    ($record:ty => $fields:ident, $entity:ident = $ename:literal {
        $($fixed:ident: $ft:ty = $fc:ident($($fa:expr),*)),* ;
        $($name:ident: $t:ty = $c:ident($($a:expr),*)),* $(,)?
    } $(sent with [$($extra:ident),* $(,)?])?) => {
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
        pub struct $fields {
            $(pub $fixed: $ft,)*
            $(pub $name: $t,)*
        }

        pub static $entity: $crate::domain::fields::Entity = $crate::domain::fields::Entity {
            name: $ename,
            fields: &[
                $($crate::domain::fields::$fc(stringify!($fixed), $($fa),*),)*
                $($crate::domain::fields::$c(stringify!($name), $($a),*),)*
            ],
        };

        impl $crate::domain::household::rules::DeviceState for $record {
            fn device_state(&self) -> serde_json::Value {
                let mut state = serde_json::Map::new();
                $(state.insert(stringify!($fixed).into(), serde_json::to_value(&self.$fixed).unwrap_or_default());)*
                $(state.insert(stringify!($name).into(), serde_json::to_value(&self.$name).unwrap_or_default());)*
                $($(state.insert(stringify!($extra).into(), serde_json::to_value(&self.$extra).unwrap_or_default());)*)?
                serde_json::Value::Object(state)
            }
        }

        impl $crate::domain::household::rules::Fields for $record {
            fn get(
                &self,
                field: &str,
            ) -> Result<serde_json::Value, $crate::domain::household::Error> {
                use $crate::domain::household::rules::malformed;
                match field {
                    $(stringify!($name) => serde_json::to_value(&self.$name).map_err(malformed),)*
                    other => Err(malformed(format!("no mergeable field `{other}`"))),
                }
            }

            // A record with nothing to merge (a visit) never reads `value`.
            #[allow(unused_variables, unreachable_code)]
            fn set(
                &mut self,
                field: &str,
                value: serde_json::Value,
            ) -> Result<(), $crate::domain::household::Error> {
                use $crate::domain::household::rules::malformed;
                match field {
                    $(stringify!($name) => {
                        self.$name = serde_json::from_value::<$t>(value).map_err(malformed)?
                    })*
                    other => return Err(malformed(format!("no mergeable field `{other}`"))),
                }
                Ok(())
            }
        }
    };
}
pub(crate) use record_fields;

/// A record's state as devices receive it in a pull: its declared fields and the server-kept
/// ones `record_fields!` names after `sent with`, so that a field declared once reaches the
/// devices.
pub trait DeviceState {
    fn device_state(&self) -> serde_json::Value;
}

/// What merging an update into a record gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The written fields' values after the merge (the patch's fields and no others).
    pub values: Map<String, Value>,
    /// Values that lost to concurrent writes, whichever side lost.
    pub losses: Vec<Loss>,
    /// The record's field metas to store.
    pub metas: String,
}

/// Merges `patch` into `record`, whose stored field metas are `metas`, as `author` writing
/// unit version `version`: the fields that win are set on the record.
pub fn merge_into<R: Fields>(
    record: &mut R,
    metas: &str,
    patch: &Patch,
    author: &Author,
    version: i64,
) -> Result<Merged, Error> {
    let mut state = record.state(patch)?;
    let mut m = merge::decode(metas).map_err(malformed)?;
    let losses = merge::merge(&mut state, &mut m, patch.fields(), author, version);
    for (field, value) in &state {
        record.set(field, value.clone())?;
    }
    Ok(Merged {
        values: state,
        losses,
        metas: merge::encode(&m),
    })
}

/// An adoption's status and who set it when.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub status: AdoptionStatus,
    /// When the current status was set: its write's (clamped) clock, so that an install
    /// synced days later still counts on the day it happened.
    pub recorded_at: Time,
    pub recorded_by: UserId,
}

/// Sets an adoption's status (`patch`: `{status}`) over the existing one, if any (with its
/// stored metas), as `author` (user `user`) at unit version `version`.
pub fn set_status(
    existing: Option<(&Status, &str)>,
    patch: &Patch,
    author: &Author,
    user: UserId,
    version: i64,
) -> Result<(Status, Merged), Error> {
    let (mut state, mut m) = match existing {
        Some((s, metas)) => (
            Map::from_iter([("status".to_owned(), s.status.as_str().into())]),
            merge::decode(metas).map_err(malformed)?,
        ),
        None => (Map::new(), FieldMetas::new()),
    };
    let losses = merge::merge(&mut state, &mut m, patch.fields(), author, version);
    let values = patch
        .fields()
        .keys()
        .filter_map(|k| Some((k.clone(), state.get(k)?.clone())))
        .collect();
    let status = match state.get("status").and_then(Value::as_str) {
        None => AdoptionStatus::NotYet,
        Some(s) => AdoptionStatus::parse(s).ok_or_else(|| malformed(format!("status `{s}`")))?,
    };
    let wrote = m
        .get("status")
        .is_some_and(|f| *f.by == *author.by && *f.hlc == *author.hlc.to_string());
    let (recorded_at, recorded_by) = match existing {
        Some((s, _)) if !wrote => (s.recorded_at, s.recorded_by),
        _ => (Time(author.hlc.wall()), user),
    };
    Ok((
        Status {
            status,
            recorded_at,
            recorded_by,
        },
        Merged {
            values,
            losses,
            metas: merge::encode(&m),
        },
    ))
}

/// The fields a record's search key is made of.
pub trait Searched {
    /// Their names: a write that names none of them leaves the key as it was.
    const NAMES: &'static [&'static str];

    fn search_key(&self) -> String;

    /// Whether `patch` writes any of them.
    fn renames(patch: &Patch) -> bool {
        Self::NAMES.iter().any(|n| patch.get(n).is_some())
    }
}

pub fn household_search_key(head_name: &str, address: &str) -> String {
    text::search_key(&format!("{head_name} {address}"))
}

pub fn member_search_key(full_name: &str) -> String {
    text::search_key(full_name)
}

/// A new household's or member's values, worked out from its create patch alone: a pushed
/// batch makes them before it waits for the SQLite writer, which then adds only what needs
/// the database (the scope, the version, the times).
#[derive(Debug, Clone)]
pub struct NewRecord<F> {
    pub fields: F,
    pub search_key: String,
    pub metas: CreateMetas,
    /// The written values (all the patch's fields).
    pub values: Map<String, Value>,
}

impl<F: DeserializeOwned + Searched> NewRecord<F> {
    pub fn new(patch: &Patch) -> Result<NewRecord<F>, Error> {
        let fields: F =
            serde_json::from_value(Value::Object(patch.fields().clone())).map_err(malformed)?;
        Ok(NewRecord {
            search_key: fields.search_key(),
            fields,
            metas: CreateMetas::new(patch.fields().keys()),
            values: patch.fields().clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fields::{Kind, Mode};
    use crate::domain::hlc::Hlc;
    use serde_json::json;

    #[derive(Debug, Clone, Default)]
    struct Card {
        notes: String,
        phone: Option<String>,
    }
    record_fields!(Card => CardFields, CARD = "card" {
        ;
        notes: String = defaulted(Kind::Text { max: 2000 }, ""),
        phone: Option<String> = field(Kind::Phone),
    });

    fn author(by: &str, minute: u32, base: i64) -> Author {
        let at = chrono::DateTime::parse_from_rfc3339(&format!("2020-08-21T03:{minute:02}:00Z"))
            .unwrap()
            .with_timezone(&chrono::Utc);
        Author {
            by: by.into(),
            hlc: Hlc::at(at),
            base_version: base,
        }
    }

    fn patch(v: Value) -> Patch {
        Patch::parse(&super::super::records::HOUSEHOLD, &v, Mode::Update).unwrap()
    }

    /// One declaration gives the values' struct, the entity the validator reads (fields in
    /// order, with what each accepts) and the merge by name.
    #[test]
    fn a_declaration_gives_the_entity() {
        let names: Vec<_> = CARD.fields.iter().map(|f| f.name).collect();
        assert_eq!((CARD.name, names), ("card", vec!["notes", "phone"]));
        assert_eq!(CARD.fields[0].default, Some(""));
        assert!(CARD.fields[1].nullable && !CARD.fields[1].required);
        let ok = Patch::parse(&CARD, &json!({"phone": "0912 345 678"}), Mode::Update);
        assert!(ok.is_ok());
        let bad = Patch::parse(&CARD, &json!({"phone": "12"}), Mode::Update).unwrap_err();
        assert_eq!(bad[0].field, "phone");
    }

    /// The losing value is returned, never dropped; the later clock wins whatever the
    /// arrival order; a write that had seen the other one simply overwrites it.
    #[test]
    fn an_update_merges_field_by_field() {
        let mut card = Card::default();
        let created = merge_into(
            &mut card,
            "{}",
            &patch(json!({"notes": "a", "phone": "0912345678"})),
            &author("d1", 0, 0),
            1,
        )
        .unwrap();
        assert!(created.losses.is_empty());
        // Two devices that had seen version 1 edit the notes concurrently; d3 arrives first
        // with the later clock.
        let later = merge_into(
            &mut card,
            &created.metas,
            &patch(json!({"notes": "c"})),
            &author("d3", 5, 1),
            2,
        )
        .unwrap();
        let earlier = merge_into(
            &mut card,
            &later.metas,
            &patch(json!({"notes": "b"})),
            &author("d2", 3, 1),
            3,
        )
        .unwrap();
        assert_eq!(card.notes, "c");
        assert_eq!(
            earlier.values,
            Map::from_iter([("notes".into(), json!("c"))])
        );
        assert_eq!(earlier.losses.len(), 1);
        let loss = &earlier.losses[0];
        assert_eq!((&loss.lost, &loss.lost_by), (&json!("b"), &"d2".to_owned()));
        assert_eq!(loss.visible, None, "nobody ever saw the losing value");
        assert_eq!(card.phone.as_deref(), Some("0912345678"), "untouched");
        // A write that had seen version 3 overwrites, whatever its clock.
        let seen = merge_into(
            &mut card,
            &earlier.metas,
            &patch(json!({"notes": "d"})),
            &author("d2", 1, 3),
            4,
        )
        .unwrap();
        assert!(seen.losses.is_empty());
        assert_eq!(card.notes, "d");
    }

    #[test]
    fn an_unknown_field_or_bad_metas_are_malformed_not_panics() {
        let created: CardFields =
            serde_json::from_value(json!({"notes": "", "phone": null})).unwrap();
        let mut card = Card {
            notes: created.notes,
            phone: created.phone,
        };
        let p = patch(json!({"head_name": "x"}));
        assert!(matches!(
            merge_into(&mut card, "{}", &p, &author("d1", 0, 0), 1),
            Err(Error::Malformed(m)) if m.contains("head_name")
        ));
        let p = patch(json!({"notes": "x"}));
        assert!(matches!(
            merge_into(&mut card, "not json", &p, &author("d1", 0, 0), 1),
            Err(Error::Malformed(_))
        ));
    }

    /// The status counts from its own write's clock and author; a write that loses keeps
    /// the winner's time and author.
    #[test]
    fn an_adoption_counts_from_the_write_that_set_its_status() {
        let status = |s: &str| {
            Patch::parse(
                &super::super::records::ADOPTION,
                &json!({ "status": s }),
                Mode::Create,
            )
            .unwrap()
        };
        let (a, b) = (
            UserId(uuid::Uuid::from_u128(1)),
            UserId(uuid::Uuid::from_u128(2)),
        );
        let (first, m1) =
            set_status(None, &status("installed"), &author("d1", 10, 0), a, 1).unwrap();
        assert_eq!(first.status, AdoptionStatus::Installed);
        assert_eq!(first.recorded_by, a);
        assert_eq!(first.recorded_at, Time(author("d1", 10, 0).hlc.wall()));
        // A concurrent, earlier "refused" loses: nothing about the status changes.
        let (second, m2) = set_status(
            Some((&first, &m1.metas)),
            &status("refused"),
            &author("d2", 5, 0),
            b,
            2,
        )
        .unwrap();
        assert_eq!(second, first);
        assert_eq!(m2.losses.len(), 1);
        assert_eq!(m2.values["status"], json!("installed"));
        // One that had seen it wins, and counts from its own clock.
        let (third, m3) = set_status(
            Some((&second, &m2.metas)),
            &status("later"),
            &author("d2", 20, 2),
            b,
            3,
        )
        .unwrap();
        assert!(m3.losses.is_empty());
        assert_eq!(
            (third.status, third.recorded_by),
            (AdoptionStatus::Later, b)
        );
        assert_eq!(third.recorded_at, Time(author("d2", 20, 2).hlc.wall()));
    }

    #[test]
    fn search_keys_fold_and_say_which_writes_rename() {
        assert_eq!(
            household_search_key("Hoàng Văn  Mạnh", "Bản Nà Pàn"),
            text::search_key("Hoàng Văn Mạnh Bản Nà Pàn")
        );
        struct H;
        impl Searched for H {
            const NAMES: &'static [&'static str] = &["head_name", "address"];
            fn search_key(&self) -> String {
                String::new()
            }
        }
        assert!(H::renames(&patch(json!({"address": "Bản"}))));
        assert!(!H::renames(&patch(json!({"notes": "x"}))));
    }
}
