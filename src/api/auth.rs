//! Login, token refresh and logout.

use super::{AppState, Auth};
use crate::auth::{self as tokens, Claims, Role};
use crate::domain::{SessionId, UserId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::store::{self, scope::Principal, sessions::Refreshed};
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/login", web::post().to(login))
        .route("/auth/refresh", web::post().to(refresh))
        .route("/auth/logout", web::post().to(logout))
        .route("/me", web::get().to(me));
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// Short-lived HS256 JWT for `Authorization: Bearer`.
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Long-lived opaque token; each use returns a new one and retires the old.
    pub refresh_token: String,
    pub user_id: UserId,
    pub role: Role,
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub id: UserId,
    pub username: String,
    pub role: Role,
    pub area_ids: Vec<crate::domain::AreaId>,
}

fn tokens_for(
    state: &AppState,
    user: UserId,
    role: Role,
    session: SessionId,
    refresh: String,
) -> ApiResult<TokenResponse> {
    let lifetime = state
        .settings
        .access_token_seconds
        .unwrap_or(state.settings.access_token_minutes * 60);
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: user,
        role,
        sid: session,
        iat: now,
        exp: now + lifetime,
    };
    Ok(TokenResponse {
        access_token: state.keys.issue(&claims).map_err(ApiError::internal)?,
        token_type: "Bearer",
        expires_in: lifetime,
        refresh_token: refresh,
        user_id: user,
        role,
    })
}

fn bad_login() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "wrong username or password")
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest, responses(
    (status = 200, body = TokenResponse),
    (status = 401, description = "Wrong username or password, or account inactive", body = Problem),
))]
pub async fn login(
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> ApiResult<HttpResponse> {
    let LoginRequest { username, password } = body.into_inner();
    let user = state
        .pool
        .run(move |conn| store::users::by_username(conn, &username))
        .await?;
    // Hash even for unknown users, so that timing does not tell which usernames exist.
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| tokens::dummy_hash().to_owned());
    let ok = web::block(move || tokens::verify_password(&password, &hash))
        .await
        .map_err(ApiError::internal)?;
    let user = user.filter(|_| ok).ok_or_else(bad_login)?;
    if !user.active {
        return Err(ApiError::unauthorized(
            "user_inactive",
            "this account is deactivated",
        ));
    }
    let role = Role::parse(&user.role).ok_or_else(bad_login)?;
    let days = state.settings.refresh_token_days;
    let uid = user.id;
    let (session, refresh) = state
        .pool
        .tx(move |conn| store::sessions::open(conn, uid, days))
        .await?;
    Ok(HttpResponse::Ok().json(tokens_for(&state, uid, role, session, refresh)?))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest, responses(
    (status = 200, description = "New access and refresh tokens; the presented refresh token is used up", body = TokenResponse),
    (status = 401, description = "Unknown, revoked or reused refresh token (reuse revokes the whole session)", body = Problem),
))]
pub async fn refresh(
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> ApiResult<HttpResponse> {
    let token = body.into_inner().refresh_token;
    let outcome = state
        .pool
        .tx(move |conn| {
            let r = store::sessions::refresh(conn, &token)?;
            let role = match &r {
                Refreshed::Rotated(_, user, _) => {
                    let u = store::users::get(conn, *user)?;
                    if !u.active {
                        return Err(ApiError::unauthorized(
                            "user_inactive",
                            "this account is deactivated",
                        ));
                    }
                    Role::parse(&u.role)
                }
                Refreshed::Reused => None,
            };
            Ok((r, role))
        })
        .await?;
    match outcome {
        (Refreshed::Rotated(session, user, next), Some(role)) => {
            Ok(HttpResponse::Ok().json(tokens_for(&state, user, role, session, next)?))
        }
        _ => Err(ApiError::unauthorized(
            "refresh_token_reused",
            "this refresh token was already used; the session is revoked, log in again",
        )),
    }
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest, responses(
    (status = 204, description = "The session is ended; its tokens no longer work"),
))]
pub async fn logout(
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> ApiResult<HttpResponse> {
    let token = body.into_inner().refresh_token;
    state
        .pool
        .tx(move |conn| store::sessions::logout(conn, &token))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/me", tag = "auth", security(("bearer" = [])), responses(
    (status = 200, body = Me), (status = 401, body = Problem),
))]
pub async fn me(state: web::Data<AppState>, auth: Auth) -> ApiResult<HttpResponse> {
    let me = state
        .as_user(auth, |conn, who: &Principal| {
            let u = store::users::get(conn, who.user_id)?;
            Ok(Me {
                id: u.id,
                username: u.username,
                role: who.role,
                area_ids: u.area_ids,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(me))
}
