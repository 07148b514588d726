//! The closed sets of values of a unit's fields, as typed enums: a person's sex, smartphone,
//! priority, an adoption's status and a visit's outcome; and those of its conflict books.
//! Each is stored and sent as its snake_case name, and carries its Vietnamese label
//! (`domain::vocabulary`); the validator (`domain::fields`) and the OpenAPI document list
//! the same names. The diesel derives only name the SQL type (text); the conversions live
//! in `db::sql`.

use crate::domain::vocabulary::choice;
#[cfg(test)]
use std::fmt;

choice!(Sex as "sex" {
    Male = "male" => "Nam",
    Female = "female" => "Nữ",
    Other = "other" => "Khác",
});

choice!(
    /// Whether the person has a smartphone that could run the app.
    Smartphone as "smartphone" {
        Yes = "yes" => "Có ĐTTM",
        No = "no" => "Không có ĐTTM",
        Unknown = "unknown" => "Chưa rõ ĐTTM",
    }
);

choice!(
    /// Why a person must be reached first (people in quarantine or awaiting tests).
    Priority as "priority" {
        /// No priority.
        None = "none" => "Không ưu tiên",
        QuarantineCentralized = "quarantine_centralized" => "Cách ly tập trung",
        QuarantineHome = "quarantine_home" => "Cách ly tại nhà",
        TestingRequired = "testing_required" => "Phải xét nghiệm",
    }
);

choice!(
    /// Where a person stands with the campaign's app.
    AdoptionStatus as "adoption_status" {
        NotYet = "not_yet" => "Chưa cài",
        Installed = "installed" => "Đã cài",
        InstalledWithHelp = "installed_with_help" => "Đã cài (có hỗ trợ)",
        AlreadyInstalled = "already_installed" => "Đã có sẵn",
        Refused = "refused" => "Từ chối cài",
        NoSmartphone = "no_smartphone" => "Không có ĐTTM",
        Incompatible = "incompatible" => "Máy không tương thích",
        Later = "later" => "Sẽ cài sau",
    }
);

choice!(
    /// What a visit found.
    Outcome as "outcome" {
        Met = "met" => "Gặp",
        NotHome = "not_home" => "Vắng nhà",
        Refused = "refused" => "Từ chối tiếp",
        ComeBackLater = "come_back_later" => "Hẹn quay lại",
        MovedAway = "moved_away" => "Đã chuyển đi",
    }
);

choice!(
    /// Whether a conflict awaits review.
    ConflictStatus as "conflict_status" {
        Open = "open" => "Chờ xem xét",
        Resolved = "resolved" => "Đã xử lý",
    }
);

choice!(
    /// Why a conflict was recorded.
    ConflictReason as "conflict_reason" {
        /// A value lost to a concurrent write of the same field.
        ConcurrentEdit = "concurrent_edit" => "Sửa cùng lúc",
        /// An edit of a deleted record, kept and not applied.
        Deleted = "deleted" => "Sửa bản ghi đã xóa",
    }
);

choice!(
    /// How a conflict was closed.
    Resolution as "resolution" {
        /// The current value was kept.
        Keep = "keep" => "Giữ giá trị hiện tại",
        /// The losing value was written.
        TakeOther = "take_other" => "Lấy giá trị kia",
        /// Another value was written.
        Set = "set" => "Nhập giá trị khác",
        /// A later write made it moot.
        Superseded = "superseded" => "Bị thay bởi lần ghi sau",
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
