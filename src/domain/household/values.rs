//! The closed sets of values of a unit's fields, as typed enums: a person's sex, smartphone,
//! priority, an adoption's status and a visit's outcome; and those of its conflict books. Each is stored and sent as its
//! snake_case name; the validator (`domain::fields`) and the OpenAPI document list the same
//! names. The diesel derives only name the SQL type (text); the conversions live in
//! `db::sql`.

use std::fmt;

/// Declares an enum of named values with its names in order (`NAMES`), `as_str` and `parse`.
macro_rules! choice {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize,
            serde::Deserialize, diesel::AsExpression, diesel::FromSqlRow, utoipa::ToSchema,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub const NAMES: &'static [&'static str] = &[$($text),*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

choice!(Sex {
    Male = "male",
    Female = "female",
    Other = "other",
});

choice!(
    /// Whether the person has a smartphone that could run the app.
    Smartphone {
        Yes = "yes",
        No = "no",
        Unknown = "unknown",
    }
);

choice!(
    /// Why a person must be reached first (people in quarantine or awaiting tests).
    Priority {
        /// No priority.
        None = "none",
        QuarantineCentralized = "quarantine_centralized",
        QuarantineHome = "quarantine_home",
        TestingRequired = "testing_required",
    }
);

choice!(
    /// Where a person stands with the campaign's app.
    AdoptionStatus {
        NotYet = "not_yet",
        Installed = "installed",
        InstalledWithHelp = "installed_with_help",
        AlreadyInstalled = "already_installed",
        Refused = "refused",
        NoSmartphone = "no_smartphone",
        Incompatible = "incompatible",
        Later = "later",
    }
);

choice!(
    /// What a visit found.
    Outcome {
        Met = "met",
        NotHome = "not_home",
        Refused = "refused",
        ComeBackLater = "come_back_later",
        MovedAway = "moved_away",
    }
);

choice!(
    /// Whether a conflict awaits review.
    ConflictStatus {
        Open = "open",
        Resolved = "resolved",
    }
);

choice!(
    /// Why a conflict was recorded.
    ConflictReason {
        /// A value lost to a concurrent write of the same field.
        ConcurrentEdit = "concurrent_edit",
        /// An edit of a deleted record, kept and not applied.
        Deleted = "deleted",
    }
);

choice!(
    /// How a conflict was closed.
    Resolution {
        /// The current value was kept.
        Keep = "keep",
        /// The losing value was written.
        TakeOther = "take_other",
        /// Another value was written.
        Set = "set",
        /// A later write made it moot.
        Superseded = "superseded",
    }
);

impl Priority {
    pub fn is_priority(self) -> bool {
        self != Priority::None
    }
}

impl AdoptionStatus {
    /// The statuses that count as "has the app".
    pub const INSTALLED: &'static [&'static str] = &[
        AdoptionStatus::Installed.as_str(),
        AdoptionStatus::InstalledWithHelp.as_str(),
        AdoptionStatus::AlreadyInstalled.as_str(),
    ];

    pub fn is_installed(self) -> bool {
        Self::INSTALLED.contains(&self.as_str())
    }
}

impl Outcome {
    /// The outcomes that call for another visit.
    pub const REVISIT: &'static [&'static str] =
        &[Outcome::NotHome.as_str(), Outcome::ComeBackLater.as_str()];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each value's name is the one serde (and so the OpenAPI document) gives it.
    fn round_trip<T: serde::Serialize + Copy + PartialEq + fmt::Debug>(
        all: &[T],
        names: &[&str],
        parse: fn(&str) -> Option<T>,
    ) {
        assert_eq!(all.len(), names.len());
        for (v, name) in all.iter().zip(names) {
            assert_eq!(parse(name), Some(*v));
            assert_eq!(serde_json::to_value(v).unwrap(), *name);
        }
    }

    #[test]
    fn names_round_trip_and_serialize_as_sent() {
        round_trip(Sex::ALL, Sex::NAMES, Sex::parse);
        round_trip(Smartphone::ALL, Smartphone::NAMES, Smartphone::parse);
        round_trip(Priority::ALL, Priority::NAMES, Priority::parse);
        round_trip(
            AdoptionStatus::ALL,
            AdoptionStatus::NAMES,
            AdoptionStatus::parse,
        );
        round_trip(Outcome::ALL, Outcome::NAMES, Outcome::parse);
        round_trip(
            ConflictStatus::ALL,
            ConflictStatus::NAMES,
            ConflictStatus::parse,
        );
        round_trip(
            ConflictReason::ALL,
            ConflictReason::NAMES,
            ConflictReason::parse,
        );
        round_trip(Resolution::ALL, Resolution::NAMES, Resolution::parse);
        assert_eq!(AdoptionStatus::NAMES.len(), AdoptionStatus::ALL.len());
        assert_eq!(
            serde_json::from_str::<Priority>("\"testing_required\"").unwrap(),
            Priority::TestingRequired
        );
        assert!(serde_json::from_str::<Outcome>("\"maybe\"").is_err());
        assert!(AdoptionStatus::InstalledWithHelp.is_installed());
        assert!(!AdoptionStatus::Later.is_installed());
        assert!(!Priority::None.is_priority() && Priority::QuarantineHome.is_priority());
        assert_eq!(Outcome::REVISIT, ["not_home", "come_back_later"]);
    }
}
