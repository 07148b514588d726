//! The records of a household unit and its visits, each field declared once here with its
//! Rust type (`record_fields!` lists those an update merges). The diesel derives only name
//! the table; `store` reads and writes the rows.

use super::rules::{self, record_fields, NewRecord, Searched};
use super::{AdoptionStatus, Outcome, Priority, Sex, Smartphone};
use crate::domain::{AreaId, CampaignId, HouseholdId, MemberId, Time, UserId, VisitId};
use diesel::prelude::*;
use serde::Serialize;

#[derive(
    Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize, utoipa::ToSchema,
)]
#[diesel(table_name = crate::db::schema::households, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct Household {
    pub id: HouseholdId,
    /// The village the household lives in.
    // Not in the changeset: SQLite would rewrite its index entry at every update; a move sets
    // it on its own.
    #[diesel(skip_update)]
    pub area_id: AreaId,
    pub address: String,
    pub head_name: String,
    pub phone: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub notes: String,
    /// Version of the household unit (household, members, adoptions); the ETag.
    pub version: i64,
    #[serde(skip)]
    pub field_meta: String,
    #[serde(skip)]
    pub search_key: String,
    #[diesel(skip_update)]
    pub created_by: UserId,
    #[diesel(skip_update)]
    pub created_at: Time,
    pub updated_at: Time,
    pub deleted_at: Option<Time>,
}

#[derive(
    Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize, utoipa::ToSchema,
)]
#[diesel(table_name = crate::db::schema::members, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct Member {
    pub id: MemberId,
    // A member never changes household.
    #[diesel(skip_update)]
    pub household_id: HouseholdId,
    pub full_name: String,
    pub birth_year: Option<i32>,
    pub sex: Option<Sex>,
    pub phone: Option<String>,
    pub smartphone: Smartphone,
    pub priority: Priority,
    pub notes: String,
    /// Unit version of this member's last write; the ETag.
    pub version: i64,
    #[serde(skip)]
    pub field_meta: String,
    #[serde(skip)]
    pub search_key: String,
    #[diesel(skip_update)]
    pub created_at: Time,
    pub updated_at: Time,
    pub deleted_at: Option<Time>,
}

#[derive(
    Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize, utoipa::ToSchema,
)]
#[diesel(table_name = crate::db::schema::adoptions, primary_key(member_id, campaign_id), treat_none_as_null = true)]
pub struct Adoption {
    pub member_id: MemberId,
    pub campaign_id: CampaignId,
    #[diesel(skip_update)]
    pub household_id: HouseholdId,
    pub status: AdoptionStatus,
    pub recorded_at: Time,
    pub recorded_by: UserId,
    /// Unit version of this adoption's last write; the ETag.
    pub version: i64,
    #[serde(skip)]
    pub field_meta: String,
}

record_fields!(Household => HouseholdFields {
    ;
    area_id: AreaId,
    address: String,
    head_name: String,
    phone: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    notes: String,
});
// A member's household is immutable.
record_fields!(Member => MemberFields {
    household_id: HouseholdId;
    full_name: String,
    birth_year: Option<i32>,
    sex: Option<Sex>,
    phone: Option<String>,
    smartphone: Smartphone,
    priority: Priority,
    notes: String,
});

impl Searched for HouseholdFields {
    const NAMES: &'static [&'static str] = &["head_name", "address"];

    fn search_key(&self) -> String {
        rules::household_search_key(&self.head_name, &self.address)
    }
}

impl Searched for MemberFields {
    const NAMES: &'static [&'static str] = &["full_name"];

    fn search_key(&self) -> String {
        rules::member_search_key(&self.full_name)
    }
}

pub type NewHousehold = NewRecord<HouseholdFields>;
pub type NewMember = NewRecord<MemberFields>;

/// A visit's values, as its create names them.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct VisitFields {
    pub household_id: HouseholdId,
    pub campaign_id: CampaignId,
    pub visited_at: Time,
    pub outcome: Outcome,
    pub notes: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

#[derive(
    Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, utoipa::ToSchema,
)]
#[diesel(table_name = crate::db::schema::visits, treat_none_as_default_value = false)]
pub struct Visit {
    pub id: VisitId,
    pub household_id: HouseholdId,
    pub campaign_id: CampaignId,
    pub canvasser_id: UserId,
    pub visited_at: Time,
    pub outcome: Outcome,
    pub notes: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub created_at: Time,
}
