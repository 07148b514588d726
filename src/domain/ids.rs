//! Typed identifiers and timestamps, so that ids cannot be swapped.
//!
//! The diesel derives only name the SQL type; the conversions live in `db::sql`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};
use uuid::Uuid;

macro_rules! typed_id {
    ($($name:ident),* $(,)?) => {$(
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            diesel::AsExpression, diesel::FromSqlRow, utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[diesel(sql_type = crate::db::sql::Uid)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    )*};
}

typed_id!(
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

/// A point in time, stored as `timestamptz` on PostgreSQL and as fixed-width RFC 3339 text
/// (which sorts in time order) on SQLite.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    diesel::AsExpression,
    diesel::FromSqlRow,
    utoipa::ToSchema,
)]
#[serde(transparent)]
#[diesel(sql_type = crate::db::sql::Ts)]
pub struct Time(pub DateTime<Utc>);

impl Time {
    pub fn now() -> Self {
        // Microseconds: both databases keep that precision, so a value read back compares equal.
        let now = Utc::now();
        Time(DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now))
    }

    pub fn to_text(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// Days are counted in Vietnam's time: UTC+7, with no daylight saving.
pub const LOCAL_OFFSET_HOURS: i64 = 7;

/// The calendar day (in Vietnam) of an instant.
pub fn local_date(t: &Time) -> chrono::NaiveDate {
    (t.0 + chrono::Duration::hours(LOCAL_OFFSET_HOURS)).date_naive()
}
