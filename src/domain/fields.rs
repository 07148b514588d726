//! What a field accepts (`Field`: its kind of value, whether required, nullable, fixed or
//! defaulted), and the one validator that every write path uses (REST and offline sync):
//! unknown fields, wrong types, bad values and missing required fields are all reported,
//! each with its field name. The household's entities (`HOUSEHOLD`, `MEMBER`, `ADOPTION`,
//! `VISIT`) are declared with their records, in `domain::household::records`.

use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Text { max: usize },
    Phone,
    Choice(&'static [&'static str]),
    Int { min: i64, max: i64 },
    Float { min: f64, max: f64 },
    Id,
    Time,
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    /// Must be given (non-empty) when the record is created.
    pub required: bool,
    pub nullable: bool,
    /// Set once at creation, never changed.
    pub immutable: bool,
    /// Value used at creation when the field is not given.
    pub default: Option<&'static str>,
}

pub const fn field(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: false,
        nullable: true,
        immutable: false,
        default: None,
    }
}
pub const fn required(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: true,
        nullable: false,
        immutable: false,
        default: None,
    }
}
pub const fn defaulted(name: &'static str, kind: Kind, default: &'static str) -> Field {
    Field {
        name,
        kind,
        required: false,
        nullable: false,
        immutable: false,
        default: Some(default),
    }
}
pub const fn fixed(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: true,
        nullable: false,
        immutable: true,
        default: None,
    }
}

pub struct Entity {
    pub name: &'static str,
    pub fields: &'static [Field],
}

/// One bad field of a request.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

/// Validated, normalized field values of one write: only known fields, right types, trimmed
/// text. On `Create` every field is present (defaults filled in).
#[derive(Debug, Clone, PartialEq)]
pub struct Patch(Map<String, Value>);

impl Patch {
    pub fn parse(entity: &Entity, input: &Value, mode: Mode) -> Result<Patch, Vec<FieldError>> {
        let Some(obj) = input.as_object() else {
            return Err(vec![FieldError::new(
                "",
                "not_an_object",
                "expected a JSON object",
            )]);
        };
        Self::parse_map(entity, obj, &[], mode)
    }

    /// Like `parse`, ignoring the named keys (such as `id`, which the caller reads itself).
    pub fn parse_map(
        entity: &Entity,
        obj: &Map<String, Value>,
        ignore: &[&str],
        mode: Mode,
    ) -> Result<Patch, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut out = Map::new();
        for (key, value) in obj {
            if ignore.contains(&key.as_str()) {
                continue;
            }
            let Some(f) = entity.fields.iter().find(|f| f.name == key) else {
                errors.push(FieldError::new(
                    key.clone(),
                    "unknown_field",
                    format!("`{key}` is not a field of a {}", entity.name),
                ));
                continue;
            };
            if mode == Mode::Update && f.immutable {
                errors.push(FieldError::new(
                    key.clone(),
                    "immutable",
                    "cannot be changed",
                ));
                continue;
            }
            match check(f, value) {
                Ok(v) => {
                    out.insert(key.clone(), v);
                }
                Err(e) => errors.push(e),
            }
        }
        if mode == Mode::Create {
            for f in entity.fields {
                if out.contains_key(f.name) || errors.iter().any(|e| e.field == f.name) {
                    continue;
                }
                if f.required {
                    errors.push(FieldError::new(f.name, "required", "is required"));
                } else {
                    let v = f
                        .default
                        .map(|d| Value::String(d.into()))
                        .unwrap_or(Value::Null);
                    out.insert(f.name.into(), v);
                }
            }
        } else if out.is_empty() && errors.is_empty() {
            errors.push(FieldError::new("", "empty", "no field to change"));
        }
        if errors.is_empty() {
            Ok(Patch(out))
        } else {
            Err(errors)
        }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    pub fn fields(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

/// A JSON integer as JSON Schema reads one: any number with no fractional part (`7.0` too),
/// within the range that an f64 holds exactly.
/// A phone number as it is stored (a household's, a member's, a user's): 6 to 15 digits,
/// optionally after `+`, with spaces, dots and dashes dropped; none when empty.
pub fn phone(s: &str) -> Result<Option<String>, NotAPhone> {
    let compact: String = s
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-'))
        .collect();
    let digits = compact.strip_prefix('+').unwrap_or(&compact);
    if compact.is_empty() {
        return Ok(None);
    }
    match (6..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
        true => Ok(Some(compact)),
        false => Err(NotAPhone),
    }
}

/// A value that is no phone number (`phone`).
#[derive(Debug)]
pub struct NotAPhone;

pub fn integer(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0)
            .map(|f| f as i64)
    })
}

fn check(f: &Field, value: &Value) -> Result<Value, FieldError> {
    let bad = |code: &'static str, msg: String| FieldError::new(f.name, code, msg);
    if value.is_null() {
        return if f.nullable {
            Ok(Value::Null)
        } else {
            Err(bad("required", "cannot be null".into()))
        };
    }
    match f.kind {
        Kind::Text { max } => {
            let s = value
                .as_str()
                .ok_or_else(|| bad("type", "must be a string".into()))?;
            let s = s.trim();
            if f.required && s.is_empty() {
                return Err(bad("required", "cannot be empty".into()));
            }
            if s.chars().count() > max {
                return Err(bad("too_long", format!("at most {max} characters")));
            }
            Ok(Value::String(s.into()))
        }
        Kind::Phone => {
            let s = value
                .as_str()
                .ok_or_else(|| bad("type", "must be a string".into()))?;
            match phone(s) {
                Ok(None) => Ok(Value::Null),
                Ok(Some(compact)) => Ok(Value::String(compact)),
                Err(NotAPhone) => Err(bad(
                    "format",
                    "must be a phone number of 6 to 15 digits".into(),
                )),
            }
        }
        Kind::Choice(options) => {
            let s = value
                .as_str()
                .ok_or_else(|| bad("type", "must be a string".into()))?;
            if options.contains(&s) {
                Ok(Value::String(s.into()))
            } else {
                Err(bad(
                    "choice",
                    format!("must be one of: {}", options.join(", ")),
                ))
            }
        }
        Kind::Int { min, max } => {
            let n = value
                .as_number()
                .and_then(integer)
                .ok_or_else(|| bad("type", "must be an integer".into()))?;
            if (min..=max).contains(&n) {
                Ok(Value::from(n))
            } else {
                Err(bad("range", format!("must be between {min} and {max}")))
            }
        }
        Kind::Float { min, max } => {
            let n = value
                .as_f64()
                .ok_or_else(|| bad("type", "must be a number".into()))?;
            if (min..=max).contains(&n) {
                Ok(Value::from(n))
            } else {
                Err(bad("range", format!("must be between {min} and {max}")))
            }
        }
        Kind::Id => {
            let s = value
                .as_str()
                .ok_or_else(|| bad("type", "must be a UUID string".into()))?;
            let id =
                uuid::Uuid::parse_str(s).map_err(|_| bad("format", "must be a UUID".into()))?;
            Ok(Value::String(id.hyphenated().to_string()))
        }
        Kind::Time => {
            let s = value
                .as_str()
                .ok_or_else(|| bad("type", "must be a string".into()))?;
            let t = chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| bad("format", "must be an RFC 3339 time".into()))?;
            let t = super::Time(t.with_timezone(&chrono::Utc));
            Ok(Value::String(t.to_text()))
        }
    }
}

/// Groups errors by field, for logs and tests.
pub fn by_field(errors: &[FieldError]) -> BTreeMap<&str, &str> {
    errors.iter().map(|e| (e.field.as_str(), e.code)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::household::records::{HOUSEHOLD, MEMBER};
    use serde_json::json;

    #[test]
    fn create_fills_defaults_and_trims() {
        let id = uuid::Uuid::new_v4().to_string();
        let p = Patch::parse(
            &HOUSEHOLD,
            &json!({"area_id": id, "address": "  Thôn Nà Pàn ", "head_name": "Hoàng Văn Mạnh"}),
            Mode::Create,
        )
        .unwrap();
        assert_eq!(p.str("address"), Some("Thôn Nà Pàn"));
        assert_eq!(p.str("notes"), Some(""));
        assert_eq!(p.get("phone"), Some(&Value::Null));
    }

    #[test]
    fn reports_every_bad_field() {
        let errs = Patch::parse(
            &MEMBER,
            &json!({"full_name": 5, "sex": "x", "birth_year": "1990", "extra": 1, "phone": "12ab"}),
            Mode::Create,
        )
        .unwrap_err();
        let m = by_field(&errs);
        assert_eq!(m["full_name"], "type");
        assert_eq!(m["sex"], "choice");
        assert_eq!(m["birth_year"], "type");
        assert_eq!(m["extra"], "unknown_field");
        assert_eq!(m["phone"], "format");
        assert_eq!(m["household_id"], "required");
    }

    #[test]
    fn update_refuses_immutable_and_empty() {
        let errs = Patch::parse(
            &MEMBER,
            &json!({"household_id": uuid::Uuid::new_v4()}),
            Mode::Update,
        )
        .unwrap_err();
        assert_eq!(by_field(&errs)["household_id"], "immutable");
        assert!(Patch::parse(&MEMBER, &json!({}), Mode::Update).is_err());
    }
}
