//! Conflict resolution: a supervisor keeps the current value, takes the losing one, or enters
//! a value. The resolution is written as a new version that syncs out like any edit.

use crate::db::Conn;
use crate::domain::fields::{Mode, Patch, ADOPTION, HOUSEHOLD, MEMBER};
use crate::domain::hlc::Hlc;
use crate::domain::merge::Writer;
use crate::domain::{CampaignId, ConflictId, MemberId};
use crate::error::{ApiError, ApiResult};
use crate::store::conflicts::{self, Conflict};
use crate::store::households::{self as hh, AdoptionPrecondition};
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
        return conflicts::mark_resolved(conn, id, "keep", &Value::Null, who.user_id);
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
    let version = hh::get_household(conn, who, c.household_id)?.version;
    let w = Writer {
        by: who.writer(),
        hlc: Hlc::at(chrono::Utc::now()),
        base_version: i64::MAX,
    };
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
    match c.entity.as_str() {
        "household" => {
            let p = Patch::parse_map(&HOUSEHOLD, &data, &[], Mode::Update).map_err(bad)?;
            hh::update_household(conn, who, &w, c.household_id, &p, Some(version))?;
        }
        "member" => {
            let p = Patch::parse_map(&MEMBER, &data, &[], Mode::Update).map_err(bad)?;
            hh::update_member(conn, who, &w, MemberId(c.entity_id.0), &p, None)?;
        }
        _ => {
            let p = Patch::parse_map(&ADOPTION, &data, &[], Mode::Create).map_err(bad)?;
            let campaign: CampaignId = c.campaign_id.ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("adoption conflict without campaign"))
            })?;
            hh::set_adoption(
                conn,
                who,
                &w,
                MemberId(c.entity_id.0),
                campaign,
                &p,
                AdoptionPrecondition::Merge,
            )?;
        }
    }
    conflicts::mark_resolved(conn, id, action.as_str(), &chosen, who.user_id)
}

fn current_value(
    conn: &mut Conn<'_>,
    who: &Principal,
    c: &conflicts::ConflictRow,
) -> ApiResult<Value> {
    let state = match c.entity.as_str() {
        "household" => serde_json::to_value(hh::get_household(conn, who, c.household_id)?),
        "member" => serde_json::to_value(hh::get_member(conn, who, MemberId(c.entity_id.0))?),
        _ => {
            let campaign = c.campaign_id.unwrap_or(CampaignId(uuid::Uuid::nil()));
            serde_json::to_value(hh::get_adoption(conn, MemberId(c.entity_id.0), campaign)?)
        }
    }
    .map_err(ApiError::internal)?;
    Ok(state.get(&c.field).cloned().unwrap_or(Value::Null))
}
