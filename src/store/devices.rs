//! Devices and the stored results of their numbered operations.

use super::error::{Error, Result};
use crate::db::prepared::prepared_update;
use crate::db::schema::{device_batches, devices};
use crate::db::Conn;
use crate::domain::{DeviceId, Time, UserId};
use crate::with_conn;
use diesel::dsl::Eq;
use diesel::prelude::*;
use std::collections::HashMap;

/// Registers the device for the user on first contact, then locks its row (serializing
/// batches of one device) and returns its `last_seq` and the largest clock skew seen from it
/// so far. A device belongs to one user.
pub fn claim(conn: &mut Conn<'_>, device: DeviceId, user: UserId) -> Result<(i64, i64)> {
    let now = Time::now();
    // One statement: the row made or touched, and locked, either way.
    let (owner, last_seq, max_skew): (UserId, i64, i64) =
        with_conn!(conn, |c| diesel::insert_into(devices::table)
            .values(first_contact(device, user, now))
            .on_conflict(devices::id)
            .do_update()
            .set(devices::updated_at.eq(now))
            .returning((devices::user_id, devices::last_seq, devices::max_skew_ms))
            .get_result(c))?;
    if owner != user {
        return Err(crate::domain::Error::Forbidden {
            code: "device_not_yours",
            detail: "this device id is registered to another user".into(),
        }
        .into());
    }
    Ok((last_seq, max_skew))
}

/// A device's row as its first contact makes it.
#[allow(clippy::type_complexity)]
fn first_contact(
    device: DeviceId,
    user: UserId,
    now: Time,
) -> (
    Eq<devices::id, DeviceId>,
    Eq<devices::user_id, UserId>,
    Eq<devices::last_seq, i64>,
    Eq<devices::max_skew_ms, i64>,
    Eq<devices::created_at, Time>,
    Eq<devices::updated_at, Time>,
) {
    (
        devices::id.eq(device),
        devices::user_id.eq(user),
        devices::last_seq.eq(0),
        devices::max_skew_ms.eq(0),
        devices::created_at.eq(now),
        devices::updated_at.eq(now),
    )
}

/// The device's owner and last applied seq, without locking; `None` if unknown.
pub fn get(conn: &mut Conn<'_>, device: DeviceId) -> Result<Option<(UserId, i64)>> {
    Ok(with_conn!(conn, |c| devices::table
        .find(device)
        .select((devices::user_id, devices::last_seq))
        .first(c)
        .optional())?)
}

/// Records the device's new `last_seq` and largest clock skew (the row is locked by `claim`).
pub fn set_last_seq(
    conn: &mut Conn<'_>,
    device: DeviceId,
    last_seq: i64,
    max_skew_ms: i64,
) -> Result<()> {
    let values = (
        devices::last_seq.eq(last_seq),
        devices::max_skew_ms.eq(max_skew_ms),
    );
    with_conn!(conn, |c| prepared_update(
        devices::table,
        devices::id.eq(device),
        values
    )
    .execute(c))?;
    Ok(())
}

/// Characters of an op's hash as stored (hex digits: the first 128 bits of its SHA-256).
pub const HASH_LEN: usize = 32;

/// A consumed seq: the hash of the op that used it and the result that was answered.
#[derive(Debug, Clone)]
pub struct StoredOp {
    pub op_hash: String,
    pub result: serde_json::Value,
}

/// The stored results of `seqs` (those consumed), by seq, from the rows of the batches that
/// consumed them.
pub fn stored_ops(
    conn: &mut Conn<'_>,
    device: DeviceId,
    seqs: &[i64],
) -> Result<HashMap<i64, StoredOp>> {
    let (Some(lo), Some(hi)) = (seqs.iter().min(), seqs.iter().max()) else {
        return Ok(HashMap::new());
    };
    let rows: Vec<(i64, i64, String, String)> = with_conn!(conn, |c| device_batches::table
        .filter(device_batches::device_id.eq(device))
        .filter(device_batches::last_seq.ge(lo))
        .filter(device_batches::first_seq.le(hi))
        .select((
            device_batches::first_seq,
            device_batches::last_seq,
            device_batches::op_hashes,
            device_batches::results
        ))
        .load(c))?;
    let mut found = HashMap::new();
    for (first, last, hashes, results) in rows {
        let results: Vec<serde_json::Value> =
            serde_json::from_str(&results).map_err(Error::corrupt)?;
        let n = (last - first + 1) as usize;
        if results.len() != n || hashes.len() != n * HASH_LEN {
            return Err(Error::corrupt(anyhow::anyhow!(
                "the stored batch {first}..={last} of device {device} holds {} results and {} hash digits",
                results.len(),
                hashes.len()
            )));
        }
        for (i, result) in results.into_iter().enumerate() {
            let seq = first + i as i64;
            if seqs.contains(&seq) {
                let op_hash = hashes[i * HASH_LEN..(i + 1) * HASH_LEN].to_owned();
                found.insert(seq, StoredOp { op_hash, result });
            }
        }
    }
    Ok(found)
}

/// Deletes the stored batches written before `before`, except each device's latest: the
/// only batch a device can send again (it resends its batch until it is answered, and
/// sends nothing newer meanwhile), so that every replay still gets its first answer. Returns
/// the number of batches deleted.
pub fn prune_batches(conn: &mut Conn<'_>, before: Time) -> Result<usize> {
    let newer = diesel::alias!(device_batches as newer);
    Ok(with_conn!(conn, |c| diesel::delete(
        device_batches::table
            .filter(device_batches::created_at.lt(before))
            .filter(diesel::dsl::exists(
                newer
                    .filter(
                        newer
                            .field(device_batches::device_id)
                            .eq(device_batches::device_id)
                    )
                    .filter(
                        newer
                            .field(device_batches::last_seq)
                            .gt(device_batches::last_seq)
                    )
            ))
    )
    .execute(c))?)
}

/// Stores the results of the seqs a batch consumed, `first_seq` onwards without a gap, as
/// one row: each op's hash (`HASH_LEN` hex digits) and the JSON of its result.
pub fn store_batch(
    conn: &mut Conn<'_>,
    device: DeviceId,
    first_seq: i64,
    ops: &[(String, String)],
) -> Result<()> {
    let Some(n) = i64::try_from(ops.len()).ok().filter(|n| *n > 0) else {
        return Ok(());
    };
    let mut hashes = String::with_capacity(ops.len() * HASH_LEN);
    let mut results = String::with_capacity(ops.iter().map(|o| o.1.len() + 1).sum::<usize>() + 1);
    results.push('[');
    for (i, (hash, result)) in ops.iter().enumerate() {
        debug_assert_eq!(hash.len(), HASH_LEN);
        hashes.push_str(hash);
        if i > 0 {
            results.push(',');
        }
        results.push_str(result);
    }
    results.push(']');
    let row = (
        device_batches::device_id.eq(device),
        device_batches::last_seq.eq(first_seq + n - 1),
        device_batches::first_seq.eq(first_seq),
        device_batches::op_hashes.eq(hashes),
        device_batches::results.eq(results),
        device_batches::created_at.eq(Time::now()),
    );
    with_conn!(conn, |c| diesel::insert_into(device_batches::table)
        .values(&row)
        .execute(c))?;
    Ok(())
}

/// What the field app says of itself at each sync (`POST /sync/report`).
#[derive(Debug, Clone)]
pub struct Report {
    pub app_version: String,
    /// Changes made on the phone and not yet acknowledged by the server.
    pub pending_changes: i64,
    /// When the oldest of them was made; none when nothing waits.
    pub oldest_pending_at: Option<Time>,
    /// The storage the app uses and the room it has left, as the browser tells it.
    pub storage_used_bytes: Option<i64>,
    pub storage_free_bytes: Option<i64>,
    /// The app's last errors, oldest first.
    pub last_errors: Vec<PhoneError>,
}

/// An error the field app met (a refused sync, an edit it could not store): when, and a
/// code; never a message that could carry personal data.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneError {
    pub at: Time,
    /// Lowercase letters, digits and `_ . : -`, up to 60: `http_500`, `storage_full`.
    #[schema(pattern = "^[a-z0-9_.:-]{1,60}$")]
    pub code: String,
}

pub use crate::domain::vocabulary::LOW_STORAGE_BYTES;

/// A phone as the console shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Phone {
    pub device_id: DeviceId,
    pub user_id: UserId,
    /// The later of its last push and its last report.
    pub last_sync_at: Time,
    /// As the field app last reported them; none before its first report.
    pub app_version: Option<String>,
    pub pending_changes: Option<i64>,
    pub oldest_pending_at: Option<Time>,
    pub storage_used_bytes: Option<i64>,
    pub storage_free_bytes: Option<i64>,
    /// The last errors it reported, oldest first.
    pub last_errors: Vec<PhoneError>,
}

impl Phone {
    /// Less than `LOW_STORAGE_BYTES` left, or errors in its last report.
    pub fn in_trouble(&self) -> bool {
        self.storage_free_bytes
            .is_some_and(|free| free < LOW_STORAGE_BYTES)
            || !self.last_errors.is_empty()
    }
}

/// Records a device's report, registering the device for the user on first contact.
pub fn report(conn: &mut Conn<'_>, device: DeviceId, user: UserId, r: &Report) -> Result<Phone> {
    let now = Time::now();
    with_conn!(conn, |c| diesel::insert_into(devices::table)
        .values(first_contact(device, user, now))
        .on_conflict_do_nothing()
        .execute(c))?;
    let owner: UserId = with_conn!(conn, |c| devices::table
        .find(device)
        .select(devices::user_id)
        .first(c))?;
    if owner != user {
        return Err(crate::domain::Error::Forbidden {
            code: "device_not_yours",
            detail: "this device id is registered to another user".into(),
        }
        .into());
    }
    let oldest = r.oldest_pending_at.filter(|_| r.pending_changes > 0);
    with_conn!(conn, |c| diesel::update(devices::table.find(device))
        .set((
            devices::app_version.eq(Some(&r.app_version)),
            devices::pending_changes.eq(Some(r.pending_changes)),
            devices::oldest_pending_at.eq(oldest),
            devices::reported_at.eq(Some(now)),
            devices::storage_used_bytes.eq(r.storage_used_bytes),
            devices::storage_free_bytes.eq(r.storage_free_bytes),
            devices::last_errors.eq((!r.last_errors.is_empty())
                .then(|| serde_json::to_string(&r.last_errors).unwrap_or_default())),
        ))
        .execute(c))?;
    Ok(phones(conn, &[user])?
        .into_iter()
        .find(|p| p.device_id == device)
        .expect("the device was just written"))
}

type PhoneRow = (
    DeviceId,
    UserId,
    Time,
    Option<Time>,
    Option<String>,
    Option<i64>,
    Option<Time>,
    (Option<i64>, Option<i64>, Option<String>),
);

/// The phones of these users, the most recently synced first.
pub fn phones(conn: &mut Conn<'_>, users: &[UserId]) -> Result<Vec<Phone>> {
    let mut out = Vec::new();
    for chunk in users.chunks(1000) {
        let rows: Vec<PhoneRow> = with_conn!(conn, |c| devices::table
            .filter(devices::user_id.eq_any(chunk))
            .select((
                devices::id,
                devices::user_id,
                devices::updated_at,
                devices::reported_at,
                devices::app_version,
                devices::pending_changes,
                devices::oldest_pending_at,
                (
                    devices::storage_used_bytes,
                    devices::storage_free_bytes,
                    devices::last_errors,
                ),
            ))
            .load(c))?;
        out.extend(rows.into_iter().map(
            |(device_id, user_id, pushed, reported, app_version, pending, oldest, health)| {
                let (used, free, errors) = health;
                Phone {
                    device_id,
                    user_id,
                    last_sync_at: reported.map_or(pushed, |r| r.max(pushed)),
                    app_version,
                    pending_changes: pending,
                    oldest_pending_at: oldest,
                    storage_used_bytes: used,
                    storage_free_bytes: free,
                    last_errors: errors
                        .and_then(|e| serde_json::from_str(&e).ok())
                        .unwrap_or_default(),
                }
            },
        ));
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.last_sync_at));
    Ok(out)
}
