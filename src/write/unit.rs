//! Each write to a unit, as `Transaction` runs it: the scope and precondition checks, the domain
//! rules, and the rows and change-log entries staged on the identity map.

use super::{
    change, BookEntry, Context, Done, Error, RecordedVisit, Result, Transaction, UnitAt, Written,
};
use crate::db::Conn;
use crate::domain::fields::Patch;
use crate::domain::household::records::{
    Adoption, Household, HouseholdFields, Member, MemberFields, NewHousehold, NewMember, Visit,
    VisitFields,
};
use crate::domain::household::rules::{self, Searched};
use crate::domain::household::{retention, ChangeOp, Error as Rule, Parent, Record};
use crate::domain::merge::FieldMeta;
use crate::domain::vocabulary::AreaLevel;
use crate::domain::{AreaId, CampaignId, EntityId, HouseholdId, MemberId, Time, VisitId};
use crate::store::scope::Principal;
use crate::store::work::Unit;
use serde_json::{Map, Value};

impl Transaction {
    /// The village's path, if the caller covers it; households live in villages only.
    fn village(&mut self, conn: &mut Conn<'_>, who: &Principal, area: AreaId) -> Result<String> {
        let place = self.work.area(conn, area)?.ok_or(Rule::NotFound("area"))?;
        covers(who, &place.path)?;
        if place.level != AreaLevel::Village.as_str() {
            return Err(Rule::NotAVillage.into());
        }
        Ok(place.path)
    }

    /// The live household the caller covers, with the unit's next version.
    pub(super) fn next_version(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        id: HouseholdId,
    ) -> Result<(Unit, i64)> {
        let (u, v) = self.any_next_version(conn, who, id)?;
        if u.row.deleted_at.is_some() {
            return Err(Rule::Deleted(Record::Household).into());
        }
        Ok((u, v))
    }

    /// The household the caller covers, deleted or not, with the unit's next version.
    fn any_next_version(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        id: HouseholdId,
    ) -> Result<(Unit, i64)> {
        let u = self
            .work
            .unit(conn, id)?
            .ok_or(Rule::NotFound("household"))?;
        covers(who, &u.path)?;
        let v = u.row.version + 1;
        Ok((u, v))
    }

    /// Stores the unit at its new version.
    pub(super) fn bump(&mut self, mut u: Unit, version: i64, now: Time) {
        u.row.version = version;
        u.row.updated_at = now;
        self.work.put_household(u);
    }

    fn live_member(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        id: MemberId,
    ) -> Result<(Unit, Member, i64)> {
        let m = self
            .work
            .member(conn, id)?
            .ok_or(Rule::NotFound("member"))?;
        let (u, version) = self.next_version(conn, who, m.household_id)?;
        if m.deleted_at.is_some() {
            return Err(Rule::Deleted(Record::Member).into());
        }
        Ok((u, m, version))
    }

    pub(super) fn create_household(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        ctx: &Context,
        id: HouseholdId,
        new: &NewHousehold,
    ) -> Result<Done> {
        let f = &new.fields;
        let path = self.village(conn, who, f.area_id)?;
        if self.work.unit_ref(conn, id)?.is_some() {
            return Err(Rule::Exists(Record::Household).into());
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
            field_meta: new.metas.encode(&ctx.author.meta_at(1)),
            created_by: who.user_id,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            anonymized_at: None,
            external_id: f.external_id.clone(),
            merged_into: None,
        };
        let area = row.area_id;
        self.work.put_household(Unit { row, path });
        let wrote = Written::upsert(
            Record::Household,
            EntityId(id.0),
            UnitAt {
                household: id,
                area,
                version: 1,
            },
        );
        Ok(self.finish(ctx, wrote, new.values.clone(), Vec::new()))
    }

    pub(super) fn update_household(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        ctx: &Context,
        id: HouseholdId,
        patch: &Patch,
    ) -> Result<Done> {
        let (mut u, version) = self.next_version(conn, who, id)?;
        ctx.pre.check(Some(u.row.version))?;
        let mut new_path = None;
        if let Some(area) = patch.get("area_id").and_then(Value::as_str) {
            let area: AreaId = area.parse().map_err(rules::malformed)?;
            new_path = Some(self.village(conn, who, area)?);
        }
        let old_area = u.row.area_id;
        let metas = std::mem::take(&mut u.row.field_meta);
        let merged = rules::merge_into(&mut u.row, &metas, patch, &ctx.author, version)?;
        if u.row.area_id != old_area {
            u.path = new_path.unwrap_or(u.path);
        }
        if HouseholdFields::renames(patch) {
            u.row.search_key = rules::household_search_key(&u.row.head_name, &u.row.address);
        }
        u.row.field_meta = merged.metas;
        let area = u.row.area_id;
        let moved = area != old_area;
        self.bump(u, version, Time::now());
        let eid = EntityId(id.0);
        if moved {
            // Devices of the old village drop the household (and with it its members,
            // adoptions and visits); the new village's devices get the whole unit.
            self.work.push_change(change(
                Record::Household,
                eid,
                UnitAt {
                    household: id,
                    area: old_area,
                    version,
                },
                ChangeOp::Delete,
            ));
        }
        let wrote = Written::upsert(
            Record::Household,
            eid,
            UnitAt {
                household: id,
                area,
                version,
            },
        );
        let done = self.finish(ctx, wrote, merged.values, merged.losses);
        if moved {
            self.rerecord_children(conn, id, area)?;
        }
        Ok(done)
    }

    /// Logs every member, adoption and visit of a household that moved to `area`.
    fn rerecord_children(
        &mut self,
        conn: &mut Conn<'_>,
        id: HouseholdId,
        area: AreaId,
    ) -> Result<()> {
        let children = self.work.children(conn, id)?;
        for m in children.members {
            if let Some(m) = self.work.member(conn, m)? {
                self.work.push_change(change(
                    Record::Member,
                    EntityId(m.id.0),
                    UnitAt {
                        household: id,
                        area,
                        version: m.version,
                    },
                    tombstone(m.deleted_at),
                ));
            }
        }
        // One entry per member: it stands for all the member's adoptions.
        let mut seen_members = std::collections::BTreeSet::new();
        for key in children.adoptions {
            if let Some(ad) = self.work.adoption(conn, key)? {
                if seen_members.insert(ad.member_id) {
                    let eid = EntityId(ad.member_id.0);
                    self.work.push_change(change(
                        Record::Adoption,
                        eid,
                        UnitAt {
                            household: id,
                            area,
                            version: ad.version,
                        },
                        ChangeOp::Upsert,
                    ));
                }
            }
        }
        for v in children.visits {
            self.work.push_change(change(
                Record::Visit,
                EntityId(v.0),
                UnitAt {
                    household: id,
                    area,
                    version: 1,
                },
                ChangeOp::Upsert,
            ));
        }
        Ok(())
    }

    /// Soft-deletes a household; it travels to devices as a tombstone.
    pub(super) fn delete_household(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        ctx: &Context,
        id: HouseholdId,
    ) -> Result<Done> {
        let (mut u, version) = self.next_version(conn, who, id)?;
        ctx.pre.check(Some(u.row.version))?;
        let now = Time::now();
        u.row.deleted_at = Some(now);
        let area = u.row.area_id;
        self.bump(u, version, now);
        let wrote = Written::delete(
            Record::Household,
            EntityId(id.0),
            UnitAt {
                household: id,
                area,
                version,
            },
        );
        Ok(self.finish(ctx, wrote, Map::new(), Vec::new()))
    }

    pub(super) fn create_member(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        ctx: &Context,
        id: MemberId,
        new: &NewMember,
    ) -> Result<Done> {
        let f = &new.fields;
        let (u, version) = match self.next_version(conn, who, f.household_id) {
            Err(Error::Rule(Rule::NotFound(_))) => {
                return Err(Rule::UnknownParent {
                    field: "household_id",
                    parent: Parent::Household,
                }
                .into())
            }
            r => r?,
        };
        if self.work.member(conn, id)?.is_some() {
            return Err(Rule::Exists(Record::Member).into());
        }
        let now = Time::now();
        let (hid, area) = (u.row.id, u.row.area_id);
        self.bump(u, version, now);
        self.work.put_member(Member {
            id,
            household_id: hid,
            search_key: new.search_key.clone(),
            full_name: f.full_name.clone(),
            birth_year: f.birth_year,
            sex: f.sex,
            phone: f.phone.clone(),
            smartphone: f.smartphone,
            priority: f.priority,
            notes: f.notes.clone(),
            version,
            field_meta: new.metas.encode(&ctx.author.meta_at(version)),
            created_at: now,
            updated_at: now,
            deleted_at: None,
            anonymized_at: None,
            birth_decade: None,
            external_id: f.external_id.clone(),
            merged_into: None,
        });
        let wrote = Written::upsert(
            Record::Member,
            EntityId(id.0),
            UnitAt {
                household: hid,
                area,
                version,
            },
        );
        Ok(self.finish(ctx, wrote, new.values.clone(), Vec::new()))
    }

    pub(super) fn update_member(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        ctx: &Context,
        id: MemberId,
        patch: &Patch,
    ) -> Result<Done> {
        let (u, mut cur, version) = self.live_member(conn, who, id)?;
        ctx.pre.check(Some(cur.version))?;
        let metas = std::mem::take(&mut cur.field_meta);
        let merged = rules::merge_into(&mut cur, &metas, patch, &ctx.author, version)?;
        let now = Time::now();
        if MemberFields::renames(patch) {
            cur.search_key = rules::member_search_key(&cur.full_name);
        }
        cur.version = version;
        cur.field_meta = merged.metas;
        cur.updated_at = now;
        let (hid, area) = (u.row.id, u.row.area_id);
        self.bump(u, version, now);
        self.work.put_member(cur);
        let wrote = Written::upsert(
            Record::Member,
            EntityId(id.0),
            UnitAt {
                household: hid,
                area,
                version,
            },
        );
        Ok(self.finish(ctx, wrote, merged.values, merged.losses))
    }

    pub(super) fn delete_member(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        ctx: &Context,
        id: MemberId,
    ) -> Result<Done> {
        let (u, mut cur, version) = self.live_member(conn, who, id)?;
        ctx.pre.check(Some(cur.version))?;
        let now = Time::now();
        cur.deleted_at = Some(now);
        cur.version = version;
        cur.updated_at = now;
        let (hid, area) = (u.row.id, u.row.area_id);
        self.bump(u, version, now);
        self.work.put_member(cur);
        let wrote = Written::delete(
            Record::Member,
            EntityId(id.0),
            UnitAt {
                household: hid,
                area,
                version,
            },
        );
        Ok(self.finish(ctx, wrote, Map::new(), Vec::new()))
    }

    pub(super) fn set_adoption(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        ctx: &Context,
        member: MemberId,
        campaign: CampaignId,
        patch: &Patch,
    ) -> Result<Done> {
        if !self.work.campaign_exists(conn, campaign)? {
            return Err(Rule::NotFound("campaign").into());
        }
        let (u, _, version) = self.live_member(conn, who, member)?;
        let existing = self.work.adoption(conn, (member, campaign))?;
        ctx.pre.check(existing.as_ref().map(|e| e.version))?;
        let before = existing.as_ref().map(|e| {
            (
                rules::Status {
                    status: e.status,
                    recorded_at: e.recorded_at,
                    recorded_by: e.recorded_by,
                },
                e.field_meta.as_str(),
            )
        });
        let (status, merged) = rules::set_status(
            before.as_ref().map(|(s, m)| (s, *m)),
            patch,
            &ctx.author,
            who.user_id,
            version,
        )?;
        let now = Time::now();
        let (hid, area) = (u.row.id, u.row.area_id);
        self.bump(u, version, now);
        self.work.put_adoption(Adoption {
            member_id: member,
            campaign_id: campaign,
            household_id: hid,
            status: status.status,
            recorded_at: status.recorded_at,
            recorded_by: status.recorded_by,
            version,
            field_meta: merged.metas,
        });
        let wrote = Written::upsert(
            Record::Adoption,
            EntityId(member.0),
            UnitAt {
                household: hid,
                area,
                version,
            },
        )
        .in_campaign(campaign);
        Ok(self.finish(ctx, wrote, merged.values, merged.losses))
    }

    /// Records a visit. Visits are facts: resending the same visit answers it unchanged;
    /// another visit under a used id is refused.
    pub(super) fn record_visit(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        id: VisitId,
        patch: &Patch,
    ) -> Result<Done> {
        let f: VisitFields = serde_json::from_value(Value::Object(patch.fields().clone()))
            .map_err(rules::malformed)?;
        let u = self
            .work
            .unit(conn, f.household_id)?
            .ok_or(Rule::UnknownParent {
                field: "household_id",
                parent: Parent::Household,
            })?;
        covers(who, &u.path)?;
        if !self.work.campaign_exists(conn, f.campaign_id)? {
            return Err(Rule::UnknownParent {
                field: "campaign_id",
                parent: Parent::Campaign,
            }
            .into());
        }
        let (household_id, area_id) = (u.row.id, u.row.area_id);
        let done = |visit, new| Done {
            household_id,
            area_id,
            household_version: None,
            merged: false,
            visit: Some(RecordedVisit { visit, new }),
            book: None,
            redirected_to: None,
        };
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
        if let Some(existing) = self.work.visit(conn, id)? {
            let same = Visit {
                created_at: existing.created_at,
                canvasser_id: existing.canvasser_id,
                ..visit.clone()
            };
            return if same == existing {
                Ok(done(existing, false))
            } else {
                Err(Rule::IdReused.into())
            };
        }
        self.work.put_visit(visit.clone());
        self.work.push_change(change(
            Record::Visit,
            EntityId(id.0),
            UnitAt {
                household: household_id,
                area: area_id,
                version: 1,
            },
            ChangeOp::Upsert,
        ));
        Ok(done(visit, true))
    }
}

impl Transaction {
    /// Removes the personal data of a household unit, deleted records and visits included,
    /// as one new version that syncs out like any edit: devices that hold the household
    /// receive it emptied. Anonymizing it again changes nothing.
    pub(super) fn anonymize_household(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        ctx: &Context,
        id: HouseholdId,
    ) -> Result<Done> {
        let (mut u, version) = self.any_next_version(conn, who, id)?;
        let write = ctx.author.meta_at(version);
        let now = Time::now();
        let area = u.row.area_id;
        let children = self.work.children(conn, id)?;
        for mid in children.members {
            if let Some(m) = self.work.member(conn, mid)? {
                self.put_anonymized(
                    m,
                    &write,
                    UnitAt {
                        household: id,
                        area,
                        version,
                    },
                    now,
                )?;
            }
        }
        for vid in children.visits {
            let Some(mut v) = self.work.visit(conn, vid)? else {
                continue;
            };
            retention::anonymize_visit(&mut v);
            self.work.rewrite_visit(v);
            self.work.push_change(change(
                Record::Visit,
                EntityId(vid.0),
                UnitAt {
                    household: id,
                    area,
                    version: 1,
                },
                ChangeOp::Upsert,
            ));
        }
        retention::anonymize_household(&mut u.row, &write, now)?;
        let op = tombstone(u.row.deleted_at);
        self.bump(u, version, now);
        self.work.push_change(change(
            Record::Household,
            EntityId(id.0),
            UnitAt {
                household: id,
                area,
                version,
            },
            op,
        ));
        Ok(self.scrubbed(id, area, version, None, retention::HOUSEHOLD_FIELDS))
    }

    /// Removes one member's personal data (deleted or not), and the household's head name
    /// (and phone, if the same) when the member is its head.
    pub(super) fn erase_member(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        ctx: &Context,
        id: MemberId,
    ) -> Result<Done> {
        let m = self
            .work
            .member(conn, id)?
            .ok_or(Rule::NotFound("member"))?;
        let (mut u, version) = self.any_next_version(conn, who, m.household_id)?;
        let write = ctx.author.meta_at(version);
        let now = Time::now();
        let (hid, area) = (u.row.id, u.row.area_id);
        let head: &'static [&'static str] = match retention::heads(&u.row, &m) {
            true => {
                retention::forget_head(&mut u.row, &m, &write)?;
                &["head_name", "phone"]
            }
            false => &[],
        };
        self.put_anonymized(
            m,
            &write,
            UnitAt {
                household: hid,
                area,
                version,
            },
            now,
        )?;
        if !head.is_empty() {
            self.work.push_change(change(
                Record::Household,
                EntityId(hid.0),
                UnitAt {
                    household: hid,
                    area,
                    version,
                },
                tombstone(u.row.deleted_at),
            ));
        }
        self.bump(u, version, now);
        Ok(self.scrubbed(hid, area, version, Some(id), head))
    }

    /// Stages a member emptied of its personal data at the unit's new version (`at`: the
    /// household, its village and that version), and logs it.
    fn put_anonymized(
        &mut self,
        mut m: Member,
        write: &FieldMeta,
        at: UnitAt,
        now: Time,
    ) -> Result<()> {
        retention::anonymize_member(&mut m, write, now)?;
        m.version = at.version;
        m.updated_at = now;
        let (id, op) = (EntityId(m.id.0), tombstone(m.deleted_at));
        self.work.put_member(m);
        self.work.push_change(change(Record::Member, id, at, op));
        Ok(())
    }

    /// Books the scrub of the conflicts of what an anonymizing write emptied.
    fn scrubbed(
        &mut self,
        household: HouseholdId,
        area: AreaId,
        version: i64,
        member: Option<MemberId>,
        household_fields: &'static [&'static str],
    ) -> Done {
        self.books.push(super::Book::Scrub {
            household,
            member,
            household_fields,
        });
        Done {
            household_id: household,
            area_id: area,
            household_version: Some(version),
            merged: false,
            visit: None,
            book: Some(BookEntry(self.books.len() - 1)),
            redirected_to: None,
        }
    }
}

/// The change a record's write logs: devices drop a deleted record, fetch a live one.
fn tombstone(deleted_at: Option<Time>) -> ChangeOp {
    match deleted_at {
        Some(_) => ChangeOp::Delete,
        None => ChangeOp::Upsert,
    }
}

pub(super) fn covers(who: &Principal, path: &str) -> Result<(), Rule> {
    match who.covers(path) {
        true => Ok(()),
        false => Err(Rule::OutOfScope),
    }
}
