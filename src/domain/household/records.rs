//! The records of a household unit and its visits. Each field is declared once, in
//! `record_fields!`: its name, Rust type, what it accepts (the entities `HOUSEHOLD`, `MEMBER`,
//! `ADOPTION`, `VISIT` that the validator and the request schemas read) and whether an update
//! merges it (after `;`), and which server-kept fields devices receive besides (`sent with`:
//! `rules::DeviceState`, the pull's `data`). The record structs add what the server keeps (ids, versions,
//! times); their diesel derives only name the table, and `store` reads and writes the rows.

use super::rules::{self, record_fields, NewRecord, Searched};
use super::{AdoptionStatus, Outcome, Priority, Sex, Smartphone};
use crate::domain::fields::Kind;
use crate::domain::{AreaId, CampaignId, HouseholdId, MemberId, Time, UserId, VisitId};
use diesel::prelude::*;
use serde::Serialize;

const LAT: Kind = Kind::Float {
    min: -90.0,
    max: 90.0,
};
const LON: Kind = Kind::Float {
    min: -180.0,
    max: 180.0,
};
const NOTES: Kind = Kind::Text { max: 2000 };
/// An id in the commune's register (`Mã hộ`, `Mã nhân khẩu`).
const EXTERNAL_ID: Kind = Kind::Text { max: 40 };

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
    /// When its personal data was removed (`rules::anonymize_household`): a campaign's
    /// retention ran out, or the household asked to be erased.
    pub anonymized_at: Option<Time>,
    /// Its id in the commune's household register (`Mã hộ`), unique within the commune.
    pub external_id: Option<String>,
    /// The household it was merged into (it is deleted): edits still queued against it
    /// apply there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<HouseholdId>,
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
    /// When its personal data was removed (`rules::anonymize_member`).
    pub anonymized_at: Option<Time>,
    /// The first year of the decade of the birth year, kept in its place once the member is
    /// anonymized (1987 → 1980).
    pub birth_decade: Option<i32>,
    /// Their id in the commune's household register (`Mã nhân khẩu`), when it has one.
    pub external_id: Option<String>,
    /// The member, the same person, they were merged into (they are deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<MemberId>,
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

record_fields!(Household => HouseholdFields, HOUSEHOLD = "household" {
    ;
    area_id: AreaId = required(Kind::Id),
    address: String = required(Kind::Text { max: 300 }),
    head_name: String = required(Kind::Text { max: 200 }),
    phone: Option<String> = field(Kind::Phone),
    lat: Option<f64> = field(LAT),
    lon: Option<f64> = field(LON),
    notes: String = defaulted(NOTES, ""),
    external_id: Option<String> = field(EXTERNAL_ID),
} sent with [anonymized_at]);
// A member's household is immutable.
record_fields!(Member => MemberFields, MEMBER = "member" {
    household_id: HouseholdId = fixed(Kind::Id);
    full_name: String = required(Kind::Text { max: 200 }),
    birth_year: Option<i32> = field(Kind::Int { min: 1890, max: 2100 }),
    sex: Option<Sex> = field(Kind::Choice(Sex::NAMES)),
    phone: Option<String> = field(Kind::Phone),
    smartphone: Smartphone = defaulted(Kind::Choice(Smartphone::NAMES), "unknown"),
    priority: Priority = defaulted(Kind::Choice(Priority::NAMES), "none"),
    notes: String = defaulted(NOTES, ""),
    external_id: Option<String> = field(EXTERNAL_ID),
} sent with [birth_decade, anonymized_at]);
// Set through `rules::set_status`, which merges the status.
record_fields!(Adoption => AdoptionFields, ADOPTION = "adoption" {
    status: AdoptionStatus = required(Kind::Choice(AdoptionStatus::NAMES));
} sent with [member_id, campaign_id]);
// Visits are facts: nothing of them merges.
record_fields!(Visit => VisitFields, VISIT = "visit" {
    household_id: HouseholdId = fixed(Kind::Id),
    campaign_id: CampaignId = fixed(Kind::Id),
    visited_at: Time = fixed(Kind::Time),
    outcome: Outcome = fixed(Kind::Choice(Outcome::NAMES)),
    notes: String = defaulted(NOTES, ""),
    lat: Option<f64> = field(LAT),
    lon: Option<f64> = field(LON);
} sent with [canvasser_id]);

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
