//! Conflict resolution: a supervisor keeps the current value, takes the losing one, or enters
//! a value. The resolution is written as a new version that syncs out like any edit.

use super::{self as write, Context, Result, Write};
use crate::db::Conn;
use crate::domain::fields::{Mode, Patch};
use crate::domain::household::records::{ADOPTION, HOUSEHOLD, MEMBER};
use crate::domain::household::{ConflictStatus, Precondition, Record, Resolution};
use crate::domain::{self, CampaignId, ConflictId, MemberId};
use crate::store::conflicts::{self, Conflict};
use crate::store::error as store;
use crate::store::households as hh;
use crate::store::scope::Principal;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// What a supervisor does with a conflict: the resolutions a person may choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Keep,
    TakeOther,
    Set,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match Resolution::parse(s)? {
            Resolution::Keep => Some(Action::Keep),
            Resolution::TakeOther => Some(Action::TakeOther),
            Resolution::Set => Some(Action::Set),
            Resolution::Superseded => None,
        }
    }

    fn resolution(self) -> Resolution {
        match self {
            Action::Keep => Resolution::Keep,
            Action::TakeOther => Resolution::TakeOther,
            Action::Set => Resolution::Set,
        }
    }
}

/// Adds what a review shows of a conflict: the household, the field's value now and the tag
/// of that state.
pub fn review(conn: &mut Conn<'_>, who: &Principal, c: Conflict) -> Result<Conflict> {
    Reviews::default().review(conn, who, c)
}

/// Reviews of many conflicts (a page of the list): each household and each writer's name is
/// read once for all of them.
#[derive(Default)]
pub struct Reviews {
    /// A household's head name and address, if the caller may see it.
    households: HashMap<crate::domain::HouseholdId, Option<(String, String)>>,
    names: HashMap<String, Option<String>>,
}

impl Reviews {
    pub fn review(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        mut c: Conflict,
    ) -> Result<Conflict> {
        let household = match self.households.get(&c.household_id) {
            Some(h) => h.clone(),
            None => {
                let h = hh::get_household(conn, who, c.household_id)
                    .ok()
                    .map(|h| (h.head_name, h.address));
                self.households.insert(c.household_id, h.clone());
                h
            }
        };
        (c.household_head, c.household_address) = household.unzip();
        if c.status == ConflictStatus::Open && c.field != "*" {
            let row = conflicts::get(conn, who, c.id)?;
            c.current_value = Some(current_value(conn, who, &row)?);
        }
        c.lost_by_name = match self.names.get(&c.lost_by) {
            Some(n) => n.clone(),
            None => {
                let n = writer_name(conn, &c.lost_by)?;
                self.names.insert(c.lost_by.clone(), n.clone());
                n
            }
        };
        c.etag = Some(tag(&c));
        Ok(c)
    }
}

/// The username behind a writer of a field version: a device's owner, or an online editor
/// (`user:<id>`).
fn writer_name(conn: &mut Conn<'_>, writer: &str) -> Result<Option<String>> {
    let user = match writer.strip_prefix("user:") {
        Some(id) => uuid::Uuid::parse_str(id).ok().map(crate::domain::UserId),
        None => match uuid::Uuid::parse_str(writer) {
            Ok(id) => crate::store::devices::get(conn, crate::domain::DeviceId(id))?.map(|d| d.0),
            Err(_) => None,
        },
    };
    Ok(match user {
        Some(id) => crate::store::users::row(conn, id).ok().map(|u| u.username),
        None => None,
    })
}

/// The tag of what a review saw: the conflict's status and the field's value now.
fn tag(c: &Conflict) -> String {
    use sha2::{Digest, Sha256};
    let seen = serde_json::json!([c.status, c.resolution, c.current_value]);
    let digest = Sha256::digest(seen.to_string().as_bytes());
    format!("\"{}\"", hex::encode(&digest[..8]))
}

/// Fails with `Changed` (the conflict as it is now) unless `seen` is the tag of its state.
pub fn require_unchanged(
    conn: &mut Conn<'_>,
    who: &Principal,
    id: ConflictId,
    seen: &str,
) -> std::result::Result<(), Changed> {
    let now = conflicts::get(conn, who, id)
        .map_err(|e| Changed::Failed(e.into()))
        .and_then(|row| review(conn, who, row.into()).map_err(Changed::Failed))?;
    match now.etag.as_deref() == Some(seen.trim()) {
        true => Ok(()),
        false => Err(Changed::Now(Box::new(now))),
    }
}

/// Why a resolution with `If-Match` did not go on.
pub enum Changed {
    /// The conflict or its field changed since the review read it: this is it now.
    Now(Box<Conflict>),
    Failed(write::Error),
}

pub fn resolve(
    conn: &mut Conn<'_>,
    who: &Principal,
    id: ConflictId,
    action: Action,
    value: Option<Value>,
) -> Result<Conflict> {
    let c = conflicts::get(conn, who, id)?;
    if c.status != ConflictStatus::Open {
        return Err(domain::Error::Conflict {
            code: "already_resolved",
            detail: "this conflict is already resolved".into(),
        }
        .into());
    }
    if c.field == "*" {
        // An edit of a deleted record: the deletion stands.
        if action != Action::Keep {
            return Err(domain::Error::invalid(
                "action",
                "choice",
                "an edit of a deleted record can only be dismissed (keep)",
            )
            .into());
        }
        return Ok(conflicts::mark_resolved(
            conn,
            id,
            Resolution::Keep,
            &Value::Null,
            who.user_id,
        )?);
    }
    let current = current_value(conn, who, &c)?;
    let chosen = match action {
        Action::Keep => current,
        Action::TakeOther => serde_json::from_str(&c.lost_value).unwrap_or(Value::Null),
        Action::Set => value
            .ok_or_else(|| domain::Error::invalid("value", "required", "`set` needs a value"))?,
    };
    let mut data = Map::new();
    data.insert(c.field.clone(), chosen.clone());
    let bad = |e: Vec<crate::domain::fields::FieldError>| {
        domain::Error::Invalid(
            e.into_iter()
                .map(|mut f| {
                    f.field = "value".into();
                    f
                })
                .collect(),
        )
    };
    let (entity, mode) = match c.entity {
        Record::Household => (&HOUSEHOLD, Mode::Update),
        Record::Member => (&MEMBER, Mode::Update),
        Record::Adoption => (&ADOPTION, Mode::Create),
        Record::Visit => {
            return Err(store::Error::corrupt(anyhow::anyhow!("a conflict on a visit")).into());
        }
    };
    let p = Patch::parse_map(entity, &data, &[], mode).map_err(bad)?;
    let member = MemberId(c.entity_id.0);
    let write = match c.entity {
        Record::Household => Write::UpdateHousehold(c.household_id, &p),
        Record::Member => Write::UpdateMember(member, &p),
        _ => {
            let campaign: CampaignId = c.campaign_id.ok_or_else(|| {
                store::Error::corrupt(anyhow::anyhow!("adoption conflict without campaign"))
            })?;
            Write::SetAdoption(member, campaign, &p)
        }
    };
    // Marked first: the write then closes the other open conflicts of the field, which it
    // makes moot.
    let resolved = conflicts::mark_resolved(conn, id, action.resolution(), &chosen, who.user_id)?;
    write::one(
        conn,
        who,
        &Context::online(who, Precondition::Resolution),
        write,
    )?;
    Ok(resolved)
}

fn current_value(
    conn: &mut Conn<'_>,
    who: &Principal,
    c: &conflicts::ConflictRow,
) -> Result<Value> {
    let state = match c.entity {
        Record::Household => serde_json::to_value(hh::get_household(conn, who, c.household_id)?),
        Record::Member => serde_json::to_value(hh::get_member(conn, who, MemberId(c.entity_id.0))?),
        _ => {
            let campaign = c.campaign_id.unwrap_or(CampaignId(uuid::Uuid::nil()));
            serde_json::to_value(hh::get_adoption(conn, MemberId(c.entity_id.0), campaign)?)
        }
    }
    .map_err(store::Error::corrupt)?;
    Ok(state.get(&c.field).cloned().unwrap_or(Value::Null))
}
