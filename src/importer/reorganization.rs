//! Reads the official conversion table of the July 2025 reorganization
//! (`reorganization-2025-07-01.csv`) as it is published, and works out what it does to an area
//! list of the old map: which new provinces and communes there are, which old communes went
//! whole into one new commune, which were split, and which codes match nothing.
//!
//! The file: two header rows, then for each new province a section row (its name in
//! capitals, the other cells empty), then one row per (new commune, old commune) pair:
//! new province "Name (code)", new commune name, new commune code, old commune name, old
//! commune code, note, old district "Name (code)", old province "Name (code)". The note says
//! how the old commune went in, in free text with spelling variants (`Link::read`).

use super::ImportError;
use crate::domain::text::squash_spaces;
use std::collections::{BTreeMap, BTreeSet};

/// The table of 2025-07-01 (`data/vn-admin-units/`), built in.
pub const REORGANIZATION_2025: &[u8] =
    include_bytes!("../../data/vn-admin-units/reorganization-2025-07-01.csv");

/// How an old area went into a new commune, as the row's note says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Link {
    /// All of it: merged whole (`Nhập toàn bộ`), kept (`Giữ nguyên`), renamed (`Đổi tên`),
    /// changed type (`Đổi loại hình`), or a whole district made a special zone
    /// (`Sắp xếp toàn bộ huyện … thành đặc khu …`).
    Whole(Whole),
    /// Part of it (`Nhập một phần…`, `Phần còn lại…`, `Đổi tên từ một phần…`): its villages
    /// cannot be placed by the table.
    Part(Part),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Whole {
    Merged,
    Kept,
    Renamed,
    Retyped,
    SpecialZone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// Part of it, the note saying no more.
    Unspecified,
    /// Part of its area.
    Area,
    /// Part of its area and all of its population.
    AreaAllPopulation,
    /// Part of its population.
    Population,
    /// What was left of it after a part went elsewhere.
    Remainder,
}

impl Link {
    /// Reads a note, spelling variants and doubled spaces included; `None` for a note it does
    /// not know.
    pub fn read(note: &str) -> Option<Link> {
        let n = squash_spaces(note).to_lowercase().replace("nhâp", "nhập");
        let starts = |p: &str| n.starts_with(p);
        Some(if starts("nhập toàn bộ") {
            Link::Whole(Whole::Merged)
        } else if n == "giữ nguyên" {
            Link::Whole(Whole::Kept)
        } else if n == "đổi tên" {
            Link::Whole(Whole::Renamed)
        } else if n == "đổi loại hình" {
            Link::Whole(Whole::Retyped)
        } else if starts("sắp xếp toàn bộ") {
            Link::Whole(Whole::SpecialZone)
        } else if n == "nhập một phần diện tích, toàn bộ dân số" {
            Link::Part(Part::AreaAllPopulation)
        } else if n == "nhập một phần diện tích" {
            Link::Part(Part::Area)
        } else if n == "nhập một phần dân số" {
            Link::Part(Part::Population)
        } else if n == "nhập một phần" || n.contains("từ một phần") {
            Link::Part(Part::Unspecified)
        } else if starts("phần còn lại") {
            Link::Part(Part::Remainder)
        } else {
            return None;
        })
    }

    pub fn is_whole(self) -> bool {
        matches!(self, Link::Whole(_))
    }
}

/// One (new commune, old area) row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Its line in the file (1-based).
    pub line: u64,
    pub province_code: String,
    pub province_name: String,
    pub commune_code: String,
    pub commune_name: String,
    /// The old commune's code; `None` where the old area is a whole district (a special
    /// zone) or an area with no code.
    pub old_code: Option<String>,
    pub old_name: String,
    pub old_district_code: Option<String>,
    /// The old province cell, "Name (code)", as written (it can disagree with the tree).
    pub old_province: String,
    pub old_province_code: Option<String>,
    pub note: String,
    pub link: Link,
}

/// "Name (code)": the name and the code, if the cell ends with a code in brackets.
fn named_code(cell: &str) -> (String, Option<String>) {
    let cell = squash_spaces(cell);
    if let Some((name, rest)) = cell.rsplit_once(" (") {
        if let Some(code) = rest.strip_suffix(')') {
            if !code.is_empty() && code.chars().all(|c| c.is_ascii_digit()) {
                return (name.to_owned(), Some(code.to_owned()));
            }
        }
    }
    (cell, None)
}

fn five_digits(s: &str) -> bool {
    s.len() == 5 && s.chars().all(|c| c.is_ascii_digit())
}

fn err(line: u64, message: impl Into<String>) -> ImportError {
    ImportError {
        line,
        message: message.into(),
    }
}

/// Parses the table into its rows. Refuses, naming the line, a row cut short, a new
/// province without its code, a new commune code that is not five digits, an old code that
/// is neither empty nor five digits, and a note it does not know; and a file with no rows.
pub fn parse(data: &[u8]) -> Result<Vec<Row>, ImportError> {
    let mut reader = super::csv_reader(data);
    let mut rows = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let line = i as u64 + 1;
        let rec = rec.map_err(|e| err(line, format!("unreadable CSV: {e}")))?;
        let cell = |n: usize| rec.get(n).map(str::trim).unwrap_or("");
        if line <= 2 || (1..rec.len()).all(|n| cell(n).is_empty()) {
            continue; // the two header rows, and the provinces' section rows
        }
        if rec.len() < 8 {
            return Err(err(
                line,
                format!("{} cells where a row has 8 or more", rec.len()),
            ));
        }
        let (province_name, province_code) = named_code(cell(0));
        let province_code = province_code
            .filter(|c| c.len() == 2)
            .ok_or_else(|| err(line, format!("new province `{}` has no (code)", cell(0))))?;
        let commune_code = cell(2).to_owned();
        if !five_digits(&commune_code) {
            return Err(err(
                line,
                format!("new commune code `{commune_code}` is not 5 digits"),
            ));
        }
        let old_code = Some(cell(4).to_owned()).filter(|c| !c.is_empty());
        if let Some(c) = old_code.as_deref().filter(|c| !five_digits(c)) {
            return Err(err(line, format!("old commune code `{c}` is not 5 digits")));
        }
        let note = squash_spaces(cell(5));
        let link = Link::read(&note).ok_or_else(|| err(line, format!("unknown note `{note}`")))?;
        rows.push(Row {
            line,
            province_code,
            province_name,
            commune_code,
            commune_name: squash_spaces(cell(1)),
            old_code,
            old_name: squash_spaces(cell(3)),
            old_district_code: named_code(cell(6)).1,
            old_province: squash_spaces(cell(7)),
            old_province_code: named_code(cell(7)).1,
            note,
            link,
        });
    }
    if rows.is_empty() {
        return Err(err(1, "no conversion rows found"));
    }
    Ok(rows)
}

/// What the table does to the communes of an area list of the old map.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// New provinces: code → name.
    pub provinces: BTreeMap<String, String>,
    /// New communes: code → (name, province code).
    pub communes: BTreeMap<String, (String, String)>,
    /// Old communes that went whole into one new commune: old code → new code.
    pub whole: BTreeMap<String, String>,
    /// Old communes split (at least one part): old code → the new communes they feed.
    pub split: BTreeMap<String, BTreeSet<String>>,
    /// Old district codes made whole into a new area (special zones): old code → new code.
    pub whole_districts: BTreeMap<String, String>,
    /// Rows naming no old area at all (no old code, no district): their lines.
    pub no_old_unit: Vec<u64>,
    /// Old codes of the table that the list does not have: code → first line.
    pub unknown_old: BTreeMap<String, u64>,
    /// Communes of the list that the table never names.
    pub untouched: BTreeSet<String>,
    /// New commune codes that an old commune of the list already has, naming another area
    /// (the new commune took the code of one of its old ones).
    pub reused_codes: usize,
}

/// Works out the plan of `rows` over the old list's communes (code → name).
pub fn plan(rows: &[Row], old_communes: &BTreeMap<String, String>) -> Plan {
    let mut p = Plan::default();
    let mut links: BTreeMap<&str, BTreeSet<(&str, bool)>> = BTreeMap::new();
    for r in rows {
        p.provinces
            .entry(r.province_code.clone())
            .or_insert_with(|| r.province_name.clone());
        p.communes
            .entry(r.commune_code.clone())
            .or_insert_with(|| (r.commune_name.clone(), r.province_code.clone()));
        match (&r.old_code, &r.old_district_code) {
            (Some(old), _) => {
                if !old_communes.contains_key(old) {
                    p.unknown_old.entry(old.clone()).or_insert(r.line);
                }
                links
                    .entry(old)
                    .or_default()
                    .insert((&r.commune_code, r.link.is_whole()));
            }
            (None, Some(district)) if r.link == Link::Whole(Whole::SpecialZone) => {
                p.whole_districts
                    .insert(district.clone(), r.commune_code.clone());
            }
            _ => p.no_old_unit.push(r.line),
        }
    }
    for (old, into) in links {
        match into.iter().collect::<Vec<_>>()[..] {
            [(new, true)] => {
                p.whole.insert(old.to_owned(), (*new).to_owned());
            }
            _ => {
                p.split.insert(
                    old.to_owned(),
                    into.iter().map(|(n, _)| (*n).to_owned()).collect(),
                );
            }
        }
    }
    let named: BTreeSet<&str> = rows.iter().filter_map(|r| r.old_code.as_deref()).collect();
    p.untouched = old_communes
        .keys()
        .filter(|c| !named.contains(c.as_str()))
        .cloned()
        .collect();
    p.reused_codes = p
        .communes
        .iter()
        .filter(|(code, (name, _))| old_communes.get(*code).is_some_and(|old| old != name))
        .count();
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_read_with_their_variants() {
        let whole = |w| Some(Link::Whole(w));
        let part = |p| Some(Link::Part(p));
        assert_eq!(Link::read("Nhập toàn bộ"), whole(Whole::Merged));
        assert_eq!(Link::read("Nhập toàn bộ diện tích"), whole(Whole::Merged));
        assert_eq!(Link::read("Giữ nguyên"), whole(Whole::Kept));
        assert_eq!(Link::read("Đổi tên"), whole(Whole::Renamed));
        assert_eq!(Link::read("Đổi loại hình"), whole(Whole::Retyped));
        assert_eq!(
            Link::read("Sắp xếp toàn bộ huyện Cồn Cỏ thành đặc khu Cồn Cỏ"),
            whole(Whole::SpecialZone)
        );
        assert_eq!(Link::read("Nhập một  phần"), part(Part::Unspecified));
        assert_eq!(Link::read("Nhâp một phần diện tích"), part(Part::Area));
        assert_eq!(
            Link::read("Nhập một phần diện tích, toàn bộ dân số"),
            part(Part::AreaAllPopulation)
        );
        assert_eq!(Link::read("Nhập một phần dân số"), part(Part::Population));
        assert_eq!(
            Link::read("Phần còn lại sau khi tách một phần vào xã Canh Vinh"),
            part(Part::Remainder)
        );
        assert_eq!(
            Link::read("Đổi tên, đổi loại hình từ một phần thị trấn Lai Uyên"),
            part(Part::Unspecified)
        );
        assert_eq!(Link::read("Chưa rõ"), None);
        assert_eq!(Link::read(""), None);
    }

    const HEAD: &str =
        "Đơn vị hành chính từ ngày 01/7/2025,,,Đơn vị hành chính trước ngày 01/7/2025,,,,,\n\
        \"Tỉnh, thành phố\",Tên Xã mới,Mã Xã mới,Tên Xã cũ,Mã Xã cũ,Ghi chú,Quận/huyện,Tỉnh cũ,\n\
        TỈNH LẠNG SƠN,,,,,,,,\n";

    fn table(rows: &str) -> Vec<u8> {
        format!("{HEAD}{rows}").into_bytes()
    }

    #[test]
    fn a_small_table_gives_its_plan() {
        let rows = parse(&table(
            "Tỉnh Lạng Sơn (20),Xã Hoa Thám,06073,Xã Hoa Thám,06073,Nhập toàn bộ,Huyện Bình Gia (181),Tỉnh Lạng Sơn (20),\n\
             Tỉnh Lạng Sơn (20),Xã Hoa Thám,06073,Xã Hưng Đạo,06067,Nhập một phần,Huyện Bình Gia (181),Tỉnh Lạng Sơn (20),\n\
             Tỉnh Lạng Sơn (20),Xã Quý Hòa,06079,Xã Hưng Đạo,06067,Nhập một phần,Huyện Bình Gia (181),Tỉnh Lạng Sơn (20),\n\
             Tỉnh Lạng Sơn (20),Xã Quý Hòa,06079,Xã Mới,99999,Nhập toàn bộ,Huyện Bình Gia (181),Tỉnh Lạng Sơn (20),\n",
        ))
        .unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].line, 4);
        assert_eq!(rows[0].province_name, "Tỉnh Lạng Sơn");
        assert_eq!(rows[0].old_district_code.as_deref(), Some("181"));
        let old: BTreeMap<String, String> = [
            ("06073", "Xã Hoa Thám"),
            ("06067", "Xã Hưng Đạo"),
            ("06079", "Xã Quý Hòa cũ"),
            ("06085", "Xã Vĩnh Yên"),
        ]
        .into_iter()
        .map(|(c, n)| (c.to_owned(), n.to_owned()))
        .collect();
        let p = plan(&rows, &old);
        assert_eq!(p.provinces.len(), 1);
        assert_eq!(p.communes.len(), 2);
        assert_eq!(
            p.whole,
            BTreeMap::from([
                ("06073".to_owned(), "06073".to_owned()),
                ("99999".to_owned(), "06079".to_owned())
            ])
        );
        assert_eq!(
            p.split["06067"],
            BTreeSet::from(["06073".to_owned(), "06079".to_owned()])
        );
        assert_eq!(p.unknown_old, BTreeMap::from([("99999".to_owned(), 7)]));
        // 06079 names no old area in this table, though the new commune took its code.
        assert_eq!(
            p.untouched,
            BTreeSet::from(["06079".to_owned(), "06085".to_owned()])
        );
        // 06079 names another area in the old list; 06073 is the same commune.
        assert_eq!(p.reused_codes, 1);
    }

    #[test]
    fn bad_rows_are_refused_naming_their_line() {
        let line_of = |rows: &str| parse(&table(rows)).unwrap_err();
        let e = line_of("Tỉnh Lạng Sơn (20),Xã Hoa Thám,06073,Xã Hoa Thám\n");
        assert_eq!(e.line, 4);
        assert!(e.message.contains("cells"), "{e}");
        let e = line_of("Lạng Sơn,Xã Hoa Thám,06073,Xã Hoa Thám,06073,Nhập toàn bộ,,,\n");
        assert!(e.message.contains("no (code)"), "{e}");
        let e = line_of("Tỉnh Lạng Sơn (20),Xã Hoa Thám,6073,Xã Hoa Thám,06073,Nhập toàn bộ,,,\n");
        assert!(e.message.contains("not 5 digits"), "{e}");
        let e = line_of("Tỉnh Lạng Sơn (20),Xã Hoa Thám,06073,Xã Hoa Thám,06073,Tách ra,,,\n");
        assert!(e.message.contains("unknown note `Tách ra`"), "{e}");
        assert_eq!(parse(HEAD.as_bytes()).unwrap_err().line, 1);
    }

    /// The whole table over the whole January 2025 list; every count is worked out here
    /// again from the files' cells, the plain way.
    #[test]
    fn the_real_table_over_the_january_list() {
        let units = super::super::parse_areas(super::super::OFFICIAL_UNITS).unwrap();
        let old: BTreeMap<String, String> = units
            .iter()
            .filter(|u| u.level == "commune")
            .map(|u| (u.code.clone(), u.name.clone()))
            .collect();
        let rows = parse(REORGANIZATION_2025).unwrap();
        let p = plan(&rows, &old);

        let text = std::str::from_utf8(REORGANIZATION_2025).unwrap();
        let mut cells: Vec<Vec<String>> = Vec::new();
        for rec in csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes())
            .records()
            .skip(2)
        {
            let rec = rec.unwrap();
            if rec.iter().skip(1).any(|c| !c.trim().is_empty()) {
                cells.push(rec.iter().map(|c| c.trim().to_owned()).collect());
            }
        }
        assert_eq!(rows.len(), cells.len());
        let distinct = |n: usize| -> BTreeSet<&str> {
            cells
                .iter()
                .map(|c| c[n].as_str())
                .filter(|c| !c.is_empty())
                .collect()
        };
        assert_eq!(p.provinces.len(), distinct(0).len());
        assert_eq!(p.provinces.len(), 34);
        assert_eq!(p.communes.len(), distinct(2).len());
        assert_eq!(p.communes.len(), 3321);
        let olds = distinct(4);
        assert_eq!(p.whole.len() + p.split.len(), olds.len());
        let unknown: BTreeSet<&str> = olds
            .iter()
            .filter(|c| !old.contains_key(**c))
            .copied()
            .collect();
        assert_eq!(
            p.unknown_old
                .keys()
                .map(String::as_str)
                .collect::<BTreeSet<_>>(),
            unknown
        );
        let untouched: BTreeSet<&str> = old
            .keys()
            .map(String::as_str)
            .filter(|c| !olds.contains(c))
            .collect();
        assert_eq!(
            p.untouched
                .iter()
                .map(String::as_str)
                .collect::<BTreeSet<_>>(),
            untouched
        );
        // An old commune is split when some row names it "in part" or it feeds two communes.
        let split: BTreeSet<&str> = olds
            .iter()
            .filter(|o| {
                let mine: Vec<&Vec<String>> = cells.iter().filter(|c| c[4] == **o).collect();
                let news: BTreeSet<&str> = mine.iter().map(|c| c[2].as_str()).collect();
                news.len() > 1
                    || mine.iter().any(|c| {
                        c[5].to_lowercase().contains("một phần")
                            || c[5].to_lowercase().starts_with("phần còn lại")
                    })
            })
            .copied()
            .collect();
        assert_eq!(
            p.split.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            split
        );
        let empty_old = cells.iter().filter(|c| c[4].is_empty()).count();
        assert_eq!(p.whole_districts.len() + p.no_old_unit.len(), empty_old);
        println!(
            "{} provinces, {} communes; {} old communes whole, {} split; {} districts made special zones, {} rows with no old unit; {} old codes unknown to the list, {} communes of the list not in the table; {} codes reused",
            p.provinces.len(),
            p.communes.len(),
            p.whole.len(),
            p.split.len(),
            p.whole_districts.len(),
            p.no_old_unit.len(),
            p.unknown_old.len(),
            p.untouched.len(),
            p.reused_codes
        );
    }
}
