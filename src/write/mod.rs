//! The one write path of household units. REST edits, pushed batches and conflict
//! resolutions all change households, members, adoptions and visits through `Transaction`: it
//! loads what a write names (`store::work`), checks scope and precondition, runs the domain
//! rules (`domain::household`), and at `commit` flushes the rows and keeps the conflict
//! books: the values that lost are recorded, an edit of a deleted record is kept for review,
//! and the open conflicts that a write made moot are closed.

use crate::db::Conn;
use crate::domain::fields::Patch;
use crate::domain::hlc::Hlc;
use crate::domain::household::records::{Household, Member, NewHousehold, NewMember, Visit};
use crate::domain::household::{retention, ChangeOp, Error as Rule, Precondition, Record};
use crate::domain::merge::{Author, Loss};
use crate::domain::{
    self, AreaId, CampaignId, ConflictId, DeviceId, EntityId, HouseholdId, MemberId, VisitId,
};
use crate::store::changes::Change;
use crate::store::conflicts::{self, Origin, Seen};
use crate::store::error as store;
use crate::store::scope::Principal;
use crate::store::work::Work;
use serde_json::{Map, Value};

/// Why a write did not happen.
#[derive(Debug)]
pub enum Error {
    /// A rule of the household refused it: the writer's to fix (or, `Malformed`, a bug).
    Rule(Rule),
    /// Another rule of the domain refused it (a resolution of a closed conflict).
    Domain(domain::Error),
    /// The database failed.
    Store(store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Rule> for Error {
    fn from(e: Rule) -> Self {
        Error::Rule(e)
    }
}

impl From<domain::Error> for Error {
    fn from(e: domain::Error) -> Self {
        Error::Domain(e)
    }
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        Error::Store(e)
    }
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        Error::Store(e.into())
    }
}

/// What a write is made in: its author (who, at what clock, having seen which version), its
/// precondition, and for a device's op, which op.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub author: Author,
    pub pre: Precondition,
    pub op: Option<FromOp<'a>>,
}

/// The device op a write comes from: its conflicts name it, and an edit of a deleted record
/// is kept with the op's data.
#[derive(Debug, Clone, Copy)]
pub struct FromOp<'a> {
    pub device: DeviceId,
    pub seq: i64,
    pub data: &'a Map<String, Value>,
}

impl<'a> Context<'a> {
    pub fn new(by: String, hlc: Hlc, pre: Precondition) -> Context<'static> {
        Context {
            author: Author {
                by,
                hlc,
                base_version: pre.base(),
            },
            pre,
            op: None,
        }
    }

    /// A person writing online, now: a REST edit or a resolution.
    pub fn online(who: &Principal, pre: Precondition) -> Context<'static> {
        Context::new(who.author(), Hlc::at(chrono::Utc::now()), pre)
    }

    /// The same write made to the household a merged one went into: the author had seen
    /// nothing of it, so that every field merges by its clock (`docs/SYNC.md`).
    pub fn redirected(&self) -> Context<'a> {
        let pre = match self.pre {
            Precondition::Device { .. } => Precondition::Device { base: 0 },
            pre => pre,
        };
        Context {
            author: Author {
                base_version: pre.base(),
                ..self.author.clone()
            },
            pre,
            op: self.op,
        }
    }

    /// A device's queued op, written at its (clamped) clock, having seen unit version `base`.
    pub fn device(hlc: Hlc, base: i64, op: FromOp<'_>) -> Context<'_> {
        Context {
            op: Some(op),
            ..Context::new(op.device.to_string(), hlc, Precondition::Device { base })
        }
    }
}

/// One write to a unit.
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    CreateHousehold(HouseholdId, &'a NewHousehold),
    UpdateHousehold(HouseholdId, &'a Patch),
    DeleteHousehold(HouseholdId),
    CreateMember(MemberId, &'a NewMember),
    UpdateMember(MemberId, &'a Patch),
    DeleteMember(MemberId),
    SetAdoption(MemberId, CampaignId, &'a Patch),
    RecordVisit(VisitId, &'a Patch),
    /// Removes the personal data of a household, its members (deleted ones too) and its
    /// visits (`domain::household::retention`).
    AnonymizeHousehold(HouseholdId),
    /// Removes one member's personal data, and the household's head name if it is theirs.
    EraseMember(MemberId),
    /// Merges the second household into the first (`merge`): load both whole first.
    MergeHouseholds(HouseholdId, HouseholdId),
}

/// What a write did.
#[derive(Debug, Clone)]
pub struct Done {
    pub household_id: HouseholdId,
    /// The household's village after the write.
    pub area_id: AreaId,
    /// The unit's new version; `None` for a visit, which is not part of it.
    pub household_version: Option<i64>,
    /// Whether a value of this write's author lost to a concurrent write.
    pub merged: bool,
    /// The visit recorded, for a visit.
    pub visit: Option<RecordedVisit>,
    /// Its entry in the conflict books: `commit` answers the conflicts recorded for it.
    pub book: Option<BookEntry>,
    /// The household the write was made to instead of the merged one it named.
    pub redirected_to: Option<HouseholdId>,
}

/// A visit as recorded, and whether this write recorded it (a resend answers the first one).
#[derive(Debug, Clone)]
pub struct RecordedVisit {
    pub visit: Visit,
    pub new: bool,
}

/// A write's entry in a transaction's conflict books.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookEntry(usize);

/// What a committed write changed in the tallies, not yet stored (`Transaction::commit_but_tallies`).
#[must_use = "the tallies are stored by `store`"]
pub struct Tallied(Work);

impl Tallied {
    /// Stores the tallies: the last write of the transaction.
    pub fn store(mut self, conn: &mut Conn<'_>) -> Result<()> {
        Ok(self.0.flush_tallies(conn)?)
    }
}

/// The conflicts a transaction's commit recorded, by book entry.
#[derive(Debug, Default)]
pub struct Booked(Vec<Vec<ConflictId>>);

impl Booked {
    /// Takes the conflicts recorded for one entry (each entry is taken once).
    pub fn take(&mut self, entry: BookEntry) -> Vec<ConflictId> {
        self.0
            .get_mut(entry.0)
            .map(std::mem::take)
            .unwrap_or_default()
    }
}

/// Where a unit stands after a write: its household, the household's village and the unit's
/// version.
#[derive(Debug, Clone, Copy)]
struct UnitAt {
    household: HouseholdId,
    area: AreaId,
    version: i64,
}

/// A write that did not happen, and its entry in the books if it was kept for review (an
/// edit of a deleted record).
#[derive(Debug)]
pub struct Refused {
    pub error: Error,
    pub book: Option<BookEntry>,
}

/// The record a write changed, and where the unit stands after it.
struct Written {
    record: Record,
    id: EntityId,
    campaign: Option<CampaignId>,
    at: UnitAt,
    op: ChangeOp,
}

impl Written {
    fn upsert(record: Record, id: EntityId, at: UnitAt) -> Written {
        Written {
            record,
            id,
            campaign: None,
            at,
            op: ChangeOp::Upsert,
        }
    }

    fn delete(record: Record, id: EntityId, at: UnitAt) -> Written {
        Written {
            op: ChangeOp::Delete,
            ..Written::upsert(record, id, at)
        }
    }

    fn in_campaign(self, campaign: CampaignId) -> Written {
        Written {
            campaign: Some(campaign),
            ..self
        }
    }
}

/// What a write leaves to record once the rows are written.
enum Book {
    Losses {
        origin: Origin,
        /// The written fields' values after the merge.
        values: Map<String, Value>,
        losses: Vec<Loss>,
        seen: Seen,
    },
    Deleted {
        origin: Origin,
        edit: Value,
        by: String,
        hlc: String,
    },
    /// Anonymized records: their conflicts lose the removed values.
    Scrub {
        household: HouseholdId,
        /// One member erased (else the whole household was anonymized).
        member: Option<MemberId>,
        /// The household fields emptied.
        household_fields: &'static [&'static str],
    },
}

/// The writes to household units of one database transaction: `apply` them one by one, then
/// `commit` once.
#[derive(Default)]
pub struct Transaction {
    work: Work,
    books: Vec<Book>,
}

/// One write in the caller's transaction: applied, written and booked.
pub fn one(conn: &mut Conn<'_>, who: &Principal, ctx: &Context, write: Write) -> Result<Done> {
    let mut tx = Transaction::new();
    let done = tx.apply(conn, who, ctx, write).map_err(|r| r.error)?;
    tx.commit(conn)?;
    Ok(done)
}

/// The change-log entry of a record's write, at `at` (the record's own version there).
fn change(record: Record, id: EntityId, at: UnitAt, op: ChangeOp) -> Change {
    Change {
        entity: record.as_str(),
        entity_id: id,
        household_id: Some(at.household),
        area_id: Some(at.area),
        op: op.as_str(),
        version: at.version,
    }
}

impl Transaction {
    pub fn new() -> Transaction {
        Transaction::default()
    }

    /// Loads (and on PostgreSQL locks) what a batch names, in a few queries.
    pub fn preload(
        &mut self,
        conn: &mut Conn<'_>,
        households: &[HouseholdId],
        members: &[MemberId],
        visits: &[VisitId],
        areas: &[AreaId],
    ) -> Result<()> {
        Ok(self
            .work
            .preload(conn, households, members, visits, areas)?)
    }

    /// Loads (and on PostgreSQL locks) whole households: with all their members, adoptions
    /// and visits (`Work::preload_whole`).
    pub fn preload_whole(&mut self, conn: &mut Conn<'_>, households: &[HouseholdId]) -> Result<()> {
        Ok(self.work.preload_whole(conn, households)?)
    }

    pub fn household_exists(&mut self, conn: &mut Conn<'_>, id: HouseholdId) -> Result<bool> {
        Ok(self.work.unit_ref(conn, id)?.is_some())
    }

    /// Where edits of this household go: the household itself, or, merged, the household
    /// it was merged into (followed to the live one).
    pub fn survivor(&mut self, conn: &mut Conn<'_>, id: HouseholdId) -> Result<HouseholdId> {
        let mut at = id;
        // A merge never names a merged household, but a chain of merges is followed.
        for _ in 0..16 {
            match self
                .work
                .unit_ref(conn, at)?
                .and_then(|u| u.row.merged_into)
            {
                Some(next) => at = next,
                None => break,
            }
        }
        Ok(at)
    }

    /// Where edits of this member go: the member, or the member they were merged into.
    pub fn member_survivor(&mut self, conn: &mut Conn<'_>, id: MemberId) -> Result<MemberId> {
        let mut at = id;
        for _ in 0..16 {
            match self.work.member(conn, at)?.and_then(|m| m.merged_into) {
                Some(next) => at = next,
                None => break,
            }
        }
        Ok(at)
    }

    /// The household of a member (deleted or not), if the member exists.
    pub fn member_household(
        &mut self,
        conn: &mut Conn<'_>,
        id: MemberId,
    ) -> Result<Option<HouseholdId>> {
        Ok(self.work.member(conn, id)?.map(|m| m.household_id))
    }

    /// The household if the caller may see it (deleted ones included).
    pub fn household(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        id: HouseholdId,
    ) -> Result<Household> {
        let u = self
            .work
            .unit(conn, id)?
            .ok_or(Rule::NotFound("household"))?;
        unit::covers(who, &u.path)?;
        Ok(u.row)
    }

    /// The member if the caller may see its household (deleted ones included).
    pub fn member(&mut self, conn: &mut Conn<'_>, who: &Principal, id: MemberId) -> Result<Member> {
        let m = self
            .work
            .member(conn, id)?
            .ok_or(Rule::NotFound("member"))?;
        self.household(conn, who, m.household_id)?;
        Ok(m)
    }

    /// Applies one write in memory: all of it or, refused, none of it. An edit of a deleted
    /// record is booked for review all the same.
    pub fn apply(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        ctx: &Context,
        write: Write,
    ) -> Result<Done, Refused> {
        self.work.begin();
        let books = self.books.len();
        let error = match self.run(conn, who, ctx, write) {
            Ok(done) => return Ok(done),
            Err(e) => e,
        };
        self.work.rollback();
        self.books.truncate(books);
        let book = match &error {
            Error::Rule(Rule::Deleted(_)) => match self.book_deleted(conn, ctx, write) {
                Ok(book) => book,
                Err(error) => return Err(Refused { error, book: None }),
            },
            _ => None,
        };
        Err(Refused { error, book })
    }

    /// Adds a row of the change log that no record's write makes (a device's batch marker):
    /// written in the same statement as the records' rows, after them.
    pub fn log(&mut self, change: Change) {
        self.work.push_change(change);
    }

    /// Writes everything, then keeps the books in write order, now that the rows they point
    /// at are written. Answers the conflicts recorded for each book entry.
    pub fn commit(self, conn: &mut Conn<'_>) -> Result<Booked> {
        let (booked, tallies) = self.commit_but_tallies(conn)?;
        tallies.store(conn)?;
        Ok(booked)
    }

    /// `commit` but for the tallies, which the caller stores as the last write of its
    /// transaction (`Tallied::store`): their rows stay locked until the transaction ends,
    /// and writers of the same villages queue there.
    pub fn commit_but_tallies(mut self, conn: &mut Conn<'_>) -> Result<(Booked, Tallied)> {
        // Only entities stored before these writes can have open conflicts (an adoption's
        // entity is its member).
        let entities: Vec<EntityId> = self
            .books
            .iter()
            .filter_map(|b| match b {
                Book::Losses { origin, .. } if self.work.stored(origin.entity_id.0) => {
                    Some(origin.entity_id)
                }
                _ => None,
            })
            .collect();
        let touched = self.work.identity_touched();
        self.work.flush(conn)?;
        // Possible duplicates, in the same transaction as the writes that made them.
        crate::store::duplicates::refresh(conn, &touched)?;
        let mut open = conflicts::entities_with_open(conn, &entities)?;
        // The scrubs of anonymized records, in one pass over their households' conflicts.
        let scrubs: Vec<conflicts::Scrub> = self
            .books
            .iter()
            .filter_map(|b| match b {
                Book::Scrub {
                    household,
                    member,
                    household_fields,
                } => Some(conflicts::Scrub {
                    household: *household,
                    member: *member,
                    household_fields,
                }),
                _ => None,
            })
            .collect();
        conflicts::scrub(conn, &scrubs)?;
        let mut out = Vec::with_capacity(self.books.len());
        for book in self.books {
            match book {
                Book::Losses {
                    origin,
                    values,
                    losses,
                    seen,
                } => {
                    if open.contains(&origin.entity_id) {
                        conflicts::supersede(conn, &origin, &values, &seen)?;
                    }
                    // What an anonymizing write overwrote is gone: it is not booked.
                    let losses: Vec<_> = losses
                        .into_iter()
                        .filter(|l| l.kept_by != retention::WRITER)
                        .collect();
                    if !losses.is_empty() {
                        open.insert(origin.entity_id);
                    }
                    out.push(conflicts::record_losses(conn, &origin, &losses)?);
                }
                Book::Deleted {
                    origin,
                    edit,
                    by,
                    hlc,
                } => out.push(vec![conflicts::record_deleted(
                    conn, &origin, &edit, &by, &hlc,
                )?]),
                // Done above.
                Book::Scrub { .. } => out.push(Vec::new()),
            }
        }
        Ok((Booked(out), Tallied(self.work)))
    }

    fn origin(
        ctx: &Context,
        record: Record,
        entity_id: EntityId,
        household: HouseholdId,
        area: AreaId,
        campaign: Option<CampaignId>,
    ) -> Origin {
        Origin {
            household_id: household,
            area_id: area,
            entity: record,
            entity_id,
            campaign_id: campaign,
            device_id: ctx.op.map(|o| o.device),
            seq: ctx.op.map(|o| o.seq),
        }
    }

    /// Logs the record's change and books the write's losses: how every write to a unit
    /// ends. Answers what the write did.
    fn finish(
        &mut self,
        ctx: &Context,
        w: Written,
        values: Map<String, Value>,
        losses: Vec<Loss>,
    ) -> Done {
        let UnitAt {
            household,
            area,
            version,
        } = w.at;
        self.work.push_change(change(w.record, w.id, w.at, w.op));
        let merged = losses.iter().any(|l| l.lost_by == ctx.author.by);
        let seen = if ctx.pre.saw_open_losses() {
            Seen::Everything
        } else {
            Seen::Base {
                by: ctx.author.by.clone(),
                hlc: ctx.author.hlc.to_string(),
                base: ctx.author.base_version,
            }
        };
        self.books.push(Book::Losses {
            origin: Self::origin(ctx, w.record, w.id, household, area, w.campaign),
            values,
            losses,
            seen,
        });
        Done {
            household_id: household,
            area_id: area,
            household_version: Some(version),
            merged,
            visit: None,
            book: Some(BookEntry(self.books.len() - 1)),
            redirected_to: None,
        }
    }

    /// Books an edit of a deleted record (kept for review, not applied), if its record
    /// exists.
    fn book_deleted(
        &mut self,
        conn: &mut Conn<'_>,
        ctx: &Context,
        write: Write,
    ) -> Result<Option<BookEntry>> {
        let (record, id, household, campaign, patch) = match write {
            Write::UpdateHousehold(h, p) => (Record::Household, h.0, Some(h), None, Some(p)),
            Write::DeleteHousehold(h) => (Record::Household, h.0, Some(h), None, None),
            Write::UpdateMember(m, p) => (
                Record::Member,
                m.0,
                self.member_household(conn, m)?,
                None,
                Some(p),
            ),
            Write::DeleteMember(m) => (
                Record::Member,
                m.0,
                self.member_household(conn, m)?,
                None,
                None,
            ),
            Write::SetAdoption(m, c, p) => (
                Record::Adoption,
                m.0,
                self.member_household(conn, m)?,
                Some(c),
                Some(p),
            ),
            Write::CreateHousehold(..)
            | Write::CreateMember(..)
            | Write::RecordVisit(..)
            | Write::AnonymizeHousehold(..)
            | Write::EraseMember(..)
            | Write::MergeHouseholds(..) => return Ok(None),
        };
        let Some(household) = household else {
            return Ok(None);
        };
        // The data of an edit made before the record was anonymized is dropped with it.
        let member_gone = match record {
            Record::Household => false,
            _ => self
                .work
                .member(conn, MemberId(id))?
                .is_some_and(|m| m.anonymized_at.is_some()),
        };
        let Some(area) = self
            .work
            .unit_ref(conn, household)?
            .filter(|u| u.row.anonymized_at.is_none() && !member_gone)
            .map(|u| u.row.area_id)
        else {
            return Ok(None);
        };
        let edit = match (ctx.op, patch) {
            (Some(op), _) => Value::Object(op.data.clone()),
            (None, Some(p)) => Value::Object(p.fields().clone()),
            (None, None) => Value::Object(Map::new()),
        };
        self.books.push(Book::Deleted {
            origin: Self::origin(ctx, record, EntityId(id), household, area, campaign),
            edit,
            by: ctx.author.by.clone(),
            hlc: ctx.author.hlc.to_string(),
        });
        Ok(Some(BookEntry(self.books.len() - 1)))
    }

    fn run(
        &mut self,
        conn: &mut Conn<'_>,
        who: &Principal,
        ctx: &Context,
        write: Write,
    ) -> Result<Done> {
        match write {
            Write::CreateHousehold(id, new) => self.create_household(conn, who, ctx, id, new),
            Write::UpdateHousehold(id, patch) => self.update_household(conn, who, ctx, id, patch),
            Write::DeleteHousehold(id) => self.delete_household(conn, who, ctx, id),
            Write::CreateMember(id, new) => self.create_member(conn, who, ctx, id, new),
            Write::UpdateMember(id, patch) => self.update_member(conn, who, ctx, id, patch),
            Write::DeleteMember(id) => self.delete_member(conn, who, ctx, id),
            Write::SetAdoption(member, campaign, patch) => {
                self.set_adoption(conn, who, ctx, member, campaign, patch)
            }
            Write::RecordVisit(id, patch) => self.record_visit(conn, who, id, patch),
            Write::AnonymizeHousehold(id) => self.anonymize_household(conn, who, ctx, id),
            Write::EraseMember(id) => self.erase_member(conn, who, ctx, id),
            Write::MergeHouseholds(keep, gone) => self.merge_households(conn, who, ctx, keep, gone),
        }
    }
}

mod merge;
pub mod resolve;
mod unit;
