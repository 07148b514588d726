//! Retention and erasure (admins): anonymize a campaign's personal data once its retention
//! period has run out, erase one member or one household on request. Each answers a dry run
//! unless `apply=true`; what was applied is in the audit trail.

use super::{AppState, Auth, Origin};
use crate::auth::Role;
use crate::domain::{CampaignId, HouseholdId, MemberId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::retention::{self, CampaignReport, Erase, ErasureReport};
use crate::store::audit::{self, Action};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

const ADMINS: &[Role] = &[Role::Admin];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/campaigns/{id}/anonymize", web::post().to(anonymize))
        .route("/households/{id}/erase", web::post().to(erase_household))
        .route("/members/{id}/erase", web::post().to(erase_member));
}

#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ApplyQuery {
    /// Write the change; without it, answer what it would do and write nothing.
    #[serde(default)]
    pub apply: bool,
}

#[utoipa::path(post, path = "/api/v1/campaigns/{id}/anonymize", tag = "privacy", params(("id" = uuid::Uuid, Path), ApplyQuery), security(("bearer" = [])),
    description = "Removes the personal data of the campaign's households (names, addresses, phones, notes, positions; a birth year becomes its decade), keeping statuses and visit outcomes so that reports stay the same. Allowed once the campaign has ended and `GOCUA_RETENTION_DAYS` have passed. Households that are also in a campaign still within its retention are kept. Devices receive the anonymized records at their next pull. Without `apply=true`, a dry run.",
    responses((status = 200, description = "What was done, or with a dry run what would be", body = CampaignReport),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "`retention_running`: the retention period has not run out", body = Problem)))]
pub async fn anonymize(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    id: web::Path<CampaignId>,
    q: web::Query<ApplyQuery>,
) -> ApiResult<HttpResponse> {
    state.require_role(&auth, ADMINS).await?;
    let (id, apply) = (id.into_inner(), q.apply);
    let days = state.settings.retention_days;
    let (todo, mut report) = state
        .as_user(Auth(auth.0.clone()), move |conn, _| {
            Ok(conn.read_transaction(|conn| retention::plan(conn, id, days))?)
        })
        .await?;
    if !apply {
        return Ok(HttpResponse::Ok().json(report));
    }
    report.dry_run = false;
    // Short transactions (`retention::CHUNK` households each); the last one records the
    // whole run in the audit trail.
    let chunks: Vec<Vec<_>> = match todo.is_empty() {
        true => vec![Vec::new()],
        false => todo.chunks(retention::CHUNK).map(<[_]>::to_vec).collect(),
    };
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let (origin, report) = (origin.clone(), report.clone());
        state
            .as_user_tx(Auth(auth.0.clone()), move |conn, who| {
                who.require_role(ADMINS)?;
                retention::anonymize(conn, who, &chunk)?;
                if i == last {
                    audit::record(conn, &origin.of(who), &anonymized(&report))?;
                }
                Ok(())
            })
            .await?;
    }
    Ok(HttpResponse::Ok().json(report))
}

/// The audit entry of a campaign's anonymization.
pub fn anonymized(r: &CampaignReport) -> Action {
    Action::new("campaign_anonymized", format!("campaign/{}", r.campaign_id)).with(
        serde_json::json!({"households": r.households, "members": r.members, "visits": r.visits,
            "conflicts": r.conflicts, "kept": r.kept}),
    )
}

/// The audit entry of an erasure.
pub fn erased(r: &ErasureReport, area: crate::domain::AreaId, path: &str) -> Action {
    let (action, subject) = match r.member_id {
        Some(m) => ("member_erased", format!("member/{m}")),
        None => ("household_erased", format!("household/{}", r.household_id)),
    };
    Action::new(action, subject)
        .in_area(area, path)
        .with(serde_json::json!({"household_id": r.household_id, "members": r.members,
            "visits": r.visits, "conflicts": r.conflicts, "head_of_household": r.head_of_household}))
}

async fn erase(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    target: Erase,
    apply: bool,
) -> ApiResult<HttpResponse> {
    state.require_role(&auth, ADMINS).await?;
    let report = state
        .as_user_tx(auth, move |conn, who| {
            who.require_role(ADMINS)?;
            let (report, area, path) = retention::erase(conn, who, target, apply)?;
            if apply {
                audit::record(conn, &origin.of(who), &erased(&report, area, &path))?;
            }
            Ok::<_, ApiError>(report)
        })
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

#[utoipa::path(post, path = "/api/v1/members/{id}/erase", tag = "privacy", params(("id" = uuid::Uuid, Path), ApplyQuery), security(("bearer" = [])),
    description = "Erases one person's data on request: their name, phone and notes go, their birth year becomes its decade; when they head the household, its head name (and phone, if theirs) go too. Their statuses stay, as anonymous figures. Devices receive the erased record at their next pull, and the conflicts of the record lose the removed values. Without `apply=true`, a dry run.",
    responses((status = 200, description = "What was done, or with a dry run what would be", body = ErasureReport),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn erase_member(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    id: web::Path<MemberId>,
    q: web::Query<ApplyQuery>,
) -> ApiResult<HttpResponse> {
    erase(state, auth, origin, Erase::Member(id.into_inner()), q.apply).await
}

#[utoipa::path(post, path = "/api/v1/households/{id}/erase", tag = "privacy", params(("id" = uuid::Uuid, Path), ApplyQuery), security(("bearer" = [])),
    description = "Erases a whole household's personal data on request, as a campaign's anonymization does: its members' and visits' too. Without `apply=true`, a dry run.",
    responses((status = 200, description = "What was done, or with a dry run what would be", body = ErasureReport),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn erase_household(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    id: web::Path<HouseholdId>,
    q: web::Query<ApplyQuery>,
) -> ApiResult<HttpResponse> {
    erase(
        state,
        auth,
        origin,
        Erase::Household(id.into_inner()),
        q.apply,
    )
    .await
}
