//! Reads the official GSO area list (`units-2025-01-04.csv` format) as it is published:
//! a header row, stray and doubled spaces in names, districts listed without communes.

pub mod register;
pub mod reorganization;

use crate::domain::text::squash_spaces;
use std::collections::HashMap;

/// The official list of 2025-01-04 (`data/vn-admin-units/`), built in so that a deployment
/// can import it with no file at hand.
pub const OFFICIAL_UNITS: &[u8] = include_bytes!("../../data/vn-admin-units/units-2025-01-04.csv");
pub const OFFICIAL_UNITS_NAME: &str = "units-2025-01-04.csv (built in)";

/// One area of an official list.
#[derive(Debug, Clone, PartialEq)]
pub struct OfficialArea {
    pub level: &'static str,
    pub code: String,
    pub name: String,
    pub kind: Option<String>,
    /// Code of the parent area (one level up), none for provinces.
    pub parent_code: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {message}")]
pub struct ImportError {
    pub line: u64,
    pub message: String,
}

fn err(line: u64, message: impl Into<String>) -> ImportError {
    ImportError {
        line,
        message: message.into(),
    }
}

fn kind_of(name: &str, kinds: &[&str]) -> Option<String> {
    kinds
        .iter()
        .find(|k| name.starts_with(&format!("{k} ")))
        .map(|k| k.to_string())
}

const PROVINCE_KINDS: &[&str] = &["Thành phố", "Tỉnh"];
const DISTRICT_KINDS: &[&str] = &["Thành phố", "Thị xã", "Quận", "Huyện"];

fn code(raw: &str, digits: usize, line: u64, what: &str) -> Result<String, ImportError> {
    let c = raw.trim();
    if c.len() == digits && c.chars().all(|ch| ch.is_ascii_digit()) {
        Ok(c.to_owned())
    } else {
        Err(err(
            line,
            format!("{what} code `{c}` is not {digits} digits"),
        ))
    }
}

/// A reader of a published CSV file: a byte-order mark skipped, no header row assumed
/// (callers skip theirs), rows of any length.
fn csv_reader(data: &[u8]) -> csv::Reader<&[u8]> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data)
}

/// Parses the list into areas, parents before children, each area once. Columns: province
/// name, province code, district name, district code, commune name, commune code, level,
/// English name. Rows whose province code is not two digits (headers) are skipped.
pub fn parse_areas(data: &[u8]) -> Result<Vec<OfficialArea>, ImportError> {
    let mut reader = csv_reader(data);
    let mut units = Vec::new();
    let mut seen: HashMap<(&'static str, String), (String, Option<String>)> = HashMap::new();
    let mut rows = 0;
    for (i, rec) in reader.records().enumerate() {
        let line = i as u64 + 1;
        let rec = rec.map_err(|e| err(line, format!("unreadable CSV: {e}")))?;
        if rec.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let field = |n: usize| rec.get(n).map(str::trim).unwrap_or("");
        let pcode = field(1);
        if !(pcode.len() == 2 && pcode.chars().all(|c| c.is_ascii_digit())) {
            if line == 1 {
                continue; // the header row
            }
            return Err(err(
                line,
                format!("province code `{pcode}` is not 2 digits"),
            ));
        }
        rows += 1;
        let pcode = code(pcode, 2, line, "province")?;
        let dcode = code(field(3), 3, line, "district")?;
        let pname = squash_spaces(field(0));
        let dname = squash_spaces(field(2));
        if pname.is_empty() || dname.is_empty() {
            return Err(err(line, "a province or district name is empty"));
        }
        let mut add = |level: &'static str,
                       code: String,
                       name: String,
                       kind: Option<String>,
                       parent: Option<String>| {
            match seen.get(&(level, code.clone())) {
                Some((n, p)) if *n != name || *p != parent => Err(err(
                    line,
                    format!("{level} {code} is named `{name}` here but `{n}` earlier"),
                )),
                Some(_) => Ok(()),
                None => {
                    seen.insert((level, code.clone()), (name.clone(), parent.clone()));
                    units.push(OfficialArea {
                        level,
                        code,
                        name,
                        kind,
                        parent_code: parent,
                    });
                    Ok(())
                }
            }
        };
        add(
            "province",
            pcode.clone(),
            pname.clone(),
            kind_of(&pname, PROVINCE_KINDS),
            None,
        )?;
        add(
            "district",
            dcode.clone(),
            dname.clone(),
            kind_of(&dname, DISTRICT_KINDS),
            Some(pcode),
        )?;
        let cname = squash_spaces(field(4));
        let ccode_raw = field(5);
        if cname.is_empty() && ccode_raw.is_empty() {
            continue; // a district with no communes (island districts)
        }
        let ccode = code(ccode_raw, 5, line, "commune")?;
        if cname.is_empty() {
            return Err(err(line, format!("commune {ccode} has no name")));
        }
        let kind = Some(squash_spaces(field(6))).filter(|k| !k.is_empty());
        add("commune", ccode, cname, kind, Some(dcode))?;
    }
    if rows == 0 {
        return Err(err(1, "no unit rows found"));
    }
    // Parents before children, whatever the order of the file.
    let rank = |l: &str| {
        ["province", "district", "commune"]
            .iter()
            .position(|x| *x == l)
    };
    units.sort_by_key(|u| rank(u.level));
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quirks() {
        let csv = "Tỉnh Thành Phố,Mã TP,Quận Huyện,Mã QH,Phường Xã,Mã PX,Cấp,Tên Tiếng Anh\n\
                   Tỉnh Lạng Sơn,20,Huyện Bình Gia,181,Xã  Hoa Thám ,06073,Xã,\n\
                   Tỉnh Quảng Trị,45,Huyện Cồn Cỏ,471,,,Huyện,\n";
        let units = parse_areas(csv.as_bytes()).unwrap();
        let names: Vec<_> = units.iter().map(|u| (u.level, u.name.as_str())).collect();
        assert_eq!(
            names,
            vec![
                ("province", "Tỉnh Lạng Sơn"),
                ("province", "Tỉnh Quảng Trị"),
                ("district", "Huyện Bình Gia"),
                ("district", "Huyện Cồn Cỏ"),
                ("commune", "Xã Hoa Thám"),
            ]
        );
        assert_eq!(units[4].kind.as_deref(), Some("Xã"));
        assert_eq!(units[0].kind.as_deref(), Some("Tỉnh"));
    }

    #[test]
    fn reports_bad_codes_with_line() {
        let csv = "Tỉnh Lạng Sơn,20,Huyện Bình Gia,181,Xã Hoa Thám,6073,Xã,\n";
        assert_eq!(parse_areas(csv.as_bytes()).unwrap_err().line, 1);
    }
}
