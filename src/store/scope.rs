//! Who is calling and which areas they may see: the one place where scope is decided.

use super::error::{Error, Result};
use crate::auth::{Claims, Role};
use crate::db::schema::{areas, sessions, user_areas, users};
use crate::db::Conn;
use crate::domain::{area, AreaId, Time, UserId};
use crate::with_conn;
use diesel::prelude::*;

/// An authenticated, active user with the paths of their assigned areas.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: UserId,
    pub username: String,
    pub role: Role,
    /// Materialized paths of the assigned areas; each covers its subtree.
    pub area_paths: Vec<String>,
}

impl Principal {
    /// Loads the caller of an access token, refusing inactive users, revoked sessions and
    /// users who must first change their one-time password.
    pub fn load(conn: &mut Conn<'_>, claims: &Claims) -> Result<Principal> {
        Self::load_as(conn, claims, false)
    }

    /// Like `load`, letting through a user who must change their password: for that change.
    pub fn load_for_password_change(conn: &mut Conn<'_>, claims: &Claims) -> Result<Principal> {
        Self::load_as(conn, claims, true)
    }

    fn load_as(conn: &mut Conn<'_>, claims: &Claims, changing_password: bool) -> Result<Principal> {
        let now = Time::now();
        // One statement: the user, the session, and a row per assigned area (or one row
        // with no path).
        let rows = with_conn!(conn, |c| users::table
            .inner_join(sessions::table)
            .left_join(user_areas::table.inner_join(areas::table))
            .filter(users::id.eq(claims.sub))
            .filter(sessions::id.eq(claims.sid))
            .select((
                users::username,
                users::role,
                users::active,
                users::must_change_password,
                sessions::revoked_at,
                sessions::expires_at,
                areas::path.nullable(),
            ))
            .order(areas::path)
            .load::<(
                String,
                String,
                bool,
                bool,
                Option<Time>,
                Time,
                Option<String>
            )>(c))?;
        let Some((username, role, active, must_change, revoked, expires, _)) =
            rows.first().cloned()
        else {
            return Err(Error::unauthorized(
                "invalid_token",
                "unknown user or session",
            ));
        };
        if !active {
            return Err(Error::unauthorized(
                "user_inactive",
                "this account is deactivated",
            ));
        }
        if revoked.is_some() || expires < now {
            return Err(Error::unauthorized(
                "session_revoked",
                "this session has ended; log in again",
            ));
        }
        if must_change && !changing_password {
            return Err(crate::domain::Error::Forbidden {
                code: "password_change_required",
                detail: "this account has a one-time password: set your own first \
                         (POST /api/v1/auth/password)"
                    .into(),
            }
            .into());
        }
        let role =
            Role::parse(&role).ok_or_else(|| Error::corrupt(anyhow::anyhow!("bad role {role}")))?;
        let area_paths = rows.into_iter().filter_map(|r| r.6).collect();
        Ok(Principal {
            user_id: claims.sub,
            username,
            role,
            area_paths,
        })
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn require_role(&self, roles: &[Role]) -> Result<()> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "this needs the role {}",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    }

    /// Fails unless the caller may create, change, deactivate or reset the password of a user
    /// with this role and the areas at these paths: an admin anyone; a supervisor canvassers
    /// all of whose areas (one at least) lie within their own (docs/SECURITY.md).
    pub fn require_manages(
        &self,
        role: Role,
        paths: &[String],
    ) -> std::result::Result<(), crate::domain::Error> {
        if self.is_admin() {
            return Ok(());
        }
        let forbidden = |code, detail: &str| crate::domain::Error::Forbidden {
            code,
            detail: detail.into(),
        };
        if self.role != Role::Supervisor || role != Role::Canvasser {
            return Err(forbidden(
                "admins_only",
                "only admins make and manage supervisors and admins",
            ));
        }
        if paths.is_empty() {
            return Err(forbidden(
                "no_area",
                "a canvasser you manage needs one of your areas at least",
            ));
        }
        match paths.iter().all(|p| self.covers(p)) {
            true => Ok(()),
            false => Err(crate::domain::Error::OutOfScope),
        }
    }

    /// Whether the area with this path lies inside the caller's areas.
    pub fn covers(&self, path: &str) -> bool {
        self.is_admin() || self.area_paths.iter().any(|p| area::in_subtree(path, p))
    }

    /// Path prefixes that bound what the caller sees; `None` means everything (admin).
    pub fn prefixes(&self) -> Option<&[String]> {
        (!self.is_admin()).then_some(self.area_paths.as_slice())
    }

    /// The writer name of online edits in field versions.
    pub fn author(&self) -> String {
        format!("user:{}", self.user_id)
    }

    /// Fails unless the area exists and is inside the caller's areas; returns its path.
    pub fn require_area(&self, conn: &mut Conn<'_>, area: AreaId) -> Result<String> {
        let path = with_conn!(conn, |c| areas::table
            .find(area)
            .select(areas::path)
            .first::<String>(c)
            .optional())?
        .ok_or_else(|| Error::not_found("area"))?;
        self.require_covers(&path)?;
        Ok(path)
    }

    /// Fails unless the area with this path lies inside the caller's areas.
    pub fn require_covers(&self, path: &str) -> Result<()> {
        if self.covers(path) {
            Ok(())
        } else {
            Err(Error::out_of_scope())
        }
    }
}

pub fn assigned_paths(conn: &mut Conn<'_>, user: UserId) -> Result<Vec<String>> {
    Ok(with_conn!(conn, |c| user_areas::table
        .inner_join(areas::table)
        .filter(user_areas::user_id.eq(user))
        .select(areas::path)
        .order(areas::path)
        .load::<String>(c))?)
}

/// Ids of all areas under the given path prefixes, in one statement.
pub fn area_ids_under(conn: &mut Conn<'_>, prefixes: &[String]) -> Result<Vec<AreaId>> {
    if prefixes.is_empty() {
        return Ok(Vec::new());
    }
    let sqlite = conn.backend() == crate::db::Backend::Sqlite;
    let mut ids = with_conn!(conn, |c: DB| {
        let mut q = areas::table.select(areas::id).into_boxed::<DB>();
        for p in prefixes {
            q = if sqlite {
                q.or_filter(
                    areas::path
                        .ge(p.clone())
                        .and(areas::path.lt(subtree_end(p))),
                )
            } else {
                q.or_filter(areas::path.like(area::subtree_pattern(p)))
            };
        }
        q.load::<AreaId>(c)
    })?;
    ids.sort();
    Ok(ids)
}

/// The first path after the subtree of the area with path `root` (which ends with '/'):
/// the subtree is the byte range [root, subtree_end(root)). SQLite uses no index for LIKE on
/// a column of the default collation, but does for a range; PostgreSQL compares text by its
/// collation, not byte by byte, and keeps LIKE, whose prefix its `text_pattern_ops` indexes
/// serve.
fn subtree_end(root: &str) -> String {
    format!("{}0", &root[..root.len() - 1])
}

/// Paths of retired units that the caller may read on earlier maps: those whose every
/// successor lies in the caller's areas (an old commune merged whole into theirs, an old
/// province that became theirs). None for an admin, who reads everything.
pub fn history_prefixes(conn: &mut Conn<'_>, who: &Principal) -> Result<Option<Vec<String>>> {
    use crate::db::schema::area_links;
    let Some(prefixes) = who.prefixes() else {
        return Ok(None);
    };
    let mut from: Vec<AreaId> = Vec::new();
    for p in prefixes {
        let pattern = area::subtree_pattern(p);
        from.extend(with_conn!(conn, |c| area_links::table
            .inner_join(areas::table.on(areas::id.eq(area_links::to_id)))
            .filter(areas::path.like(&pattern))
            .select(area_links::from_id)
            .load::<AreaId>(c))?);
    }
    from.sort();
    from.dedup();
    let mut out = Vec::new();
    for chunk in from.chunks(1000) {
        let links: Vec<(AreaId, String)> = with_conn!(conn, |c| area_links::table
            .inner_join(areas::table.on(areas::id.eq(area_links::to_id)))
            .filter(area_links::from_id.eq_any(chunk))
            .select((area_links::from_id, areas::path))
            .load(c))?;
        let mine: Vec<AreaId> = chunk
            .iter()
            .filter(|f| {
                links
                    .iter()
                    .filter(|(id, _)| id == *f)
                    .all(|(_, to)| who.covers(to))
            })
            .copied()
            .collect();
        out.extend(with_conn!(conn, |c| areas::table
            .filter(areas::id.eq_any(&mine))
            .select(areas::path)
            .load::<String>(c))?);
    }
    out.sort();
    Ok(Some(out))
}

/// Whether the caller may read the area at `path` on an earlier map: it is in their areas,
/// or under a retired area whose every successor is (`history_prefixes`).
pub fn covers_history(conn: &mut Conn<'_>, who: &Principal, path: &str) -> Result<bool> {
    if who.covers(path) {
        return Ok(true);
    }
    Ok(history_prefixes(conn, who)?.is_none_or(|h| h.iter().any(|p| area::in_subtree(path, p))))
}

/// The last move of a village into or out of the caller's areas (none for an admin, whose
/// areas are the whole tree): part of a device's scope, so that such a move starts its
/// devices over.
pub fn last_move(conn: &mut Conn<'_>, who: &Principal) -> Result<Option<Time>> {
    use crate::db::schema::area_moves;
    let Some(prefixes) = who.prefixes().filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let sqlite = conn.backend() == crate::db::Backend::Sqlite;
    Ok(with_conn!(conn, |c: DB| {
        let mut q = area_moves::table
            .select(area_moves::moved_at)
            .into_boxed::<DB>();
        for p in prefixes {
            q = if sqlite {
                let end = subtree_end(p);
                q.or_filter(
                    (area_moves::from_path
                        .ge(p.clone())
                        .and(area_moves::from_path.lt(end.clone())))
                    .or(area_moves::to_path
                        .ge(p.clone())
                        .and(area_moves::to_path.lt(end))),
                )
            } else {
                let pattern = area::subtree_pattern(p);
                q.or_filter(
                    area_moves::from_path
                        .like(pattern.clone())
                        .or(area_moves::to_path.like(pattern)),
                )
            };
        }
        q.order(area_moves::moved_at.desc()).first(c).optional()
    })?)
}
