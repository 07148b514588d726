//! Users and their area assignments.

use super::devices::Phone;
use super::error::{Error, Result};
use super::PageReq;
use crate::auth::Role;
use crate::db::schema::{areas, sessions, user_areas, users};
use crate::db::Conn;
use crate::domain::{AreaId, SessionId, Time, UserId};
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
    pub must_change_password: bool,
    pub phone: String,
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
    pub phone: String,
    /// Set by a one-time password: the user must choose their own before anything else.
    pub must_change_password: bool,
    pub last_login_at: Option<Time>,
    /// The user's phones, the most recently synced first.
    pub phones: Vec<Phone>,
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

/// Checks a user's phone number as a household's is checked (`domain::fields::phone`).
pub fn check_phone(phone: &str) -> Result<(), String> {
    crate::domain::fields::phone(phone)
        .map(|_| ())
        .map_err(|_| {
            "6 to 15 digits, optionally after +; spaces, dots and dashes are dropped".into()
        })
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

/// Users as the API shows them: their areas, last login and phones in a query each.
fn present(conn: &mut Conn<'_>, rows: Vec<UserRow>) -> Result<Vec<User>> {
    let ids: Vec<UserId> = rows.iter().map(|r| r.id).collect();
    let assigned: Vec<(UserId, AreaId)> = with_conn!(conn, |c| user_areas::table
        .filter(user_areas::user_id.eq_any(&ids))
        .select((user_areas::user_id, user_areas::area_id))
        .order((user_areas::user_id, user_areas::area_id))
        .load(c))?;
    let logins: Vec<(UserId, Time)> = with_conn!(conn, |c| sessions::table
        .filter(sessions::user_id.eq_any(&ids))
        .select((sessions::user_id, sessions::created_at))
        .load(c))?;
    let phones = super::devices::phones(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|r| User {
            area_ids: assigned
                .iter()
                .filter(|(u, _)| *u == r.id)
                .map(|(_, a)| *a)
                .collect(),
            last_login_at: logins
                .iter()
                .filter(|(u, _)| *u == r.id)
                .map(|(_, t)| *t)
                .max(),
            phones: phones
                .iter()
                .filter(|p| p.user_id == r.id)
                .cloned()
                .collect(),
            id: r.id,
            username: r.username,
            full_name: r.full_name,
            role: r.role,
            active: r.active,
            phone: r.phone,
            must_change_password: r.must_change_password,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect())
}

pub fn row(conn: &mut Conn<'_>, id: UserId) -> Result<UserRow> {
    with_conn!(conn, |c| users::table
        .find(id)
        .select(UserRow::as_select())
        .first(c)
        .optional())?
    .ok_or_else(|| Error::not_found("user"))
}

pub fn get(conn: &mut Conn<'_>, id: UserId) -> Result<User> {
    let row = row(conn, id)?;
    Ok(present(conn, vec![row])?.remove(0))
}

/// Which users a list shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only users with an area in these subtrees (by path); `None`: everyone.
    pub within: Option<Vec<String>>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    /// Part of the username or full name, as search compares names.
    pub q: Option<String>,
}

/// Users assigned an area under one of `prefixes`.
pub fn ids_within(conn: &mut Conn<'_>, prefixes: &[String]) -> Result<Vec<UserId>> {
    let mut ids = Vec::new();
    for p in prefixes {
        let pattern = crate::domain::area::subtree_pattern(p);
        ids.extend(with_conn!(conn, |c| user_areas::table
            .inner_join(areas::table)
            .filter(areas::path.like(&pattern))
            .select(user_areas::user_id)
            .load::<UserId>(c))?);
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

pub fn list(conn: &mut Conn<'_>, f: &Filter, page: PageReq) -> Result<(Vec<User>, i64)> {
    let within = match &f.within {
        Some(prefixes) => Some(ids_within(conn, prefixes)?),
        None => None,
    };
    let rows: Vec<UserRow> = with_conn!(conn, |c: DB| {
        let mut q = users::table.select(UserRow::as_select()).into_boxed::<DB>();
        if let Some(ids) = &within {
            q = q.filter(users::id.eq_any(ids.clone()));
        }
        if let Some(r) = f.role {
            q = q.filter(users::role.eq(r.as_str()));
        }
        if let Some(a) = f.active {
            q = q.filter(users::active.eq(a));
        }
        q.order(users::username).load(c)
    })?;
    // Names are matched as search matches them, which SQL cannot do on both databases.
    let wanted = f.q.as_deref().map(crate::domain::text::fold);
    let rows: Vec<UserRow> = rows
        .into_iter()
        .filter(|r| {
            wanted.as_deref().is_none_or(|w| {
                crate::domain::text::fold(&r.username).contains(w)
                    || crate::domain::text::fold(&r.full_name).contains(w)
            })
        })
        .collect();
    let total = rows.len() as i64;
    let page_rows = rows
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.per_page as usize)
        .collect();
    Ok((present(conn, page_rows)?, total))
}

/// A user to create; `password_hash` is computed by the caller, off the database connection.
#[derive(Debug, Clone)]
pub struct Account {
    pub username: String,
    pub full_name: String,
    pub password_hash: String,
    pub role: Role,
    pub area_ids: Vec<AreaId>,
    pub phone: String,
    /// The password is a one-time password.
    pub must_change_password: bool,
}

impl Account {
    /// An account with a password of its own and no phone.
    pub fn new(
        username: &str,
        full_name: &str,
        password_hash: &str,
        role: Role,
        area_ids: &[AreaId],
    ) -> Account {
        Account {
            username: username.to_owned(),
            full_name: full_name.to_owned(),
            password_hash: password_hash.to_owned(),
            role,
            area_ids: area_ids.to_vec(),
            phone: String::new(),
            must_change_password: false,
        }
    }
}

pub fn create(conn: &mut Conn<'_>, a: &Account) -> Result<User> {
    let username = &a.username;
    let id = UserId::random();
    let now = Time::now();
    let res = with_conn!(conn, |c| diesel::insert_into(users::table)
        .values((
            users::id.eq(id),
            users::username.eq(username),
            users::full_name.eq(a.full_name.trim()),
            users::password_hash.eq(&a.password_hash),
            users::role.eq(a.role.as_str()),
            users::active.eq(true),
            users::phone.eq(a.phone.trim()),
            users::must_change_password.eq(a.must_change_password),
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
    set_areas(conn, id, &a.area_ids)?;
    get(conn, id)
}

#[derive(Debug, Default)]
pub struct UserChanges {
    pub full_name: Option<String>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    pub phone: Option<String>,
    /// A new hash, and whether it is a one-time password the user must change.
    pub password_hash: Option<(String, bool)>,
}

pub fn update(conn: &mut Conn<'_>, id: UserId, ch: UserChanges) -> Result<User> {
    row(conn, id)?;
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
        if let Some(v) = &ch.phone {
            diesel::update(users::table.find(id))
                .set(users::phone.eq(v.trim()))
                .execute(c)?;
        }
        if let Some((hash, one_time)) = &ch.password_hash {
            diesel::update(users::table.find(id))
                .set((
                    users::password_hash.eq(hash),
                    users::must_change_password.eq(*one_time),
                ))
                .execute(c)?;
        }
        diesel::update(users::table.find(id))
            .set(users::updated_at.eq(now))
            .execute(c)
    })?;
    // A deactivated user or a new password ends every open session.
    if ch.active == Some(false) || ch.password_hash.is_some() {
        end_sessions(conn, id, None)?;
    }
    get(conn, id)
}

/// Ends the user's open sessions, but `keep`.
pub fn end_sessions(conn: &mut Conn<'_>, id: UserId, keep: Option<SessionId>) -> Result<()> {
    let now = Time::now();
    let keep = keep.unwrap_or(SessionId(uuid::Uuid::nil()));
    with_conn!(conn, |c| diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(id))
            .filter(sessions::id.ne(keep))
            .filter(sessions::revoked_at.is_null())
    )
    .set((
        sessions::revoked_at.eq(Some(now)),
        sessions::revoked_reason.eq(Some("user_changed"))
    ))
    .execute(c))?;
    Ok(())
}

/// A user's own new password: it ends their other sessions and lifts
/// `must_change_password`.
pub fn set_own_password(
    conn: &mut Conn<'_>,
    id: UserId,
    session: SessionId,
    hash: &str,
) -> Result<()> {
    let now = Time::now();
    with_conn!(conn, |c| diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::must_change_password.eq(false),
            users::updated_at.eq(now),
        ))
        .execute(c))?;
    end_sessions(conn, id, Some(session))
}

/// Replaces the user's assigned areas. Every area must exist.
/// The paths of a user's areas (each once, in path order): 422 `unknown_area` when one does
/// not exist.
pub fn area_paths(conn: &mut Conn<'_>, area_ids: &[AreaId]) -> Result<Vec<String>> {
    let mut wanted = area_ids.to_vec();
    wanted.sort();
    wanted.dedup();
    let found = super::areas::by_ids(conn, &wanted)?;
    if found.len() != wanted.len() {
        return Err(Error::invalid(
            "area_ids",
            "unknown_area",
            "names an area that does not exist",
        ));
    }
    Ok(found.into_iter().map(|a| a.path).collect())
}

pub fn set_areas(conn: &mut Conn<'_>, id: UserId, area_ids: &[AreaId]) -> Result<()> {
    area_paths(conn, area_ids)?;
    let mut wanted = area_ids.to_vec();
    wanted.sort();
    wanted.dedup();
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
