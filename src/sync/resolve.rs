//! Conflict resolution: a supervisor keeps the current value, takes the losing one, or enters
//! a value. The resolution is written as a new version that syncs out like any edit.

use super::write::{self, Author, Write};
use crate::db::Conn;
use crate::domain::fields::{Mode, Patch};
use crate::domain::household::records::{ADOPTION, HOUSEHOLD, MEMBER};
use crate::domain::household::{Precondition, Record};
use crate::domain::{CampaignId, ConflictId, MemberId};
use crate::error::{ApiError, ApiResult};
use crate::store::conflicts::{self, Conflict};
use crate::store::households as hh;
use crate::store::scope::Principal;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Keep,
    TakeOther,
    Set,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "keep" => Some(Action::Keep),
            "take_other" => Some(Action::TakeOther),
            "set" => Some(Action::Set),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::TakeOther => "take_other",
            Action::Set => "set",
        }
    }
}

pub fn resolve(
    conn: &mut Conn<'_>,
    who: &Principal,
    id: ConflictId,
    action: Action,
    value: Option<Value>,
) -> ApiResult<Conflict> {
    let c = conflicts::get(conn, who, id)?;
    if c.status != "open" {
        return Err(ApiError::conflict(
            "already_resolved",
            "this conflict is already resolved",
        ));
    }
    if c.field == "*" {
        // An edit of a deleted record: the deletion stands.
        if action != Action::Keep {
            return Err(ApiError::invalid(
                "action",
                "choice",
                "an edit of a deleted record can only be dismissed (keep)",
            ));
        }
        return Ok(conflicts::mark_resolved(
            conn,
            id,
            "keep",
            &Value::Null,
            who.user_id,
        )?);
    }
    let current = current_value(conn, who, &c)?;
    let chosen = match action {
        Action::Keep => current,
        Action::TakeOther => serde_json::from_str(&c.lost_value).unwrap_or(Value::Null),
        Action::Set => {
            value.ok_or_else(|| ApiError::invalid("value", "required", "`set` needs a value"))?
        }
    };
    let mut data = Map::new();
    data.insert(c.field.clone(), chosen.clone());
    let bad = |e: Vec<crate::domain::fields::FieldError>| {
        ApiError::validation(
            e.into_iter()
                .map(|mut f| {
                    f.field = "value".into();
                    f
                })
                .collect(),
        )
    };
    let (entity, mode) = match Record::parse(&c.entity) {
        Some(Record::Household) => (&HOUSEHOLD, Mode::Update),
        Some(Record::Member) => (&MEMBER, Mode::Update),
        Some(Record::Adoption) => (&ADOPTION, Mode::Create),
        _ => {
            return Err(ApiError::internal(anyhow::anyhow!(
                "a conflict on `{}`",
                c.entity
            )))
        }
    };
    let p = Patch::parse_map(entity, &data, &[], mode).map_err(bad)?;
    let write = match entity.name {
        "household" => Write::UpdateHousehold(c.household_id, &p),
        "member" => Write::UpdateMember(MemberId(c.entity_id.0), &p),
        _ => {
            let campaign: CampaignId = c.campaign_id.ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("adoption conflict without campaign"))
            })?;
            Write::SetAdoption(MemberId(c.entity_id.0), campaign, &p)
        }
    };
    // Marked first: the write then closes the other open conflicts of the field, which it
    // makes moot.
    conflicts::mark_resolved(conn, id, action.as_str(), &chosen, who.user_id)?;
    write::one(
        conn,
        who,
        &Author::online(who, Precondition::Resolution),
        write,
    )?;
    Ok(conflicts::get(conn, who, id)?.into())
}

fn current_value(
    conn: &mut Conn<'_>,
    who: &Principal,
    c: &conflicts::ConflictRow,
) -> ApiResult<Value> {
    let state = match Record::parse(&c.entity) {
        Some(Record::Household) => {
            serde_json::to_value(hh::get_household(conn, who, c.household_id)?)
        }
        Some(Record::Member) => {
            serde_json::to_value(hh::get_member(conn, who, MemberId(c.entity_id.0))?)
        }
        _ => {
            let campaign = c.campaign_id.unwrap_or(CampaignId(uuid::Uuid::nil()));
            serde_json::to_value(hh::get_adoption(conn, MemberId(c.entity_id.0), campaign)?)
        }
    }
    .map_err(ApiError::internal)?;
    Ok(state.get(&c.field).cloned().unwrap_or(Value::Null))
}
