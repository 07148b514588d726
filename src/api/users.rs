//! Users and their area assignments. Admins manage everyone; a supervisor manages the
//! canvassers of their own areas (`Principal::require_manages`, docs/SECURITY.md).

use super::{AppState, Auth, Deferred, Origin, Page, PageParams, SUPERVISORS};
use crate::accounts::{self, Report};
use crate::auth::{self as tokens, Role};
use crate::db::Conn;
use crate::domain::fields::FieldError;
use crate::domain::{AreaId, UserId};
use crate::error::{ApiError, ApiResult, Kind, Problem};
use crate::store::audit::{self, Action};
use crate::store::scope::Principal;
use crate::store::{self, users::Account, users::User, users::UserChanges};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(list))
        .route("/users", web::post().to(create))
        .service(
            web::resource("/users/import")
                .app_data(web::PayloadConfig::new(accounts::MAX_BYTES))
                .route(web::post().to(import)),
        )
        .route("/users/{id}", web::get().to(get))
        .route("/users/{id}", web::patch().to(update))
        .route("/users/{id}/areas", web::put().to(set_areas))
        .route("/users/{id}/password-reset", web::post().to(reset_password));
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Stored in lower case.
    #[schema(pattern = r"^\s*[A-Za-z0-9._-]{2,40}\s*$")]
    pub username: String,
    /// Without it the server makes a one-time password, answered once: the user must set
    /// their own at their first login.
    #[schema(min_length = 8, max_length = 256)]
    pub password: Option<String>,
    #[serde(default)]
    pub full_name: String,
    pub role: Role,
    #[serde(default)]
    pub area_ids: Vec<AreaId>,
    #[serde(default)]
    #[schema(schema_with = super::contract::phone)]
    pub phone: String,
}

/// A new user, and the one-time password made for them (shown this once).
#[derive(Serialize, ToSchema)]
pub struct CreatedUser {
    #[serde(flatten)]
    pub user: User,
    pub one_time_password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub full_name: Option<String>,
    pub role: Option<Role>,
    /// Deactivating ends every session of the user at once.
    pub active: Option<bool>,
    /// A new password ends every session of the user.
    #[schema(min_length = 8, max_length = 256)]
    pub password: Option<String>,
    #[schema(schema_with = super::contract::phone_or_null)]
    pub phone: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AreaAssignments {
    pub area_ids: Vec<AreaId>,
}

/// A one-time password, shown once: the user must set their own at their next login.
#[derive(Serialize, ToSchema)]
pub struct OneTimePassword {
    pub user_id: UserId,
    pub username: String,
    pub one_time_password: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// Part of the username or full name, accents and case aside.
    pub q: Option<String>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    /// Only users with an area in this area's subtree.
    pub area: Option<AreaId>,
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<i64>,
}

async fn hash(password: String) -> ApiResult<String> {
    web::block(move || tokens::hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

/// The user `id`, failing unless the caller may manage them.
fn managed(conn: &mut Conn<'_>, who: &Principal, id: UserId) -> ApiResult<User> {
    let user = store::users::get(conn, id)?;
    let role = Role::parse(&user.role)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("bad role {}", user.role)))?;
    let paths = store::users::area_paths(conn, &user.area_ids)?;
    who.require_manages(role, &paths)?;
    Ok(user)
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserQuery), security(("bearer" = [])),
    description = "Admins see every user; a supervisor the users with an area in their own.",
    responses((status = 200, body = Page<User>), (status = 403, body = Problem)))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    q: Deferred<web::Query<UserQuery>>,
) -> ApiResult<HttpResponse> {
    state.require_role(&auth, SUPERVISORS).await?;
    let q = q.get()?.into_inner();
    let page = PageParams::parse(q.page, q.per_page)?;
    let (items, total) = state
        .as_user(auth, move |conn, who| {
            let within = match q.area {
                Some(a) => Some(vec![who.require_area(conn, a)?]),
                None => who.prefixes().map(<[String]>::to_vec),
            };
            let filter = store::users::Filter {
                within,
                role: q.role,
                active: q.active,
                q: q.q.filter(|s| !s.trim().is_empty()),
            };
            store::users::list(conn, &filter, page).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Page::new(items, total, page)))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser, security(("bearer" = [])), responses(
    (status = 201, body = CreatedUser), (status = 409, description = "Username taken", body = Problem),
    (status = 422, body = Problem),
    (status = 403, description = "Not an admin or supervisor; a supervisor making other than a canvasser of their own areas", body = Problem),
))]
pub async fn create(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    body: Deferred<web::Json<NewUser>>,
) -> ApiResult<HttpResponse> {
    // The caller first: before the body and before time is spent on the hash.
    state.require_role(&auth, SUPERVISORS).await?;
    let NewUser {
        username,
        password,
        full_name,
        role,
        area_ids,
        phone,
    } = body.get()?.into_inner();
    let mut errors = Vec::new();
    let username = store::users::parse_username(&username)
        .map_err(|m| errors.push(FieldError::new("username", "format", m)))
        .unwrap_or_default();
    if let Some(Err(m)) = password.as_deref().map(store::users::check_password) {
        errors.push(FieldError::new("password", "too_short", m));
    }
    if let Err(m) = store::users::check_phone(&phone) {
        errors.push(FieldError::new("phone", "format", m));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    // The rule before the hash: a refused caller costs no hashing.
    let ids = area_ids.clone();
    state
        .as_user(Auth(auth.0.clone()), move |conn, who| {
            let paths = store::users::area_paths(conn, &ids)?;
            Ok(who.require_manages(role, &paths)?)
        })
        .await?;
    let one_time = password.is_none().then(tokens::one_time_password);
    let hash = hash(password.or_else(|| one_time.clone()).unwrap_or_default()).await?;
    let account = Account {
        username,
        full_name,
        password_hash: hash,
        role,
        area_ids,
        phone,
        must_change_password: one_time.is_some(),
    };
    let user = state
        .as_user_tx(auth, move |conn, who| {
            let paths = store::users::area_paths(conn, &account.area_ids)?;
            who.require_manages(role, &paths)?;
            let user = store::users::create(conn, &account)?;
            let action = accounts::created(conn, &user)?;
            audit::record(conn, &origin.of(who), &action)?;
            Ok(user)
        })
        .await?;
    Ok(HttpResponse::Created().json(CreatedUser {
        user,
        one_time_password: one_time,
    }))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = uuid::Uuid, Path)), security(("bearer" = [])), responses(
    (status = 200, body = User), (status = 403, body = Problem), (status = 404, body = Problem),
))]
pub async fn get(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<UserId>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let user = state
        .as_user(auth, move |conn, who| {
            who.require_role(SUPERVISORS)?;
            let user = store::users::get(conn, id)?;
            // A supervisor reads the users with an area in their own, and themself.
            if !who.is_admin() && who.user_id != id {
                let paths = store::users::area_paths(conn, &user.area_ids)?;
                if !paths.iter().any(|p| who.covers(p)) {
                    return Err(ApiError::out_of_scope());
                }
            }
            Ok(user)
        })
        .await?;
    Ok(HttpResponse::Ok().json(user))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = uuid::Uuid, Path)), request_body = UserPatch,
    security(("bearer" = [])), responses((status = 200, body = User), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "An admin cannot deactivate or demote themself", body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    id: web::Path<UserId>,
    body: Deferred<web::Json<UserPatch>>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    state.require_role(&auth, SUPERVISORS).await?;
    let p = body.get()?.into_inner();
    if let Some(Err(m)) = p.phone.as_deref().map(store::users::check_phone) {
        return Err(ApiError::invalid("phone", "format", m));
    }
    if let Some(Err(m)) = p.password.as_deref().map(store::users::check_password) {
        return Err(ApiError::invalid("password", "too_short", m));
    }
    state
        .as_user(Auth(auth.0.clone()), move |conn, who| {
            managed(conn, who, id).map(|_| ())
        })
        .await?;
    let password_hash = match p.password {
        Some(pw) => Some((hash(pw).await?, false)),
        None => None,
    };
    let changes = UserChanges {
        full_name: p.full_name,
        role: p.role,
        active: p.active,
        phone: p.phone,
        password_hash,
    };
    let user = state
        .as_user_tx(auth, move |conn, who| {
            if who.user_id == id
                && (changes.active == Some(false) || changes.role.is_some_and(|r| r != Role::Admin))
            {
                return Err(ApiError::conflict(
                    "self_lockout",
                    "you cannot deactivate or demote yourself",
                ));
            }
            let before = managed(conn, who, id)?;
            if let Some(role) = changes.role {
                who.require_manages(role, &store::users::area_paths(conn, &before.area_ids)?)?;
            }
            let mut detail = serde_json::Map::new();
            if changes.role.is_some_and(|r| r.as_str() != before.role) {
                detail.insert(
                    "role".into(),
                    json!({"from": before.role, "to": changes.role}),
                );
            }
            if changes.active.is_some_and(|a| a != before.active) {
                detail.insert("active".into(), json!(changes.active));
            }
            if changes.password_hash.is_some() {
                detail.insert("password".into(), json!("set"));
            }
            if changes
                .full_name
                .as_ref()
                .is_some_and(|n| *n != before.full_name)
            {
                detail.insert("full_name".into(), json!("changed"));
            }
            if changes.phone.as_ref().is_some_and(|n| *n != before.phone) {
                detail.insert("phone".into(), json!("changed"));
            }
            let user = store::users::update(conn, id, changes)?;
            let action = Action::new("user_changed", format!("user/{}", id.0))
                .with(serde_json::Value::Object(detail));
            let action = accounts::about(conn, &user, action)?;
            audit::record(conn, &origin.of(who), &action)?;
            Ok(user)
        })
        .await?;
    Ok(HttpResponse::Ok().json(user))
}

#[utoipa::path(put, path = "/api/v1/users/{id}/areas", tag = "users", params(("id" = uuid::Uuid, Path)), request_body = AreaAssignments,
    security(("bearer" = [])), responses((status = 200, body = User), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn set_areas(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    id: web::Path<UserId>,
    body: Deferred<web::Json<AreaAssignments>>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    state.require_role(&auth, SUPERVISORS).await?;
    let areas = body.get()?.into_inner().area_ids;
    let user = state
        .as_user_tx(auth, move |conn, who| {
            let before = managed(conn, who, id)?;
            let role = Role::parse(&before.role)
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("bad role")))?;
            who.require_manages(role, &store::users::area_paths(conn, &areas)?)?;
            store::users::set_areas(conn, id, &areas)?;
            let user = store::users::get(conn, id)?;
            let action = Action::new("user_areas_set", format!("user/{}", id.0))
                .with(json!({"from": before.area_ids, "to": user.area_ids}));
            let action = accounts::about(conn, &user, action)?;
            audit::record(conn, &origin.of(who), &action)?;
            Ok(user)
        })
        .await?;
    Ok(HttpResponse::Ok().json(user))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/password-reset", tag = "users", params(("id" = uuid::Uuid, Path)),
    security(("bearer" = [])),
    description = "Gives the user a one-time password, answered this once, and ends their sessions: at their next login they must set their own (`POST /auth/password`) before anything else.",
    responses((status = 200, body = OneTimePassword), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "Your own password: change it with `POST /auth/password`", body = Problem)))]
pub async fn reset_password(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    id: web::Path<UserId>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    state
        .as_user(Auth(auth.0.clone()), move |conn, who| {
            who.require_role(SUPERVISORS)?;
            if who.user_id == id {
                return Err(ApiError::conflict(
                    "own_password",
                    "change your own password with POST /api/v1/auth/password",
                ));
            }
            managed(conn, who, id).map(|_| ())
        })
        .await?;
    let password = tokens::one_time_password();
    let hash = hash(password.clone()).await?;
    let user = state
        .as_user_tx(auth, move |conn, who| {
            managed(conn, who, id)?;
            let changes = UserChanges {
                password_hash: Some((hash, true)),
                ..UserChanges::default()
            };
            let user = store::users::update(conn, id, changes)?;
            let action = Action::new("password_reset", format!("user/{}", id.0))
                .with(json!({"username": user.username}));
            let action = accounts::about(conn, &user, action)?;
            audit::record(conn, &origin.of(who), &action)?;
            Ok(user)
        })
        .await?;
    Ok(HttpResponse::Ok().json(OneTimePassword {
        user_id: user.id,
        username: user.username,
        one_time_password: password,
    }))
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccountsQuery {
    /// Check only: write nothing, make no password.
    #[serde(default)]
    pub dry_run: bool,
}

#[utoipa::path(post, path = "/api/v1/users/import", tag = "users", params(AccountsQuery),
    request_body(content = String, content_type = "text/csv", description = "The accounts as CSV (UTF-8), or as an XLSX workbook; 1 MiB and 2,000 rows at most. Columns `Tên đăng nhập`, `Họ tên`, `Vai trò`, `Địa bàn` (official codes, or `Xã … / Thôn …` names, several separated by `;`) and `Điện thoại`."),
    security(("bearer" = [])),
    description = "Makes accounts from a spreadsheet (docs/CONSOLE.md), all or nothing: with any bad row nothing is written (422, every problem in `report`). Each new account gets a one-time password, answered this once.",
    responses(
        (status = 200, description = "The accounts made, each with its one-time password; with `dry_run` those that would be, without", body = Report),
        (status = 400, description = "Not an accounts file", body = Problem),
        (status = 403, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
        (status = 422, description = "`accounts_refused`: rows have errors (the report is in `report`); nothing was written", body = Problem),
))]
pub async fn import(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    req: HttpRequest,
    q: Deferred<web::Query<AccountsQuery>>,
    body: Deferred<web::Bytes>,
) -> ApiResult<HttpResponse> {
    state.require_role(&auth, SUPERVISORS).await?;
    let q = q.get()?.into_inner();
    super::register::require_sheet(&req)?;
    let data = body.get()?;
    let mut report = state
        .as_user(Auth(auth.0.clone()), move |conn, who| {
            Ok(conn.read_transaction(|conn| accounts::prepare(conn, who, &data))?)
        })
        .await?;
    if !report.errors.is_empty() {
        let refused = ApiError::new(
            Kind::Validation,
            "accounts_refused",
            format!(
                "{} problems in the file: nothing was written (see `report.errors`)",
                report.errors.len()
            ),
        );
        return Ok(refused.answer_with_report(&report));
    }
    if q.dry_run || report.accounts.is_empty() {
        return Ok(HttpResponse::Ok().json(report));
    }
    // Passwords and their hashes off the database connection.
    let planned = report.accounts.clone();
    let made = web::block(move || accounts::passwords(&planned))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let passwords: Vec<String> = made.iter().map(|m| m.password.clone()).collect();
    let written = state
        .as_user_tx(auth, move |conn, who| {
            let users = accounts::write(conn, who, &made)?;
            for u in &users {
                let action = accounts::created(conn, u)?;
                audit::record(conn, &origin.of(who), &action)?;
            }
            Ok(users.into_iter().map(|u| u.id).collect::<Vec<_>>())
        })
        .await?;
    report.written = true;
    for ((a, id), password) in report.accounts.iter_mut().zip(written).zip(passwords) {
        a.user_id = Some(id);
        a.one_time_password = Some(password);
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(report))
}
