//! The audit trail, read only: admins read every entry, supervisors those about their areas.
//! Nothing in the API writes, changes or deletes an entry; the actions record themselves.

use super::stream::stream;
use super::{AppState, Auth, Origin, Page, PageParams, SUPERVISORS};
use crate::db::Conn;
use crate::domain::{AreaId, Time};
use crate::error::{ApiError, ApiResult, Problem};
use crate::reports::export::{filename, page_through, Cell, Export, Format, PERSONAL_DATA};
use crate::reports::local_date;
use crate::store::audit::{self, Entry, Filter};
use crate::store::scope::Principal;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(list))
        .route("/audit.csv", web::get().to(export));
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this action (`login`, `export`, `user_changed` …; docs/SECURITY.md).
    pub action: Option<String>,
    /// Only this actor's entries (a username, or `cli`).
    pub actor: Option<String>,
    /// From this instant on (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<DateTime<Utc>>,
    /// Before this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<DateTime<Utc>>,
    /// Only entries about this area's subtree.
    pub area: Option<AreaId>,
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<i64>,
}

impl AuditQuery {
    fn filter(&self, conn: &mut Conn<'_>, who: &Principal) -> ApiResult<Filter> {
        let within = match self.area {
            Some(a) => Some(vec![who.require_area(conn, a)?]),
            None => who.prefixes().map(<[String]>::to_vec),
        };
        Ok(Filter {
            action: self.action.clone(),
            actor: self.actor.clone(),
            from: self.from.map(Time),
            to: self.to.map(Time),
            within,
        })
    }
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery), security(("bearer" = [])),
    description = "Who did what, when, from where: newest first. Admins read every entry, supervisors the entries about an area inside theirs (exports, conflict resolutions, villages, targets, and the users of their areas). Also as `audit.csv`.",
    responses((status = 200, body = Page<Entry>), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    q: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let page = PageParams::parse(q.page, q.per_page)?;
    let (items, total) = state
        .report_as_user(auth, move |conn, who| {
            who.require_role(SUPERVISORS)?;
            let f = q.filter(conn, who)?;
            audit::list(conn, &f, page, true).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Page::new(items, total, page)))
}

const HEADERS: &[&str] = &[
    "Thời điểm",
    "Hành động",
    "Người thực hiện",
    "Đối tượng",
    "Chi tiết",
    "Địa chỉ",
    "Mã yêu cầu",
];

fn cells(e: &Entry) -> Vec<Cell> {
    let text = |s: &Option<String>| s.clone().map_or(Cell::Empty, Cell::Text);
    vec![
        Cell::Text(e.at.0.to_rfc3339()),
        Cell::Text(e.action.clone()),
        Cell::Text(e.actor.clone()),
        Cell::Text(e.subject.clone()),
        Cell::Text(e.detail.clone()),
        text(&e.address),
        text(&e.request_id),
    ]
}

#[utoipa::path(get, path = "/api/v1/audit.csv", tag = "audit", params(AuditQuery), security(("bearer" = [])),
    description = "The entries `GET /audit` would list, every page, as CSV (this export is itself recorded).",
    responses((status = 200, description = "CSV (UTF-8 with BOM)", content_type = "text/csv", body = String),
        (status = 403, body = Problem)))]
pub async fn export(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    q: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    PageParams::parse(q.page, q.per_page)?;
    stream(&state, auth, origin, Format::Csv, move |conn, who| {
        who.require_role(SUPERVISORS)?;
        let f = q.filter(conn, who)?;
        let title = format!(
            "Nhật ký hoạt động — Ngày xuất: {} — {PERSONAL_DATA}",
            local_date(&Time::now()).format("%d/%m/%Y")
        );
        Ok(Export {
            area: None,
            filename: filename("nhat-ky", "gocua"),
            title,
            headers: HEADERS,
            rows: Box::new(move |conn, out| {
                page_through(conn, out, |conn, page| {
                    let (items, _) = audit::list(conn, &f, page, false)?;
                    Ok(items.iter().map(cells).collect())
                })
            }),
        })
    })
    .await
}
