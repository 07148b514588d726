//! Supervisor reports and work lists, as JSON and as CSV/XLSX exports at the same path
//! with `.csv` or `.xlsx` appended. Exports stream (`api::stream`): rows are written as they
//! are read, inside one read transaction.

use super::households::HouseholdQuery;
use super::stream::stream;
use super::{AppState, Auth, Deferred, Origin, Page, PageParams, ANYONE, SUPERVISORS};
use crate::auth::Role;
use crate::db::Conn;
use crate::domain::{AreaId, CampaignId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::reports::activity::{self, Activity, Checks};
use crate::reports::coverage::{self, Coverage};
use crate::reports::export::{filename, page_through, Export, Format, PERSONAL_DATA};
use crate::reports::layouts::*;
use crate::reports::lists::{self, HouseholdToVisit, List, PriorityPerson};
use crate::reports::progress::{self, Progress};
use crate::reports::trend::{self, Trend};
use crate::reports::{local_date, Subject};
use crate::store::households as hh;
use crate::store::{areas, campaigns, scope, PageReq};
use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use serde::Deserialize;
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/reports/progress", web::get().to(progress))
        .route("/reports/progress.{format}", web::get().to(progress_export))
        .route("/reports/trend", web::get().to(trend))
        .route("/reports/trend.{format}", web::get().to(trend_export))
        .route("/reports/coverage", web::get().to(coverage))
        .route("/reports/coverage.{format}", web::get().to(coverage_export))
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
#[derive(Clone, Copy)]
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
/// in one read snapshot, for callers of the given roles, where reports read (the replica,
/// when there is one).
async fn on_subject<T, F>(
    state: &AppState,
    auth: Auth,
    roles: &'static [Role],
    on: On,
    f: F,
) -> ApiResult<T>
where
    F: Fn(&mut Conn<'_>, &Subject) -> crate::reports::Result<T> + Clone + Send + 'static,
    T: Send + 'static,
{
    state
        .report_as_user(auth, move |conn, who| {
            who.require_role(roles)?;
            conn.read_transaction(|conn| {
                let s = Subject::resolve(conn, who, on.area, on.campaign, on.as_of)?;
                Ok(f(conn, &s)?)
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

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CoverageQuery {
    pub campaign: CampaignId,
    /// The area whose villages are listed (default: the caller's only assigned area).
    pub area: Option<AreaId>,
}

#[utoipa::path(get, path = "/api/v1/reports/coverage", tag = "reports", params(CoverageQuery), security(("bearer" = [])),
    description = "Who covers what: a row per current village of the area with its active canvassers and their phones' last sync, the campaign's households visited and last visit, and the changes the phones reported waiting (`POST /sync/report`). Villages nobody covers first. Supervisors and admins. Also as `coverage.csv` and `coverage.xlsx`.",
    responses((status = 200, body = Coverage), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn coverage(
    state: web::Data<AppState>,
    auth: Auth,
    q: Deferred<web::Query<CoverageQuery>>,
) -> ApiResult<HttpResponse> {
    state.require_role(&auth, SUPERVISORS).await?;
    let q = q.get()?.into_inner();
    let c = on_subject(
        &state,
        auth,
        SUPERVISORS,
        On::new(q.area, q.campaign, None),
        coverage::coverage,
    )
    .await?;
    Ok(HttpResponse::Ok().json(c))
}

#[utoipa::path(get, path = "/api/v1/reports/coverage.{format}", tag = "reports",
    params(("format" = ExportFormat, Path), CoverageQuery), security(("bearer" = [])),
    responses((status = 200, description = "CSV (UTF-8 with BOM) or XLSX, as the path says",
        content((String = "text/csv"), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 403, body = Problem)))]
pub async fn coverage_export(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    format: web::Path<ExportFormat>,
    q: Deferred<web::Query<CoverageQuery>>,
) -> ApiResult<HttpResponse> {
    state.require_role(&auth, SUPERVISORS).await?;
    let q = q.get()?.into_inner();
    export_subject(
        &state,
        auth,
        origin,
        format.into_inner(),
        SUPERVISORS,
        On::new(q.area, q.campaign, None),
        move |conn, s| {
            let c = coverage::coverage(conn, &s)?;
            Ok(Export::of_rows(
                &s,
                "Phân công phụ trách thôn",
                COVERAGE_HEADERS,
                c.rows.iter().map(coverage_cells).collect(),
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
