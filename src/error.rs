//! The service's answer to every error, rendered as `application/problem+json`, and the one
//! mapping of each layer's errors to it (the domain's rules, the store, the write path, sync,
//! reports, retention and the demo).
//!
//! 4xx carry a message for the user; 5xx log the whole cause chain and answer a generic body.

use crate::db::RunError;
use crate::domain::fields::FieldError;
use crate::domain::{self, household};
use crate::store::error as store;
use crate::write;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BadRequest,
    Validation,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PreconditionFailed,
    PreconditionRequired,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    Unavailable,
    Internal,
}

impl Kind {
    fn status(self) -> StatusCode {
        match self {
            Kind::BadRequest => StatusCode::BAD_REQUEST,
            Kind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Kind::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Kind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

pub struct ApiError {
    pub kind: Kind,
    /// Stable machine-readable code, e.g. `not_found`, `version_mismatch`.
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// Seconds to wait before trying again (`Retry-After`), for a 429.
    pub retry_after: Option<u64>,
    source: Option<anyhow::Error>,
}

/// The problem+json body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The request's id, as in its `X-Request-Id` header and the server's log: quote it
    /// when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// A refused household import's report (`register_refused`): every error and warning
    /// with its line and column.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
    /// A conflict that changed since the review read it (`conflict_changed`): its state now.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub conflict: Option<serde_json::Value>,
}

/// A copy keeps the cause's message chain (not its type): pushed batches keep the errors of
/// ops worked out before the writer, and a batch may run more than once.
impl Clone for ApiError {
    fn clone(&self) -> Self {
        ApiError {
            kind: self.kind,
            code: self.code,
            detail: self.detail.clone(),
            errors: self.errors.clone(),
            retry_after: self.retry_after,
            source: self.source.as_ref().map(|e| anyhow::anyhow!("{e:#}")),
        }
    }
}

impl ApiError {
    pub fn new(kind: Kind, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            kind,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            source: None,
        }
    }

    /// 429: wait `seconds` before trying again.
    pub fn too_many(code: &'static str, detail: impl Into<String>, seconds: u64) -> Self {
        ApiError {
            retry_after: Some(seconds),
            ..ApiError::new(Kind::TooManyRequests, code, detail)
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(Kind::BadRequest, code, detail)
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        let detail = format!("invalid fields: {}", fields.join(", "));
        ApiError {
            errors,
            ..Self::new(Kind::Validation, "validation_failed", detail)
        }
    }

    pub fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, code, message)])
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(Kind::Unauthorized, code, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(Kind::Forbidden, "forbidden", detail)
    }

    pub fn out_of_scope() -> Self {
        Self::new(
            Kind::Forbidden,
            "out_of_scope",
            "this record is outside your assigned areas",
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(Kind::NotFound, "not_found", format!("{what} not found"))
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, code, detail)
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError {
            source: Some(e.into()),
            ..Self::new(Kind::Internal, "internal", "an internal error occurred")
        }
    }

    pub fn unavailable(e: impl Into<anyhow::Error>) -> Self {
        ApiError {
            source: Some(e.into()),
            ..Self::new(
                Kind::Unavailable,
                "unavailable",
                "the service is temporarily unavailable; retry later",
            )
        }
    }

    /// The same error under another stable code.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    /// Whether retrying the same work may succeed (database busy, deadlock, unreachable).
    pub fn is_transient(&self) -> bool {
        self.kind == Kind::Unavailable
    }

    /// The problem+json answer of this error with a report of what was refused (a file's
    /// rows with their problems): the error's status, `report` holding `report`.
    pub fn answer_with_report(&self, report: &impl serde::Serialize) -> actix_web::HttpResponse {
        let mut answer = self.problem();
        answer.report = Some(serde_json::to_value(report).unwrap_or_default());
        actix_web::HttpResponse::build(self.kind.status())
            .content_type("application/problem+json")
            .json(answer)
    }

    pub fn problem(&self) -> Problem {
        let status = self.kind.status();
        Problem {
            type_: format!("urn:gocua:problem:{}", self.code),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            errors: self.errors.clone(),
            request_id: crate::telemetry::request_id(),
            report: None,
            conflict: None,
        }
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?}): {}", self.code, self.kind, self.detail)?;
        if let Some(source) = &self.source {
            write!(f, "\ncaused by: {source:?}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        if self.kind.status().is_server_error() {
            tracing::error!(error = ?self, "request failed");
        }
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if self.kind == Kind::Unavailable {
            res.insert_header((header::RETRY_AFTER, "5"));
        }
        if let Some(seconds) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if self.kind == Kind::Unauthorized {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        res.body(serde_json::to_string(&self.problem()).unwrap_or_default())
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as K, Error as E};
        match &e {
            E::NotFound => ApiError::not_found("record"),
            E::DatabaseError(K::UniqueViolation, _) => {
                ApiError::conflict("duplicate", "a record with the same key already exists")
            }
            _ if store::is_transient(&e) => ApiError::unavailable(e),
            _ => ApiError::internal(e),
        }
    }
}

impl From<household::Error> for ApiError {
    fn from(e: household::Error) -> Self {
        use household::Error as E;
        let kind = match &e {
            E::NotFound(_) => Kind::NotFound,
            E::OutOfScope => Kind::Forbidden,
            E::UnknownParent { .. } | E::NotAVillage | E::Invalid(_) => Kind::Validation,
            E::Deleted(_) | E::Exists(_) | E::IdReused => Kind::Conflict,
            E::Stale { .. } => Kind::PreconditionFailed,
            E::IfMatchRequired { .. } => Kind::PreconditionRequired,
            E::Malformed(_) => return ApiError::internal(e),
        };
        let refusal = e.refusal();
        ApiError {
            errors: refusal.fields,
            ..ApiError::new(kind, refusal.code, refusal.message)
        }
    }
}

impl From<domain::Error> for ApiError {
    fn from(e: domain::Error) -> Self {
        use domain::Error as E;
        let detail = e.to_string();
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::Deleted(_) => ApiError::new(Kind::NotFound, "deleted", detail),
            E::OutOfScope => ApiError::out_of_scope(),
            E::Forbidden { code, .. } => ApiError::new(Kind::Forbidden, code, detail),
            E::Unauthorized { code, .. } => ApiError::unauthorized(code, detail),
            E::Invalid(errors) => ApiError::validation(errors),
            E::Conflict { code, .. } => ApiError::conflict(code, detail),
            E::Unreadable { code, .. } => ApiError::bad_request(code, detail),
            E::Household(e) => e.into(),
        }
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::Domain(e) => e.into(),
            store::Error::Database(e) => e.into(),
            store::Error::Raced(_) => ApiError::unavailable(e),
            store::Error::Corrupt(_) => ApiError::internal(e),
            store::Error::Run(e) => e.into(),
        }
    }
}

impl From<RunError> for ApiError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Unavailable(e) => ApiError::unavailable(e),
            RunError::Internal(e) => ApiError::internal(e),
        }
    }
}

impl From<write::Error> for ApiError {
    fn from(e: write::Error) -> Self {
        match e {
            write::Error::Rule(e) => e.into(),
            write::Error::Domain(e) => e.into(),
            write::Error::Store(e) => e.into(),
        }
    }
}

impl From<crate::sync::Error> for ApiError {
    fn from(e: crate::sync::Error) -> Self {
        use crate::sync::Error as E;
        let detail = e.to_string();
        match e {
            E::BadBatch(errors) => ApiError::validation(errors),
            E::BadCursor => ApiError::bad_request("bad_cursor", detail),
            E::NotYourDevice => ApiError::new(Kind::Forbidden, "device_not_yours", detail),
            E::Write(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::reports::Error> for ApiError {
    fn from(e: crate::reports::Error) -> Self {
        use crate::reports::Error as E;
        match e {
            E::Store(e) => e.into(),
            E::Export(e) => ApiError::internal(anyhow::Error::from(e).context("writing an export")),
        }
    }
}

impl From<crate::retention::Error> for ApiError {
    fn from(e: crate::retention::Error) -> Self {
        use crate::retention::Error as E;
        let detail = e.to_string();
        match e {
            E::Running { .. } => ApiError::conflict("retention_running", detail),
            E::Write(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::register::Error> for ApiError {
    fn from(e: crate::register::Error) -> Self {
        use crate::register::Error as E;
        let detail = e.to_string();
        match e {
            E::File(f) => ApiError::bad_request(f.code, detail),
            E::Write(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::demo::Error> for ApiError {
    fn from(e: crate::demo::Error) -> Self {
        use crate::demo::Error as E;
        match e {
            E::Store(e) => e.into(),
            E::Write(e) => e.into(),
            E::Data(e) => ApiError::internal(e),
        }
    }
}

impl From<diesel::r2d2::PoolError> for ApiError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        ApiError::unavailable(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
