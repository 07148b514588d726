//! Per-field versions and the merge rule of a household unit (household, members, adoptions).
//!
//! Each field remembers the unit version, HLC and writer of its last write. A write based on a
//! version that had already seen a field's last write (or made by the same writer) overwrites
//! it; otherwise the two writes are concurrent and the later HLC wins, ties broken by writer.
//! The losing value is returned, never dropped.

use super::hlc::Hlc;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMeta {
    /// Unit version that wrote the field.
    pub v: i64,
    /// HLC of that write (clamped to the server's receive time). Shared, as `by` is: the
    /// fields of one write share one copy when decoded and merged.
    #[serde(deserialize_with = "shared_str")]
    pub hlc: Arc<str>,
    /// Author: a device id, or `user:<id>` for online edits.
    #[serde(deserialize_with = "shared_str")]
    pub by: Arc<str>,
    /// Other writes of the same value, concurrent with this one (each with an empty `same`):
    /// the value is theirs too, so it is lost for each of them when a write that had not seen
    /// them overwrites it. (Without them, whether a device that wrote the value first had
    /// lost it would depend on whether the other write of that value arrived before or after
    /// the overwrite.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub same: Vec<FieldMeta>,
}

pub type FieldMetas = BTreeMap<String, FieldMeta>;

/// An `Arc<str>` read straight from the JSON text (serde's own goes through a `String` and
/// a `Box<str>`, copying twice).
fn shared_str<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
    struct Shared;
    impl Visitor<'_> for Shared {
        type Value = Arc<str>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Arc<str>, E> {
            Ok(Arc::from(s))
        }
    }
    d.deserialize_str(Shared)
}

/// The field half of the stored form, `{"field": index, …}`, as read: pairs in the order
/// written (sorted by field, as `encode` writes them), with no map built.
struct Indexes(Vec<(String, usize)>);

impl<'de> Deserialize<'de> for Indexes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Indexes, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Indexes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of field names to write indexes")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Indexes, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Indexes(pairs))
            }
        }
        d.deserialize_map(Pairs)
    }
}

/// The stored form of a record's field metas: each distinct write once, then each field with
/// the index of its write, `[[{"v":…,"hlc":…,"by":…}, …], {"field": 0, …}]`. The fields of
/// one create or one patch share a write, which a map from field to meta would repeat for
/// every field (a new member's metas are about a quarter of their old size). The map form
/// (`{"field": {"v":…}}`), written before, is still read.
pub fn encode(metas: &FieldMetas) -> String {
    struct Fields<'a>(&'a FieldMetas, Vec<usize>);
    impl Serialize for Fields<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.keys().zip(&self.1))
        }
    }
    let mut writes: Vec<&FieldMeta> = Vec::new();
    let mut indexes = Vec::with_capacity(metas.len());
    for meta in metas.values() {
        let i = match writes.iter().position(|w| *w == meta) {
            Some(i) => i,
            None => {
                writes.push(meta);
                writes.len() - 1
            }
        };
        indexes.push(i);
    }
    serde_json::to_string(&(writes, Fields(metas, indexes))).expect("field metas serialize")
}

/// The stored metas of a create, whose fields all share its one write: `encode`'s form, with
/// the field half (`{"field": 0, …}`) made from the field names alone, before the write's
/// version is known (pushed creates make it before they wait for the SQLite writer).
#[derive(Debug, Clone)]
pub struct CreateMetas(String);

impl CreateMetas {
    pub fn new<'a>(fields: impl IntoIterator<Item = &'a String>) -> CreateMetas {
        let fields: BTreeMap<&str, usize> = fields.into_iter().map(|f| (f.as_str(), 0)).collect();
        CreateMetas(serde_json::to_string(&fields).expect("field names serialize"))
    }

    /// What `encode` gives for these fields, each written by `write`.
    pub fn encode(&self, write: &FieldMeta) -> String {
        let write = serde_json::to_string(write).expect("a field meta serializes");
        format!("[[{write}],{}]", self.0)
    }
}

/// Reads what `encode` wrote, or the older map form.
pub fn decode(stored: &str) -> Result<FieldMetas, serde_json::Error> {
    if !stored.trim_start().starts_with('[') {
        return serde_json::from_str(stored);
    }
    let (writes, Indexes(fields)): (Vec<FieldMeta>, Indexes) = serde_json::from_str(stored)?;
    fields
        .into_iter()
        .map(|(field, i)| match writes.get(i) {
            Some(w) => Ok((field, w.clone())),
            None => Err(serde::de::Error::custom(format!(
                "field `{field}` names write {i} of {}",
                writes.len()
            ))),
        })
        .collect()
}

/// Who writes, when, and what version of the unit they had seen.
#[derive(Debug, Clone)]
pub struct Author {
    pub by: String,
    pub hlc: Hlc,
    pub base_version: i64,
}

impl Author {
    /// The meta of a field this author writes at unit version `version`.
    pub fn meta_at(&self, version: i64) -> FieldMeta {
        FieldMeta {
            v: version,
            hlc: self.hlc.to_string().into(),
            by: self.by.as_str().into(),
            same: Vec::new(),
        }
    }
}

/// A value that lost to a concurrent write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Loss {
    pub field: String,
    pub kept: Value,
    pub kept_by: String,
    pub kept_hlc: String,
    pub lost: Value,
    pub lost_by: String,
    pub lost_hlc: String,
    /// The versions between which the losing value was the field's value (it was written at
    /// the first and overwritten by a concurrent write at the second, exclusive); `None` when
    /// the incoming write lost, so that no one ever saw it.
    pub visible: Option<(i64, i64)>,
}

/// Applies `patch` to `state` and `metas` as written by `author` at `new_version`.
/// Returns the losing values of concurrent edits (whichever side lost).
pub fn merge(
    state: &mut Map<String, Value>,
    metas: &mut FieldMetas,
    patch: &Map<String, Value>,
    author: &Author,
    new_version: i64,
) -> Vec<Loss> {
    let mut losses = Vec::new();
    let this = author.meta_at(new_version);
    // A write this author had seen, or made itself earlier, is behind it.
    let behind = |w: &FieldMeta| w.v <= author.base_version || *w.by == *author.by;
    for (field, value) in patch {
        let current = state.get(field).cloned().unwrap_or(Value::Null);
        let Some(m) = metas.get_mut(field) else {
            state.insert(field.clone(), value.clone());
            metas.insert(field.clone(), this.clone());
            continue;
        };
        // The field's last write, and the others of its value.
        let mut same = std::mem::take(&mut m.same);
        let last = m.clone();
        let concurrent = !behind(&last);
        let wins = !concurrent
            || (Some(author.hlc), author.by.as_str()) > (Hlc::parse(&last.hlc).ok(), &*last.by);
        if current == *value {
            same.retain(|w| !behind(w));
            // Nothing is lost: both writes stand behind the value, the later one as its last.
            if wins {
                if concurrent {
                    same.push(last);
                }
                *m = FieldMeta {
                    same,
                    ..this.clone()
                };
            } else {
                same.push(this.clone());
                m.same = same;
            }
            continue;
        }
        let loss = |kept: (&Value, &FieldMeta), lost: (&Value, &FieldMeta), visible| Loss {
            field: field.clone(),
            kept: kept.0.clone(),
            kept_by: kept.1.by.to_string(),
            kept_hlc: kept.1.hlc.to_string(),
            lost: lost.0.clone(),
            lost_by: lost.1.by.to_string(),
            lost_hlc: lost.1.hlc.to_string(),
            visible,
        };
        if !wins {
            losses.push(loss((&current, &last), (value, &this), None));
            // This writer has moved on from any earlier write of the value.
            same.retain(|w| *w.by != *author.by);
            m.same = same;
            continue;
        }
        // The value's writers that this write had not seen lose it.
        same.retain(|w| !behind(w));
        let visible = Some((last.v, new_version));
        if concurrent {
            same.insert(0, last);
        }
        for w in &same {
            losses.push(loss((value, &this), (&current, w), visible));
        }
        state.insert(field.clone(), value.clone());
        *m = this.clone();
    }
    losses
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A create's metas made from its field names read as those of a merge into nothing.
    #[test]
    fn create_metas_are_what_encode_gives() {
        let create = obj(json!({"sex": "male", "full_name": "Lò \"Páo\"", "notes": ""}));
        let (mut s, mut m) = (Map::new(), FieldMetas::new());
        let author = w("d1", 1000, 0);
        merge(&mut s, &mut m, &create, &author, 4);
        let stored = CreateMetas::new(create.keys()).encode(&author.meta_at(4));
        assert_eq!(stored, encode(&m));
        assert_eq!(decode(&stored).unwrap(), m);
    }

    /// A create's fields share one write; a later patch adds another; `same` is kept; the
    /// older map form reads the same; a bad index is an error, not a panic.
    #[test]
    fn metas_are_stored_once_per_write() {
        let mut m = FieldMetas::new();
        let mut s = Map::new();
        let create = obj(json!({"full_name": "Lò Văn Páo", "sex": "male", "notes": ""}));
        merge(&mut s, &mut m, &create, &w("d1", 1000, 0), 1);
        merge(
            &mut s,
            &mut m,
            &obj(json!({"notes": "ốm"})),
            &w("d2", 1100, 0),
            2,
        );
        merge(
            &mut s,
            &mut m,
            &obj(json!({"sex": "male"})),
            &w("d3", 800, 0),
            3,
        );
        let stored = encode(&m);
        let v: Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(v[0].as_array().unwrap().len(), 3, "{stored}");
        assert_eq!(v[1], json!({"full_name": 0, "notes": 1, "sex": 2}));
        assert_eq!(v[0][2]["same"][0]["by"], "d3");
        assert_eq!(decode(&stored).unwrap(), m);
        assert_eq!(decode(&serde_json::to_string(&m).unwrap()).unwrap(), m);
        assert_eq!(decode("{}").unwrap(), FieldMetas::new());
        let bad = decode(r#"[[], {"notes": 0}]"#).unwrap_err();
        assert!(bad.to_string().contains("names write 0 of 0"), "{bad}");
    }

    fn w(by: &str, ms: i64, base: i64) -> Author {
        Author {
            by: by.into(),
            hlc: Hlc {
                millis: ms,
                counter: 0,
            },
            base_version: base,
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn seen_fields_are_overwritten() {
        let mut s = obj(json!({"address": "a"}));
        let mut m = FieldMetas::new();
        merge(
            &mut s,
            &mut m,
            &obj(json!({"address": "b"})),
            &w("d1", 10, 0),
            1,
        );
        let l = merge(
            &mut s,
            &mut m,
            &obj(json!({"address": "c"})),
            &w("d2", 5, 1),
            2,
        );
        assert!(l.is_empty());
        assert_eq!(s["address"], "c");
    }

    #[test]
    fn own_writes_are_seen() {
        let mut s = Map::new();
        let mut m = FieldMetas::new();
        merge(
            &mut s,
            &mut m,
            &obj(json!({"address": "b"})),
            &w("d1", 10, 0),
            1,
        );
        let l = merge(
            &mut s,
            &mut m,
            &obj(json!({"address": "c"})),
            &w("d1", 11, 0),
            2,
        );
        assert!(l.is_empty());
        assert_eq!(s["address"], "c");
    }

    #[test]
    fn concurrent_edits_converge_in_any_order() {
        let a = (obj(json!({"head_name": "A"})), w("d1", 20, 1));
        let b = (obj(json!({"head_name": "B"})), w("d2", 10, 1));
        let run = |first: &(Map<String, Value>, Author), second: &(Map<String, Value>, Author)| {
            let mut s = obj(json!({"head_name": "X"}));
            let mut m = FieldMetas::new();
            m.insert(
                "head_name".into(),
                FieldMeta {
                    v: 1,
                    hlc: "x".into(),
                    by: "d0".into(),
                    same: Vec::new(),
                },
            );
            let mut losses = merge(&mut s, &mut m, &first.0, &first.1, 2);
            losses.extend(merge(&mut s, &mut m, &second.0, &second.1, 3));
            (s, losses.into_iter().map(|l| l.lost).collect::<Vec<_>>())
        };
        let (s1, l1) = run(&a, &b);
        let (s2, l2) = run(&b, &a);
        assert_eq!(s1, s2);
        assert_eq!(s1["head_name"], "A");
        assert_eq!(l1, vec![json!("B")]);
        assert_eq!(l2, vec![json!("B")]);
    }

    /// Applies `ops` in order to a phone field last written "x" by d0 at version 1; returns
    /// the state and the losses of the ops' writers.
    fn replay(ops: &[&(Map<String, Value>, Author)]) -> (Map<String, Value>, Vec<Loss>) {
        let mut s = obj(json!({"phone": "x"}));
        let mut m = FieldMetas::new();
        merge(
            &mut s,
            &mut m,
            &obj(json!({"phone": "x"})),
            &w("d0", 1, 0),
            1,
        );
        let mut lost = Vec::new();
        for (i, (patch, author)) in ops.iter().enumerate() {
            lost.extend(merge(&mut s, &mut m, patch, author, 2 + i as i64));
        }
        (s, lost)
    }

    /// Two devices write the same value, a third a different one with a later clock, none
    /// having seen the others: in every arrival order both lose that value, once each.
    #[test]
    fn writers_of_the_same_value_each_lose_it_in_any_order() {
        let ops = [
            (obj(json!({"phone": "v"})), w("a", 10, 1)),
            (obj(json!({"phone": "v"})), w("b", 20, 1)),
            (obj(json!({"phone": "w"})), w("c", 30, 1)),
        ];
        let orders = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        let outcomes: Vec<_> = orders
            .iter()
            .map(|order| {
                let (s, losses) = replay(&order.map(|k| &ops[k]));
                let mut lost: Vec<_> = losses
                    .into_iter()
                    .filter(|l| l.lost_by != "d0")
                    .map(|l| (l.lost_by, l.lost))
                    .collect();
                lost.sort_by_key(|l| l.0.clone());
                (s, lost)
            })
            .collect();
        let expected = vec![("a".to_owned(), json!("v")), ("b".to_owned(), json!("v"))];
        for (order, (state, lost)) in orders.iter().zip(&outcomes) {
            assert_eq!(state["phone"], "w", "{order:?}");
            assert_eq!(lost, &expected, "{order:?}");
        }
    }

    /// A device that writes the field again has moved on from its earlier value. Merging
    /// reports that value lost only if the overwrite came first (and the conflict store then
    /// closes it, as the same writer wrote later); either way what stays lost is the same.
    #[test]
    fn a_writer_that_wrote_again_does_not_lose_its_older_value() {
        let run = |c_first: bool| {
            let mut ops = vec![
                (obj(json!({"phone": "v"})), w("b", 20, 1)),
                (obj(json!({"phone": "v"})), w("a", 10, 1)),
                (obj(json!({"phone": "u"})), w("a", 15, 1)),
            ];
            let c = (obj(json!({"phone": "w"})), w("c", 30, 1));
            if c_first {
                ops.insert(0, c);
            } else {
                ops.push(c);
            }
            let (s, losses) = replay(&ops.iter().collect::<Vec<_>>());
            let mut lost: Vec<_> = losses
                .into_iter()
                .map(|l| (l.lost_by, l.lost_hlc, l.lost))
                .collect();
            // What the conflict store keeps open: not what the same writer wrote over later.
            let last_of = |by: &str| {
                ops.iter()
                    .filter(|(_, w)| w.by == by)
                    .map(|(_, w)| w.hlc.to_string())
                    .max()
            };
            lost.retain(|(by, hlc, _)| last_of(by).is_some_and(|l| *hlc >= l));
            lost.sort_by_key(|l| (l.0.clone(), l.2.to_string()));
            (s, lost)
        };
        let (s1, l1) = run(true);
        let (s2, l2) = run(false);
        assert_eq!(s1, s2);
        assert_eq!(s1["phone"], "w");
        let lost = |l: &[(String, String, Value)]| -> Vec<(String, Value)> {
            l.iter().map(|(by, _, v)| (by.clone(), v.clone())).collect()
        };
        let expected = vec![("a".to_owned(), json!("u")), ("b".to_owned(), json!("v"))];
        assert_eq!(lost(&l1), expected);
        assert_eq!(lost(&l2), expected);
    }
}
