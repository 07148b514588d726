//! The register's columns: the header row (the first row with a `Mã hộ` cell; title rows
//! above it are skipped), its names matched whatever their case, diacritics, spaces and
//! punctuation, and each known column's place.

use super::sheet::{Cell, Row};
use crate::domain::text;

/// A column gocua reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    HouseholdCode,
    Village,
    Commune,
    Head,
    Address,
    HouseholdPhone,
    Name,
    PersonCode,
    BirthYear,
    BirthDate,
    Sex,
    Phone,
    Smartphone,
    Priority,
}

impl Column {
    /// Every column, in the template's order.
    pub const ALL: &'static [Column] = &[
        Column::HouseholdCode,
        Column::Village,
        Column::Commune,
        Column::Head,
        Column::Address,
        Column::HouseholdPhone,
        Column::Name,
        Column::PersonCode,
        Column::BirthYear,
        Column::Sex,
        Column::Phone,
        Column::Smartphone,
        Column::Priority,
    ];

    /// The header as the template writes it (and the households export).
    pub const fn header(self) -> &'static str {
        use crate::domain::vocabulary::field;
        match self {
            Column::HouseholdCode => field::HOUSEHOLD_CODE,
            Column::Village => field::VILLAGE,
            Column::Commune => field::COMMUNE,
            Column::Head => field::HEAD_NAME,
            Column::Address => field::ADDRESS,
            Column::HouseholdPhone => field::HOUSEHOLD_PHONE,
            Column::Name => field::FULL_NAME,
            Column::PersonCode => field::PERSON_CODE,
            Column::BirthYear => field::BIRTH_YEAR,
            Column::BirthDate => "Ngày sinh",
            Column::Sex => field::SEX,
            Column::Phone => field::PHONE,
            Column::Smartphone => field::SMARTPHONE,
            Column::Priority => field::PRIORITY,
        }
    }

    /// The other names a register gives the column, folded (`key`).
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Column::HouseholdCode => &["maho", "masoho"],
            Column::Village => &["thon", "thonban", "ban", "thonxom", "thonto", "todanpho"],
            Column::Commune => &["xa", "xaphuong", "phuongxa", "maxa"],
            Column::Head => &["chuho", "tenchuho", "hotenchuho"],
            Column::Address => &["diachi"],
            Column::HouseholdPhone => &["dienthoaiho", "sdtho", "sodienthoaiho"],
            Column::Name => &["hovaten", "hoten"],
            Column::PersonCode => &["manhankhau"],
            Column::BirthYear => &["namsinh"],
            Column::BirthDate => &["ngaysinh", "ngaythangnamsinh"],
            Column::Sex => &["gioitinh"],
            Column::Phone => &["dienthoai", "sodienthoai", "sdt"],
            Column::Smartphone => &["dienthoaithongminh", "dttm", "codienthoaithongminh"],
            Column::Priority => &["doituonguutien", "uutien", "nhomuutien"],
        }
    }

    /// Columns a register must have (the commune may come with the import instead).
    pub const REQUIRED: &'static [Column] = &[
        Column::HouseholdCode,
        Column::Village,
        Column::Head,
        Column::Address,
    ];
}

/// A header name folded for matching: lower case, no diacritics, letters and digits only
/// (`MÃ HỘ`, `Ma ho`, `mã  hộ:` are all `maho`).
pub fn key(name: &str) -> String {
    text::fold(name)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// The columns of a register: where each known one is, and the names of the others.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Columns {
    /// The header row's line.
    pub line: u64,
    places: Vec<(Column, usize)>,
    /// Headers gocua does not read, as written.
    pub ignored: Vec<String>,
    /// Known columns that appear twice: (column, the second one's header).
    pub repeated: Vec<(Column, String)>,
}

impl Columns {
    /// The index of a column's cells, if the file has it.
    pub fn place(&self, c: Column) -> Option<usize> {
        self.places.iter().find(|(k, _)| *k == c).map(|(_, i)| *i)
    }

    pub fn has(&self, c: Column) -> bool {
        self.place(c).is_some()
    }

    /// Where the header row is among `rows`, and the columns it names; `None` when no row
    /// has a `Mã hộ` cell.
    pub fn find(rows: &[Row]) -> Option<(usize, Columns)> {
        let at = rows.iter().position(|r| {
            r.cells
                .iter()
                .any(|c| matches!(c, Cell::Text(t) if Column::HouseholdCode.aliases().contains(&key(t).as_str())))
        })?;
        let row = &rows[at];
        let mut columns = Columns {
            line: row.line,
            ..Columns::default()
        };
        for (i, cell) in row.cells.iter().enumerate() {
            let Cell::Text(name) = cell else { continue };
            let k = key(name);
            match Column::ALL
                .iter()
                .chain([&Column::BirthDate])
                .find(|c| c.aliases().contains(&k.as_str()))
            {
                Some(c) if columns.has(*c) => columns.repeated.push((*c, name.clone())),
                Some(c) => columns.places.push((*c, i)),
                None => columns.ignored.push(name.clone()),
            }
        }
        Some((at, columns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: u64, cells: &[&str]) -> Row {
        Row {
            line,
            cells: cells
                .iter()
                .map(|c| match *c {
                    "" => Cell::Empty,
                    t => Cell::Text(t.into()),
                })
                .collect(),
        }
    }

    #[test]
    fn header_names_match_loosely_after_the_title_rows() {
        assert_eq!(key("MÃ HỘ"), "maho");
        assert_eq!(key("mã  hộ:"), "maho");
        assert_eq!(
            key("Điện thoại thông minh (Có/Không)"),
            "dienthoaithongminhcokhong"
        );
        let rows = [
            row(1, &["DANH SÁCH HỘ GIA ĐÌNH THÔN NÀ PÀN"]),
            row(2, &["Ngày 01/08/2020"]),
            row(
                4,
                &[
                    "STT",
                    "MÃ HỘ",
                    "thôn/bản",
                    "Chủ hộ:",
                    "Địa  chỉ",
                    "Họ và tên",
                    "Năm sinh",
                    "Ghi chú",
                ],
            ),
            row(5, &["1", "H1"]),
        ];
        let (at, c) = Columns::find(&rows).unwrap();
        assert_eq!((at, c.line), (2, 4));
        assert_eq!(c.place(Column::HouseholdCode), Some(1));
        assert_eq!(c.place(Column::Village), Some(2));
        assert_eq!(c.place(Column::Head), Some(3));
        assert_eq!(c.place(Column::Address), Some(4));
        assert_eq!(c.place(Column::Name), Some(5));
        assert_eq!(c.place(Column::BirthYear), Some(6));
        assert_eq!(c.ignored, ["STT", "Ghi chú"]);
        assert!(Columns::find(&rows[..2]).is_none());
    }
}
