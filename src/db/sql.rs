//! SQL types that mean the same on both backends: a UUID (`uuid` on PostgreSQL, text on
//! SQLite) and a timestamp (`timestamptz` on PostgreSQL, RFC 3339 text on SQLite).

use crate::domain::household::{
    AdoptionStatus, ConflictReason, ConflictStatus, Outcome, Priority, Record, Resolution, Sex,
    Smartphone,
};
use crate::domain::{
    AreaId, CampaignId, ConflictId, DeviceId, DuplicateId, EntityId, HouseholdId, MemberId,
    SessionId, Time, UserId, VisitId,
};
use chrono::{DateTime, Utc};
use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types;
use diesel::sqlite::{Sqlite, SqliteValue};

#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 2950, array_oid = 2951))]
#[diesel(sqlite_type(name = "Text"))]
pub struct Uid;

#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Text"))]
pub struct Ts;

/// Timestamps compare in time order on both backends (RFC 3339 text in UTC sorts so), so
/// `max` and `min` may run in SQL.
impl diesel::sql_types::SqlOrd for Ts {}

macro_rules! uid_sql {
    ($($name:ident),*) => {$(
        impl ToSql<Uid, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <uuid::Uuid as ToSql<sql_types::Uuid, Pg>>::to_sql(&self.0, out)
            }
        }
        impl FromSql<Uid, Pg> for $name {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                <uuid::Uuid as FromSql<sql_types::Uuid, Pg>>::from_sql(bytes).map(Self)
            }
        }
        impl ToSql<Uid, Sqlite> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
                out.set_value(self.0.hyphenated().to_string());
                Ok(IsNull::No)
            }
        }
        impl FromSql<Uid, Sqlite> for $name {
            fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
                let s = <String as FromSql<sql_types::Text, Sqlite>>::from_sql(value)?;
                Ok(Self(uuid::Uuid::parse_str(&s)?))
            }
        }
    )*};
}

uid_sql!(
    AreaId,
    UserId,
    SessionId,
    CampaignId,
    HouseholdId,
    MemberId,
    VisitId,
    EntityId,
    DeviceId,
    ConflictId,
    DuplicateId
);

impl ToSql<Ts, Pg> for Time {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <DateTime<Utc> as ToSql<sql_types::Timestamptz, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<Ts, Pg> for Time {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <DateTime<Utc> as FromSql<sql_types::Timestamptz, Pg>>::from_sql(bytes).map(Time)
    }
}

impl ToSql<Ts, Sqlite> for Time {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.to_text());
        Ok(IsNull::No)
    }
}

impl FromSql<Ts, Sqlite> for Time {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let s = <String as FromSql<sql_types::Text, Sqlite>>::from_sql(value)?;
        Ok(Time(DateTime::parse_from_rfc3339(&s)?.with_timezone(&Utc)))
    }
}

/// The domain's closed sets of values, stored as their names.
macro_rules! choice_sql {
    ($($name:ident),*) => {$(
        impl ToSql<sql_types::Text, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <str as ToSql<sql_types::Text, Pg>>::to_sql(self.as_str(), out)
            }
        }
        impl FromSql<sql_types::Text, Pg> for $name {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                let s = <String as FromSql<sql_types::Text, Pg>>::from_sql(bytes)?;
                $name::parse(&s).ok_or_else(|| format!("`{s}` is no {}", stringify!($name)).into())
            }
        }
        impl ToSql<sql_types::Text, Sqlite> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
                out.set_value(self.as_str());
                Ok(IsNull::No)
            }
        }
        impl FromSql<sql_types::Text, Sqlite> for $name {
            fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
                let s = <String as FromSql<sql_types::Text, Sqlite>>::from_sql(value)?;
                $name::parse(&s).ok_or_else(|| format!("`{s}` is no {}", stringify!($name)).into())
            }
        }
    )*};
}

choice_sql!(
    Sex,
    Smartphone,
    Priority,
    AdoptionStatus,
    Outcome,
    ConflictStatus,
    ConflictReason,
    Resolution,
    Record
);
