//! Per-field versions and the merge rule of a household unit (household, members, adoptions).
//!
//! Each field remembers the unit version, HLC and writer of its last write. A write based on a
//! version that had already seen a field's last write (or made by the same writer) overwrites
//! it; otherwise the two writes are concurrent and the later HLC wins, ties broken by writer.
//! The losing value is returned, never dropped.

use super::hlc::Hlc;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMeta {
    /// Unit version that wrote the field.
    pub v: i64,
    /// HLC of that write (clamped to the server's receive time).
    pub hlc: String,
    /// Writer: a device id, or `user:<id>` for online edits.
    pub by: String,
}

pub type FieldMetas = BTreeMap<String, FieldMeta>;

/// Who writes, when, and what version of the unit they had seen.
#[derive(Debug, Clone)]
pub struct Writer {
    pub by: String,
    pub hlc: Hlc,
    pub base_version: i64,
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

/// Applies `patch` to `state` and `metas` as written by `writer` at `new_version`.
/// Returns the losing values of concurrent edits (whichever side lost).
pub fn merge(
    state: &mut Map<String, Value>,
    metas: &mut FieldMetas,
    patch: &Map<String, Value>,
    writer: &Writer,
    new_version: i64,
) -> Vec<Loss> {
    let mut losses = Vec::new();
    let hlc = writer.hlc.to_string();
    for (field, value) in patch {
        let current = state.get(field).cloned().unwrap_or(Value::Null);
        let wins = match metas.get(field) {
            None => true,
            Some(m) if m.v <= writer.base_version || m.by == writer.by => true,
            Some(m) => {
                let theirs = (Hlc::parse(&m.hlc).ok(), m.by.as_str());
                let ours = (Some(writer.hlc), writer.by.as_str());
                let wins = ours > theirs;
                if current != *value {
                    let (kept, lost) = if wins {
                        (value, &current)
                    } else {
                        (&current, value)
                    };
                    let (kept_m, lost_m) = if wins {
                        (
                            (writer.by.clone(), hlc.clone()),
                            (m.by.clone(), m.hlc.clone()),
                        )
                    } else {
                        (
                            (m.by.clone(), m.hlc.clone()),
                            (writer.by.clone(), hlc.clone()),
                        )
                    };
                    losses.push(Loss {
                        field: field.clone(),
                        kept: kept.clone(),
                        kept_by: kept_m.0,
                        kept_hlc: kept_m.1,
                        lost: lost.clone(),
                        lost_by: lost_m.0,
                        lost_hlc: lost_m.1,
                        visible: wins.then_some((m.v, new_version)),
                    });
                }
                wins
            }
        };
        if wins {
            state.insert(field.clone(), value.clone());
            metas.insert(
                field.clone(),
                FieldMeta {
                    v: new_version,
                    hlc: hlc.clone(),
                    by: writer.by.clone(),
                },
            );
        }
    }
    losses
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn w(by: &str, ms: i64, base: i64) -> Writer {
        Writer {
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
        let run = |first: &(Map<String, Value>, Writer), second: &(Map<String, Value>, Writer)| {
            let mut s = obj(json!({"head_name": "X"}));
            let mut m = FieldMetas::new();
            m.insert(
                "head_name".into(),
                FieldMeta {
                    v: 1,
                    hlc: "x".into(),
                    by: "d0".into(),
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
}
