//! Supervisor reports and work lists, as JSON and as CSV/XLSX exports at the same path
//! with `.csv` or `.xlsx` appended. Exports stream: rows are written as they are read,
//! inside one read transaction.

use super::households::HouseholdQuery;
use super::{AppState, Auth, Deferred, Origin, Page, PageParams, ANYONE, SUPERVISORS};
use crate::auth::Role;
use crate::db::Conn;
use crate::domain::{AreaId, CampaignId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::reports::activity::{self, Activity, Checks};
use crate::reports::export::{
    export_failed, filename, page_through, table_writer, Export, Format, PERSONAL_DATA,
};
use crate::reports::layouts::*;
use crate::reports::lists::{self, HouseholdToVisit, List, PriorityPerson};
use crate::reports::progress::{self, Progress};
use crate::reports::trend::{self, Trend};
use crate::reports::{local_date, Subject};
use crate::store::households as hh;
use crate::store::scope::Principal;
use crate::store::{areas, audit, campaigns, scope, PageReq};
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use utoipa::{IntoParams, ToSchema};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/reports/progress", web::get().to(progress))
        .route("/reports/progress.{format}", web::get().to(progress_export))
        .route("/reports/trend", web::get().to(trend))
        .route("/reports/trend.{format}", web::get().to(trend_export))
        .route("/reports/activity", web::get().to(activity))
        .route("/reports/activity.{format}", web::get().to(activity_export))
        .route("/lists/priority-pending", web::get().to(priority_pending))
        .route(
            "/lists/priority-pending.{format}",
            web::get().to(priority_pending_export),
        )
        .route("/lists/unvisited", web::get().to(unvisited))
        .route("/lists/unvisited.{format}", web::get().to(unvisited_export))
        .route("/lists/revisit", web::get().to(revisit))
        .route("/lists/revisit.{format}", web::get().to(revisit_export))
        .route("/households.{format}", web::get().to(households_export));
}

/// `csv` or `xlsx`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Xlsx,
}

impl From<ExportFormat> for Format {
    fn from(f: ExportFormat) -> Format {
        match f {
            ExportFormat::Csv => Format::Csv,
            ExportFormat::Xlsx => Format::Xlsx,
        }
    }
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    pub campaign: CampaignId,
    /// The area (default: the caller's only assigned area).
    pub area: Option<AreaId>,
    /// Read the campaign on the map of that day (`2020-12-31`): the units in effect then,
    /// villages where they were. Default: today's map.
    pub as_of: Option<NaiveDate>,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub campaign: CampaignId,
    /// The area whose subtree is listed (default: the caller's only assigned area).
    pub area: Option<AreaId>,
    /// Ignored by exports, which hold every row.
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActivityQuery {
    pub campaign: CampaignId,
    pub area: Option<AreaId>,
    /// First day (Vietnam time), included.
    pub from: Option<NaiveDate>,
    /// Last day, included.
    pub to: Option<NaiveDate>,
    /// Flag visits recorded farther than this from the household (default from the
    /// settings: 300).
    #[param(exclusive_minimum = 0, maximum = 100000)]
    pub max_distance_m: Option<f64>,
    /// Flag visits of another household less than this after the previous one (default
    /// from the settings: 60).
    #[param(minimum = 0, maximum = 86400)]
    pub min_gap_seconds: Option<i64>,
}

impl ActivityQuery {
    fn checks(&self, state: &AppState) -> ApiResult<Checks> {
        let checks = Checks {
            from: self.from,
            to: self.to,
            max_distance_m: self
                .max_distance_m
                .unwrap_or(state.settings.activity_max_distance_m),
            min_gap_seconds: self
                .min_gap_seconds
                .unwrap_or(state.settings.activity_min_gap_seconds),
        };
        let mut errors = Vec::new();
        if !(checks.max_distance_m > 0.0 && checks.max_distance_m <= 100_000.0) {
            errors.push(crate::domain::fields::FieldError::new(
                "max_distance_m",
                "range",
                "must be more than 0 and at most 100000",
            ));
        }
        if !(0..=86_400).contains(&checks.min_gap_seconds) {
            errors.push(crate::domain::fields::FieldError::new(
                "min_gap_seconds",
                "range",
                "must be 0 to 86400",
            ));
        }
        if let (Some(f), Some(t)) = (checks.from, checks.to) {
            if f > t {
                errors.push(crate::domain::fields::FieldError::new(
                    "to",
                    "range",
                    "must not be before from",
                ));
            }
        }
        if errors.is_empty() {
            Ok(checks)
        } else {
            Err(ApiError::validation(errors))
        }
    }
}

/// What a report is on: the area (default: the caller's only one), the campaign, and the
/// day of the map (default: today's).
struct On {
    area: Option<AreaId>,
    campaign: CampaignId,
    as_of: Option<NaiveDate>,
}

impl On {
    fn new(area: Option<AreaId>, campaign: CampaignId, as_of: Option<NaiveDate>) -> On {
        On {
            area,
            campaign,
            as_of,
        }
    }
}

/// Runs `f` on the report's subject (the campaign, and an area inside the caller's areas)
/// in one read snapshot, for callers of the given roles.
async fn on_subject<T, F>(
    state: &AppState,
    auth: Auth,
    roles: &'static [Role],
    on: On,
    f: F,
) -> ApiResult<T>
where
    F: FnOnce(&mut Conn<'_>, &Subject) -> ApiResult<T> + Send + 'static,
    T: Send + 'static,
{
    state
        .as_user(auth, move |conn, who| {
            who.require_role(roles)?;
            conn.read_transaction(|conn| {
                let s = Subject::resolve(conn, who, on.area, on.campaign, on.as_of)?;
                f(conn, &s)
            })
        })
        .await
}

/// Streams the export that `plan` makes of the report's subject.
async fn export_subject<F>(
    state: &AppState,
    auth: Auth,
    origin: Origin,
    format: ExportFormat,
    roles: &'static [Role],
    on: On,
    plan: F,
) -> ApiResult<HttpResponse>
where
    F: FnOnce(&mut Conn<'_>, Subject) -> ApiResult<Export> + Send + 'static,
{
    stream(state, auth, origin, format.into(), move |conn, who| {
        who.require_role(roles)?;
        let s = Subject::resolve(conn, who, on.area, on.campaign, on.as_of)?;
        plan(conn, s)
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/reports/progress", tag = "reports", params(ReportQuery), security(("bearer" = [])),
    description = "The area and each child area against the campaign's targets. Also as `progress.csv` and `progress.xlsx`.",
    responses((status = 200, body = Progress), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn progress(
    state: web::Data<AppState>,
    auth: Auth,
    q: web::Query<ReportQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let p = on_subject(
        &state,
        auth,
        ANYONE,
        On::new(q.area, q.campaign, q.as_of),
        progress::progress,
    )
    .await?;
    Ok(HttpResponse::Ok().json(p))
}

#[utoipa::path(get, path = "/api/v1/reports/progress.{format}", tag = "reports",
    params(("format" = ExportFormat, Path), ReportQuery), security(("bearer" = [])),
    responses((status = 200, description = "CSV (UTF-8 with BOM) or XLSX, as the path says",
        content((String = "text/csv"), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 403, body = Problem)))]
pub async fn progress_export(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    format: web::Path<ExportFormat>,
    q: web::Query<ReportQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    export_subject(
        &state,
        auth,
        origin,
        format.into_inner(),
        ANYONE,
        On::new(q.area, q.campaign, q.as_of),
        move |conn, s| {
            let p = progress::progress(conn, &s)?;
            Ok(Export::of_rows(
                &s,
                "Tiến độ",
                PROGRESS_HEADERS,
                std::iter::once(&p.area)
                    .chain(&p.children)
                    .map(progress_cells)
                    .chain(p.not_yet_assigned.iter().map(not_yet_assigned_cells))
                    .collect(),
            ))
        },
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/reports/trend", tag = "reports", params(ReportQuery), security(("bearer" = [])),
    description = "Installs per day and the cumulative rate over registered persons, for the area and each child. Also as `trend.csv` and `trend.xlsx` (one row per area and day).",
    responses((status = 200, body = Trend), (status = 403, body = Problem)))]
pub async fn trend(
    state: web::Data<AppState>,
    auth: Auth,
    q: web::Query<ReportQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let t = on_subject(
        &state,
        auth,
        ANYONE,
        On::new(q.area, q.campaign, q.as_of),
        trend::trend,
    )
    .await?;
    Ok(HttpResponse::Ok().json(t))
}

#[utoipa::path(get, path = "/api/v1/reports/trend.{format}", tag = "reports",
    params(("format" = ExportFormat, Path), ReportQuery), security(("bearer" = [])),
    responses((status = 200, description = "CSV (UTF-8 with BOM) or XLSX, as the path says",
        content((String = "text/csv"), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 403, body = Problem)))]
pub async fn trend_export(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    format: web::Path<ExportFormat>,
    q: web::Query<ReportQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    export_subject(
        &state,
        auth,
        origin,
        format.into_inner(),
        ANYONE,
        On::new(q.area, q.campaign, q.as_of),
        move |conn, s| {
            let t = trend::trend(conn, &s)?;
            let mut rows = Vec::new();
            for series in &t.series {
                for (i, day) in t.days.iter().enumerate() {
                    rows.push(vec![
                        series.name.clone().into(),
                        (*day).into(),
                        series.installs[i].into(),
                        series.cumulative[i].into(),
                        series.cumulative_rate[i].into(),
                    ]);
                }
            }
            Ok(Export::of_rows(
                &s,
                "Diễn biến cài đặt",
                &["Đơn vị", "Ngày", "Số cài đặt", "Lũy kế", "Tỷ lệ lũy kế (%)"],
                rows,
            ))
        },
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/reports/activity", tag = "reports", params(ActivityQuery), security(("bearer" = [])),
    description = "Per canvasser and day: visits, households, installs, the median minutes between visits, and flagged visits. Supervisors and admins. Also as `activity.csv` and `activity.xlsx`.",
    responses((status = 200, body = Activity), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn activity(
    state: web::Data<AppState>,
    auth: Auth,
    q: Deferred<web::Query<ActivityQuery>>,
) -> ApiResult<HttpResponse> {
    state.require_role(&auth, SUPERVISORS).await?;
    let q = q.get()?.into_inner();
    let checks = q.checks(&state)?;
    let a = on_subject(
        &state,
        auth,
        SUPERVISORS,
        On::new(q.area, q.campaign, None),
        move |conn, s| activity::activity(conn, s, checks),
    )
    .await?;
    Ok(HttpResponse::Ok().json(a))
}

#[utoipa::path(get, path = "/api/v1/reports/activity.{format}", tag = "reports",
    params(("format" = ExportFormat, Path), ActivityQuery), security(("bearer" = [])),
    responses((status = 200, description = "CSV (UTF-8 with BOM) or XLSX, as the path says",
        content((String = "text/csv"), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 403, body = Problem)))]
pub async fn activity_export(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    format: web::Path<ExportFormat>,
    q: Deferred<web::Query<ActivityQuery>>,
) -> ApiResult<HttpResponse> {
    state.require_role(&auth, SUPERVISORS).await?;
    let q = q.get()?.into_inner();
    let checks = q.checks(&state)?;
    export_subject(
        &state,
        auth,
        origin,
        format.into_inner(),
        SUPERVISORS,
        On::new(q.area, q.campaign, None),
        move |conn, s| {
            let a = activity::activity(conn, &s, checks)?;
            Ok(Export::of_rows(
                &s,
                "Kiểm tra hoạt động",
                ACTIVITY_HEADERS,
                a.rows.iter().map(activity_cells).collect(),
            )
            .personal())
        },
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/lists/priority-pending", tag = "reports", params(ListQuery), security(("bearer" = [])),
    description = "Priority persons (quarantine, must be tested) not yet installed, by village, address and name. Also as `priority-pending.csv` and `.xlsx`.",
    responses((status = 200, body = Page<PriorityPerson>), (status = 403, body = Problem)))]
pub async fn priority_pending(
    state: web::Data<AppState>,
    auth: Auth,
    q: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let page = PageParams::parse(q.page, q.per_page)?;
    let (items, total) = on_subject(
        &state,
        auth,
        ANYONE,
        On::new(q.area, q.campaign, None),
        move |conn, s| lists::priority_pending(conn, s, page, true),
    )
    .await?;
    Ok(HttpResponse::Ok().json(Page::new(items, total.unwrap_or_default(), page)))
}

#[utoipa::path(get, path = "/api/v1/lists/priority-pending.{format}", tag = "reports",
    params(("format" = ExportFormat, Path), ListQuery), security(("bearer" = [])),
    responses((status = 200, description = "CSV (UTF-8 with BOM) or XLSX, as the path says",
        content((String = "text/csv"), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 403, body = Problem)))]
pub async fn priority_pending_export(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    format: web::Path<ExportFormat>,
    q: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    export_subject(
        &state,
        auth,
        origin,
        format.into_inner(),
        ANYONE,
        On::new(q.area, q.campaign, None),
        |_, s| {
            Ok(Export::paged(
                s,
                "Đối tượng ưu tiên chưa cài đặt",
                PRIORITY_HEADERS,
                |conn, s, page| {
                    let (items, _) = lists::priority_pending(conn, s, page, false)?;
                    Ok(items.iter().map(priority_cells).collect())
                },
            ))
        },
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/lists/unvisited", tag = "reports", params(ListQuery), security(("bearer" = [])),
    description = "Live households with no visit in the campaign. Also as `unvisited.csv` and `.xlsx`.",
    responses((status = 200, body = Page<HouseholdToVisit>), (status = 403, body = Problem)))]
pub async fn unvisited(
    state: web::Data<AppState>,
    auth: Auth,
    q: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    to_visit(state, auth, q.into_inner(), List::Unvisited).await
}

#[utoipa::path(get, path = "/api/v1/lists/revisit", tag = "reports", params(ListQuery), security(("bearer" = [])),
    description = "Live households whose latest visit in the campaign was `not_home` or `come_back_later`. Also as `revisit.csv` and `.xlsx`.",
    responses((status = 200, body = Page<HouseholdToVisit>), (status = 403, body = Problem)))]
pub async fn revisit(
    state: web::Data<AppState>,
    auth: Auth,
    q: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    to_visit(state, auth, q.into_inner(), List::Revisit).await
}

async fn to_visit(
    state: web::Data<AppState>,
    auth: Auth,
    q: ListQuery,
    list: List,
) -> ApiResult<HttpResponse> {
    let page = PageParams::parse(q.page, q.per_page)?;
    let (items, total) = on_subject(
        &state,
        auth,
        ANYONE,
        On::new(q.area, q.campaign, None),
        move |conn, s| lists::households_to_visit(conn, s, list, page, true),
    )
    .await?;
    Ok(HttpResponse::Ok().json(Page::new(items, total.unwrap_or_default(), page)))
}

#[utoipa::path(get, path = "/api/v1/lists/unvisited.{format}", tag = "reports",
    params(("format" = ExportFormat, Path), ListQuery), security(("bearer" = [])),
    responses((status = 200, description = "CSV (UTF-8 with BOM) or XLSX, as the path says",
        content((String = "text/csv"), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 403, body = Problem)))]
pub async fn unvisited_export(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    format: web::Path<ExportFormat>,
    q: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    to_visit_export(
        state,
        auth,
        origin,
        format.into_inner(),
        q.into_inner(),
        List::Unvisited,
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/lists/revisit.{format}", tag = "reports",
    params(("format" = ExportFormat, Path), ListQuery), security(("bearer" = [])),
    responses((status = 200, description = "CSV (UTF-8 with BOM) or XLSX, as the path says",
        content((String = "text/csv"), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 403, body = Problem)))]
pub async fn revisit_export(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    format: web::Path<ExportFormat>,
    q: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    to_visit_export(
        state,
        auth,
        origin,
        format.into_inner(),
        q.into_inner(),
        List::Revisit,
    )
    .await
}

async fn to_visit_export(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    format: ExportFormat,
    q: ListQuery,
    list: List,
) -> ApiResult<HttpResponse> {
    export_subject(
        &state,
        auth,
        origin,
        format,
        ANYONE,
        On::new(q.area, q.campaign, None),
        move |_, s| {
            let what = match list {
                List::Revisit => "Hộ cần thăm lại",
                _ => "Hộ chưa được thăm",
            };
            Ok(Export::paged(
                s,
                what,
                TO_VISIT_HEADERS,
                move |conn, s, page| {
                    let (items, _) = lists::households_to_visit(conn, s, list, page, false)?;
                    Ok(items.iter().map(to_visit_cells).collect())
                },
            ))
        },
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/households.{format}", tag = "reports",
    params(("format" = ExportFormat, Path), HouseholdQuery), security(("bearer" = [])),
    description = "The household list (same filters as `GET /households`, every page) as CSV or XLSX.",
    responses((status = 200, description = "CSV (UTF-8 with BOM) or XLSX, as the path says",
        content((String = "text/csv"), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 403, body = Problem)))]
pub async fn households_export(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    format: web::Path<ExportFormat>,
    q: web::Query<HouseholdQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    // The export holds every row, yet page and per_page are checked as the list checks them.
    PageParams::parse(q.page, q.per_page)?;
    let f = q.filter()?;
    stream(
        &state,
        auth,
        origin,
        format.into_inner().into(),
        move |conn, who| {
            let area = match f.area {
                Some(a) => {
                    let area = areas::get(conn, a)?;
                    who.require_covers(&area.path)?;
                    Some(area)
                }
                None => None,
            };
            let campaign = f.campaign.map(|c| campaigns::get(conn, c)).transpose()?;
            // The filter is checked whole (as the first page would) before the first byte.
            hh::list_households(
                conn,
                who,
                &f,
                PageReq {
                    page: 1,
                    per_page: 1,
                },
                false,
            )?;
            // Village names of the caller's scope (or the area's subtree).
            let bound = area
                .as_ref()
                .map(|a| vec![a.path.clone()])
                .or_else(|| who.prefixes().map(<[String]>::to_vec));
            let ids = match &bound {
                Some(prefixes) => scope::area_ids_under(conn, prefixes)?,
                None => Vec::new(),
            };
            let villages: HashMap<AreaId, String> = match &bound {
                Some(_) => areas::by_ids(conn, &ids)?,
                None => areas::all(conn)?,
            }
            .into_iter()
            .map(|a| (a.id, a.name))
            .collect();
            let area_ref = area.as_ref().map(|a| (a.id, a.path.clone()));
            let place = area.map_or_else(|| "Toàn bộ địa bàn được giao".to_string(), |a| a.name);
            let title = format!(
                "Danh sách hộ gia đình — {place} — Chiến dịch: {} — Ngày xuất: {}",
                campaign
                    .as_ref()
                    .map_or("(không chọn)", |c| c.name.as_str()),
                local_date(&crate::domain::Time::now()).format("%d/%m/%Y")
            );
            let who = who.clone();
            Ok(Export {
                area: area_ref,
                filename: filename("ho-gia-dinh", &place),
                title: format!("{title} — {PERSONAL_DATA}"),
                headers: HOUSEHOLD_HEADERS,
                rows: Box::new(move |conn, out| {
                    page_through(conn, out, |conn, page| {
                        let (items, _) = hh::list_households(conn, &who, &f, page, false)?;
                        Ok(items
                            .iter()
                            .map(|i| {
                                let village = villages.get(&i.household.area_id).cloned();
                                household_cells(i, village)
                            })
                            .collect())
                    })
                }),
            })
        },
    )
    .await
}

/// Counts the rows written through it.
struct Counted {
    inner: Box<dyn crate::reports::export::TableWriter>,
    rows: Arc<AtomicU64>,
}

impl crate::reports::export::TableWriter for Counted {
    fn row(&mut self, cells: &[crate::reports::export::Cell]) -> io::Result<()> {
        self.inner.row(cells)?;
        self.rows.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        self.inner.finish()
    }
}

/// Sends what is written in chunks to the response; fails once the client is gone.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<io::Result<Bytes>>,
}

const CHUNK: usize = 64 * 1024;

impl Write for ChunkWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

type Started = Arc<Mutex<Option<oneshot::Sender<ApiResult<(String, Format)>>>>>;

/// Runs `plan` for the caller in a read transaction; once it has decided the export (or
/// refused it, answered as problem+json), streams the rows from the same transaction. An
/// export that began is recorded in the audit trail when it ends, with its rows and whether
/// it was complete.
pub(crate) async fn stream<F>(
    state: &AppState,
    auth: Auth,
    origin: Origin,
    format: Format,
    plan: F,
) -> ApiResult<HttpResponse>
where
    F: FnOnce(&mut Conn<'_>, &Principal) -> ApiResult<Export> + Send + 'static,
{
    let (started_tx, started_rx) = oneshot::channel();
    let started: Started = Arc::new(Mutex::new(Some(started_tx)));
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(8);
    let pool = state.pool.clone();
    let claims = auth.0;
    let job_started = started.clone();
    let job_tx = tx.clone();
    let began: Arc<Mutex<Option<(audit::Actor, audit::Action)>>> = Arc::default();
    let job_began = began.clone();
    let rows = Arc::new(AtomicU64::new(0));
    let job_rows = rows.clone();
    actix_web::rt::spawn(async move {
        let result = pool
            .run(move |conn| {
                conn.read_transaction(|conn| {
                    let who = Principal::load(conn, &claims)?;
                    let export = plan(conn, &who)?;
                    let mut action = audit::Action::new("export", origin.target.clone()).with(
                        serde_json::json!({"title": export.title, "format": format.extension()}),
                    );
                    if let Some((id, path)) = &export.area {
                        action = action.in_area(*id, path);
                    }
                    if let Ok(mut b) = job_began.lock() {
                        *b = Some((origin.of(&who), action));
                    }
                    let start = job_started.lock().ok().and_then(|mut s| s.take());
                    if let Some(s) = start {
                        let _ = s.send(Ok((export.filename.clone(), format)));
                    }
                    let sink = ChunkWriter {
                        buf: Vec::with_capacity(CHUNK),
                        tx: job_tx,
                    };
                    let out = table_writer(format, &export.title, export.headers, sink)
                        .map_err(export_failed)?;
                    let mut out = Counted {
                        inner: out,
                        rows: job_rows,
                    };
                    (export.rows)(conn, &mut out)?;
                    out.inner.finish().map_err(export_failed)
                })
            })
            .await;
        let complete = result.is_ok();
        if let Err(e) = result {
            let waiting = started.lock().ok().and_then(|mut s| s.take());
            match waiting {
                Some(s) => {
                    let _ = s.send(Err(e));
                }
                None => {
                    tracing::warn!(error = %e, "export stopped midway");
                    let _ = tx
                        .send(Err(io::Error::other("the export failed midway")))
                        .await;
                }
            }
        }
        let began = began.lock().ok().and_then(|mut b| b.take());
        if let Some((actor, action)) = began {
            let mut detail = action.detail.clone();
            detail["rows"] = rows.load(Ordering::Relaxed).into();
            detail["complete"] = complete.into();
            let action = action.with(detail);
            let recorded = pool
                .tx(move |conn| audit::record(conn, &actor, &action).map_err(ApiError::from))
                .await;
            if let Err(e) = recorded {
                tracing::error!(error = %e, "an export could not be recorded in the audit trail");
            }
        }
    });
    let (name, format) = started_rx
        .await
        .map_err(|_| ApiError::internal(anyhow::anyhow!("export task ended without answer")))??;
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}.{}\"", format.extension()),
        ))
        .streaming(body))
}
