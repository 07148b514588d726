//! The commune's household register (docs/IMPORT.md): import a CSV or XLSX file of households
//! and persons (a dry run, or written whole, or with `skip_errors` the households without
//! errors), and the template to fill.

use super::{AppState, Auth, Deferred, Origin};
use crate::auth::Role;
use crate::error::{ApiError, ApiResult, Kind, Problem};
use crate::register::{self, Options, Report};
use crate::store::audit;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

const IMPORTERS: &[Role] = &[Role::Admin, Role::Supervisor];

/// The media types of a register file.
const CSV: &str = "text/csv";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/households/import")
            .app_data(web::PayloadConfig::new(register::MAX_BYTES))
            .route(web::post().to(import)),
    )
    .route("/households/import/template.xlsx", web::get().to(template));
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// The commune: its 5-digit code or its name. Without it, the file's `Xã` column says.
    pub commune: Option<String>,
    /// The workbook's sheet to read (the first one by default).
    pub sheet: Option<String>,
    /// Check and plan only: write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Write the households without errors and list the others (a household with one bad
    /// row is skipped whole).
    #[serde(default)]
    pub skip_errors: bool,
}

/// Fails unless the request's body is declared a CSV or XLSX file.
pub fn require_sheet(req: &HttpRequest) -> ApiResult<()> {
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match matches!(
        media.as_deref(),
        Some(CSV | XLSX | "application/octet-stream")
    ) {
        true => Ok(()),
        false => Err(ApiError::new(
            Kind::UnsupportedMediaType,
            "unsupported_media_type",
            format!("send the file as {CSV} or {XLSX}"),
        )),
    }
}

/// 422 with the report: the file has errors and nothing was written.
fn refused(report: &Report) -> ApiError {
    ApiError::new(
        Kind::Validation,
        "register_refused",
        format!(
            "the file has {} errors: nothing was written (see `report.errors`; `skip_errors` \
             writes the households without errors)",
            report.errors.len()
        ),
    )
}

#[utoipa::path(post, path = "/api/v1/households/import", tag = "households", params(ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "The register as CSV (UTF-8), or as an XLSX workbook (`application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`); 16 MiB at most"),
    security(("bearer" = [])),
    description = "Imports the commune's household register: one row per person, the rows of a household sharing its `Mã hộ` (docs/IMPORT.md). The whole file is checked first; with any error nothing is written (422, the report in `report`) unless `skip_errors`. Households are found again by their `Mã hộ`, persons by `Mã nhân khẩu` or by name and birth year, so the same file again changes nothing; a household registered on a phone first is matched instead of copied. Admins anywhere, supervisors for villages in their areas.",
    responses(
        (status = 200, description = "What was written, or with `dry_run` what would be", body = Report),
        (status = 400, description = "Not a register: empty, binary, not UTF-8, no such sheet", body = Problem),
        (status = 403, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
        (status = 422, description = "`register_refused`: the file has errors (the report is in `report`); nothing was written", body = Problem),
))]
pub async fn import(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    req: HttpRequest,
    q: Deferred<web::Query<ImportQuery>>,
    body: Deferred<web::Bytes>,
) -> ApiResult<HttpResponse> {
    state.require_role(&auth, IMPORTERS).await?;
    let q = q.get()?.into_inner();
    require_sheet(&req)?;
    let data = body.get()?;
    let o = Options {
        commune: q.commune,
        sheet: q.sheet,
        dry_run: q.dry_run,
        skip_errors: q.skip_errors,
    };
    let options = o.clone();
    let prepared = state
        .as_user(Auth(auth.0.clone()), move |conn, who| {
            who.require_role(IMPORTERS)?;
            Ok(conn.read_transaction(|conn| register::prepare(conn, who, &data, &options))?)
        })
        .await?;
    if prepared.refused(&o) {
        return Ok(refused(&prepared.report).answer_with_report(&prepared.report));
    }
    let chunks = match o.dry_run {
        true => Vec::new(),
        false => prepared.chunks(),
    };
    if chunks.is_empty() {
        return Ok(HttpResponse::Ok().json(prepared.report));
    }
    let audit_action = prepared.audit();
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        // The transaction runs on a blocking thread: it takes a copy of its chunk alone.
        let chunk: Vec<_> = chunk.into_iter().cloned().collect();
        let (origin, action) = (origin.clone(), audit_action.clone());
        state
            .as_user_tx(Auth(auth.0.clone()), move |conn, who| {
                who.require_role(IMPORTERS)?;
                register::write(conn, who, &chunk.iter().collect::<Vec<_>>())?;
                if i == last {
                    audit::record(conn, &origin.of(who), &action)?;
                }
                Ok(())
            })
            .await?;
    }
    let mut report = prepared.report;
    report.written = true;
    Ok(HttpResponse::Ok().json(report))
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TemplateQuery {
    /// The commune whose villages the second sheet lists: its code or its name.
    pub commune: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/households/import/template.xlsx", tag = "households", params(TemplateQuery),
    security(("bearer" = [])),
    description = "The register's template: the header row and one example household on the first sheet, the commune's villages on the second.",
    responses((status = 200, description = "An XLSX workbook", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn template(
    state: web::Data<AppState>,
    auth: Auth,
    q: Deferred<web::Query<TemplateQuery>>,
) -> ApiResult<HttpResponse> {
    state.require_role(&auth, IMPORTERS).await?;
    let q = q.get()?.into_inner();
    let (name, villages) = state
        .as_user(auth, move |conn, who| {
            who.require_role(IMPORTERS)?;
            Ok(register::template_villages(
                conn,
                who,
                q.commune.as_deref(),
            )?)
        })
        .await?;
    let bytes = register::template(name.as_deref(), &villages)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("writing the template: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type(XLSX)
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"mau-so-ho-khau.xlsx\"",
        ))
        .body(bytes))
}
