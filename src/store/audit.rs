//! The audit trail: who did what, when, from where. Entries are only ever added (the
//! database refuses to change or delete one); admins read them all, supervisors those about
//! their areas. An entry names records by id and filters by their parameters: no personal
//! data is copied into it (a search text is recorded as searched, not its words).

use super::error::Result;
use super::PageReq;
use crate::db::schema::audit_log;
use crate::db::Conn;
use crate::domain::{AreaId, Time, UserId};
use crate::with_conn;
use diesel::prelude::*;
use serde::Serialize;

/// Who acted, and from where: the same for every entry of a request.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub id: Option<UserId>,
    /// The username (for a failed login, the one given), or `cli` for the command line.
    pub name: String,
    pub address: Option<String>,
    pub request_id: Option<String>,
}

impl Actor {
    pub fn command_line() -> Actor {
        Actor {
            name: "cli".into(),
            ..Actor::default()
        }
    }
}

/// What is recorded: an action about a subject, maybe in an area, with details.
#[derive(Debug, Clone)]
pub struct Action {
    /// e.g. `login`, `export`, `user_changed` (docs/SECURITY.md lists them).
    pub action: &'static str,
    /// What the action was about: `user/<id>`, an export's path, `conflict/<id>` …
    pub subject: String,
    /// The area and its path, for supervisors' reads.
    pub area: Option<(AreaId, String)>,
    pub detail: serde_json::Value,
}

impl Action {
    pub fn new(action: &'static str, subject: impl Into<String>) -> Action {
        Action {
            action,
            subject: subject.into(),
            area: None,
            detail: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn in_area(self, id: AreaId, path: &str) -> Action {
        Action {
            area: Some((id, path.to_owned())),
            ..self
        }
    }

    pub fn with(self, detail: serde_json::Value) -> Action {
        Action { detail, ..self }
    }
}

/// An entry as read.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = audit_log)]
pub struct Entry {
    pub id: i64,
    pub at: Time,
    pub action: String,
    /// Absent for a failed login and the command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<UserId>,
    pub actor: String,
    /// The area the action was about; absent when it was about none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_id: Option<AreaId>,
    #[serde(skip)]
    pub area_path: Option<String>,
    pub subject: String,
    /// JSON text: the action's details.
    pub detail: String,
    pub address: Option<String>,
    pub request_id: Option<String>,
}

/// Adds an entry, in the caller's transaction: recorded if and only if the action is.
pub fn record(conn: &mut Conn<'_>, who: &Actor, what: &Action) -> Result<()> {
    let (area_id, area_path) = match &what.area {
        Some((id, path)) => (Some(*id), Some(path.clone())),
        None => (None, None),
    };
    let row = (
        audit_log::at.eq(Time::now()),
        audit_log::action.eq(what.action),
        audit_log::actor_id.eq(who.id),
        audit_log::actor.eq(&who.name),
        audit_log::area_id.eq(area_id),
        audit_log::area_path.eq(area_path),
        audit_log::subject.eq(&what.subject),
        audit_log::detail.eq(what.detail.to_string()),
        audit_log::address.eq(&who.address),
        audit_log::request_id.eq(&who.request_id),
    );
    with_conn!(conn, |c| diesel::insert_into(audit_log::table)
        .values(row.clone())
        .execute(c))?;
    Ok(())
}

/// Which entries to read.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub from: Option<Time>,
    pub to: Option<Time>,
    /// Only entries about areas under these paths (a supervisor's); `None`: all (an admin).
    pub within: Option<Vec<String>>,
}

/// A page of entries, newest first; with the total when asked (else 0).
pub fn list(
    conn: &mut Conn<'_>,
    f: &Filter,
    page: PageReq,
    with_total: bool,
) -> Result<(Vec<Entry>, i64)> {
    let run = |c: &mut Conn<'_>, count: bool| -> Result<(Vec<Entry>, i64)> {
        Ok(with_conn!(c, |c: DB| {
            let mut q = audit_log::table.into_boxed::<DB>();
            if let Some(a) = &f.action {
                q = q.filter(audit_log::action.eq(a.clone()));
            }
            if let Some(a) = &f.actor {
                q = q.filter(audit_log::actor.eq(a.clone()));
            }
            if let Some(t) = f.from {
                q = q.filter(audit_log::at.ge(t));
            }
            if let Some(t) = f.to {
                q = q.filter(audit_log::at.lt(t));
            }
            if let Some(prefixes) = &f.within {
                // No area: not about the supervisor's areas.
                q = q.filter(audit_log::area_path.is_not_null());
                let mut any: Box<
                    dyn BoxableExpression<audit_log::table, DB, SqlType = diesel::sql_types::Bool>,
                > = Box::new(diesel::dsl::sql::<diesel::sql_types::Bool>("1 = 0"));
                for p in prefixes {
                    let pattern = crate::domain::area::subtree_pattern(p);
                    any = Box::new(any.or(audit_log::area_path.assume_not_null().like(pattern)));
                }
                q = q.filter(any);
            }
            if count {
                q.count().get_result(c).map(|n| (Vec::new(), n))
            } else {
                q.select(Entry::as_select())
                    .order((audit_log::at.desc(), audit_log::id.desc()))
                    .limit(page.per_page)
                    .offset(page.offset())
                    .load(c)
                    .map(|rows| (rows, 0))
            }
        })?)
    };
    let (rows, total) = super::page_and_total(conn, with_total, run)?;
    Ok((rows, total.unwrap_or(0)))
}
