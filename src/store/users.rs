//! Users and their area assignments.

use super::error::{Error, Result};
use super::PageReq;
use crate::auth::Role;
use crate::db::schema::{areas, sessions, user_areas, users};
use crate::db::Conn;
use crate::domain::{AreaId, Time, UserId};
use crate::with_conn;
use diesel::prelude::*;
use serde::Serialize;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: UserId,
    pub username: String,
    pub full_name: String,
    pub password_hash: String,
    pub role: String,
    pub active: bool,
    pub created_at: Time,
    pub updated_at: Time,
}

/// A user as the API shows it (never the hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub full_name: String,
    pub role: String,
    pub active: bool,
    /// Assigned areas; each covers its subtree.
    pub area_ids: Vec<AreaId>,
    pub created_at: Time,
    pub updated_at: Time,
}

/// A username: 2 to 40 of a-z, 0-9, `.`, `_`, `-`, lower-cased.
pub fn parse_username(s: &str) -> Result<String, String> {
    let s = s.trim().to_lowercase();
    let ok = (2..=40).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok {
        Ok(s)
    } else {
        Err("2 to 40 characters: letters a-z, digits, '.', '_' or '-'".into())
    }
}

pub fn check_password(p: &str) -> Result<(), String> {
    if !(8..=256).contains(&p.chars().count()) {
        Err("8 to 256 characters".into())
    } else {
        Ok(())
    }
}

pub fn by_username(conn: &mut Conn<'_>, username: &str) -> Result<Option<UserRow>> {
    let username = username.trim().to_lowercase();
    Ok(with_conn!(conn, |c| users::table
        .filter(users::username.eq(&username))
        .select(UserRow::as_select())
        .first(c)
        .optional())?)
}

pub fn area_ids(conn: &mut Conn<'_>, user: UserId) -> Result<Vec<AreaId>> {
    Ok(with_conn!(conn, |c| user_areas::table
        .filter(user_areas::user_id.eq(user))
        .select(user_areas::area_id)
        .order(user_areas::area_id)
        .load(c))?)
}

fn present(conn: &mut Conn<'_>, row: UserRow) -> Result<User> {
    Ok(User {
        area_ids: area_ids(conn, row.id)?,
        id: row.id,
        username: row.username,
        full_name: row.full_name,
        role: row.role,
        active: row.active,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub fn get(conn: &mut Conn<'_>, id: UserId) -> Result<User> {
    let row = with_conn!(conn, |c| users::table
        .find(id)
        .select(UserRow::as_select())
        .first(c)
        .optional())?
    .ok_or_else(|| Error::not_found("user"))?;
    present(conn, row)
}

pub fn list(conn: &mut Conn<'_>, page: PageReq) -> Result<(Vec<User>, i64)> {
    let (rows, total) = with_conn!(conn, |c| {
        let total: i64 = users::table.count().get_result(c)?;
        let rows = users::table
            .select(UserRow::as_select())
            .order(users::username)
            .limit(page.per_page)
            .offset(page.offset())
            .load(c)?;
        Ok::<_, diesel::result::Error>((rows, total))
    })?;
    // The page's assignments in one query, not one per user.
    let ids: Vec<UserId> = rows.iter().map(|r| r.id).collect();
    let assigned: Vec<(UserId, AreaId)> = with_conn!(conn, |c| user_areas::table
        .filter(user_areas::user_id.eq_any(&ids))
        .select((user_areas::user_id, user_areas::area_id))
        .order((user_areas::user_id, user_areas::area_id))
        .load(c))?;
    let users = rows
        .into_iter()
        .map(|r| User {
            area_ids: assigned
                .iter()
                .filter(|(u, _)| *u == r.id)
                .map(|(_, a)| *a)
                .collect(),
            id: r.id,
            username: r.username,
            full_name: r.full_name,
            role: r.role,
            active: r.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect();
    Ok((users, total))
}

/// Creates a user; `password_hash` is computed by the caller, off the database connection.
pub fn create(
    conn: &mut Conn<'_>,
    username: &str,
    full_name: &str,
    password_hash: &str,
    role: Role,
    area_ids: &[AreaId],
) -> Result<User> {
    let id = UserId::random();
    let now = Time::now();
    let res = with_conn!(conn, |c| diesel::insert_into(users::table)
        .values((
            users::id.eq(id),
            users::username.eq(username),
            users::full_name.eq(full_name.trim()),
            users::password_hash.eq(password_hash),
            users::role.eq(role.as_str()),
            users::active.eq(true),
            users::created_at.eq(now),
            users::updated_at.eq(now),
        ))
        .execute(c));
    match res {
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => {
            return Err(Error::conflict(
                "username_taken",
                format!("the username `{username}` is taken"),
            ));
        }
        r => r?,
    };
    set_areas(conn, id, area_ids)?;
    get(conn, id)
}

#[derive(Debug, Default)]
pub struct UserChanges {
    pub full_name: Option<String>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    pub password_hash: Option<String>,
}

pub fn update(conn: &mut Conn<'_>, id: UserId, ch: UserChanges) -> Result<User> {
    get(conn, id)?;
    let now = Time::now();
    with_conn!(conn, |c| {
        if let Some(v) = &ch.full_name {
            diesel::update(users::table.find(id))
                .set(users::full_name.eq(v.trim()))
                .execute(c)?;
        }
        if let Some(v) = ch.role {
            diesel::update(users::table.find(id))
                .set(users::role.eq(v.as_str()))
                .execute(c)?;
        }
        if let Some(v) = ch.active {
            diesel::update(users::table.find(id))
                .set(users::active.eq(v))
                .execute(c)?;
        }
        if let Some(v) = &ch.password_hash {
            diesel::update(users::table.find(id))
                .set(users::password_hash.eq(v))
                .execute(c)?;
        }
        diesel::update(users::table.find(id))
            .set(users::updated_at.eq(now))
            .execute(c)
    })?;
    // A deactivated user or a new password ends every open session.
    if ch.active == Some(false) || ch.password_hash.is_some() {
        with_conn!(conn, |c| diesel::update(
            sessions::table
                .filter(sessions::user_id.eq(id))
                .filter(sessions::revoked_at.is_null())
        )
        .set((
            sessions::revoked_at.eq(Some(now)),
            sessions::revoked_reason.eq(Some("user_changed"))
        ))
        .execute(c))?;
    }
    get(conn, id)
}

/// Replaces the user's assigned areas. Every area must exist.
pub fn set_areas(conn: &mut Conn<'_>, id: UserId, area_ids: &[AreaId]) -> Result<()> {
    let mut wanted = area_ids.to_vec();
    wanted.sort();
    wanted.dedup();
    let found: i64 = with_conn!(conn, |c| areas::table
        .filter(areas::id.eq_any(&wanted))
        .count()
        .get_result(c))?;
    if found as usize != wanted.len() {
        return Err(Error::invalid(
            "area_ids",
            "unknown_area",
            "names an area that does not exist",
        ));
    }
    with_conn!(conn, |c| {
        diesel::delete(user_areas::table.filter(user_areas::user_id.eq(id))).execute(c)?;
        let rows: Vec<_> = wanted
            .iter()
            .map(|a| (user_areas::user_id.eq(id), user_areas::area_id.eq(*a)))
            .collect();
        diesel::insert_into(user_areas::table)
            .values(&rows)
            .execute(c)
    })?;
    Ok(())
}

/// The first active admin, as the command line writes under their name (the records it
/// creates name who registered them).
pub fn first_admin(conn: &mut Conn<'_>) -> Result<Option<super::scope::Principal>> {
    let found: Option<(UserId, String)> = with_conn!(conn, |c| users::table
        .filter(users::role.eq(Role::Admin.as_str()))
        .filter(users::active.eq(true))
        .order((users::created_at, users::id))
        .select((users::id, users::username))
        .first(c)
        .optional())?;
    Ok(found.map(|(user_id, username)| super::scope::Principal {
        user_id,
        username,
        role: Role::Admin,
        area_paths: Vec::new(),
    }))
}
