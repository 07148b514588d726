//! What extractors answer when the input is bad (problem+json, naming the field where serde
//! does), and `Deferred`, which holds those answers until the caller is authorized.

use crate::error::{ApiError, ApiResult, Kind};
use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{FromRequest, HttpRequest};

/// A body or query string whose errors wait until the caller is authorized: a caller
/// without the role or the scope gets 403 whatever it sent, and only then hears what is
/// wrong with its input. Take it after `Auth`, call `get` after the checks.
pub struct Deferred<T>(ApiResult<T>);

impl<T> Deferred<T> {
    pub fn get(self) -> ApiResult<T> {
        self.0
    }
}

impl<T> FromRequest for Deferred<T>
where
    T: FromRequest + 'static,
    T::Error: Into<actix_web::Error>,
{
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let fut = T::from_request(req, payload);
        Box::pin(async move {
            Ok(Deferred(fut.await.map_err(|e| {
                let e: actix_web::Error = e.into();
                // Every extractor's error handler (see `app.rs`) answers an ApiError; a raw
                // body's own errors are told apart by their status.
                e.as_error::<ApiError>().cloned().unwrap_or_else(|| {
                    match e.as_response_error().status_code().as_u16() {
                        413 => ApiError::new(
                            Kind::PayloadTooLarge,
                            "body_too_large",
                            "the request body is larger than this endpoint accepts",
                        ),
                        _ => ApiError::bad_request("bad_body", e.to_string()),
                    }
                })
            })))
        })
    }
}

pub fn json_error(err: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    let e = match &err {
        JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::new(
            Kind::PayloadTooLarge,
            "body_too_large",
            format!("the body has {length} bytes; the limit is {limit} bytes"),
        ),
        JsonPayloadError::Overflow { limit } => ApiError::new(
            Kind::PayloadTooLarge,
            "body_too_large",
            format!("the body is larger than the limit of {limit} bytes"),
        ),
        JsonPayloadError::ContentType => ApiError::new(
            Kind::UnsupportedMediaType,
            "unsupported_media_type",
            "send Content-Type: application/json",
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => shape_error(&e.to_string()),
        JsonPayloadError::Deserialize(e) => {
            ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
        }
        _ => ApiError::bad_request("bad_body", "the request body could not be read"),
    };
    e.into()
}

/// Names the field of a serde data error where serde says it ("unknown field `x`", "missing
/// field `x`"), so that typed bodies report per field like the entity validator does.
fn shape_error(msg: &str) -> ApiError {
    let named = |prefix: &str| {
        msg.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('`'))
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(f) = named("unknown field ") {
        ApiError::invalid(&f, "unknown_field", msg.to_owned())
    } else if let Some(f) = named("missing field ") {
        ApiError::invalid(&f, "required", msg.to_owned())
    } else {
        ApiError::invalid("", "type", msg.to_owned())
    }
}

pub fn query_error(err: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("bad_query", format!("bad query string: {err}")).into()
}

pub fn path_error(err: PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("bad_path", format!("bad path parameter: {err}")).into()
}
