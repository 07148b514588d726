//! What the OpenAPI document says beyond each handler's own annotation: every error an
//! operation can answer, as problem+json, and the table of documented paths that turns a
//! known path asked with another method into 405 with `Allow`.

use crate::domain::fields::{Entity, Field, Kind as FieldKind, Mode};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat,
    SchemaType, Type,
};
use utoipa::openapi::{OpenApi, Ref, RefOr, Response};
use utoipa::Modify;

const PROBLEM: &str = "application/problem+json";

/// The methods of a path item that have an operation, with it.
fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("GET", &mut item.get),
        ("PUT", &mut item.put),
        ("POST", &mut item.post),
        ("DELETE", &mut item.delete),
        ("OPTIONS", &mut item.options),
        ("HEAD", &mut item.head),
        ("PATCH", &mut item.patch),
        ("TRACE", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
    .collect()
}

/// The errors an operation can answer, from what it takes: every layer that can refuse a
/// request (the token, the role and scope, each extractor, the database) adds its own.
fn errors_of(path: &str, op: &Operation) -> Vec<(&'static str, &'static str)> {
    let params = op.parameters.as_deref().unwrap_or_default();
    let has = |kind: ParameterIn| params.iter().any(|p| p.parameter_in == kind);
    let if_match = params
        .iter()
        .any(|p| p.parameter_in == ParameterIn::Header && p.name == "If-Match");
    let mut out = vec![("500", "Internal error (the body says no more)")];
    if path.starts_with("/api/") {
        out.push((
            "503",
            "The database is unavailable: retry after `Retry-After`",
        ));
    }
    if op.security.is_some() {
        out.push(("401", "No token, or an expired, invalid or revoked one"));
        out.push((
            "403",
            "The caller lacks the role or the area (checked before the input)",
        ));
    }
    if has(ParameterIn::Path) || has(ParameterIn::Query) || op.request_body.is_some() {
        // Every input may name a record (a path id, `area`, `campaign`, `area_id`…).
        out.push(("404", "No such record"));
    }
    if has(ParameterIn::Path) {
        out.push(("400", "A malformed path parameter or input"));
    }
    if has(ParameterIn::Query) {
        out.push(("400", "A malformed path parameter or input"));
        out.push(("422", "Invalid input: one entry per bad field"));
    }
    if op.request_body.is_some() {
        out.push(("400", "A malformed path parameter or input"));
        out.push(("413", "The body is larger than the limit"));
        out.push((
            "415",
            "The body is not of a media type this operation takes",
        ));
        out.push(("422", "Invalid input: one entry per bad field"));
    }
    if if_match {
        out.push(("400", "A malformed path parameter or input"));
        out.push((
            "412",
            "The record changed since the version in If-Match: nothing written",
        ));
        out.push(("428", "If-Match is required"));
    }
    out
}

/// A unique operation id from the method and path: `PATCH /api/v1/users/{id}` is
/// `patch_users_id` (handler names repeat across resources).
fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<String> = path
        .trim_start_matches("/api/v1")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    format!("{}_{}", method.to_lowercase(), words.join("_"))
}

/// Declares every error each operation can answer, all as problem+json bodies, and gives
/// each operation a unique id.
pub struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        let problem = || {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, op) in operations(item) {
                op.operation_id = Some(operation_id(method, path));
                for (status, description) in errors_of(path, op) {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::T(Response::new(description)));
                }
                for (status, response) in op.responses.responses.iter_mut() {
                    let error = status.starts_with('4') || status.starts_with('5');
                    if let (true, RefOr::T(r)) = (error, response) {
                        r.content.clear();
                        r.content.insert(PROBLEM.to_owned(), problem());
                    }
                }
            }
        }
    }
}

/// The documented paths, as segments, with their methods. A segment with a `{parameter}`
/// keeps what stands before it (`progress.{format}`: `progress.`) and matches any longer
/// segment that starts so.
pub struct Routes(Vec<(Vec<Segment>, Vec<&'static str>)>);

enum Segment {
    Literal(String),
    Param { prefix: String },
}

impl Segment {
    fn matches(&self, asked: &str) -> bool {
        match self {
            Segment::Literal(s) => s == asked,
            Segment::Param { prefix } => asked.len() > prefix.len() && asked.starts_with(prefix),
        }
    }
}

impl Routes {
    pub fn of(openapi: &OpenApi) -> Routes {
        let mut paths = openapi.paths.paths.clone();
        let routes = paths
            .iter_mut()
            .map(|(path, item)| {
                let segments = path
                    .split('/')
                    .map(|s| match s.split_once('{') {
                        Some((prefix, _)) => Segment::Param {
                            prefix: prefix.to_owned(),
                        },
                        None => Segment::Literal(s.to_owned()),
                    })
                    .collect();
                let methods = operations(item).into_iter().map(|(m, _)| m).collect();
                (segments, methods)
            })
            .collect();
        Routes(routes)
    }

    /// The methods a documented path takes (for `Allow`), or `None` for an unknown path. A
    /// path that several templates match is the most literal one's (`/areas/import`, not
    /// `/areas/{id}`).
    pub fn allowed(&self, path: &str) -> Option<String> {
        let asked: Vec<&str> = path.split('/').collect();
        self.0
            .iter()
            .filter(|(segments, _)| {
                segments.len() == asked.len()
                    && segments.iter().zip(&asked).all(|(s, a)| s.matches(a))
            })
            .min_by_key(|(segments, _)| {
                segments
                    .iter()
                    .filter(|s| matches!(s, Segment::Param { .. }))
                    .count()
            })
            .map(|(_, methods)| methods.join(", "))
    }
}

/// The JSON Schema of an entity's body, made from its field declarations
/// (`domain::fields`), so that the document states exactly what the validator takes. A
/// create names every required field (and, where `client_id`, may carry a client-chosen
/// `id`); an update names at least one changeable field.
pub fn entity_schema(entity: &Entity, mode: Mode, client_id: bool) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
    if client_id {
        object = object.property(
            "id",
            typed(Type::String, true)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                .description(Some("Client-chosen id (optional)")),
        );
    }
    if mode == Mode::Update {
        object = object.min_properties(Some(1));
    }
    for f in entity.fields {
        if mode == Mode::Update && f.immutable {
            continue;
        }
        if mode == Mode::Create && f.required {
            object = object.required(f.name);
        }
        object = object.property(f.name, field_schema(f));
    }
    RefOr::T(Schema::Object(object.build()))
}

fn typed(t: Type, nullable: bool) -> ObjectBuilder {
    let ty = if nullable {
        SchemaType::Array(vec![t, Type::Null])
    } else {
        SchemaType::Type(t)
    };
    ObjectBuilder::new().schema_type(ty)
}

fn field_schema(f: &Field) -> ObjectBuilder {
    let n = f.nullable;
    match f.kind {
        // Values are trimmed before they are checked: a required text needs a non-blank one.
        FieldKind::Text { max } => typed(Type::String, n)
            .max_length(Some(max))
            .pattern(f.required.then_some(r"\S")),
        FieldKind::Phone => phone_of(n),
        FieldKind::Choice(options) => {
            let mut values: Vec<serde_json::Value> = options.iter().map(|&o| o.into()).collect();
            if n {
                values.push(serde_json::Value::Null);
            }
            typed(Type::String, n).enum_values(Some(values))
        }
        FieldKind::Int { min, max } => typed(Type::Integer, n)
            .minimum(Some(min as f64))
            .maximum(Some(max as f64)),
        FieldKind::Float { min, max } => {
            typed(Type::Number, n).minimum(Some(min)).maximum(Some(max))
        }
        FieldKind::Id => {
            typed(Type::String, n).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        }
        FieldKind::Time => {
            typed(Type::String, n).format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        }
    }
}

/// A phone number: spaces, dots and dashes are dropped; an empty number is no number.
fn phone_of(nullable: bool) -> ObjectBuilder {
    typed(Type::String, nullable)
        .pattern(Some(r"^[ .-]*((\+[ .-]*)?([0-9][ .-]*){6,15})?$"))
        .description(Some(
            "6 to 15 digits, optionally after +; spaces, dots and dashes are dropped",
        ))
}

/// A user's phone number, as a household's is checked.
pub fn phone() -> ObjectBuilder {
    phone_of(false)
}

/// The same, or null (a patch that leaves it).
pub fn phone_or_null() -> ObjectBuilder {
    phone_of(true)
}

/// A string that must be one of `options`.
fn choice(options: &[&str]) -> ObjectBuilder {
    typed(Type::String, false).enum_values(Some(options.iter().copied()))
}

pub fn area_levels() -> ObjectBuilder {
    choice(crate::store::areas::LEVELS)
}

pub fn conflict_statuses() -> ObjectBuilder {
    choice(crate::domain::household::ConflictStatus::NAMES)
}

pub fn priorities() -> ObjectBuilder {
    choice(crate::domain::household::Priority::NAMES)
}

pub fn adoption_statuses() -> ObjectBuilder {
    choice(crate::domain::household::AdoptionStatus::NAMES)
}

/// A target: a rate is a percent above 0 and at most 100, a count a whole number from 1 to
/// a billion (`store::campaigns::set_target`).
pub fn target_input() -> RefOr<Schema> {
    let variant = |kinds: &[&str], value: ObjectBuilder| {
        Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
                .property("kind", choice(kinds))
                .property("value", value)
                .required("kind")
                .required("value")
                .build(),
        )
    };
    let rate = typed(Type::Number, false)
        .exclusive_minimum(Some(0.0))
        .maximum(Some(100.0));
    let count = typed(Type::Integer, false)
        .minimum(Some(1.0))
        .maximum(Some(1e9));
    RefOr::T(Schema::OneOf(
        OneOfBuilder::new()
            .item(variant(&["rate_registered", "rate_smartphone"], rate))
            .item(variant(&["count"], count))
            .build(),
    ))
}
