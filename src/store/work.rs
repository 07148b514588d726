//! The identity map of a transaction's writes to household units: the rows that a batch of
//! writes touches, loaded in a few queries (existing households locked in id order on
//! PostgreSQL), held in memory while `write` applies the domain rules to them, and
//! written back by `flush` (`store/flush.rs`). A write that fails is undone in memory alone
//! (`begin`/`rollback`), so a batch needs no savepoints. No business rule lives here.

use super::changes::Change;
use super::error::Result;
use super::households::{Adoption, Household, Member, Visit};
use crate::db::any::any_of;
use crate::db::schema::{adoptions, areas, campaigns, households, members, visits};
use crate::db::Conn;
use crate::domain::area;
use crate::domain::duplicates::{self, Index};
use crate::domain::{AreaId, CampaignId, EntityId, HouseholdId, MemberId, VisitId};
use crate::with_conn;
use diesel::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};

/// A household with its village's path, as loaded or written.
#[derive(Debug, Clone)]
pub struct Unit {
    pub row: Household,
    pub path: String,
}

/// An area as a write checks it: its path (whose subtree a caller covers) and its level.
#[derive(Debug, Clone)]
pub struct AreaPlace {
    pub path: String,
    pub level: String,
}

/// A key a household holds through one of its rows (its own, or a member's), as the
/// duplicate check stores it (`domain::duplicates::Index`), with the household's village:
/// the check turns it into the commune for a phone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HeldKey {
    pub index: Index,
    pub village: AreaId,
    pub key: String,
    pub household: HouseholdId,
    pub source: EntityId,
}

/// What a work changed of the households' duplicate keys (`Work::identity_touched`), for
/// the duplicate check (`store::duplicates::refresh`).
#[derive(Debug, Default)]
pub struct Touched {
    /// Keys the written rows gave before this work and give no more.
    pub removed: Vec<HeldKey>,
    /// Keys the written rows give now and did not before.
    pub added: Vec<HeldKey>,
    /// Households moved, deleted or restored: the keys of their members this work did not
    /// write move with them, and are read.
    pub restated: Vec<Restated>,
    /// The head name key (village, folded name) of each live household whose name rules may
    /// match anew: created, moved or restored, a new head name or address, or a member
    /// created, deleted, moved, or with a new name or birth year.
    pub names: Vec<(HouseholdId, AreaId, String)>,
    /// The commune (the area above) of the villages whose paths the work read: the check
    /// reads the others'.
    pub communes: HashMap<AreaId, Option<AreaId>>,
}

/// A household moved, deleted or restored by a work.
#[derive(Debug)]
pub struct Restated {
    pub household: HouseholdId,
    /// Its village before the work, if it was live; after it, if it is live.
    pub before: Option<AreaId>,
    pub now: Option<AreaId>,
    /// Its members the work wrote: their keys are among those removed and added.
    pub written: Vec<MemberId>,
}

/// The area right above the area with `path`, if any.
fn parent_of(path: &str) -> Option<AreaId> {
    area::parent_in(path).and_then(|p| p.parse().ok())
}

/// The keys a household row gives (none when deleted): its phone's, its head name's, or
/// both.
fn keys_of_household(h: &Household, phone: bool, head: bool, out: &mut Vec<HeldKey>) {
    if h.deleted_at.is_some() || !(phone || head) {
        return;
    }
    let held = |index, key| HeldKey {
        index,
        village: h.area_id,
        key,
        household: h.id,
        source: EntityId(h.id.0),
    };
    if let Some(p) = h
        .phone
        .as_deref()
        .and_then(duplicates::phone)
        .filter(|_| phone)
    {
        out.push(held(Index::Phone, p));
    }
    let key = match head {
        true => duplicates::head_key(&h.head_name),
        false => String::new(),
    };
    if !key.is_empty() {
        out.push(held(Index::Head, key));
    }
}

/// The keys a member row gives in a household of this village (none when deleted).
fn keys_of_member(m: &Member, village: AreaId, out: &mut Vec<HeldKey>) {
    if m.deleted_at.is_some() {
        return;
    }
    if let Some((index, key)) = duplicates::member_index(m.phone.as_deref()) {
        out.push(HeldKey {
            index,
            village,
            key,
            household: m.household_id,
            source: EntityId(m.id.0),
        });
    }
}

/// The ids of a household's members, adoptions and visits.
#[derive(Debug, Default)]
pub struct Children {
    pub members: BTreeSet<MemberId>,
    pub adoptions: BTreeSet<(MemberId, CampaignId)>,
    pub visits: BTreeSet<VisitId>,
}

/// An entry as it was before an operation touched it (`None`: it was not loaded).
type Saved<K, V> = Vec<(K, Option<Option<V>>)>;

/// What one operation changed, to put back if it fails.
#[derive(Default)]
pub(super) struct Undo {
    households: Saved<HouseholdId, Unit>,
    members: Saved<MemberId, Member>,
    adoptions: Saved<(MemberId, CampaignId), Adoption>,
    visits: Saved<VisitId, Visit>,
    written: Written,
    changes: usize,
}

/// How many entities were written before an operation: the lists it may lengthen.
#[derive(Default)]
struct Written {
    households: usize,
    members: usize,
    adoptions: usize,
    new_visits: usize,
    changed_visits: usize,
}

#[derive(Default)]
pub struct Work {
    pub(super) households: HashMap<HouseholdId, Option<Unit>>,
    pub(super) members: HashMap<MemberId, Option<Member>>,
    pub(super) adoptions: HashMap<(MemberId, CampaignId), Option<Adoption>>,
    pub(super) visits: HashMap<VisitId, Option<Visit>>,
    pub(super) areas: HashMap<AreaId, Option<AreaPlace>>,
    pub(super) campaigns: HashMap<CampaignId, bool>,
    /// Written entities, in first-write order.
    pub(super) dirty_households: Vec<HouseholdId>,
    pub(super) dirty_members: Vec<MemberId>,
    pub(super) dirty_adoptions: Vec<(MemberId, CampaignId)>,
    pub(super) new_visits: Vec<VisitId>,
    /// Stored visits written again (anonymized).
    pub(super) changed_visits: Vec<VisitId>,
    pub(super) changes: Vec<Change>,
    pub(super) undo: Option<Undo>,
    /// The rows known to be in the database (loaded, or inserted by `flush`).
    pub(super) stored: Stored,
    /// The written entities as they were before their first write (`None`: new), for the
    /// tallies (`store::tallies`).
    pub(super) before: Before,
    /// What the flushed writes changed in the tallies, not yet stored (`flush_tallies`).
    pub(super) tallies: super::tallies::Tallies,
    /// Households loaded with all their members, adoptions and visits (`preload_whole`).
    pub(super) whole: HashSet<HouseholdId>,
    /// The area right above each area whose path this work has read (`None`: a root), as
    /// the paths say: the commune of a village, for the duplicate check.
    pub(super) parents: HashMap<AreaId, Option<AreaId>>,
}

#[derive(Default)]
pub(super) struct Before {
    pub(super) households: HashMap<HouseholdId, Option<Household>>,
    pub(super) members: HashMap<MemberId, Option<Member>>,
    pub(super) adoptions: HashMap<(MemberId, CampaignId), Option<Adoption>>,
}

#[derive(Default)]
pub(super) struct Stored {
    /// With the village each is stored in.
    pub(super) households: HashMap<HouseholdId, AreaId>,
    pub(super) members: HashSet<MemberId>,
    pub(super) adoptions: HashSet<(MemberId, CampaignId)>,
}

impl Work {
    pub fn new() -> Work {
        Work::default()
    }

    /// Adds a change-log entry, written by `flush`.
    pub fn push_change(&mut self, change: Change) {
        self.changes.push(change);
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
    ) -> Result<()> {
        let members: Vec<Member> = unless_empty(member_ids, || {
            with_conn!(conn, |c| members::table
                .filter(any_of(members::id, member_ids))
                .select(Member::as_select())
                .load(c))
        })?;
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
        let ads: Vec<Adoption> = unless_empty(&found, || {
            with_conn!(conn, |c| adoptions::table
                .filter(any_of(adoptions::member_id, &found))
                .select(Adoption::as_select())
                .load(c))
        })?;
        for a in ads {
            self.stored.adoptions.insert((a.member_id, a.campaign_id));
            self.adoptions.insert((a.member_id, a.campaign_id), Some(a));
        }
        let vs: Vec<Visit> = unless_empty(visit_ids, || {
            with_conn!(conn, |c| visits::table
                .filter(any_of(visits::id, visit_ids))
                .select(Visit::as_select())
                .load(c))
        })?;
        for id in visit_ids {
            self.visits.entry(*id).or_insert(None);
        }
        for v in vs {
            self.visits.insert(v.id, Some(v));
        }
        let found: Vec<(AreaId, String, String)> = unless_empty(area_ids, || {
            with_conn!(conn, |c| areas::table
                .filter(any_of(areas::id, area_ids))
                .select((areas::id, areas::path, areas::level))
                .load(c))
        })?;
        for id in area_ids {
            self.areas.entry(*id).or_insert(None);
        }
        for (id, path, level) in found {
            self.saw(id, &path);
            self.areas.insert(id, Some(AreaPlace { path, level }));
        }
        Ok(())
    }

    /// Loads (and on PostgreSQL locks) households with all their members, adoptions and
    /// visits, in four queries: a write that takes whole units (anonymization) then needs
    /// no read per household.
    pub fn preload_whole(&mut self, conn: &mut Conn<'_>, ids: &[HouseholdId]) -> Result<()> {
        let ids: Vec<HouseholdId> = ids
            .iter()
            .copied()
            .filter(|h| !self.households.contains_key(h))
            .collect();
        self.load_households(conn, &ids)?;
        let (ms, ads, vs) = with_conn!(conn, |c| {
            let ms: Vec<Member> = members::table
                .filter(any_of(members::household_id, &ids))
                .select(Member::as_select())
                .load(c)?;
            let ads: Vec<Adoption> = adoptions::table
                .filter(any_of(adoptions::household_id, &ids))
                .select(Adoption::as_select())
                .load(c)?;
            let vs: Vec<Visit> = visits::table
                .filter(any_of(visits::household_id, &ids))
                .select(Visit::as_select())
                .load(c)?;
            Ok::<_, diesel::result::Error>((ms, ads, vs))
        })?;
        for m in ms {
            self.stored.members.insert(m.id);
            self.members.entry(m.id).or_insert(Some(m));
        }
        for a in ads {
            let key = (a.member_id, a.campaign_id);
            self.stored.adoptions.insert(key);
            self.adoptions.entry(key).or_insert(Some(a));
        }
        for v in vs {
            self.visits.entry(v.id).or_insert(Some(v));
        }
        self.whole.extend(ids);
        Ok(())
    }

    fn load_households(&mut self, conn: &mut Conn<'_>, ids: &[HouseholdId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let rows: Vec<(Household, String)> = match conn {
            // Locked in id order, so that concurrent batches queue instead of deadlocking,
            // and read in the same statement: `FOR NO KEY UPDATE` locks the sorted rows, and
            // reads a row a concurrent writer changed again as that writer left it. The
            // village's path is a subquery, so that only households are locked. Not `FOR
            // UPDATE`: that lock would also make every other transaction's insert of a row
            // referencing a locked household (a duplicate pair, a member) wait for this one.
            Conn::Pg(c) => households::table
                .filter(any_of(households::id, ids))
                .order(households::id)
                .select((
                    Household::as_select(),
                    areas::table
                        .filter(areas::id.eq(households::area_id))
                        .select(areas::path)
                        .single_value()
                        .assume_not_null(),
                ))
                .for_no_key_update()
                .load(*c)?,
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
            self.saw(row.area_id, &path);
            self.stored.households.insert(row.id, row.area_id);
            self.households.insert(row.id, Some(Unit { row, path }));
        }
        Ok(())
    }

    /// The household, loaded if need be; no copy.
    pub fn unit_ref(&mut self, conn: &mut Conn<'_>, id: HouseholdId) -> Result<Option<&Unit>> {
        if !self.households.contains_key(&id) {
            self.load_households(conn, &[id])?;
        }
        Ok(self.households.get(&id).and_then(Option::as_ref))
    }

    pub fn unit(&mut self, conn: &mut Conn<'_>, id: HouseholdId) -> Result<Option<Unit>> {
        Ok(self.unit_ref(conn, id)?.cloned())
    }

    pub fn member(&mut self, conn: &mut Conn<'_>, id: MemberId) -> Result<Option<Member>> {
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

    pub fn adoption(
        &mut self,
        conn: &mut Conn<'_>,
        key: (MemberId, CampaignId),
    ) -> Result<Option<Adoption>> {
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

    pub fn visit(&mut self, conn: &mut Conn<'_>, id: VisitId) -> Result<Option<Visit>> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.visits.entry(id) {
            e.insert(with_conn!(conn, |c| visits::table
                .find(id)
                .select(Visit::as_select())
                .first(c)
                .optional())?);
        }
        Ok(self.visits.get(&id).cloned().flatten())
    }

    pub fn area(&mut self, conn: &mut Conn<'_>, id: AreaId) -> Result<Option<AreaPlace>> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.areas.entry(id) {
            let found: Option<(String, String)> = with_conn!(conn, |c| areas::table
                .find(id)
                .select((areas::path, areas::level))
                .first(c)
                .optional())?;
            if let Some((path, _)) = &found {
                self.parents.insert(id, parent_of(path));
            }
            e.insert(found.map(|(path, level)| AreaPlace { path, level }));
        }
        Ok(self.areas.get(&id).cloned().flatten())
    }

    /// Keeps the area above the area `id` as its `path` says.
    fn saw(&mut self, id: AreaId, path: &str) {
        self.parents.insert(id, parent_of(path));
    }

    pub fn campaign_exists(&mut self, conn: &mut Conn<'_>, id: CampaignId) -> Result<bool> {
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
    ) -> Result<Option<HouseholdId>> {
        Ok(self.member(conn, id)?.map(|m| m.household_id))
    }

    /// The village of a household, if it exists.
    pub fn household_area(
        &mut self,
        conn: &mut Conn<'_>,
        id: HouseholdId,
    ) -> Result<Option<AreaId>> {
        Ok(self.unit_ref(conn, id)?.map(|u| u.row.area_id))
    }

    pub fn household_exists(&mut self, conn: &mut Conn<'_>, id: HouseholdId) -> Result<bool> {
        Ok(self.unit_ref(conn, id)?.is_some())
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
            written: Written {
                households: self.dirty_households.len(),
                members: self.dirty_members.len(),
                adoptions: self.dirty_adoptions.len(),
                new_visits: self.new_visits.len(),
                changed_visits: self.changed_visits.len(),
            },
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
        self.dirty_households.truncate(u.written.households);
        self.dirty_members.truncate(u.written.members);
        self.dirty_adoptions.truncate(u.written.adoptions);
        self.new_visits.truncate(u.written.new_visits);
        self.changed_visits.truncate(u.written.changed_visits);
        self.changes.truncate(u.changes);
    }

    // Each keeps the entry it replaces (moved out, not copied) for `rollback`.

    pub fn put_household(&mut self, unit: Unit) {
        let id = unit.row.id;
        self.saw(unit.row.area_id, &unit.path);
        if !self.dirty_households.contains(&id) {
            self.dirty_households.push(id);
        }
        let old = self.households.insert(id, Some(unit));
        self.before
            .households
            .entry(id)
            .or_insert_with(|| old.clone().flatten().map(|u| u.row));
        if let Some(u) = self.undo.as_mut() {
            u.households.push((id, old));
        }
    }

    pub fn put_member(&mut self, m: Member) {
        let id = m.id;
        if !self.dirty_members.contains(&id) {
            self.dirty_members.push(id);
        }
        let old = self.members.insert(id, Some(m));
        self.before
            .members
            .entry(id)
            .or_insert_with(|| old.clone().flatten());
        if let Some(u) = self.undo.as_mut() {
            u.members.push((id, old));
        }
    }

    pub fn put_adoption(&mut self, a: Adoption) {
        let key = (a.member_id, a.campaign_id);
        if !self.dirty_adoptions.contains(&key) {
            self.dirty_adoptions.push(key);
        }
        let old = self.adoptions.insert(key, Some(a));
        self.before
            .adoptions
            .entry(key)
            .or_insert_with(|| old.clone().flatten());
        if let Some(u) = self.undo.as_mut() {
            u.adoptions.push((key, old));
        }
    }

    pub fn put_visit(&mut self, v: Visit) {
        let id = v.id;
        self.new_visits.push(id);
        let old = self.visits.insert(id, Some(v));
        if let Some(u) = self.undo.as_mut() {
            u.visits.push((id, old));
        }
    }

    /// A stored visit written again (its notes and position emptied).
    pub fn rewrite_visit(&mut self, v: Visit) {
        let id = v.id;
        if !self.changed_visits.contains(&id) && !self.new_visits.contains(&id) {
            self.changed_visits.push(id);
        }
        let old = self.visits.insert(id, Some(v));
        if let Some(u) = self.undo.as_mut() {
            u.visits.push((id, old));
        }
    }

    /// What this work changed of the households' duplicate keys, found from the written
    /// rows as they were before it and as they are now: nothing is read.
    pub fn identity_touched(&self) -> Touched {
        let mut restated: Vec<Restated> = Vec::new();
        let mut named: BTreeSet<HouseholdId> = BTreeSet::new();
        let (mut old, mut now_keys) = (Vec::new(), Vec::new());
        for id in &self.dirty_households {
            let Some(now) = self
                .households
                .get(id)
                .and_then(Option::as_ref)
                .map(|u| &u.row)
            else {
                continue;
            };
            let before = self.before.households.get(id).and_then(Option::as_ref);
            match before {
                // A row that keeps its place keeps the keys of the fields it keeps.
                Some(b) if b.area_id == now.area_id && b.deleted_at == now.deleted_at => {
                    let phone = b.phone != now.phone;
                    let head = b.head_name != now.head_name;
                    keys_of_household(b, phone, head, &mut old);
                    keys_of_household(now, phone, head, &mut now_keys);
                }
                _ => {
                    if let Some(b) = before {
                        keys_of_household(b, true, true, &mut old);
                    }
                    keys_of_household(now, true, true, &mut now_keys);
                }
            }
            let was = before.filter(|b| b.deleted_at.is_none()).map(|b| b.area_id);
            let is = now.deleted_at.is_none().then_some(now.area_id);
            let stored = self.stored.households.contains_key(id);
            if stored && was != is {
                restated.push(Restated {
                    household: *id,
                    before: was,
                    now: is,
                    written: Vec::new(),
                });
            }
            let renamed = before.is_none_or(|b| {
                b.head_name != now.head_name || b.address != now.address || was != is
            });
            if renamed {
                named.insert(*id);
            }
        }
        restated.sort_by_key(|r| r.household);
        for id in &self.dirty_members {
            let Some(now) = self.members.get(id).and_then(Option::as_ref) else {
                continue;
            };
            let before = self.before.members.get(id).and_then(Option::as_ref);
            // A member's keys change with its phone, its household, its deletion, or its
            // household's village.
            let village_before = before.and_then(|b| self.village_before(b.household_id));
            let village_now = self.village_now(now.household_id);
            let same = before.is_some_and(|b| {
                b.phone == now.phone
                    && b.household_id == now.household_id
                    && b.deleted_at.is_some() == now.deleted_at.is_some()
                    && village_before == village_now
            });
            if let Some(b) = before {
                if let (Some(v), false) = (village_before, same) {
                    keys_of_member(b, v, &mut old);
                }
                if let Ok(i) = restated.binary_search_by_key(&b.household_id, |r| r.household) {
                    restated[i].written.push(*id);
                }
            }
            if let (Some(v), false) = (village_now, same) {
                keys_of_member(now, v, &mut now_keys);
            }
            if let Ok(i) = restated.binary_search_by_key(&now.household_id, |r| r.household) {
                restated[i].written.push(*id);
            }
            let renamed = before.is_none_or(|b| {
                b.full_name != now.full_name
                    || b.birth_year != now.birth_year
                    || b.deleted_at.is_some() != now.deleted_at.is_some()
                    || b.household_id != now.household_id
            });
            if renamed {
                named.insert(now.household_id);
            }
        }
        let old_set: HashSet<&HeldKey> = old.iter().collect();
        let now_set: HashSet<&HeldKey> = now_keys.iter().collect();
        let mut removed: Vec<HeldKey> =
            old_set.difference(&now_set).map(|k| (*k).clone()).collect();
        let mut added: Vec<HeldKey> = now_set.difference(&old_set).map(|k| (*k).clone()).collect();
        removed.sort();
        added.sort();
        // A head name's key made above is not made again.
        let heads: HashMap<HouseholdId, &String> = now_keys
            .iter()
            .filter(|k| k.index == Index::Head)
            .map(|k| (k.household, &k.key))
            .collect();
        let names = named
            .into_iter()
            .filter_map(|id| {
                let row = &self.households.get(&id)?.as_ref()?.row;
                let head = match heads.get(&id) {
                    Some(key) => (*key).clone(),
                    None => duplicates::head_key(&row.head_name),
                };
                (row.deleted_at.is_none() && !head.is_empty()).then_some((id, row.area_id, head))
            })
            .collect();
        Touched {
            removed,
            added,
            restated,
            names,
            communes: self.parents.clone(),
        }
    }

    /// The village of a household before this work, if it was live then.
    fn village_before(&self, id: HouseholdId) -> Option<AreaId> {
        match self.before.households.get(&id) {
            Some(b) => b
                .as_ref()
                .filter(|b| b.deleted_at.is_none())
                .map(|b| b.area_id),
            None => self.village_now(id),
        }
    }

    /// The village of a household as it is now, if it is live.
    fn village_now(&self, id: HouseholdId) -> Option<AreaId> {
        match self.households.get(&id).and_then(Option::as_ref) {
            Some(u) => u.row.deleted_at.is_none().then_some(u.row.area_id),
            None => self.stored.households.get(&id).copied(),
        }
    }

    /// The ids of a household's members, adoptions and visits: stored ones and those this
    /// work wrote and has not flushed yet.
    pub fn children(&mut self, conn: &mut Conn<'_>, id: HouseholdId) -> Result<Children> {
        if self.whole.contains(&id) {
            // All of them are in memory.
            return Ok(self.children_in_memory(id, Children::default()));
        }
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
        let stored = Children {
            members: ms.into_iter().collect(),
            adoptions: ads.into_iter().collect(),
            visits: vs.into_iter().collect(),
        };
        Ok(self.children_in_memory(id, stored))
    }

    /// `out` and the members, adoptions and visits of the household held in memory.
    fn children_in_memory(&self, id: HouseholdId, mut out: Children) -> Children {
        out.members.extend(
            self.members
                .values()
                .flatten()
                .filter(|m| m.household_id == id)
                .map(|m| m.id),
        );
        out.adoptions.extend(
            self.adoptions
                .values()
                .flatten()
                .filter(|a| a.household_id == id)
                .map(|a| (a.member_id, a.campaign_id)),
        );
        out.visits.extend(
            self.visits
                .values()
                .flatten()
                .filter(|v| v.household_id == id)
                .map(|v| v.id),
        );
        out
    }
}

/// What `load` reads for `ids`, with no statement when there are none.
fn unless_empty<I, T>(
    ids: &[I],
    load: impl FnOnce() -> diesel::QueryResult<Vec<T>>,
) -> Result<Vec<T>> {
    match ids.is_empty() {
        true => Ok(Vec::new()),
        false => Ok(load()?),
    }
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
