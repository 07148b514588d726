//! Devices and the stored results of their numbered operations.

use crate::db::any::any_of;
use crate::db::prepared::prepared_update;
use crate::db::schema::{device_ops, devices};
use crate::db::Conn;
use crate::domain::{DeviceId, Time, UserId};
use crate::error::{ApiError, ApiResult};
use crate::{insert_rows, with_conn};
use diesel::prelude::*;

/// Registers the device for the user on first contact, then locks its row (serializing
/// batches of one device) and returns its `last_seq` and the largest clock skew seen from it
/// so far. A device belongs to one user.
pub fn claim(conn: &mut Conn<'_>, device: DeviceId, user: UserId) -> ApiResult<(i64, i64)> {
    let now = Time::now();
    with_conn!(conn, |c| diesel::insert_into(devices::table)
        .values((
            devices::id.eq(device),
            devices::user_id.eq(user),
            devices::last_seq.eq(0),
            devices::max_skew_ms.eq(0),
            devices::created_at.eq(now),
            devices::updated_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    let (owner, last_seq, max_skew): (UserId, i64, i64) =
        with_conn!(conn, |c| diesel::update(devices::table.find(device))
            .set(devices::updated_at.eq(now))
            .returning((devices::user_id, devices::last_seq, devices::max_skew_ms))
            .get_result(c))?;
    if owner != user {
        return Err(
            ApiError::forbidden("this device id is registered to another user")
                .with_code("device_not_yours"),
        );
    }
    Ok((last_seq, max_skew))
}

/// The device's owner and last applied seq, without locking; `None` if unknown.
pub fn get(conn: &mut Conn<'_>, device: DeviceId) -> ApiResult<Option<(UserId, i64)>> {
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
) -> ApiResult<()> {
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

/// A consumed seq: what was sent (id and hash) and the result that was answered.
#[derive(Debug, Clone, Queryable)]
pub struct StoredOp {
    pub seq: i64,
    pub op_id: crate::domain::EntityId,
    pub op_hash: String,
    pub result: String,
}

pub fn stored_ops(conn: &mut Conn<'_>, device: DeviceId, seqs: &[i64]) -> ApiResult<Vec<StoredOp>> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    Ok(with_conn!(conn, |c| device_ops::table
        .filter(device_ops::device_id.eq(device))
        .filter(any_of(device_ops::seq, seqs))
        .select((
            device_ops::seq,
            device_ops::op_id,
            device_ops::op_hash,
            device_ops::result
        ))
        .load(c))?)
}

/// Stores the results of consumed seqs, with their clock skews, in multi-row inserts.
pub fn store_ops(
    conn: &mut Conn<'_>,
    device: DeviceId,
    ops: Vec<(StoredOp, i64)>,
) -> ApiResult<()> {
    let now = Time::now();
    let rows: Vec<_> = ops
        .into_iter()
        .map(|(op, skew)| {
            (
                device_ops::device_id.eq(device),
                device_ops::seq.eq(op.seq),
                device_ops::op_id.eq(op.op_id),
                device_ops::op_hash.eq(op.op_hash),
                device_ops::result.eq(op.result),
                device_ops::skew_ms.eq(skew),
                device_ops::created_at.eq(now),
            )
        })
        .collect();
    insert_rows!(conn, device_ops::table, &rows[..])?;
    Ok(())
}
