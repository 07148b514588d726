//! Writing a `Work` back: new rows in multi-row inserts, changed rows upserted (PostgreSQL)
//! or updated with prepared statements (SQLite), then the change-log rows.

use super::error::{Error, Result};
use super::households::{Adoption, Household, Member, Visit};
use super::tallies::{self, Of, Parts, Tallies};
use super::work::{Stored, Work};
use crate::db::prepared::{prepared_row_update, prepared_update};
use crate::db::schema::{adoptions, changes, households, members, visits};
use crate::db::Conn;
use crate::domain::{HouseholdId, Time};
use crate::insert_rows;
use diesel::prelude::*;
use diesel::upsert::excluded;
use std::collections::BTreeSet;

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
        let (homes, parts) = self.tallied(&hs, &ms, &ads, &vs, &changed_visits);
        // Households that were stored before these writes: the others counted nothing.
        let stored: Vec<HouseholdId> = homes
            .iter()
            .copied()
            .filter(|h| self.stored.households.contains_key(h))
            .collect();
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
        let now = Time::now();
        let rows: Vec<_> = chs.iter().map(|ch| ch.values(now)).collect();
        insert_rows!(conn, changes::table, &rows[..])?;
        if parts.any() {
            let after = tallies::count(conn, Of::Households(&homes), parts)?;
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

    /// The households whose tallies these rows can change, and which counts.
    fn tallied(
        &mut self,
        hs: &[Household],
        ms: &[Member],
        ads: &[Adoption],
        vs: &[Visit],
        changed_visits: &[Visit],
    ) -> (Vec<HouseholdId>, Parts) {
        let before = std::mem::take(&mut self.before);
        let mut homes = BTreeSet::new();
        let mut parts = Parts::default();
        let mut touch = |h: HouseholdId, p: Parts| {
            if p.any() {
                homes.insert(h);
                parts = parts.or(p);
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
        (homes.into_iter().collect(), parts)
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
                households::anonymized_at.eq(excluded(households::anonymized_at)),
                households::external_id.eq(excluded(households::external_id)),
                households::merged_into.eq(excluded(households::merged_into)),
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
                members::anonymized_at.eq(excluded(members::anonymized_at)),
                members::birth_decade.eq(excluded(members::birth_decade)),
                members::external_id.eq(excluded(members::external_id)),
                members::merged_into.eq(excluded(members::merged_into)),
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
