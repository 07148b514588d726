//! The merge of two households found to be one (docs/DUPLICATES.md), as one write of the
//! one write path: the kept household keeps its id and its values and takes the other's
//! where its own are empty; members move to it, or, the same person as one already there,
//! merge into that one the same way; statuses merge by their own clocks; visits move. What
//! differs is booked as conflicts of the kept records. The merged household and members are
//! deleted naming their survivor (`merged_into`), so that edits still queued against them on
//! phones apply to it (`Transaction::redirect`).

use super::{change, Context, Done, Result, Transaction, UnitAt, Written};
use crate::db::Conn;
use crate::domain::duplicates as same;
use crate::domain::fields::{Entity, Mode, Patch};
use crate::domain::household::records::{
    Adoption, HouseholdFields, Member, MemberFields, HOUSEHOLD, MEMBER,
};
use crate::domain::household::rules::{self, Searched};
use crate::domain::household::{ChangeOp, Record};
use crate::domain::merge::{self, Loss};
use crate::domain::{EntityId, HouseholdId, Time};
use crate::store::scope::Principal;
use serde::Serialize;
use serde_json::{Map, Value};

/// The fields a merge compares: those an update may write, but the village (the kept
/// household stays where it is).
fn compared(entity: &Entity) -> impl Iterator<Item = &'static crate::domain::fields::Field> {
    entity
        .fields
        .iter()
        .filter(|f| !f.immutable && f.name != "area_id")
}

/// Whether a stored value counts as empty: none, blank, or the field's default.
fn empty(f: &crate::domain::fields::Field, v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty() || f.default == Some(s.as_str()),
        _ => false,
    }
}

/// Whether two values say the same: equal, or texts that fold alike (case, accents, spaces
/// and punctuation aside, as the duplicate rules compare them), or one phone written two ways.
fn alike(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => {
            x == y
                || same::fold(x) == same::fold(y)
                || same::phone(x).is_some() && same::phone(x) == same::phone(y)
        }
        _ => a == b,
    }
}

/// The other record's values for the kept one's empty fields, and the values that differ,
/// as losses of the other record's (each with the clock and author of the values).
fn compare(
    entity: &Entity,
    kept: &impl Serialize,
    kept_metas: &str,
    other: &impl Serialize,
    other_metas: &str,
) -> Result<(Map<String, Value>, Vec<Loss>)> {
    let (k, o) = (as_map(kept)?, as_map(other)?);
    let km = merge::decode(kept_metas).map_err(rules::malformed)?;
    let om = merge::decode(other_metas).map_err(rules::malformed)?;
    let (mut fill, mut losses) = (Map::new(), Vec::new());
    for f in compared(entity) {
        let (kv, ov) = (
            k.get(f.name).cloned().unwrap_or(Value::Null),
            o.get(f.name).cloned().unwrap_or(Value::Null),
        );
        if empty(f, &ov) || alike(&kv, &ov) {
            continue;
        }
        if empty(f, &kv) {
            fill.insert(f.name.to_owned(), ov);
            continue;
        }
        let who = |m: &merge::FieldMetas| {
            m.get(f.name)
                .map(|m| (m.by.to_string(), m.hlc.to_string()))
                .unwrap_or_default()
        };
        let ((kept_by, kept_hlc), (lost_by, lost_hlc)) = (who(&km), who(&om));
        losses.push(Loss {
            field: f.name.to_owned(),
            kept: kv,
            kept_by,
            kept_hlc,
            lost: ov,
            lost_by,
            lost_hlc,
            visible: None,
        });
    }
    Ok((fill, losses))
}

/// A record's fields by name, as it serializes.
fn as_map(r: &impl Serialize) -> Result<Map<String, Value>> {
    match serde_json::to_value(r) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(rules::malformed("a record that is no object").into()),
    }
}

/// Whether two members are one person: the same folded name and birth year, or the same
/// phone.
fn same_person(a: &Member, b: &Member) -> bool {
    let named = a.birth_year.is_some()
        && a.birth_year == b.birth_year
        && !same::fold(&a.full_name).is_empty()
        && same::fold(&a.full_name) == same::fold(&b.full_name);
    let phoned = match (&a.phone, &b.phone) {
        (Some(x), Some(y)) => same::phone(x).is_some() && same::phone(x) == same::phone(y),
        _ => false,
    };
    named || phoned
}

/// The clock of a record's `status` field.
fn status_clock(metas: &str) -> Result<String> {
    Ok(merge::decode(metas)
        .map_err(rules::malformed)?
        .get("status")
        .map(|m| m.hlc.to_string())
        .unwrap_or_default())
}

impl Transaction {
    /// Merges household `gone` into `keep` (both live, both covered by the caller; load them
    /// whole first with `preload_whole`). Answers what was written to `keep`.
    pub(super) fn merge_households(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        ctx: &Context,
        keep: HouseholdId,
        gone: HouseholdId,
    ) -> Result<Done> {
        if keep == gone {
            return Err(rules::malformed("a household merged into itself").into());
        }
        let (mut ku, version) = self.next_version(conn, who, keep)?;
        let (mut gu, gone_version) = self.next_version(conn, who, gone)?;
        let now = Time::now();
        let (k_area, g_area) = (ku.row.area_id, gu.row.area_id);
        let at_keep = UnitAt {
            household: keep,
            area: k_area,
            version,
        };
        let at_gone = UnitAt {
            household: gone,
            area: g_area,
            version: gone_version,
        };
        let (kept_children, gone_children) = (
            self.work.children(conn, keep)?,
            self.work.children(conn, gone)?,
        );

        // The household's own fields.
        let (fill, losses) = compare(
            &HOUSEHOLD,
            &ku.row,
            &ku.row.field_meta,
            &gu.row,
            &gu.row.field_meta,
        )?;
        let metas = std::mem::take(&mut ku.row.field_meta);
        let merged = match patch_of(&HOUSEHOLD, fill)? {
            None => unchanged(metas),
            Some(patch) => {
                let merged = rules::merge_into(&mut ku.row, &metas, &patch, &ctx.author, version)?;
                if HouseholdFields::renames(&patch) {
                    ku.row.search_key =
                        rules::household_search_key(&ku.row.head_name, &ku.row.address);
                }
                merged
            }
        };
        ku.row.field_meta = merged.metas;
        self.bump(ku, version, now);
        let done = self.finish(
            ctx,
            Written::upsert(Record::Household, EntityId(keep.0), at_keep),
            merged.values,
            losses,
        );

        // Members: each the same person as one already kept merges into them, the others move.
        let mut kept_members = Vec::new();
        for id in &kept_children.members {
            if let Some(m) = self
                .work
                .member(conn, *id)?
                .filter(|m| m.deleted_at.is_none())
            {
                kept_members.push(m);
            }
        }
        for id in &gone_children.members {
            let Some(mut m) = self
                .work
                .member(conn, *id)?
                .filter(|m| m.deleted_at.is_none())
            else {
                continue;
            };
            let adoptions: Vec<Adoption> = gone_children
                .adoptions
                .iter()
                .filter(|(member, _)| member == id)
                .map(|key| self.work.adoption(conn, *key))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect();
            let survivor = kept_members
                .iter()
                .find(|k| same_person(k, &m))
                .map(|k| k.id);
            // As this merge left them so far (an earlier member may have merged into them).
            let survivor = match survivor {
                Some(s) => self.work.member(conn, s)?,
                None => None,
            };
            match survivor {
                Some(survivor) => {
                    m.merged_into = Some(survivor.id);
                    self.merge_member(conn, ctx, survivor, &m, adoptions, at_keep)?;
                    m.deleted_at = Some(now);
                    m.version = gone_version;
                    m.updated_at = now;
                    self.work.put_member(m.clone());
                    self.finish(
                        ctx,
                        Written::delete(Record::Member, EntityId(m.id.0), at_gone),
                        Map::new(),
                        Vec::new(),
                    );
                }
                None => {
                    m.household_id = keep;
                    m.field_meta = restamp(&m.field_meta, version)?;
                    m.version = version;
                    m.updated_at = now;
                    self.work.put_member(m.clone());
                    self.work.push_change(change(
                        Record::Member,
                        EntityId(m.id.0),
                        at_keep,
                        ChangeOp::Upsert,
                    ));
                    for mut a in adoptions.iter().cloned() {
                        a.household_id = keep;
                        a.field_meta = restamp(&a.field_meta, version)?;
                        a.version = version;
                        self.work.put_adoption(a);
                    }
                    if !adoptions.is_empty() {
                        self.work.push_change(change(
                            Record::Adoption,
                            EntityId(m.id.0),
                            at_keep,
                            ChangeOp::Upsert,
                        ));
                    }
                }
            }
        }

        // Visits are facts: all of them move.
        for id in &gone_children.visits {
            if let Some(mut v) = self.work.visit(conn, *id)? {
                v.household_id = keep;
                self.work.rewrite_visit(v);
                let at = UnitAt {
                    version: 1,
                    ..at_keep
                };
                self.work
                    .push_change(change(Record::Visit, EntityId(id.0), at, ChangeOp::Upsert));
            }
        }

        gu.row.deleted_at = Some(now);
        gu.row.merged_into = Some(keep);
        self.bump(gu, gone_version, now);
        self.finish(
            ctx,
            Written::delete(Record::Household, EntityId(gone.0), at_gone),
            Map::new(),
            Vec::new(),
        );
        Ok(done)
    }

    /// Merges member `other` (of the merged household) into `survivor`, the same person:
    /// values, then statuses, each campaign's later one by its own clock.
    fn merge_member(
        &mut self,
        conn: &mut Conn<'_>,
        ctx: &Context,
        mut survivor: Member,
        other: &Member,
        adoptions: Vec<Adoption>,
        at: UnitAt,
    ) -> Result<()> {
        let (fill, losses) = compare(
            &MEMBER,
            &survivor,
            &survivor.field_meta,
            other,
            &other.field_meta,
        )?;
        let metas = std::mem::take(&mut survivor.field_meta);
        let merged = match patch_of(&MEMBER, fill)? {
            None => unchanged(metas),
            Some(patch) => {
                let merged =
                    rules::merge_into(&mut survivor, &metas, &patch, &ctx.author, at.version)?;
                if MemberFields::renames(&patch) {
                    survivor.search_key = rules::member_search_key(&survivor.full_name);
                }
                merged
            }
        };
        survivor.field_meta = merged.metas;
        survivor.version = at.version;
        survivor.updated_at = Time::now();
        let sid = survivor.id;
        self.work.put_member(survivor);
        self.finish(
            ctx,
            Written::upsert(Record::Member, EntityId(sid.0), at),
            merged.values,
            losses,
        );
        for theirs in adoptions {
            let campaign = theirs.campaign_id;
            let ours = self.work.adoption(conn, (sid, campaign))?;
            let mut losses = Vec::new();
            let row = match ours {
                None => Adoption {
                    member_id: sid,
                    household_id: at.household,
                    version: at.version,
                    ..theirs
                },
                Some(ours) => {
                    let (oc, tc) = (
                        status_clock(&ours.field_meta)?,
                        status_clock(&theirs.field_meta)?,
                    );
                    let (win, lose, lose_clock, win_clock) = match tc > oc {
                        true => (theirs, ours, oc, tc),
                        false => (ours, theirs, tc, oc),
                    };
                    if win.status != lose.status {
                        losses.push(Loss {
                            field: "status".to_owned(),
                            kept: win.status.as_str().into(),
                            kept_by: win.recorded_by.to_string(),
                            kept_hlc: win_clock,
                            lost: lose.status.as_str().into(),
                            lost_by: lose.recorded_by.to_string(),
                            lost_hlc: lose_clock,
                            visible: None,
                        });
                    }
                    Adoption {
                        member_id: sid,
                        household_id: at.household,
                        version: at.version,
                        ..win
                    }
                }
            };
            let values = Map::from_iter([("status".to_owned(), row.status.as_str().into())]);
            self.work.put_adoption(row);
            self.finish(
                ctx,
                Written::upsert(Record::Adoption, EntityId(sid.0), at).in_campaign(campaign),
                values,
                losses,
            );
        }
        Ok(())
    }
}

/// A moved record's field clocks, as written at the kept household's version `version`:
/// the versions they name were the merged household's, which devices of the kept one never
/// saw (clocks and authors stay).
fn restamp(metas: &str, version: i64) -> Result<String> {
    let mut m = merge::decode(metas).map_err(rules::malformed)?;
    for meta in m.values_mut() {
        meta.v = version;
        for same in &mut meta.same {
            same.v = version;
        }
    }
    Ok(merge::encode(&m))
}

/// A record the merge fills nothing of.
fn unchanged(metas: String) -> rules::Merged {
    rules::Merged {
        values: Map::new(),
        losses: Vec::new(),
        metas,
    }
}

/// A patch of stored values (valid as stored); none when there is nothing to fill.
fn patch_of(entity: &Entity, fill: Map<String, Value>) -> Result<Option<Patch>> {
    if fill.is_empty() {
        return Ok(None);
    }
    Patch::parse(entity, &Value::Object(fill), Mode::Update)
        .map(Some)
        .map_err(|e| {
            rules::malformed(format!(
                "a stored value no longer valid: {}",
                e.first().map_or("", |e| e.field.as_str())
            ))
            .into()
        })
}
