//! Login sessions and their rotating refresh tokens.
//!
//! A session is a family of refresh tokens: each refresh uses one token and issues the next.
//! Presenting a token that was already used means it leaked: the whole session is revoked.

use super::error::{Error, Result};
use crate::auth;
use crate::db::schema::{refresh_tokens, sessions};
use crate::db::Conn;
use crate::domain::{SessionId, Time, UserId};
use crate::with_conn;
use diesel::prelude::*;

/// Opens a session; returns it and its first refresh token.
pub fn open(conn: &mut Conn<'_>, user: UserId, days: i64) -> Result<(SessionId, String)> {
    let id = SessionId::random();
    let now = Time::now();
    let expires = Time(now.0 + chrono::Duration::days(days));
    with_conn!(conn, |c| diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(id),
            sessions::user_id.eq(user),
            sessions::created_at.eq(now),
            sessions::expires_at.eq(expires),
        ))
        .execute(c))?;
    let token = issue_token(conn, id, now)?;
    Ok((id, token))
}

fn issue_token(conn: &mut Conn<'_>, session: SessionId, now: Time) -> Result<String> {
    let (token, hash) = auth::new_refresh_token();
    with_conn!(conn, |c| diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(hash),
            refresh_tokens::session_id.eq(session),
            refresh_tokens::created_at.eq(now),
        ))
        .execute(c))?;
    Ok(token)
}

pub enum Refreshed {
    /// The session, its user and the next refresh token.
    Rotated(SessionId, UserId, String),
    /// The token had already been used: the session (of this user) is now revoked.
    Reused(SessionId, UserId),
}

/// Uses a refresh token. Call inside a transaction, and commit even on `Reused`.
pub fn refresh(conn: &mut Conn<'_>, token: &str) -> Result<Refreshed> {
    let hash = auth::hash_refresh_token(token);
    let now = Time::now();
    let found = with_conn!(conn, |c| refresh_tokens::table
        .inner_join(sessions::table)
        .filter(refresh_tokens::token_hash.eq(&hash))
        .select((
            sessions::id,
            sessions::user_id,
            refresh_tokens::used_at,
            sessions::revoked_at,
            sessions::expires_at,
        ))
        .first::<(SessionId, UserId, Option<Time>, Option<Time>, Time)>(c)
        .optional())?;
    let Some((session, user, used, revoked, expires)) = found else {
        return Err(Error::unauthorized(
            "invalid_refresh_token",
            "unknown refresh token",
        ));
    };
    if revoked.is_some() || expires < now {
        return Err(Error::unauthorized(
            "session_revoked",
            "this session has ended; log in again",
        ));
    }
    // Marking it used only if still unused makes two racing refreshes detect each other.
    let marked = with_conn!(conn, |c| diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(&hash))
            .filter(refresh_tokens::used_at.is_null())
    )
    .set(refresh_tokens::used_at.eq(Some(now)))
    .execute(c))?;
    if used.is_some() || marked == 0 {
        revoke(conn, session, "refresh_token_reused")?;
        return Ok(Refreshed::Reused(session, user));
    }
    let next = issue_token(conn, session, now)?;
    Ok(Refreshed::Rotated(session, user, next))
}

pub fn revoke(conn: &mut Conn<'_>, session: SessionId, reason: &str) -> Result<()> {
    with_conn!(conn, |c| diesel::update(
        sessions::table
            .find(session)
            .filter(sessions::revoked_at.is_null())
    )
    .set((
        sessions::revoked_at.eq(Some(Time::now())),
        sessions::revoked_reason.eq(Some(reason))
    ))
    .execute(c))?;
    Ok(())
}

/// Ends the session of a refresh token (logout). Unknown tokens are ignored.
pub fn logout(conn: &mut Conn<'_>, token: &str) -> Result<Option<SessionId>> {
    let hash = auth::hash_refresh_token(token);
    let session = with_conn!(conn, |c| refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(&hash))
        .select(refresh_tokens::session_id)
        .first::<SessionId>(c)
        .optional())?;
    if let Some(s) = session {
        revoke(conn, s, "logout")?;
    }
    Ok(session)
}
