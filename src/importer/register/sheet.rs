//! A register file's cells: a CSV (UTF-8, with or without its byte-order mark) or the first
//! sheet (or a named one) of an XLSX workbook, as rows of cells numbered as the user sees
//! them (the file's line, or the sheet's row number).

use chrono::NaiveDate;
use std::io::Cursor;

/// One cell as the file holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    /// A date cell of a workbook.
    Date(NaiveDate),
    /// A cell whose value a formula computes: its value is not taken.
    Formula,
    /// A cell Excel shows as an error (`#N/A`, `#REF!`).
    Error,
}

impl Cell {
    /// The cell as text: trimmed, spaces collapsed, a whole number as it reads (no `.0`), a
    /// date as `dd/mm/yyyy`; none when empty or when it holds no value to take (a formula,
    /// an error).
    pub fn text(&self) -> Option<String> {
        match self {
            Cell::Text(t) => Some(crate::domain::text::squash_spaces(t)).filter(|t| !t.is_empty()),
            Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => Some(format!("{}", *n as i64)),
            Cell::Number(n) => Some(n.to_string()),
            Cell::Date(d) => Some(d.format("%d/%m/%Y").to_string()),
            Cell::Empty | Cell::Formula | Cell::Error => None,
        }
    }
}

/// A row of the file and its number as the user sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: u64,
    pub cells: Vec<Cell>,
}

/// A file that cannot be read as a register at all.
#[derive(Debug, Clone, PartialEq)]
pub struct FileError {
    /// The line the reading stopped at, when there is one.
    pub line: Option<u64>,
    pub code: &'static str,
    pub message: String,
}

impl FileError {
    fn new(line: Option<u64>, code: &'static str, message: impl Into<String>) -> FileError {
        FileError {
            line,
            code,
            message: message.into(),
        }
    }
}

/// What a file is, by its first bytes: an XLSX workbook is a ZIP archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    pub fn of(data: &[u8]) -> Format {
        match data.starts_with(b"PK\x03\x04") {
            true => Format::Xlsx,
            false => Format::Csv,
        }
    }
}

/// Reads the rows of a register file. `sheet` names a workbook's sheet (the first one when
/// `None`); a CSV has one.
pub fn read(data: &[u8], sheet: Option<&str>) -> Result<Vec<Row>, FileError> {
    if data.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(FileError::new(None, "empty_file", "the file is empty"));
    }
    match Format::of(data) {
        Format::Xlsx => read_xlsx(data, sheet),
        Format::Csv => read_csv(data),
    }
}

fn read_csv(data: &[u8]) -> Result<Vec<Row>, FileError> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let line_of = |offset: usize| data[..offset].iter().filter(|b| **b == b'\n').count() as u64 + 1;
    if let Some(nul) = data.iter().position(|b| *b == 0) {
        return Err(FileError::new(
            Some(line_of(nul)),
            "not_a_register",
            "the file is neither CSV text nor an XLSX workbook",
        ));
    }
    if let Err(e) = std::str::from_utf8(data) {
        return Err(FileError::new(
            Some(line_of(e.valid_up_to())),
            "not_utf8",
            "the file is not UTF-8 text (it may be saved as ANSI or Windows-1258): save it \
             from Excel as \"CSV UTF-8\", or upload the XLSX file itself",
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    let mut rows = Vec::new();
    // The line a record starts on, counted from its first byte: the reader's own line counts
    // the empty lines before it as its start.
    let (mut at, mut line) = (0usize, 1u64);
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line());
            FileError::new(line, "bad_csv", format!("the CSV cannot be read: {e}"))
        })?;
        let mut start = record.position().map_or(at, |p| p.byte() as usize);
        while matches!(data.get(start), Some(b'\n' | b'\r')) {
            start += 1;
        }
        line += data[at..start.max(at)]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        at = start.max(at);
        let cells = record
            .iter()
            .map(|c| match c.trim() {
                "" => Cell::Empty,
                t => Cell::Text(t.to_owned()),
            })
            .collect();
        rows.push(Row { line, cells });
    }
    Ok(rows)
}

fn read_xlsx(data: &[u8], sheet: Option<&str>) -> Result<Vec<Row>, FileError> {
    use calamine::{Data, Reader, Xlsx};
    let unreadable = |e: calamine::XlsxError| {
        FileError::new(
            None,
            "not_a_register",
            format!("the XLSX workbook cannot be read: {e}"),
        )
    };
    let mut book = Xlsx::new(Cursor::new(data)).map_err(unreadable)?;
    let names = book.sheet_names();
    let name = match sheet {
        Some(s) => names
            .iter()
            .find(|n| n.as_str() == s)
            .cloned()
            .ok_or_else(|| {
                FileError::new(
                    None,
                    "unknown_sheet",
                    format!(
                        "the workbook has no sheet `{s}`; its sheets: {}",
                        names.join(", ")
                    ),
                )
            })?,
        None => names
            .first()
            .cloned()
            .ok_or_else(|| FileError::new(None, "empty_file", "the workbook has no sheet"))?,
    };
    // The cells a formula computes, by position (the formulas' range holds a string for
    // every cell of the sheet: it is let go before the cells are read).
    let formulas: std::collections::HashSet<(u32, u32)> = {
        let range = book.worksheet_formula(&name).map_err(unreadable)?;
        let (top, left) = range.start().unwrap_or((0, 0));
        range
            .cells()
            .filter(|(_, _, f)| !f.is_empty())
            .map(|(r, c, _)| (top + r as u32, left + c as u32))
            .collect()
    };
    let range = book.worksheet_range(&name).map_err(unreadable)?;
    drop(book);
    let is_formula = |row: u32, col: u32| formulas.contains(&(row, col));
    let Some((top, left)) = range.start() else {
        return Err(FileError::new(None, "empty_file", "the sheet is empty"));
    };
    let mut rows = Vec::new();
    for (i, cells) in range.rows().enumerate() {
        let row = top + i as u32;
        let mut out = vec![Cell::Empty; left as usize];
        for (j, cell) in cells.iter().enumerate() {
            let col = left + j as u32;
            out.push(if is_formula(row, col) {
                Cell::Formula
            } else {
                match cell {
                    Data::Empty => Cell::Empty,
                    Data::String(s) => match s.trim() {
                        "" => Cell::Empty,
                        t => Cell::Text(t.to_owned()),
                    },
                    Data::Int(n) => Cell::Number(*n as f64),
                    Data::Float(f) => Cell::Number(*f),
                    Data::Bool(b) => Cell::Text(if *b { "TRUE" } else { "FALSE" }.into()),
                    Data::DateTime(d) => excel_date(d.as_f64()).map_or(Cell::Error, Cell::Date),
                    Data::DateTimeIso(s) => s
                        .get(..10)
                        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                        .map_or(Cell::Error, Cell::Date),
                    Data::DurationIso(_) | Data::Error(_) => Cell::Error,
                }
            });
        }
        rows.push(Row {
            line: u64::from(row) + 1,
            cells: out,
        });
    }
    Ok(rows)
}

/// The day of an Excel date serial (the 1900 system, as Excel counts it: day 60 is the
/// 29 February 1900 that never was, so serials from 61 on count from 1899-12-30).
pub fn excel_date(serial: f64) -> Option<NaiveDate> {
    let days = serial.floor() as i64;
    let base = match days {
        1..=59 => NaiveDate::from_ymd_opt(1899, 12, 31)?,
        61..=2_958_465 => NaiveDate::from_ymd_opt(1899, 12, 30)?,
        _ => return None,
    };
    base.checked_add_signed(chrono::Duration::days(days))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excel_dates_count_as_excel_does() {
        assert_eq!(excel_date(1.0), NaiveDate::from_ymd_opt(1900, 1, 1));
        assert_eq!(excel_date(61.0), NaiveDate::from_ymd_opt(1900, 3, 1));
        assert_eq!(excel_date(32142.0), NaiveDate::from_ymd_opt(1987, 12, 31));
        assert_eq!(excel_date(44013.5), NaiveDate::from_ymd_opt(2020, 7, 1));
        assert_eq!(excel_date(0.0), None);
    }

    #[test]
    fn a_csv_is_read_by_line_and_a_latin1_one_is_refused_at_its_line() {
        let rows = read(
            "\u{feff}Title\n\nMã hộ,Thôn\n H1 , Nà Pàn\n".as_bytes(),
            None,
        )
        .unwrap();
        assert_eq!(rows.len(), 3, "the empty line is no record");
        assert_eq!(rows[2].line, 4);
        assert_eq!(
            rows[2].cells,
            [Cell::Text("H1".into()), Cell::Text("Nà Pàn".into())]
        );
        let latin1 = b"Ma ho,Thon\nH1,N\xe0 P\xe0n\n";
        let e = read(latin1, None).unwrap_err();
        assert_eq!((e.code, e.line), ("not_utf8", Some(2)));
        let e = read(b"\x00\x01\x02junk", None).unwrap_err();
        assert_eq!(e.code, "not_a_register");
        assert_eq!(read(b"  \n", None).unwrap_err().code, "empty_file");
    }
}
