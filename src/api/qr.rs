//! QR codes drawn as SVG, for the printed sheet of new accounts (the field app's address).

use super::{AppState, Auth, Deferred, ANYONE};
use crate::error::{ApiError, ApiResult, Problem};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

/// The longest text a code is drawn for.
const MAX_CHARS: usize = 500;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/qr.svg", web::get().to(qr));
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QrQuery {
    /// What the code holds: an address, say (500 characters at most).
    #[param(min_length = 1, max_length = 500)]
    pub text: String,
}

/// The QR code of `text` as an SVG document, or `None` when it cannot hold that much.
pub fn svg(text: &str) -> Option<String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<svg::Color>()
            .min_dimensions(160, 160)
            .quiet_zone(true)
            .build(),
    )
}

#[utoipa::path(get, path = "/api/v1/qr.svg", tag = "users", params(QrQuery), security(("bearer" = [])),
    description = "A QR code of the text, as SVG: the console prints the field app's address with it on the sheet of new accounts.",
    responses((status = 200, description = "An SVG image", content_type = "image/svg+xml"),
        (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn qr(
    state: web::Data<AppState>,
    auth: Auth,
    q: Deferred<web::Query<QrQuery>>,
) -> ApiResult<HttpResponse> {
    state.require_role(&auth, ANYONE).await?;
    let text = q.get()?.into_inner().text;
    if text.is_empty() || text.chars().count() > MAX_CHARS {
        return Err(ApiError::invalid(
            "text",
            "length",
            format!("1 to {MAX_CHARS} characters"),
        ));
    }
    let image =
        svg(&text).ok_or_else(|| ApiError::invalid("text", "length", "too long for a QR code"))?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("cache-control", "private, max-age=3600"))
        .body(image))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_code_is_an_svg_image() {
        let image = super::svg("https://gocua.example/field/").unwrap();
        assert!(image.contains("<svg"));
        assert!(image.contains("<path"));
    }
}
