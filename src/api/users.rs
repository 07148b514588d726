//! Users and their area assignments: admins only.

use super::{AppState, Auth, Deferred, Origin, Page, PageParams, ADMIN};
use crate::auth::{self as tokens, Role};
use crate::domain::fields::FieldError;
use crate::domain::{AreaId, UserId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::store::audit::{self, Action};
use crate::store::{self, users::User, users::UserChanges};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(list))
        .route("/users", web::post().to(create))
        .route("/users/{id}", web::get().to(get))
        .route("/users/{id}", web::patch().to(update))
        .route("/users/{id}/areas", web::put().to(set_areas));
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Stored in lower case.
    #[schema(pattern = r"^\s*[A-Za-z0-9._-]{2,40}\s*$")]
    pub username: String,
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
    #[serde(default)]
    pub full_name: String,
    pub role: Role,
    #[serde(default)]
    pub area_ids: Vec<AreaId>,
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
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AreaAssignments {
    pub area_ids: Vec<AreaId>,
}

async fn hash(password: String) -> ApiResult<String> {
    web::block(move || tokens::hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageParams), security(("bearer" = [])), responses(
    (status = 200, body = Page<User>), (status = 403, body = Problem),
))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    q: Deferred<web::Query<PageParams>>,
) -> ApiResult<HttpResponse> {
    state.require_role(&auth, ADMIN).await?;
    let q = q.get()?;
    let page = PageParams::parse(q.page, q.per_page)?;
    let (items, total) = state
        .as_user(auth, move |conn, _| {
            store::users::list(conn, page).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Page::new(items, total, page)))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser, security(("bearer" = [])), responses(
    (status = 201, body = User), (status = 409, description = "Username taken", body = Problem),
    (status = 422, body = Problem), (status = 403, body = Problem),
))]
pub async fn create(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    body: Deferred<web::Json<NewUser>>,
) -> ApiResult<HttpResponse> {
    // The caller first: before the body and before time is spent on the hash.
    state.require_role(&auth, ADMIN).await?;
    let NewUser {
        username,
        password,
        full_name,
        role,
        area_ids,
    } = body.get()?.into_inner();
    let mut errors = Vec::new();
    let username = store::users::parse_username(&username)
        .map_err(|m| errors.push(FieldError::new("username", "format", m)))
        .unwrap_or_default();
    if let Err(m) = store::users::check_password(&password) {
        errors.push(FieldError::new("password", "too_short", m));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let hash = hash(password).await?;
    let user = state
        .as_user_tx(auth, move |conn, who| {
            let user = store::users::create(conn, &username, &full_name, &hash, role, &area_ids)?;
            let action = Action::new("user_created", format!("user/{}", user.id.0)).with(
                json!({"username": user.username, "role": user.role, "area_ids": user.area_ids}),
            );
            audit::record(conn, &origin.of(who), &action)?;
            Ok(user)
        })
        .await?;
    Ok(HttpResponse::Created().json(user))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = uuid::Uuid, Path)), security(("bearer" = [])), responses(
    (status = 200, body = User), (status = 404, body = Problem),
))]
pub async fn get(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<UserId>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let user = state
        .as_user(auth, move |conn, who| {
            who.require_role(ADMIN)?;
            store::users::get(conn, id).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(user))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = uuid::Uuid, Path)), request_body = UserPatch,
    security(("bearer" = [])), responses((status = 200, body = User), (status = 404, body = Problem),
        (status = 409, description = "An admin cannot deactivate or demote themself", body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    id: web::Path<UserId>,
    body: Deferred<web::Json<UserPatch>>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    state.require_role(&auth, ADMIN).await?;
    let p = body.get()?.into_inner();
    let password_hash = match p.password {
        Some(pw) => {
            store::users::check_password(&pw)
                .map_err(|m| ApiError::invalid("password", "too_short", m))?;
            Some(hash(pw).await?)
        }
        None => None,
    };
    let changes = UserChanges {
        full_name: p.full_name,
        role: p.role,
        active: p.active,
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
            let before = store::users::get(conn, id)?;
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
            let user = store::users::update(conn, id, changes)?;
            let action = Action::new("user_changed", format!("user/{}", id.0))
                .with(serde_json::Value::Object(detail));
            audit::record(conn, &origin.of(who), &action)?;
            Ok(user)
        })
        .await?;
    Ok(HttpResponse::Ok().json(user))
}

#[utoipa::path(put, path = "/api/v1/users/{id}/areas", tag = "users", params(("id" = uuid::Uuid, Path)), request_body = AreaAssignments,
    security(("bearer" = [])), responses((status = 200, body = User), (status = 422, body = Problem)))]
pub async fn set_areas(
    state: web::Data<AppState>,
    auth: Auth,
    origin: Origin,
    id: web::Path<UserId>,
    body: Deferred<web::Json<AreaAssignments>>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    state.require_role(&auth, ADMIN).await?;
    let areas = body.get()?.into_inner().area_ids;
    let user = state
        .as_user_tx(auth, move |conn, who| {
            let before = store::users::get(conn, id)?;
            store::users::set_areas(conn, id, &areas)?;
            let user = store::users::get(conn, id)?;
            let action = Action::new("user_areas_set", format!("user/{}", id.0))
                .with(json!({"from": before.area_ids, "to": user.area_ids}));
            audit::record(conn, &origin.of(who), &action)?;
            Ok(user)
        })
        .await?;
    Ok(HttpResponse::Ok().json(user))
}
