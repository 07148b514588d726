//! Writing a `Work` back: new rows in multi-row inserts, changed rows upserted (PostgreSQL)
//! or updated with prepared statements (SQLite), then the change-log rows.

use super::error::{Error, Result};
use super::households::{Adoption, Household, Member, Visit};
use super::tallies::{self, Of, Parts, Tallies};
use super::work::{Stored, Work};
use crate::db::prepared::{prepared_row_update, prepared_update};
use crate::db::schema::{adoptions, households, members, visits};
use crate::db::unnest;
use crate::db::Conn;
use crate::domain::{HouseholdId, Time};
use crate::insert_rows;
use diesel::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

impl Work {
    /// Writes everything, then empties the work of its writes. New rows are inserted with
    /// multi-row statements (`insert_rows!`). Rows that existed are upserted with multi-row
    /// statements on PostgreSQL (one round trip per table), and updated one by one on SQLite,
    /// whose single writer knows for sure which rows exist and keeps those statements prepared.
    pub fn flush(&mut self, conn: &mut Conn<'_>) -> Result<()> {
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
        let changed_visits: Vec<Visit> = self
            .changed_visits
            .drain(..)
            .filter_map(|id| self.visits.get(&id).cloned().flatten())
            .collect();
        let chs = std::mem::take(&mut self.changes);
        // Members a merge moved to another household, with their adoptions: the one write
        // that changes a member's household (`write::merge`), set on its own below.
        let moved: Vec<(crate::domain::MemberId, HouseholdId)> = ms
            .iter()
            .filter(|m| {
                self.before
                    .members
                    .get(&m.id)
                    .and_then(Option::as_ref)
                    .is_some_and(|o| o.household_id != m.household_id)
            })
            .map(|m| (m.id, m.household_id))
            .collect();
        // Households created here hold only rows written here, but for those a merge moved
        // members or visits into: they are counted from those rows, after the writes
        // (`count_written`); the others from the database, before and after.
        let moved_into: BTreeSet<HouseholdId> = moved
            .iter()
            .map(|(_, h)| *h)
            .chain(changed_visits.iter().map(|v| v.household_id))
            .collect();
        let (mut homes, mut parts) = (Vec::new(), Parts::default());
        let (mut created, mut created_parts) = (BTreeSet::new(), Parts::default());
        for (h, p) in self.tallied(&hs, &ms, &ads, &vs, &changed_visits) {
            if self.stored.households.contains_key(&h) || moved_into.contains(&h) {
                homes.push(h);
                parts = parts.or(p);
            } else {
                created.insert(h);
                created_parts = created_parts.or(p);
            }
        }
        // Households that were stored before these writes: the others counted nothing.
        let stored: Vec<HouseholdId> = homes
            .iter()
            .copied()
            .filter(|h| self.stored.households.contains_key(h))
            .collect();
        let written = created_parts.any().then(|| {
            let homes: Vec<&Household> = hs.iter().filter(|h| created.contains(&h.id)).collect();
            tallies::count_written(&homes, &ms, &ads, &vs, created_parts)
        });
        let before = match parts.any() && !stored.is_empty() {
            true => tallies::count(conn, Of::Households(&stored), parts)?,
            false => Tallies::default(),
        };
        let exists = |e: diesel::result::Error| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => Error::Raced(e),
            e => Error::Database(e),
        };
        match conn {
            Conn::Pg(c) => upsert_pg(c, &hs, &ms, &ads).map_err(exists)?,
            Conn::Sqlite(c) => write_sqlite(c, &mut self.stored, hs, ms, ads).map_err(exists)?,
        }
        insert_rows!(conn, visits::table, &vs[..]).map_err(exists)?;
        for (m, h) in &moved {
            crate::with_conn!(conn, |c| {
                diesel::update(members::table.find(*m))
                    .set(members::household_id.eq(*h))
                    .execute(c)?;
                diesel::update(adoptions::table.filter(adoptions::member_id.eq(*m)))
                    .set(adoptions::household_id.eq(*h))
                    .execute(c)
            })?;
        }
        // A stored visit is written again by anonymization (its notes and position) or by a
        // merge (its household).
        for v in &changed_visits {
            crate::with_conn!(conn, |c| diesel::update(visits::table.find(v.id))
                .set((
                    visits::household_id.eq(v.household_id),
                    visits::notes.eq(&v.notes),
                    visits::lat.eq(v.lat),
                    visits::lon.eq(v.lon),
                ))
                .execute(c))?;
        }
        super::changes::insert(conn, &chs, Time::now())?;
        if parts.any() || written.is_some() {
            let mut after = match parts.any() {
                true => tallies::count(conn, Of::Households(&homes), parts)?,
                false => Tallies::default(),
            };
            if let Some(w) = &written {
                after = after.plus(w, 1);
            }
            let pending = std::mem::take(&mut self.tallies);
            self.tallies = pending.plus(&after.plus(&before, -1), 1);
        }
        Ok(())
    }

    /// Adds what the flushed writes changed to the stored tallies. Their rows stay locked
    /// until the transaction ends (writers of one village queue there), so this comes last.
    pub fn flush_tallies(&mut self, conn: &mut Conn<'_>) -> Result<()> {
        tallies::add(conn, &std::mem::take(&mut self.tallies))
    }

    /// The households whose tallies these rows can change, and which counts of each.
    fn tallied(
        &mut self,
        hs: &[Household],
        ms: &[Member],
        ads: &[Adoption],
        vs: &[Visit],
        changed_visits: &[Visit],
    ) -> BTreeMap<HouseholdId, Parts> {
        let before = std::mem::take(&mut self.before);
        let mut homes: BTreeMap<HouseholdId, Parts> = BTreeMap::new();
        let mut touch = |h: HouseholdId, p: Parts| {
            if p.any() {
                let e = homes.entry(h).or_default();
                *e = e.or(p);
            }
        };
        for h in hs {
            let old = before.households.get(&h.id).and_then(Option::as_ref);
            touch(h.id, Parts::of_household(old, h));
        }
        for m in ms {
            let old = before.members.get(&m.id).and_then(Option::as_ref);
            let p = Parts::of_member(old, m);
            touch(m.household_id, p);
            if let Some(o) = old {
                touch(o.household_id, p);
            }
        }
        for a in ads {
            let old = before
                .adoptions
                .get(&(a.member_id, a.campaign_id))
                .and_then(Option::as_ref);
            touch(a.household_id, Parts::of_adoption(old, a));
        }
        for v in vs {
            touch(v.household_id, Parts::of_visit(v));
        }
        // A visit moved by a merge leaves a household the merge deleted, which is touched.
        for v in changed_visits {
            touch(v.household_id, Parts::of_visit(v));
        }
        homes
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

/// Inserts or overwrites households, members and adoptions with one statement per table,
/// each prepared once per connection (`db::unnest`).
fn upsert_pg(
    c: &mut diesel::PgConnection,
    hs: &[Household],
    ms: &[Member],
    ads: &[Adoption],
) -> QueryResult<()> {
    if !hs.is_empty() {
        unnest::into("households")
            .column(households::id, hs.iter().map(|h| h.id).collect())
            .column(households::area_id, hs.iter().map(|h| h.area_id).collect())
            .column(
                households::address,
                hs.iter().map(|h| h.address.as_str()).collect(),
            )
            .column(
                households::head_name,
                hs.iter().map(|h| h.head_name.as_str()).collect(),
            )
            .column(
                households::phone,
                hs.iter().map(|h| h.phone.as_deref()).collect(),
            )
            .column(households::lat, hs.iter().map(|h| h.lat).collect())
            .column(households::lon, hs.iter().map(|h| h.lon).collect())
            .column(
                households::notes,
                hs.iter().map(|h| h.notes.as_str()).collect(),
            )
            .column(households::version, hs.iter().map(|h| h.version).collect())
            .column(
                households::field_meta,
                hs.iter().map(|h| h.field_meta.as_str()).collect(),
            )
            .column(
                households::search_key,
                hs.iter().map(|h| h.search_key.as_str()).collect(),
            )
            .column(
                households::created_by,
                hs.iter().map(|h| h.created_by).collect(),
            )
            .column(
                households::created_at,
                hs.iter().map(|h| h.created_at).collect(),
            )
            .column(
                households::updated_at,
                hs.iter().map(|h| h.updated_at).collect(),
            )
            .column(
                households::deleted_at,
                hs.iter().map(|h| h.deleted_at).collect(),
            )
            .column(
                households::anonymized_at,
                hs.iter().map(|h| h.anonymized_at).collect(),
            )
            .column(
                households::external_id,
                hs.iter().map(|h| h.external_id.as_deref()).collect(),
            )
            .column(
                households::merged_into,
                hs.iter().map(|h| h.merged_into).collect(),
            )
            .on_conflict(
                &[households::id::NAME],
                &[households::created_by::NAME, households::created_at::NAME],
            )
            .execute(c)?;
    }
    if !ms.is_empty() {
        unnest::into("members")
            .column(members::id, ms.iter().map(|m| m.id).collect())
            .column(
                members::household_id,
                ms.iter().map(|m| m.household_id).collect(),
            )
            .column(
                members::full_name,
                ms.iter().map(|m| m.full_name.as_str()).collect(),
            )
            .column(
                members::birth_year,
                ms.iter().map(|m| m.birth_year).collect(),
            )
            .column(members::sex, ms.iter().map(|m| m.sex).collect())
            .column(
                members::phone,
                ms.iter().map(|m| m.phone.as_deref()).collect(),
            )
            .column(
                members::smartphone,
                ms.iter().map(|m| m.smartphone).collect(),
            )
            .column(members::priority, ms.iter().map(|m| m.priority).collect())
            .column(
                members::notes,
                ms.iter().map(|m| m.notes.as_str()).collect(),
            )
            .column(members::version, ms.iter().map(|m| m.version).collect())
            .column(
                members::field_meta,
                ms.iter().map(|m| m.field_meta.as_str()).collect(),
            )
            .column(
                members::search_key,
                ms.iter().map(|m| m.search_key.as_str()).collect(),
            )
            .column(
                members::created_at,
                ms.iter().map(|m| m.created_at).collect(),
            )
            .column(
                members::updated_at,
                ms.iter().map(|m| m.updated_at).collect(),
            )
            .column(
                members::deleted_at,
                ms.iter().map(|m| m.deleted_at).collect(),
            )
            .column(
                members::anonymized_at,
                ms.iter().map(|m| m.anonymized_at).collect(),
            )
            .column(
                members::birth_decade,
                ms.iter().map(|m| m.birth_decade).collect(),
            )
            .column(
                members::external_id,
                ms.iter().map(|m| m.external_id.as_deref()).collect(),
            )
            .column(
                members::merged_into,
                ms.iter().map(|m| m.merged_into).collect(),
            )
            .on_conflict(
                &[members::id::NAME],
                &[members::household_id::NAME, members::created_at::NAME],
            )
            .execute(c)?;
    }
    if !ads.is_empty() {
        unnest::into("adoptions")
            .column(
                adoptions::member_id,
                ads.iter().map(|a| a.member_id).collect(),
            )
            .column(
                adoptions::campaign_id,
                ads.iter().map(|a| a.campaign_id).collect(),
            )
            .column(
                adoptions::household_id,
                ads.iter().map(|a| a.household_id).collect(),
            )
            .column(adoptions::status, ads.iter().map(|a| a.status).collect())
            .column(
                adoptions::recorded_at,
                ads.iter().map(|a| a.recorded_at).collect(),
            )
            .column(
                adoptions::recorded_by,
                ads.iter().map(|a| a.recorded_by).collect(),
            )
            .column(adoptions::version, ads.iter().map(|a| a.version).collect())
            .column(
                adoptions::field_meta,
                ads.iter().map(|a| a.field_meta.as_str()).collect(),
            )
            .on_conflict(
                &[adoptions::member_id::NAME, adoptions::campaign_id::NAME],
                &[adoptions::household_id::NAME],
            )
            .execute(c)?;
    }
    Ok(())
}
