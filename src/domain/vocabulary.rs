//! One vocabulary: every closed set of values, declared once with `choice!`, each value with
//! its stored name and its Vietnamese label; and every field's label (`field`). The validator
//! and the OpenAPI document read the names, the exports and the register import read the
//! labels, and the dashboard, the console and the field app receive both in one served module
//! (`javascript`, committed as `src/field/vocabulary.js` and checked by a test against this
//! declaration).

use std::fmt;

/// A value set as the apps receive it: its name, and each value's stored name and label.
#[derive(Debug, Clone, Copy)]
pub struct ValueSet {
    pub name: &'static str,
    pub values: &'static [(&'static str, &'static str)],
}

impl ValueSet {
    /// The label of a stored name of this set, if it is one.
    pub fn label_of(&self, name: &str) -> Option<&'static str> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, l)| *l)
    }
}

/// Declares an enum of named values: its stored names in order (`NAMES`), `as_str`, `parse`,
/// each value's Vietnamese `label`, and the set as the apps receive it (`SET`).
macro_rules! choice {
    ($(#[$doc:meta])* $name:ident as $set:literal {
        $($(#[$vdoc:meta])* $variant:ident = $text:literal => $label:literal),* $(,)?
    }) => {
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
            pub const SET: $crate::domain::vocabulary::ValueSet =
                $crate::domain::vocabulary::ValueSet {
                    name: $set,
                    values: &[$(($text, $label)),*],
                };

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The value's Vietnamese label, as the pages and the exports show it.
            pub const fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)*
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use choice;

choice!(
    /// A level of the administrative tree.
    AreaLevel as "area_level" {
        Province = "province" => "Tỉnh",
        District = "district" => "Huyện",
        Commune = "commune" => "Xã",
        Village = "village" => "Thôn",
    }
);

choice!(
    /// Whom a campaign's installation rate counts over.
    Denominator as "denominator" {
        /// Every registered person.
        Registered = "registered" => "Nhân khẩu đăng ký",
        /// The persons with a smartphone.
        Smartphone = "smartphone" => "Người có điện thoại thông minh",
    }
);

choice!(
    /// What an area's target is: a rate over a denominator, or a count of installs.
    TargetKind as "target_kind" {
        RateRegistered = "rate_registered" => "Tỷ lệ trên nhân khẩu",
        RateSmartphone = "rate_smartphone" => "Tỷ lệ trên người có điện thoại thông minh",
        Count = "count" => "Số lượng",
    }
);

choice!(
    /// Why the activity check flagged a visit.
    ActivityCheck as "activity_flag" {
        FarFromHousehold = "far_from_household" => "Xa nhà",
        TooSoonAfterPrevious = "too_soon_after_previous" => "Quá gần lần thăm trước",
    }
);

choice!(
    /// Why two households may be one (`domain::duplicates`).
    DuplicateRule as "duplicate_rule" {
        /// The same phone (a household's or a member's) in the commune.
        Phone = "phone" => "Cùng số điện thoại",
        /// The same head name and address in the village.
        NameAddress = "name_address" => "Cùng tên chủ hộ và địa chỉ",
        /// The same head name in the village, and a member with the same name and birth year.
        NamePerson = "name_person" => "Cùng tên chủ hộ và một nhân khẩu",
    }
);

choice!(
    /// Where a pair of possible duplicates stands.
    DuplicateStatus as "duplicate_status" {
        Open = "open" => "Chưa xem",
        Merged = "merged" => "Đã gộp",
        Dismissed = "dismissed" => "Không trùng",
    }
);

/// The Vietnamese label of each field, the one the forms, the tables, the exports' columns and
/// the register's template all show. A household's phone listed beside a person's is
/// `household_phone`.
pub mod field {
    pub const HOUSEHOLD_CODE: &str = "Mã hộ";
    pub const VILLAGE: &str = "Thôn";
    pub const COMMUNE: &str = "Xã";
    pub const HEAD_NAME: &str = "Chủ hộ";
    pub const ADDRESS: &str = "Địa chỉ";
    pub const PHONE: &str = "Điện thoại";
    pub const HOUSEHOLD_PHONE: &str = "Điện thoại hộ";
    pub const NOTES: &str = "Ghi chú";
    pub const LAT: &str = "Vĩ độ";
    pub const LON: &str = "Kinh độ";
    pub const PERSON_CODE: &str = "Mã nhân khẩu";
    pub const FULL_NAME: &str = "Họ tên";
    pub const BIRTH_YEAR: &str = "Năm sinh";
    pub const SEX: &str = "Giới tính";
    pub const SMARTPHONE: &str = "Điện thoại thông minh";
    pub const PRIORITY: &str = "Đối tượng ưu tiên";
    pub const STATUS: &str = "Trạng thái cài đặt";
    pub const OUTCOME: &str = "Kết quả";
    pub const VISITED_AT: &str = "Thời điểm thăm";

    /// Each field by its name in the API, as the apps receive them.
    pub const ALL: &[(&str, &str)] = &[
        ("external_id", HOUSEHOLD_CODE),
        ("area_id", VILLAGE),
        ("village", VILLAGE),
        ("commune", COMMUNE),
        ("head_name", HEAD_NAME),
        ("address", ADDRESS),
        ("phone", PHONE),
        ("household_phone", HOUSEHOLD_PHONE),
        ("notes", NOTES),
        ("lat", LAT),
        ("lon", LON),
        ("person_code", PERSON_CODE),
        ("full_name", FULL_NAME),
        ("birth_year", BIRTH_YEAR),
        ("sex", SEX),
        ("smartphone", SMARTPHONE),
        ("priority", PRIORITY),
        ("status", STATUS),
        ("outcome", OUTCOME),
        ("visited_at", VISITED_AT),
    ];
}

/// A phone whose storage has less room than this left is in trouble: the field app warns,
/// the console shows it (`store::devices::Phone::in_trouble`).
pub const LOW_STORAGE_BYTES: i64 = 50 * 1024 * 1024;

/// Every value set, in the order the apps receive them.
pub fn sets() -> Vec<ValueSet> {
    use crate::domain::household::{
        AdoptionStatus, ConflictReason, ConflictStatus, Outcome, Priority, Resolution, Sex,
        Smartphone,
    };
    vec![
        Sex::SET,
        Smartphone::SET,
        Priority::SET,
        AdoptionStatus::SET,
        Outcome::SET,
        ConflictStatus::SET,
        ConflictReason::SET,
        Resolution::SET,
        AreaLevel::SET,
        Denominator::SET,
        TargetKind::SET,
        ActivityCheck::SET,
        DuplicateRule::SET,
        DuplicateStatus::SET,
    ]
}

/// The label of a stored name of the set `set`, or the name itself when it is none of them
/// (a value from a newer server, say).
pub fn label(set: ValueSet, name: &str) -> &str {
    set.label_of(name).unwrap_or(name)
}

/// The JavaScript module the dashboard and the field app import (`/field/vocabulary.js`):
/// `VALUES` (each set's names in order), `LABELS` (each set's labels by name), and the
/// groups of values the apps count by (`INSTALLED`, `REVISIT`).
pub fn javascript() -> String {
    let sets = sets();
    let mut out = String::from(
        "// The value sets and their Vietnamese labels, made by `gocua vocabulary` from\n\
         // src/domain/vocabulary.rs and src/domain/household/values.rs: edit them there.\n",
    );
    let values: serde_json::Map<String, serde_json::Value> = sets
        .iter()
        .map(|s| {
            (
                s.name.to_owned(),
                s.values.iter().map(|(n, _)| *n).collect(),
            )
        })
        .collect();
    let labels: serde_json::Map<String, serde_json::Value> = sets
        .iter()
        .map(|s| {
            let m: serde_json::Map<String, serde_json::Value> = s
                .values
                .iter()
                .map(|(n, l)| ((*n).to_owned(), (*l).into()))
                .collect();
            (s.name.to_owned(), m.into())
        })
        .collect();
    let json = |v: serde_json::Map<String, serde_json::Value>| {
        serde_json::to_string_pretty(&v).unwrap_or_default()
    };
    out.push_str(&format!("export const VALUES = {};\n", json(values)));
    out.push_str(&format!("export const LABELS = {};\n", json(labels)));
    let fields: serde_json::Map<String, serde_json::Value> = field::ALL
        .iter()
        .map(|(n, l)| ((*n).to_owned(), (*l).into()))
        .collect();
    out.push_str(&format!(
        "/// Each field's label, by its name in the API.\nexport const FIELDS = {};\n",
        json(fields)
    ));
    let list = |names: &[&str]| serde_json::to_string(names).unwrap_or_default();
    out.push_str(&format!(
        "/// The statuses that count as \"has the app\".\nexport const INSTALLED = {};\n",
        list(crate::domain::household::AdoptionStatus::INSTALLED)
    ));
    out.push_str(&format!(
        "/// The outcomes that call for another visit.\nexport const REVISIT = {};\n",
        list(crate::domain::household::Outcome::REVISIT)
    ));
    out.push_str(&format!(
        "/// A phone with less storage than this left is in trouble (bytes).\nexport const LOW_STORAGE_BYTES = {};\n",
        LOW_STORAGE_BYTES
    ));
    out.push_str(
        "/// The label of `value` in the set `set`, or the value itself when it has none.\n\
         export const label = (set, value) => LABELS[set]?.[value] ?? value ?? \"\";\n\
         /// The label of the field `name`, or the name itself when it has none.\n\
         export const fieldLabel = (name) => FIELDS[name] ?? name ?? \"\";\n",
    );
    out
}

impl fmt::Display for ValueSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The served module is the one committed beside the apps: after changing a value set,
    /// run `cargo run -- vocabulary > src/field/vocabulary.js`.
    #[test]
    fn the_committed_module_is_made_from_the_declarations() {
        assert_eq!(include_str!("../field/vocabulary.js"), javascript());
    }

    /// The apps take the fields' labels from the vocabulary: none of their pages spells one
    /// out, so that the field app, the console, the dashboard and the exports cannot drift.
    #[test]
    fn the_apps_spell_out_no_field_label() {
        let pages = [
            ("src/field/app.js", include_str!("../field/app.js")),
            (
                "src/field/duplicates.js",
                include_str!("../field/duplicates.js"),
            ),
            ("src/web/app.js", include_str!("../web/app.js")),
            ("src/web/console.js", include_str!("../web/console.js")),
        ];
        for (file, text) in pages {
            for (name, label) in field::ALL {
                for quoted in [format!("\"{label}\""), format!("'{label}'")] {
                    assert!(
                        !text.contains(&quoted),
                        "{file} spells out {quoted}: use fieldLabel(\"{name}\")"
                    );
                }
            }
        }
        let mut names: Vec<&str> = field::ALL.iter().map(|f| f.0).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), field::ALL.len(), "a field named twice");
    }

    #[test]
    fn every_set_has_a_label_for_each_value_and_unique_names() {
        let sets = sets();
        let mut names: Vec<&str> = sets.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), sets.len());
        for s in &sets {
            assert!(!s.values.is_empty());
            for (name, label) in s.values {
                assert!(!name.is_empty() && !label.is_empty(), "{s}: {name}");
            }
        }
        assert_eq!(label(AreaLevel::SET, "commune"), "Xã");
        assert_eq!(label(TargetKind::SET, "made_up"), "made_up");
    }
}
