//! What applying a conversion table did, or would do: the report that the dry run prints,
//! the run keeps, and `GET /areas/reorganizations` answers.

use crate::domain::{AreaId, CampaignId, Time, UserId};
use crate::store::areas::AreaRef;
use chrono::NaiveDate;
use serde::Serialize;
use uuid::Uuid;

/// What applying a table did, or would do.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Report {
    pub effective: Option<NaiveDate>,
    pub dry_run: bool,
    /// Whether this run changed the database: false for a dry run and for a table that was
    /// already applied.
    pub changed: bool,
    /// When the same table was applied before (then nothing else is filled in).
    pub already_applied_at: Option<Time>,
    pub reorganization_id: Option<Uuid>,
    /// Conversion rows read.
    pub rows: usize,
    pub provinces_created: usize,
    pub communes_created: usize,
    pub retired: Retired,
    /// Links from retired areas to their successors, by kind.
    pub links: LinkCounts,
    /// New communes that kept the code of an old commune which is another area (the old
    /// area keeps the code for its period).
    pub codes_reused: usize,
    pub villages_moved: usize,
    /// Villages renamed on moving because their new commune already had one of that name.
    pub villages_renamed: Vec<VillageRenamed>,
    /// Villages of split communes, waiting for a person to place them.
    pub villages_pending: usize,
    pub households_moved: i64,
    pub households_pending: i64,
    /// Assignments moved to the successor of an area that went whole.
    pub assignments_followed: usize,
    /// Assignments to retired areas with no single successor: an admin decides.
    pub assignments_to_decide: Vec<AssignmentToDecide>,
    /// Targets set on retired areas: the new areas' supervisors set them again.
    pub targets_to_set: Vec<TargetToSet>,
    /// Rows whose old code names no area of the current map (left out of the links).
    pub unmatched: Vec<Unmatched>,
    /// Rows naming an old area with no code (left out of the links).
    pub without_code: Vec<Unmatched>,
    /// Communes of the retired provinces that no row names (retired with no successor;
    /// their villages wait, with the new communes of their district as candidates).
    pub not_in_table: Vec<AreaRef>,
    /// Rows spelling a new commune's name another way than its first row (only the place of
    /// a tone mark or the like): the first spelling is kept.
    pub name_variants: Vec<NameVariant>,
    /// Rows whose old province cell disagrees with the tree (the tree is followed).
    pub province_mismatches: Vec<ProvinceMismatch>,
    /// Provinces of the current map that the table does not touch.
    pub provinces_kept: Vec<AreaRef>,
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Retired {
    pub provinces: usize,
    pub districts: usize,
    pub communes: usize,
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct LinkCounts {
    pub whole: usize,
    pub part: usize,
    pub rename: usize,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct VillageRenamed {
    pub village_id: AreaId,
    pub from: String,
    pub to: String,
    pub commune: AreaRef,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AssignmentToDecide {
    pub user_id: UserId,
    pub username: String,
    pub area: AreaRef,
    /// The areas it went into.
    pub successors: Vec<AreaRef>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TargetToSet {
    pub campaign_id: CampaignId,
    pub campaign_name: String,
    pub area: AreaRef,
    pub kind: String,
    pub value: f64,
    pub successors: Vec<AreaRef>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Unmatched {
    pub line: u64,
    pub old_code: Option<String>,
    pub old_name: String,
    pub new_code: String,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct NameVariant {
    pub line: u64,
    pub code: String,
    /// The spelling of this row.
    pub name: String,
    /// The spelling kept, and the row it comes from.
    pub kept: String,
    pub kept_line: u64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ProvinceMismatch {
    pub line: u64,
    /// The old province as the row writes it.
    pub cell: String,
    /// The province the old area is in.
    pub tree: AreaRef,
}
