//! Login, token refresh and logout.

use super::{AppState, Auth, Origin};
use crate::auth::{self as tokens, Claims, Role};
use crate::domain::{SessionId, UserId};
use crate::error::{ApiError, ApiResult, Problem};
use crate::store::audit::{self, Action, Actor};
use crate::store::{self, scope::Principal, sessions::Refreshed};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Instant;
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/login", web::post().to(login))
        .route("/auth/refresh", web::post().to(refresh))
        .route("/auth/logout", web::post().to(logout))
        .route("/auth/password", web::post().to(change_password))
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password the user logged in with (a one-time password, say).
    pub current: String,
    /// The user's own: 8 to 256 characters, not the current one.
    #[schema(min_length = 8, max_length = 256)]
    pub new: String,
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
    /// The user logged in with a one-time password: every call but `POST /auth/password`
    /// answers 403 `password_change_required` until they set their own.
    pub must_change_password: bool,
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
    must_change_password: bool,
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
        must_change_password,
    })
}

fn bad_login() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "wrong username or password")
}

/// The client's address: the peer's, or for a request from a trusted proxy the last address
/// in `X-Forwarded-For` that is not one of the proxies.
pub fn client_address(req: &HttpRequest, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|a| !trusted.contains(a))
            .unwrap_or(peer),
    )
}

/// Records an action in a transaction of its own.
async fn record(state: &AppState, actor: Actor, action: Action) -> ApiResult<()> {
    state
        .pool
        .tx(move |conn| audit::record(conn, &actor, &action).map_err(ApiError::from))
        .await
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest, responses(
    (status = 200, body = TokenResponse),
    (status = 401, description = "Wrong username or password, or account inactive", body = Problem),
    (status = 429, description = "Too many failed logins for this account from this address, or from this address: try again after `Retry-After` seconds (docs/SECURITY.md)", body = Problem,
        headers(("Retry-After" = u64, description = "Seconds to wait"))),
))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    origin: Origin,
    body: web::Json<LoginRequest>,
) -> ApiResult<HttpResponse> {
    let LoginRequest { username, password } = body.into_inner();
    let from =
        client_address(&req, &state.settings.trusted_proxies).unwrap_or(IpAddr::from([0, 0, 0, 0]));
    // A failed login's actor is the name given, cut short.
    let given: String = username.trim().chars().take(64).collect();
    if let Err(wait) = state.logins.check(&username, from, Instant::now()) {
        // Rounded up: an attempt right after the wait is allowed.
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        record(
            &state,
            origin.named(None, &given),
            Action::new("login_throttled", ""),
        )
        .await?;
        return Err(ApiError::too_many(
            "too_many_attempts",
            format!("too many failed logins: try again in {seconds} s"),
            seconds,
        ));
    }
    let name = username.clone();
    let user = state
        .pool
        .run(move |conn| store::users::by_username(conn, &name))
        .await?;
    // Hash even for unknown users, so that timing does not tell which usernames exist.
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| tokens::dummy_hash().to_owned());
    let ok = web::block(move || tokens::verify_password(&password, &hash))
        .await
        .map_err(ApiError::internal)?;
    let Some(user) = user.filter(|_| ok) else {
        state.logins.failed(&username, from, Instant::now());
        record(
            &state,
            origin.named(None, &given),
            Action::new("login_failed", ""),
        )
        .await?;
        return Err(bad_login());
    };
    state.logins.succeeded(&username, from);
    if !user.active {
        return Err(ApiError::unauthorized(
            "user_inactive",
            "this account is deactivated",
        ));
    }
    let role = Role::parse(&user.role).ok_or_else(bad_login)?;
    let days = state.settings.refresh_token_days;
    let must_change = user.must_change_password;
    let uid = user.id;
    let actor = origin.named(Some(uid), &user.username);
    let (session, refresh) = state
        .pool
        .tx(move |conn| {
            let opened = store::sessions::open(conn, uid, days)?;
            let action = Action::new("login", format!("session/{}", opened.0 .0));
            audit::record(conn, &actor, &action)?;
            Ok::<_, ApiError>(opened)
        })
        .await?;
    Ok(HttpResponse::Ok().json(tokens_for(
        &state,
        uid,
        role,
        session,
        refresh,
        must_change,
    )?))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest, responses(
    (status = 200, description = "New access and refresh tokens; the presented refresh token is used up", body = TokenResponse),
    (status = 401, description = "Unknown, revoked or reused refresh token (reuse revokes the whole session)", body = Problem),
))]
pub async fn refresh(
    state: web::Data<AppState>,
    origin: Origin,
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
                    Role::parse(&u.role).map(|r| (r, u.must_change_password))
                }
                Refreshed::Reused(session, user) => {
                    let u = store::users::get(conn, *user)?;
                    let action = Action::new("refresh_reused", format!("session/{}", session.0));
                    audit::record(conn, &origin.named(Some(u.id), &u.username), &action)?;
                    None
                }
            };
            Ok((r, role))
        })
        .await?;
    match outcome {
        (Refreshed::Rotated(session, user, next), Some((role, must_change))) => Ok(
            HttpResponse::Ok().json(tokens_for(&state, user, role, session, next, must_change)?),
        ),
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

#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordChange, security(("bearer" = [])),
    description = "Sets the caller's own password, ending their other sessions (this one goes on). A user given a one-time password must do this first: until then every other call answers 403 `password_change_required`.",
    responses(
    (status = 204, description = "Changed"),
    (status = 401, body = Problem),
    (status = 422, description = "`current` is wrong (`wrong_password`), or the new password is too short, too long or the current one", body = Problem),
    (status = 429, description = "Too many wrong passwords for this account from this address", body = Problem),
))]
pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: Auth,
    origin: Origin,
    body: web::Json<PasswordChange>,
) -> ApiResult<HttpResponse> {
    let PasswordChange { current, new } = body.into_inner();
    let claims = auth.0.clone();
    let who = state
        .pool
        .run(move |conn| Ok::<_, ApiError>(Principal::load_for_password_change(conn, &claims)?))
        .await?;
    if let Err(m) = store::users::check_password(&new) {
        return Err(ApiError::invalid("new", "too_short", m));
    }
    if new == current {
        return Err(ApiError::invalid(
            "new",
            "unchanged",
            "choose a password other than the current one",
        ));
    }
    let from =
        client_address(&req, &state.settings.trusted_proxies).unwrap_or(IpAddr::from([0, 0, 0, 0]));
    if let Err(wait) = state.logins.check(&who.username, from, Instant::now()) {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return Err(ApiError::too_many(
            "too_many_attempts",
            format!("too many wrong passwords: try again in {seconds} s"),
            seconds,
        ));
    }
    let id = who.user_id;
    let stored = state
        .pool
        .run(move |conn| Ok::<_, ApiError>(store::users::row(conn, id)?.password_hash))
        .await?;
    let (ok, hash) = web::block(move || {
        let ok = tokens::verify_password(&current, &stored);
        let hash = ok.then(|| tokens::hash_password(&new));
        (ok, hash)
    })
    .await
    .map_err(ApiError::internal)?;
    let Some(hash) = hash.filter(|_| ok) else {
        state.logins.failed(&who.username, from, Instant::now());
        return Err(ApiError::invalid(
            "current",
            "wrong_password",
            "the current password is wrong",
        ));
    };
    let hash = hash.map_err(ApiError::internal)?;
    state.logins.succeeded(&who.username, from);
    let session = auth.0.sid;
    state
        .pool
        .tx(move |conn| {
            store::users::set_own_password(conn, who.user_id, session, &hash)?;
            let action = Action::new("password_changed", format!("user/{}", who.user_id.0));
            audit::record(conn, &origin.of(&who), &action)?;
            Ok::<_, ApiError>(())
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_address_comes_from_a_trusted_proxy_only() {
        let req = |peer: &str, forwarded: &str| {
            TestRequest::default()
                .peer_addr(format!("{peer}:5000").parse().unwrap())
                .insert_header(("x-forwarded-for", forwarded))
                .to_http_request()
        };
        let proxy = [ip("10.0.0.2")];
        // From anyone else, the header is the client's to make up: ignored.
        let r = req("203.0.113.5", "198.51.100.7");
        assert_eq!(client_address(&r, &proxy), Some(ip("203.0.113.5")));
        // From the proxy: the last address it added, not one the client put before it.
        let r = req("10.0.0.2", "1.2.3.4, 198.51.100.7");
        assert_eq!(client_address(&r, &proxy), Some(ip("198.51.100.7")));
        let r = req("10.0.0.2", "198.51.100.7, 10.0.0.2");
        assert_eq!(client_address(&r, &proxy), Some(ip("198.51.100.7")));
        let r = req("10.0.0.2", "not an address");
        assert_eq!(client_address(&r, &proxy), Some(ip("10.0.0.2")));
    }
}
