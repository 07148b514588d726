//! The unit of work behind every write to households, members, adoptions and visits.
//!
//! A `Work` loads the rows a batch of operations touches (in a few queries, locking existing
//! households in id order on PostgreSQL), applies the operations in memory with the domain
//! rules (validation, scope, versions, merge), and writes everything back with multi-row
//! statements in `flush`. An operation that fails is undone in memory alone
//! (`begin`/`rollback`), so a batch needs no savepoints. Online edits use the same `Work` with
//! one operation.

use super::changes::Change;
use super::households::{
    written_values, Adoption, AdoptionPrecondition, Household, Member, Visit, Written,
};
use super::scope::Principal;
use crate::db::any::any_of;
use crate::db::prepared::{prepared_row_update, prepared_update};
use crate::db::schema::{adoptions, areas, campaigns, changes, households, members, visits};
use crate::db::Conn;
use crate::domain::fields::Patch;
use crate::domain::merge::{self, FieldMetas, Writer};
use crate::domain::{text, AreaId, CampaignId, EntityId, HouseholdId, MemberId, Time, VisitId};
use crate::error::{ApiError, ApiResult, Kind};
use crate::{insert_rows, with_conn};
use diesel::prelude::*;
use diesel::upsert::excluded;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};

/// A household with its village's path, as loaded or written.
#[derive(Debug, Clone)]
struct Unit {
    row: Household,
    path: String,
}

/// A new household's or member's values, worked out from its create patch alone: a pushed
/// batch makes them before it waits for the SQLite writer, which then adds only what needs
/// the database (the scope, the version, the times).
#[derive(Debug, Clone)]
pub struct NewRecord<F> {
    fields: F,
    search_key: String,
    metas: merge::CreateMetas,
    /// The written values (all the patch's fields).
    values: Map<String, Value>,
}

pub type NewHousehold = NewRecord<HouseholdFields>;
pub type NewMember = NewRecord<MemberFields>;

impl<F: DeserializeOwned + Searched> NewRecord<F> {
    pub fn new(patch: &Patch) -> ApiResult<NewRecord<F>> {
        let fields: F = from_map(patch.fields().clone())?;
        Ok(NewRecord {
            search_key: fields.search_key(),
            fields,
            metas: merge::CreateMetas::new(patch.fields().keys()),
            values: patch.fields().clone(),
        })
    }
}

/// The fields a record's search key is made of.
pub trait Searched {
    /// Their names: a write that names none of them leaves the key as it was.
    const NAMES: &'static [&'static str];

    fn search_key(&self) -> String;

    /// Whether `patch` writes any of them.
    fn renames(patch: &Patch) -> bool {
        Self::NAMES.iter().any(|n| patch.get(n).is_some())
    }
}

impl Searched for HouseholdFields {
    const NAMES: &'static [&'static str] = &["head_name", "address"];

    fn search_key(&self) -> String {
        household_search_key(&self.head_name, &self.address)
    }
}

fn household_search_key(head_name: &str, address: &str) -> String {
    text::search_key(&format!("{head_name} {address}"))
}

fn member_search_key(full_name: &str) -> String {
    text::search_key(full_name)
}

impl Searched for MemberFields {
    const NAMES: &'static [&'static str] = &["full_name"];

    fn search_key(&self) -> String {
        member_search_key(&self.full_name)
    }
}

#[derive(Debug, Clone, Deserialize)]
struct VisitFields {
    household_id: HouseholdId,
    campaign_id: CampaignId,
    visited_at: Time,
    outcome: String,
    notes: String,
    lat: Option<f64>,
    lon: Option<f64>,
}

/// An entry as it was before an operation touched it (`None`: it was not loaded).
type Saved<K, V> = Vec<(K, Option<Option<V>>)>;

/// What one operation changed, to put back if it fails.
#[derive(Default)]
struct Undo {
    households: Saved<HouseholdId, Unit>,
    members: Saved<MemberId, Member>,
    adoptions: Saved<(MemberId, CampaignId), Adoption>,
    visits: Saved<VisitId, Visit>,
    dirty: (usize, usize, usize, usize),
    changes: usize,
}

#[derive(Default)]
pub struct Work {
    households: HashMap<HouseholdId, Option<Unit>>,
    members: HashMap<MemberId, Option<Member>>,
    adoptions: HashMap<(MemberId, CampaignId), Option<Adoption>>,
    visits: HashMap<VisitId, Option<Visit>>,
    areas: HashMap<AreaId, Option<(String, String)>>,
    campaigns: HashMap<CampaignId, bool>,
    /// Written entities, in first-write order.
    dirty_households: Vec<HouseholdId>,
    dirty_members: Vec<MemberId>,
    dirty_adoptions: Vec<(MemberId, CampaignId)>,
    new_visits: Vec<VisitId>,
    changes: Vec<Change>,
    undo: Option<Undo>,
    /// The rows known to be in the database (loaded, or inserted by `flush`).
    stored: Stored,
}

#[derive(Default)]
struct Stored {
    /// With the village each is stored in.
    households: HashMap<HouseholdId, AreaId>,
    members: HashSet<MemberId>,
    adoptions: HashSet<(MemberId, CampaignId)>,
}

fn to_map<T: Serialize>(v: &T) -> ApiResult<Map<String, Value>> {
    match serde_json::to_value(v).map_err(ApiError::internal)? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::internal(anyhow::anyhow!(
            "fields are not an object"
        ))),
    }
}

fn from_map<T: DeserializeOwned>(m: Map<String, Value>) -> ApiResult<T> {
    serde_json::from_value(Value::Object(m)).map_err(ApiError::internal)
}

/// A stored record's mergeable fields, one at a time by name: an update merges only the
/// fields its patch names, with no map of the whole record.
trait Fields {
    /// The field's value as JSON (as the patch would give it).
    fn get(&self, field: &str) -> ApiResult<Value>;
    /// Sets the field from a merged value.
    fn set(&mut self, field: &str, value: Value) -> ApiResult<()>;

    /// The current values of the fields `patch` names.
    fn state(&self, patch: &Patch) -> ApiResult<Map<String, Value>> {
        patch
            .fields()
            .keys()
            .map(|k| Ok((k.clone(), self.get(k)?)))
            .collect()
    }
}

fn no_field(field: &str) -> ApiError {
    ApiError::internal(anyhow::anyhow!("no mergeable field `{field}`"))
}

/// Defines a record's field struct (its values as a patch names them: what a create
/// writes) and the record's `Fields` (those an update may change, after `;`).
macro_rules! fields {
    ($record:ty => $fields:ident {
        $($fixed:ident: $ft:ty),* ;
        $($name:ident: $t:ty),* $(,)?
    }) => {
        #[derive(Debug, Clone, Serialize, Deserialize)]
        pub struct $fields {
            $($fixed: $ft,)*
            $($name: $t,)*
        }

        impl Fields for $record {
            fn get(&self, field: &str) -> ApiResult<Value> {
                match field {
                    $(stringify!($name) => {
                        serde_json::to_value(&self.$name).map_err(ApiError::internal)
                    })*
                    other => Err(no_field(other)),
                }
            }

            fn set(&mut self, field: &str, value: Value) -> ApiResult<()> {
                match field {
                    $(stringify!($name) => {
                        self.$name = serde_json::from_value::<$t>(value).map_err(ApiError::internal)?
                    })*
                    other => return Err(no_field(other)),
                }
                Ok(())
            }
        }
    };
}

fields!(Household => HouseholdFields {
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
fields!(Member => MemberFields {
    household_id: HouseholdId;
    full_name: String,
    birth_year: Option<i32>,
    sex: Option<String>,
    phone: Option<String>,
    smartphone: String,
    priority: String,
    notes: String,
});

fn metas(json: &str) -> ApiResult<FieldMetas> {
    merge::decode(json).map_err(ApiError::internal)
}

fn version_mismatch(current: i64) -> ApiError {
    ApiError::new(
        Kind::PreconditionFailed,
        "version_mismatch",
        format!("the record changed since you read it; its version is now {current}"),
    )
}

fn deleted(what: &str) -> ApiError {
    ApiError::conflict("deleted", format!("this {what} was deleted"))
}

fn change(
    entity: &'static str,
    id: EntityId,
    h: HouseholdId,
    area: AreaId,
    op: &'static str,
    version: i64,
) -> Change {
    Change {
        entity,
        entity_id: id,
        household_id: Some(h),
        area_id: Some(area),
        op,
        version,
    }
}

impl Work {
    pub fn new() -> Work {
        Work::default()
    }

    // ---- loading -------------------------------------------------------------------------

    /// Loads (and on PostgreSQL locks, in id order) the households, members, adoptions,
    /// visits and villages that a batch names, so that applying it needs no more reads.
    pub fn preload(
        &mut self,
        conn: &mut Conn<'_>,
        household_ids: &[HouseholdId],
        member_ids: &[MemberId],
        visit_ids: &[VisitId],
        area_ids: &[AreaId],
    ) -> ApiResult<()> {
        let members: Vec<Member> = with_conn!(conn, |c| members::table
            .filter(any_of(members::id, member_ids))
            .select(Member::as_select())
            .load(c))?;
        let mut hids: BTreeSet<HouseholdId> = household_ids.iter().copied().collect();
        hids.extend(members.iter().map(|m| m.household_id));
        let hids: Vec<HouseholdId> = hids
            .into_iter()
            .filter(|h| !self.households.contains_key(h))
            .collect();
        self.load_households(conn, &hids)?;
        for id in member_ids {
            self.members.entry(*id).or_insert(None);
        }
        // Only members that exist can have adoptions (a foreign key).
        let found: Vec<MemberId> = members.iter().map(|m| m.id).collect();
        for m in members {
            self.stored.members.insert(m.id);
            self.members.insert(m.id, Some(m));
        }
        let ads: Vec<Adoption> = match found.is_empty() {
            true => Vec::new(),
            false => with_conn!(conn, |c| adoptions::table
                .filter(any_of(adoptions::member_id, &found))
                .select(Adoption::as_select())
                .load(c))?,
        };
        for a in ads {
            self.stored.adoptions.insert((a.member_id, a.campaign_id));
            self.adoptions.insert((a.member_id, a.campaign_id), Some(a));
        }
        let vs: Vec<Visit> = with_conn!(conn, |c| visits::table
            .filter(any_of(visits::id, visit_ids))
            .select(Visit::as_select())
            .load(c))?;
        for id in visit_ids {
            self.visits.entry(*id).or_insert(None);
        }
        for v in vs {
            self.visits.insert(v.id, Some(v));
        }
        let found: Vec<(AreaId, String, String)> = with_conn!(conn, |c| areas::table
            .filter(any_of(areas::id, area_ids))
            .select((areas::id, areas::path, areas::level))
            .load(c))?;
        for id in area_ids {
            self.areas.entry(*id).or_insert(None);
        }
        for (id, path, level) in found {
            self.areas.insert(id, Some((path, level)));
        }
        Ok(())
    }

    fn load_households(&mut self, conn: &mut Conn<'_>, ids: &[HouseholdId]) -> ApiResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let rows: Vec<(Household, String)> = match conn {
            Conn::Pg(c) => {
                // Lock first, in id order: concurrent batches queue instead of deadlocking.
                households::table
                    .filter(any_of(households::id, ids))
                    .order(households::id)
                    .select(households::id)
                    .for_update()
                    .load::<HouseholdId>(*c)?;
                households::table
                    .inner_join(areas::table)
                    .filter(any_of(households::id, ids))
                    .select((Household::as_select(), areas::path))
                    .load(*c)?
            }
            Conn::Sqlite(c) => households::table
                .inner_join(areas::table)
                .filter(any_of(households::id, ids))
                .select((Household::as_select(), areas::path))
                .load(*c)?,
        };
        for id in ids {
            self.households.entry(*id).or_insert(None);
        }
        for (row, path) in rows {
            self.stored.households.insert(row.id, row.area_id);
            self.households.insert(row.id, Some(Unit { row, path }));
        }
        Ok(())
    }

    /// The household, loaded if need be; no copy.
    fn unit_ref(&mut self, conn: &mut Conn<'_>, id: HouseholdId) -> ApiResult<Option<&Unit>> {
        if !self.households.contains_key(&id) {
            self.load_households(conn, &[id])?;
        }
        Ok(self.households.get(&id).and_then(Option::as_ref))
    }

    fn unit(&mut self, conn: &mut Conn<'_>, id: HouseholdId) -> ApiResult<Option<Unit>> {
        Ok(self.unit_ref(conn, id)?.cloned())
    }

    fn member(&mut self, conn: &mut Conn<'_>, id: MemberId) -> ApiResult<Option<Member>> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.members.entry(id) {
            let found = e.insert(with_conn!(conn, |c| members::table
                .find(id)
                .select(Member::as_select())
                .first(c)
                .optional())?);
            if found.is_some() {
                self.stored.members.insert(id);
            }
        }
        Ok(self.members.get(&id).cloned().flatten())
    }

    fn adoption(
        &mut self,
        conn: &mut Conn<'_>,
        key: (MemberId, CampaignId),
    ) -> ApiResult<Option<Adoption>> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.adoptions.entry(key) {
            let found = e.insert(with_conn!(conn, |c| adoptions::table
                .find(key)
                .select(Adoption::as_select())
                .first(c)
                .optional())?);
            if found.is_some() {
                self.stored.adoptions.insert(key);
            }
        }
        Ok(self.adoptions.get(&key).cloned().flatten())
    }

    fn visit(&mut self, conn: &mut Conn<'_>, id: VisitId) -> ApiResult<Option<Visit>> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.visits.entry(id) {
            e.insert(with_conn!(conn, |c| visits::table
                .find(id)
                .select(Visit::as_select())
                .first(c)
                .optional())?);
        }
        Ok(self.visits.get(&id).cloned().flatten())
    }

    fn area(&mut self, conn: &mut Conn<'_>, id: AreaId) -> ApiResult<Option<(String, String)>> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.areas.entry(id) {
            e.insert(with_conn!(conn, |c| areas::table
                .find(id)
                .select((areas::path, areas::level))
                .first(c)
                .optional())?);
        }
        Ok(self.areas.get(&id).cloned().flatten())
    }

    fn campaign_exists(&mut self, conn: &mut Conn<'_>, id: CampaignId) -> ApiResult<bool> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.campaigns.entry(id) {
            let n: i64 = with_conn!(conn, |c| campaigns::table.find(id).count().get_result(c))?;
            e.insert(n > 0);
        }
        Ok(self.campaigns[&id])
    }

    /// The household of a member (deleted or not), if the member exists.
    pub fn member_household(
        &mut self,
        conn: &mut Conn<'_>,
        id: MemberId,
    ) -> ApiResult<Option<HouseholdId>> {
        Ok(self.member(conn, id)?.map(|m| m.household_id))
    }

    /// The village of a household, if it exists.
    pub fn household_area(
        &mut self,
        conn: &mut Conn<'_>,
        id: HouseholdId,
    ) -> ApiResult<Option<AreaId>> {
        Ok(self.unit_ref(conn, id)?.map(|u| u.row.area_id))
    }

    pub fn household_exists(&mut self, conn: &mut Conn<'_>, id: HouseholdId) -> ApiResult<bool> {
        Ok(self.unit_ref(conn, id)?.is_some())
    }

    /// The household if the caller may see it (deleted ones included).
    pub fn household(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        id: HouseholdId,
    ) -> ApiResult<Household> {
        let u = self
            .unit(conn, id)?
            .ok_or_else(|| ApiError::not_found("household"))?;
        who.require_covers(&u.path)?;
        Ok(u.row)
    }

    /// The member if the caller may see its household.
    pub fn member_of(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        id: MemberId,
    ) -> ApiResult<Member> {
        let m = self
            .member(conn, id)?
            .ok_or_else(|| ApiError::not_found("member"))?;
        self.household(conn, who, m.household_id)?;
        Ok(m)
    }

    /// Whether a household or member of this id is in the database (before `flush`: whether
    /// it was there before this work). Only such rows can have conflicts recorded.
    pub fn stored(&self, id: uuid::Uuid) -> bool {
        self.stored.households.contains_key(&HouseholdId(id))
            || self.stored.members.contains(&MemberId(id))
    }

    // ---- undo ------------------------------------------------------------------------------

    /// Starts an operation that `rollback` can undo.
    pub fn begin(&mut self) {
        self.undo = Some(Undo {
            dirty: (
                self.dirty_households.len(),
                self.dirty_members.len(),
                self.dirty_adoptions.len(),
                self.new_visits.len(),
            ),
            changes: self.changes.len(),
            ..Undo::default()
        });
    }

    /// Puts back what the current operation changed.
    pub fn rollback(&mut self) {
        let Some(u) = self.undo.take() else { return };
        for (id, v) in u.households.into_iter().rev() {
            restore(&mut self.households, id, v);
        }
        for (id, v) in u.members.into_iter().rev() {
            restore(&mut self.members, id, v);
        }
        for (id, v) in u.adoptions.into_iter().rev() {
            restore(&mut self.adoptions, id, v);
        }
        for (id, v) in u.visits.into_iter().rev() {
            restore(&mut self.visits, id, v);
        }
        self.dirty_households.truncate(u.dirty.0);
        self.dirty_members.truncate(u.dirty.1);
        self.dirty_adoptions.truncate(u.dirty.2);
        self.new_visits.truncate(u.dirty.3);
        self.changes.truncate(u.changes);
    }

    // Each keeps the entry it replaces (moved out, not copied) for `rollback`.

    fn put_household(&mut self, unit: Unit) {
        let id = unit.row.id;
        if !self.dirty_households.contains(&id) {
            self.dirty_households.push(id);
        }
        let old = self.households.insert(id, Some(unit));
        if let Some(u) = self.undo.as_mut() {
            u.households.push((id, old));
        }
    }

    fn put_member(&mut self, m: Member) {
        let id = m.id;
        if !self.dirty_members.contains(&id) {
            self.dirty_members.push(id);
        }
        let old = self.members.insert(id, Some(m));
        if let Some(u) = self.undo.as_mut() {
            u.members.push((id, old));
        }
    }

    fn put_adoption(&mut self, a: Adoption) {
        let key = (a.member_id, a.campaign_id);
        if !self.dirty_adoptions.contains(&key) {
            self.dirty_adoptions.push(key);
        }
        let old = self.adoptions.insert(key, Some(a));
        if let Some(u) = self.undo.as_mut() {
            u.adoptions.push((key, old));
        }
    }

    fn put_visit(&mut self, v: Visit) {
        let id = v.id;
        self.new_visits.push(id);
        let old = self.visits.insert(id, Some(v));
        if let Some(u) = self.undo.as_mut() {
            u.visits.push((id, old));
        }
    }

    // ---- rules -----------------------------------------------------------------------------

    fn require_village(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        area: AreaId,
    ) -> ApiResult<String> {
        let (path, level) = self
            .area(conn, area)?
            .ok_or_else(|| ApiError::not_found("area"))?;
        who.require_covers(&path)?;
        if level != "village" {
            return Err(ApiError::invalid(
                "area_id",
                "level",
                "households belong to a village",
            ));
        }
        Ok(path)
    }

    /// The live household the caller covers, with its next version (the unit's new version).
    fn next_version(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        id: HouseholdId,
    ) -> ApiResult<(Unit, i64)> {
        let u = self
            .unit(conn, id)?
            .ok_or_else(|| ApiError::not_found("household"))?;
        who.require_covers(&u.path)?;
        if u.row.deleted_at.is_some() {
            return Err(deleted("household"));
        }
        let v = u.row.version + 1;
        Ok((u, v))
    }

    /// Stores the unit at its new version.
    fn bump(&mut self, mut u: Unit, version: i64, now: Time) {
        u.row.version = version;
        u.row.updated_at = now;
        self.put_household(u);
    }

    fn live_member(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        id: MemberId,
    ) -> ApiResult<(Unit, Member, i64)> {
        let m = self
            .member(conn, id)?
            .ok_or_else(|| ApiError::not_found("member"))?;
        let (u, version) = self.next_version(conn, who, m.household_id)?;
        if m.deleted_at.is_some() {
            return Err(deleted("member"));
        }
        Ok((u, m, version))
    }

    // ---- writes ----------------------------------------------------------------------------

    pub fn create_household(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        w: &Writer,
        id: HouseholdId,
        new: &NewHousehold,
    ) -> ApiResult<Written> {
        let f = &new.fields;
        let path = self.require_village(conn, who, f.area_id)?;
        if self.unit(conn, id)?.is_some() {
            return Err(ApiError::conflict(
                "exists",
                "a household with this id exists",
            ));
        }
        let now = Time::now();
        let row = Household {
            id,
            area_id: f.area_id,
            search_key: new.search_key.clone(),
            address: f.address.clone(),
            head_name: f.head_name.clone(),
            phone: f.phone.clone(),
            lat: f.lat,
            lon: f.lon,
            notes: f.notes.clone(),
            version: 1,
            field_meta: new.metas.encode(&w.write(1)),
            created_by: who.user_id,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        let area = row.area_id;
        self.put_household(Unit { row, path });
        self.changes
            .push(change("household", EntityId(id.0), id, area, "upsert", 1));
        Ok(Written {
            household_id: id,
            area_id: area,
            household_version: 1,
            losses: Vec::new(),
            values: new.values.clone(),
        })
    }

    /// Applies changed fields. `expected` is the `If-Match` version of an online edit;
    /// offline edits pass `None` and are merged against `w.base_version`.
    pub fn update_household(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        w: &Writer,
        id: HouseholdId,
        patch: &Patch,
        expected: Option<i64>,
    ) -> ApiResult<Written> {
        let (mut u, version) = self.next_version(conn, who, id)?;
        if expected.is_some_and(|e| e != u.row.version) {
            return Err(version_mismatch(u.row.version));
        }
        let mut new_path = None;
        if let Some(area) = patch.get("area_id").and_then(Value::as_str) {
            let area: AreaId = area.parse().map_err(ApiError::internal)?;
            new_path = Some(self.require_village(conn, who, area)?);
        }
        let old_area = u.row.area_id;
        let mut state = u.row.state(patch)?;
        let mut m = metas(&u.row.field_meta)?;
        let losses = merge::merge(&mut state, &mut m, patch.fields(), w, version);
        // The patch's fields and no others: what was written.
        for (field, value) in &state {
            u.row.set(field, value.clone())?;
        }
        let values = state;
        if u.row.area_id != old_area {
            u.path = new_path.unwrap_or(u.path);
        }
        if HouseholdFields::renames(patch) {
            u.row.search_key = household_search_key(&u.row.head_name, &u.row.address);
        }
        u.row.field_meta = merge::encode(&m);
        let area = u.row.area_id;
        let moved = area != old_area;
        self.bump(u, version, Time::now());
        if moved {
            // Devices of the old village drop the household (and with it its members,
            // adoptions and visits); the new village's devices get the whole unit.
            self.changes.push(change(
                "household",
                EntityId(id.0),
                id,
                old_area,
                "delete",
                version,
            ));
        }
        self.changes.push(change(
            "household",
            EntityId(id.0),
            id,
            area,
            "upsert",
            version,
        ));
        if moved {
            self.rerecord_children(conn, id, area)?;
        }
        Ok(Written {
            household_id: id,
            area_id: area,
            household_version: version,
            losses,
            values,
        })
    }

    /// Logs every member, adoption and visit of a household that moved to `area`.
    fn rerecord_children(
        &mut self,
        conn: &mut Conn<'_>,
        id: HouseholdId,
        area: AreaId,
    ) -> ApiResult<()> {
        let (ms, ads, vs) = with_conn!(conn, |c| {
            let ms: Vec<MemberId> = members::table
                .filter(members::household_id.eq(id))
                .select(members::id)
                .load(c)?;
            let ads: Vec<(MemberId, CampaignId)> = adoptions::table
                .filter(adoptions::household_id.eq(id))
                .select((adoptions::member_id, adoptions::campaign_id))
                .load(c)?;
            let vs: Vec<VisitId> = visits::table
                .filter(visits::household_id.eq(id))
                .select(visits::id)
                .load(c)?;
            Ok::<_, diesel::result::Error>((ms, ads, vs))
        })?;
        // Include what this work wrote and has not flushed yet.
        let mut member_ids: BTreeSet<MemberId> = ms.into_iter().collect();
        member_ids.extend(
            self.members
                .values()
                .flatten()
                .filter(|m| m.household_id == id)
                .map(|m| m.id),
        );
        let mut adoption_keys: BTreeSet<(MemberId, CampaignId)> = ads.into_iter().collect();
        adoption_keys.extend(
            self.adoptions
                .values()
                .flatten()
                .filter(|a| a.household_id == id)
                .map(|a| (a.member_id, a.campaign_id)),
        );
        let mut visit_ids: BTreeSet<VisitId> = vs.into_iter().collect();
        visit_ids.extend(
            self.visits
                .values()
                .flatten()
                .filter(|v| v.household_id == id)
                .map(|v| v.id),
        );
        for m in member_ids {
            if let Some(m) = self.member(conn, m)? {
                let op = if m.deleted_at.is_some() {
                    "delete"
                } else {
                    "upsert"
                };
                self.changes
                    .push(change("member", EntityId(m.id.0), id, area, op, m.version));
            }
        }
        let mut seen_members = BTreeSet::new();
        for key in adoption_keys {
            if let Some(a) = self.adoption(conn, key)? {
                if seen_members.insert(a.member_id) {
                    self.changes.push(change(
                        "adoption",
                        EntityId(a.member_id.0),
                        id,
                        area,
                        "upsert",
                        a.version,
                    ));
                }
            }
        }
        for v in visit_ids {
            self.changes
                .push(change("visit", EntityId(v.0), id, area, "upsert", 1));
        }
        Ok(())
    }

    /// Soft-deletes a household; it travels to devices as a tombstone.
    pub fn delete_household(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        id: HouseholdId,
        expected: Option<i64>,
    ) -> ApiResult<Written> {
        let (mut u, version) = self.next_version(conn, who, id)?;
        if expected.is_some_and(|e| e != u.row.version) {
            return Err(version_mismatch(u.row.version));
        }
        let now = Time::now();
        u.row.deleted_at = Some(now);
        let area = u.row.area_id;
        self.bump(u, version, now);
        self.changes.push(change(
            "household",
            EntityId(id.0),
            id,
            area,
            "delete",
            version,
        ));
        Ok(Written {
            household_id: id,
            area_id: area,
            household_version: version,
            losses: Vec::new(),
            values: Map::new(),
        })
    }

    pub fn create_member(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        w: &Writer,
        id: MemberId,
        new: &NewMember,
    ) -> ApiResult<Written> {
        let f = &new.fields;
        let (u, version) = match self.next_version(conn, who, f.household_id) {
            Err(e) if e.kind == Kind::NotFound => {
                return Err(ApiError::invalid(
                    "household_id",
                    "unknown_household",
                    "no such household",
                ))
            }
            r => r?,
        };
        if self.member(conn, id)?.is_some() {
            return Err(ApiError::conflict("exists", "a member with this id exists"));
        }
        let now = Time::now();
        let (hid, area) = (u.row.id, u.row.area_id);
        self.bump(u, version, now);
        self.put_member(Member {
            id,
            household_id: hid,
            search_key: new.search_key.clone(),
            full_name: f.full_name.clone(),
            birth_year: f.birth_year,
            sex: f.sex.clone(),
            phone: f.phone.clone(),
            smartphone: f.smartphone.clone(),
            priority: f.priority.clone(),
            notes: f.notes.clone(),
            version,
            field_meta: new.metas.encode(&w.write(version)),
            created_at: now,
            updated_at: now,
            deleted_at: None,
        });
        self.changes.push(change(
            "member",
            EntityId(id.0),
            hid,
            area,
            "upsert",
            version,
        ));
        Ok(Written {
            household_id: hid,
            area_id: area,
            household_version: version,
            losses: Vec::new(),
            values: new.values.clone(),
        })
    }

    pub fn update_member(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        w: &Writer,
        id: MemberId,
        patch: &Patch,
        expected: Option<i64>,
    ) -> ApiResult<Written> {
        let (u, mut cur, version) = self.live_member(conn, who, id)?;
        if expected.is_some_and(|e| e != cur.version) {
            return Err(version_mismatch(cur.version));
        }
        let mut state = cur.state(patch)?;
        let mut m = metas(&cur.field_meta)?;
        let losses = merge::merge(&mut state, &mut m, patch.fields(), w, version);
        // The patch's fields and no others: what was written.
        for (field, value) in &state {
            cur.set(field, value.clone())?;
        }
        let values = state;
        let now = Time::now();
        if MemberFields::renames(patch) {
            cur.search_key = member_search_key(&cur.full_name);
        }
        cur.version = version;
        cur.field_meta = merge::encode(&m);
        cur.updated_at = now;
        let (hid, area) = (u.row.id, u.row.area_id);
        self.bump(u, version, now);
        self.put_member(cur);
        self.changes.push(change(
            "member",
            EntityId(id.0),
            hid,
            area,
            "upsert",
            version,
        ));
        Ok(Written {
            household_id: hid,
            area_id: area,
            household_version: version,
            losses,
            values,
        })
    }

    pub fn delete_member(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        id: MemberId,
        expected: Option<i64>,
    ) -> ApiResult<Written> {
        let (u, mut cur, version) = self.live_member(conn, who, id)?;
        if expected.is_some_and(|e| e != cur.version) {
            return Err(version_mismatch(cur.version));
        }
        let now = Time::now();
        cur.deleted_at = Some(now);
        cur.version = version;
        cur.updated_at = now;
        let (hid, area) = (u.row.id, u.row.area_id);
        self.bump(u, version, now);
        self.put_member(cur);
        self.changes.push(change(
            "member",
            EntityId(id.0),
            hid,
            area,
            "delete",
            version,
        ));
        Ok(Written {
            household_id: hid,
            area_id: area,
            household_version: version,
            losses: Vec::new(),
            values: Map::new(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn set_adoption(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        w: &Writer,
        member: MemberId,
        campaign: CampaignId,
        patch: &Patch,
        pre: AdoptionPrecondition,
    ) -> ApiResult<Written> {
        if !self.campaign_exists(conn, campaign)? {
            return Err(ApiError::not_found("campaign"));
        }
        let (u, _, version) = self.live_member(conn, who, member)?;
        let existing = self.adoption(conn, (member, campaign))?;
        if let (AdoptionPrecondition::IfMatch(expected), Some(a)) = (pre, &existing) {
            match expected {
                None => {
                    return Err(ApiError::new(
                        Kind::PreconditionRequired,
                        "if_match_required",
                        format!(
                            "this adoption exists: send If-Match with its version ({})",
                            a.version
                        ),
                    ))
                }
                Some(e) if e != a.version => return Err(version_mismatch(a.version)),
                _ => {}
            }
        }
        let (mut state, mut m) = match &existing {
            Some(a) => (
                to_map(&serde_json::json!({ "status": a.status }))?,
                metas(&a.field_meta)?,
            ),
            None => (Map::new(), FieldMetas::new()),
        };
        let losses = merge::merge(&mut state, &mut m, patch.fields(), w, version);
        let values = written_values(&state, patch);
        let status = state
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("not_yet")
            .to_owned();
        // When and by whom the current status was set: the winning write's (clamped) clock,
        // so that an install synced days later still counts on the day it happened.
        let wrote = m
            .get("status")
            .is_some_and(|f| *f.by == *w.by && *f.hlc == *w.hlc.to_string());
        let (recorded_at, recorded_by) = match &existing {
            Some(a) if !wrote => (a.recorded_at, a.recorded_by),
            _ => (Time(w.hlc.wall()), who.user_id),
        };
        let now = Time::now();
        let (hid, area) = (u.row.id, u.row.area_id);
        self.bump(u, version, now);
        self.put_adoption(Adoption {
            member_id: member,
            campaign_id: campaign,
            household_id: hid,
            status,
            recorded_at,
            recorded_by,
            version,
            field_meta: merge::encode(&m),
        });
        self.changes.push(change(
            "adoption",
            EntityId(member.0),
            hid,
            area,
            "upsert",
            version,
        ));
        Ok(Written {
            household_id: hid,
            area_id: area,
            household_version: version,
            losses,
            values,
        })
    }

    /// Records a visit. Visits are facts: resending the same visit returns it unchanged;
    /// another visit under a used id is refused.
    pub fn record_visit(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        id: VisitId,
        patch: &Patch,
    ) -> ApiResult<(Visit, bool)> {
        let f: VisitFields = from_map(patch.fields().clone())?;
        let u = self.unit(conn, f.household_id)?.ok_or_else(|| {
            ApiError::invalid("household_id", "unknown_household", "no such household")
        })?;
        who.require_covers(&u.path)?;
        if !self.campaign_exists(conn, f.campaign_id)? {
            return Err(ApiError::invalid(
                "campaign_id",
                "unknown_campaign",
                "no such campaign",
            ));
        }
        let visit = Visit {
            id,
            household_id: f.household_id,
            campaign_id: f.campaign_id,
            canvasser_id: who.user_id,
            visited_at: f.visited_at,
            outcome: f.outcome,
            notes: f.notes,
            lat: f.lat,
            lon: f.lon,
            created_at: Time::now(),
        };
        if let Some(existing) = self.visit(conn, id)? {
            let same = Visit {
                created_at: existing.created_at,
                canvasser_id: existing.canvasser_id,
                ..visit.clone()
            };
            return if same == existing {
                Ok((existing, false))
            } else {
                Err(ApiError::conflict(
                    "id_reused",
                    "another visit was recorded under this id",
                ))
            };
        }
        self.put_visit(visit.clone());
        self.changes.push(change(
            "visit",
            EntityId(id.0),
            u.row.id,
            u.row.area_id,
            "upsert",
            1,
        ));
        Ok((visit, true))
    }

    // ---- flush -----------------------------------------------------------------------------

    /// Writes everything, then empties the work of its writes. New rows are inserted with
    /// multi-row statements (`insert_rows!`). Rows that existed are upserted with multi-row
    /// statements on PostgreSQL (one round trip per table), and updated one by one on SQLite,
    /// whose single writer knows for sure which rows exist and keeps those statements prepared.
    pub fn flush(&mut self, conn: &mut Conn<'_>) -> ApiResult<()> {
        self.undo = None;
        let hs: Vec<Household> = self
            .dirty_households
            .drain(..)
            .filter_map(|id| self.households.get(&id).cloned().flatten().map(|u| u.row))
            .collect();
        let ms: Vec<Member> = self
            .dirty_members
            .drain(..)
            .filter_map(|id| self.members.get(&id).cloned().flatten())
            .collect();
        let ads: Vec<Adoption> = self
            .dirty_adoptions
            .drain(..)
            .filter_map(|k| self.adoptions.get(&k).cloned().flatten())
            .collect();
        let vs: Vec<Visit> = self
            .new_visits
            .drain(..)
            .filter_map(|id| self.visits.get(&id).cloned().flatten())
            .collect();
        let chs = std::mem::take(&mut self.changes);
        let exists = |e: diesel::result::Error| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => {
                // Another transaction created the same id meanwhile: worth a retry.
                ApiError::unavailable(anyhow::anyhow!("concurrent creation of the same id: {e}"))
            }
            e => e.into(),
        };
        match conn {
            Conn::Pg(c) => upsert_pg(c, &hs, &ms, &ads).map_err(exists)?,
            Conn::Sqlite(c) => write_sqlite(c, &mut self.stored, hs, ms, ads).map_err(exists)?,
        }
        insert_rows!(conn, visits::table, &vs[..]).map_err(exists)?;
        let now = Time::now();
        let rows: Vec<_> = chs.iter().map(|ch| ch.values(now)).collect();
        insert_rows!(conn, changes::table, &rows[..])?;
        Ok(())
    }
}

/// Updates the rows that exist, one prepared statement each (`prepared_update`: their changesets
/// never leave a field out), and inserts the new ones with `insert_rows!`; the single writer
/// knows which exist (`stored`), having loaded them in the same transaction. Updates set the
/// columns that can change (the ones `upsert_pg` sets; the others are `skip_update` in the
/// records' changesets).
fn write_sqlite(
    c: &mut diesel::SqliteConnection,
    stored: &mut Stored,
    hs: Vec<Household>,
    ms: Vec<Member>,
    ads: Vec<Adoption>,
) -> QueryResult<()> {
    let (old_hs, new_hs): (Vec<_>, Vec<_>) = hs
        .into_iter()
        .partition(|h| stored.households.contains_key(&h.id));
    let (old_ms, new_ms): (Vec<_>, Vec<_>) =
        ms.into_iter().partition(|m| stored.members.contains(&m.id));
    let (old_ads, new_ads): (Vec<_>, Vec<_>) = ads
        .into_iter()
        .partition(|a| stored.adoptions.contains(&(a.member_id, a.campaign_id)));
    for h in &old_hs {
        let id = households::id.eq(h.id);
        // SQLite rewrites an index entry (and checks the foreign key) of every column an
        // UPDATE sets, even to the same value: the village is set only when it changed.
        if stored.households.insert(h.id, h.area_id) == Some(h.area_id) {
            prepared_row_update::<_, _, Household>(households::table, id, h).execute(c)?;
        } else {
            let moved = (h, households::area_id.eq(h.area_id));
            prepared_update(households::table, id, moved).execute(c)?;
        }
    }
    for m in &old_ms {
        prepared_row_update::<_, _, Member>(members::table, members::id.eq(m.id), m).execute(c)?;
    }
    for a in &old_ads {
        let key = adoptions::member_id
            .eq(a.member_id)
            .and(adoptions::campaign_id.eq(a.campaign_id));
        prepared_row_update::<_, _, Adoption>(adoptions::table, key, a).execute(c)?;
    }
    let mut conn = Conn::Sqlite(c);
    insert_rows!(&mut conn, households::table, &new_hs[..])?;
    insert_rows!(&mut conn, members::table, &new_ms[..])?;
    insert_rows!(&mut conn, adoptions::table, &new_ads[..])?;
    stored
        .households
        .extend(new_hs.iter().map(|h| (h.id, h.area_id)));
    stored.members.extend(new_ms.iter().map(|m| m.id));
    stored
        .adoptions
        .extend(new_ads.iter().map(|a| (a.member_id, a.campaign_id)));
    Ok(())
}

/// Inserts or overwrites households, members and adoptions with one statement per table (per
/// 500 rows).
fn upsert_pg(
    c: &mut diesel::PgConnection,
    hs: &[Household],
    ms: &[Member],
    ads: &[Adoption],
) -> QueryResult<()> {
    for chunk in hs.chunks(500) {
        diesel::insert_into(households::table)
            .values(chunk)
            .on_conflict(households::id)
            .do_update()
            .set((
                households::area_id.eq(excluded(households::area_id)),
                households::address.eq(excluded(households::address)),
                households::head_name.eq(excluded(households::head_name)),
                households::phone.eq(excluded(households::phone)),
                households::lat.eq(excluded(households::lat)),
                households::lon.eq(excluded(households::lon)),
                households::notes.eq(excluded(households::notes)),
                households::version.eq(excluded(households::version)),
                households::field_meta.eq(excluded(households::field_meta)),
                households::search_key.eq(excluded(households::search_key)),
                households::updated_at.eq(excluded(households::updated_at)),
                households::deleted_at.eq(excluded(households::deleted_at)),
            ))
            .execute(c)?;
    }
    for chunk in ms.chunks(500) {
        diesel::insert_into(members::table)
            .values(chunk)
            .on_conflict(members::id)
            .do_update()
            .set((
                members::full_name.eq(excluded(members::full_name)),
                members::birth_year.eq(excluded(members::birth_year)),
                members::sex.eq(excluded(members::sex)),
                members::phone.eq(excluded(members::phone)),
                members::smartphone.eq(excluded(members::smartphone)),
                members::priority.eq(excluded(members::priority)),
                members::notes.eq(excluded(members::notes)),
                members::version.eq(excluded(members::version)),
                members::field_meta.eq(excluded(members::field_meta)),
                members::search_key.eq(excluded(members::search_key)),
                members::updated_at.eq(excluded(members::updated_at)),
                members::deleted_at.eq(excluded(members::deleted_at)),
            ))
            .execute(c)?;
    }
    for chunk in ads.chunks(500) {
        diesel::insert_into(adoptions::table)
            .values(chunk)
            .on_conflict((adoptions::member_id, adoptions::campaign_id))
            .do_update()
            .set((
                adoptions::status.eq(excluded(adoptions::status)),
                adoptions::recorded_at.eq(excluded(adoptions::recorded_at)),
                adoptions::recorded_by.eq(excluded(adoptions::recorded_by)),
                adoptions::version.eq(excluded(adoptions::version)),
                adoptions::field_meta.eq(excluded(adoptions::field_meta)),
            ))
            .execute(c)?;
    }
    Ok(())
}

fn restore<K: std::hash::Hash + Eq, V>(
    map: &mut HashMap<K, Option<V>>,
    key: K,
    old: Option<Option<V>>,
) {
    match old {
        Some(v) => {
            map.insert(key, v);
        }
        None => {
            map.remove(&key);
        }
    }
}
