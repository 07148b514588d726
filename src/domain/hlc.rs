//! Hybrid logical clock stamps as devices send them: `2020-08-21T03:04:05.123Z-0001`.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hlc {
    /// Wall-clock milliseconds since the epoch.
    pub millis: i64,
    /// Logical counter for events within the same millisecond.
    pub counter: u32,
}

impl Hlc {
    pub fn at(time: DateTime<Utc>) -> Self {
        Hlc {
            millis: time.timestamp_millis(),
            counter: 0,
        }
    }

    /// The wall-clock time of the stamp.
    pub fn wall(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.millis)
            .single()
            .unwrap_or_default()
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let (time, counter) = s
            .rsplit_once('-')
            .filter(|(t, _)| t.ends_with('Z'))
            .ok_or_else(|| format!("`{s}` is not an HLC like 2020-08-21T03:04:05.123Z-0001"))?;
        let time =
            DateTime::parse_from_rfc3339(time).map_err(|e| format!("`{s}` has a bad time: {e}"))?;
        let counter = counter
            .parse::<u32>()
            .map_err(|_| format!("`{s}` has a bad counter"))?;
        Ok(Hlc {
            millis: time.timestamp_millis(),
            counter,
        })
    }

    /// A device clock ahead of the server must not win: the stamp is capped at the server's
    /// receive time. Returns the clamped stamp and the skew in milliseconds (0 when none).
    pub fn clamp_to(self, received: DateTime<Utc>) -> (Hlc, i64) {
        let now = received.timestamp_millis();
        if self.millis > now {
            (
                Hlc {
                    millis: now,
                    counter: self.counter,
                },
                self.millis - now,
            )
        } else {
            (self, 0)
        }
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = self.wall().to_rfc3339_opts(SecondsFormat::Millis, true);
        write!(f, "{time}-{:04}", self.counter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_orders() {
        let a = Hlc::parse("2020-08-21T03:04:05.123Z-0001").unwrap();
        assert_eq!(a.to_string(), "2020-08-21T03:04:05.123Z-0001");
        let b = Hlc::parse("2020-08-21T03:04:05.123Z-0002").unwrap();
        assert!(b > a);
        assert!(Hlc::parse("2020-08-21T03:04:05Z").is_err());
    }

    #[test]
    fn clamps_future_stamps() {
        let now = Utc.with_ymd_and_hms(2020, 8, 21, 0, 0, 0).unwrap();
        let ahead = Hlc {
            millis: now.timestamp_millis() + 5000,
            counter: 3,
        };
        let (c, skew) = ahead.clamp_to(now);
        assert_eq!(
            (c.millis, c.counter, skew),
            (now.timestamp_millis(), 3, 5000)
        );
    }
}
