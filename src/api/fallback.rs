//! The answers of the server itself, as problem+json: no route (or 405 with `Allow` for a
//! documented path asked with another method), and every error response a handler or
//! actix-web made without a problem body.

use crate::api::contract::Routes;
use crate::error::{ApiError, Kind};
use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

/// 405 with `Allow` for a documented path asked with another method (RFC 9110), else 404.
pub(crate) async fn not_found(req: HttpRequest, routes: web::Data<Routes>) -> HttpResponse {
    match routes.allowed(req.path()) {
        Some(allow) => {
            let mut res = ApiError::new(
                Kind::MethodNotAllowed,
                "method_not_allowed",
                format!("{} takes {allow}, not {}", req.path(), req.method()),
            )
            .error_response();
            if let Ok(v) = header::HeaderValue::from_str(&allow) {
                res.headers_mut().insert(header::ALLOW, v);
            }
            res
        }
        None => ApiError::new(
            Kind::NotFound,
            "no_route",
            format!("no resource at {} {}", req.method(), req.path()),
        )
        .error_response(),
    }
}

/// Turns every error response that is not problem+json yet (405, 413 from raw bodies, …)
/// into one.
pub(crate) fn problem_fallback<B>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (kind, code, detail) = match status.as_u16() {
        404 => (Kind::NotFound, "no_route", "no such resource".to_owned()),
        405 => (
            Kind::MethodNotAllowed,
            "method_not_allowed",
            "this method is not allowed here".to_owned(),
        ),
        413 => (
            Kind::PayloadTooLarge,
            "body_too_large",
            "the request body is larger than this endpoint accepts".to_owned(),
        ),
        415 => (
            Kind::UnsupportedMediaType,
            "unsupported_media_type",
            "unsupported Content-Type".to_owned(),
        ),
        s if s < 500 => (
            Kind::BadRequest,
            "bad_request",
            "the request could not be processed".to_owned(),
        ),
        503 => (
            Kind::Unavailable,
            "unavailable",
            "the service is temporarily unavailable; retry later".to_owned(),
        ),
        _ => (
            Kind::Internal,
            "internal",
            "an internal error occurred".to_owned(),
        ),
    };
    let mut problem = ApiError::new(kind, code, detail).problem();
    problem.status = status.as_u16();
    problem.title = status.canonical_reason().unwrap_or("Error").to_owned();
    let (req, _) = res.into_parts();
    let mut body = HttpResponse::build(status);
    body.content_type("application/problem+json");
    if status == actix_web::http::StatusCode::METHOD_NOT_ALLOWED {
        let allow = req
            .app_data::<web::Data<Routes>>()
            .and_then(|routes| routes.allowed(req.path()));
        if let Some(allow) = allow {
            body.insert_header((header::ALLOW, allow));
        }
    }
    let body = body.body(serde_json::to_string(&problem).unwrap_or_default());
    let res: ServiceResponse<EitherBody<B, BoxBody>> =
        ServiceResponse::new(req, body).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}
