//! Tables written as CSV (UTF-8 with a BOM, so that Excel reads Vietnamese) or XLSX (a
//! title row, then Vietnamese headers), row by row into any writer: nothing holds the
//! whole table. XLSX sheets use the writer's constant-memory mode (rows go to a temporary
//! file and the archive is assembled at the end). An `Export` is what one export writes,
//! decided before the first byte.

use super::Result;
use crate::db::Conn;
use crate::domain::{text, Time};
use crate::reports::{local_date, Subject};
use crate::store::PageReq;
use chrono::NaiveDate;
use rust_xlsxwriter::{Format as XFormat, Workbook, XlsxError};
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// One value of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    Num(f64),
    Empty,
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }
}
impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}
impl From<i64> for Cell {
    fn from(n: i64) -> Cell {
        Cell::Int(n)
    }
}
impl From<f64> for Cell {
    fn from(n: f64) -> Cell {
        Cell::Num(n)
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Cell {
        v.map_or(Cell::Empty, Into::into)
    }
}
impl From<NaiveDate> for Cell {
    fn from(d: NaiveDate) -> Cell {
        Cell::Text(d.format("%d/%m/%Y").to_string())
    }
}
impl From<Time> for Cell {
    /// Local (Vietnam) date and time to the minute.
    fn from(t: Time) -> Cell {
        let local = t.0 + chrono::Duration::hours(super::LOCAL_OFFSET_HOURS);
        Cell::Text(local.format("%d/%m/%Y %H:%M").to_string())
    }
}

/// The mark on the title row of an export that holds names, phones, addresses or health
/// facts (docs/SECURITY.md).
pub const PERSONAL_DATA: &str = "CÓ DỮ LIỆU CÁ NHÂN: chỉ dùng cho công việc, không chia sẻ";

/// Receives the rows of a table, in order.
pub trait TableWriter {
    fn row(&mut self, cells: &[Cell]) -> io::Result<()>;
    /// Writes what is left (for XLSX: the whole archive) and flushes.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// A writer of the format over `out`, with the title (XLSX only) and headers written.
pub fn table_writer<W: Write + Send + 'static>(
    format: Format,
    title: &str,
    headers: &[&str],
    out: W,
) -> io::Result<Box<dyn TableWriter>> {
    Ok(match format {
        Format::Csv => Box::new(CsvTable::new(title, headers, out)?),
        Format::Xlsx => Box::new(XlsxTable::new(title, headers, out).map_err(xlsx_err)?),
    })
}

struct CsvTable<W: Write> {
    out: csv::Writer<W>,
}

impl<W: Write> CsvTable<W> {
    /// The title alone on the first row (as in XLSX), then the headers.
    fn new(title: &str, headers: &[&str], mut out: W) -> io::Result<Self> {
        out.write_all(b"\xEF\xBB\xBF")?;
        let mut out = csv::WriterBuilder::new().flexible(true).from_writer(out);
        out.write_record([title])?;
        out.write_record(headers)?;
        Ok(CsvTable { out })
    }
}

impl<W: Write> TableWriter for CsvTable<W> {
    fn row(&mut self, cells: &[Cell]) -> io::Result<()> {
        for c in cells {
            match c {
                Cell::Text(s) => self.out.write_field(s)?,
                Cell::Int(n) => self.out.write_field(n.to_string())?,
                Cell::Num(n) => self.out.write_field(n.to_string())?,
                Cell::Empty => self.out.write_field("")?,
            }
        }
        self.out.write_record(None::<&[u8]>)?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.out.flush()
    }
}

/// The first data row: after the title (row 0), a blank row and the headers (row 2).
const FIRST_ROW: u32 = 3;

struct XlsxTable<W: Write + Send> {
    book: Workbook,
    next: u32,
    out: Option<W>,
}

impl<W: Write + Send> XlsxTable<W> {
    fn new(title: &str, headers: &[&str], out: W) -> Result<Self, XlsxError> {
        let mut book = Workbook::new();
        let bold = XFormat::new().set_bold();
        let sheet = book.add_worksheet_with_constant_memory();
        sheet.set_name("Báo cáo")?;
        for (i, h) in headers.iter().enumerate() {
            let width = (h.chars().count() as f64 + 2.0).clamp(10.0, 40.0);
            sheet.set_column_width(i as u16, width)?;
        }
        sheet.write_string_with_format(
            0,
            0,
            title,
            &XFormat::new().set_bold().set_font_size(13),
        )?;
        for (i, h) in headers.iter().enumerate() {
            sheet.write_string_with_format(2, i as u16, *h, &bold)?;
        }
        Ok(XlsxTable {
            book,
            next: FIRST_ROW,
            out: Some(out),
        })
    }
}

fn xlsx_err(e: XlsxError) -> io::Error {
    io::Error::other(e)
}

impl<W: Write + Send> TableWriter for XlsxTable<W> {
    fn row(&mut self, cells: &[Cell]) -> io::Result<()> {
        let sheet = self.book.worksheet_from_index(0).map_err(xlsx_err)?;
        for (i, c) in cells.iter().enumerate() {
            let col = i as u16;
            match c {
                Cell::Text(s) => sheet.write_string(self.next, col, s),
                Cell::Int(n) => sheet.write_number(self.next, col, *n as f64),
                Cell::Num(n) => sheet.write_number(self.next, col, *n),
                Cell::Empty => continue,
            }
            .map_err(xlsx_err)?;
        }
        self.next += 1;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        let mut out = self.out.take().expect("finished once");
        self.book.save_to_writer(&mut out).map_err(xlsx_err)?;
        out.flush()
    }
}

pub type RowsFn = Box<dyn FnOnce(&mut Conn<'_>, &mut dyn TableWriter) -> Result<()> + Send>;

/// What an export writes: decided (and authorized) before the first byte is sent.
pub struct Export {
    /// The area it is about, and its path (the audit trail's scope).
    pub area: Option<(crate::domain::AreaId, String)>,
    pub filename: String,
    pub title: String,
    pub headers: &'static [&'static str],
    pub rows: RowsFn,
}

impl Export {
    /// A table already computed (reports of bounded size).
    pub fn of_rows(
        s: &Subject,
        what: &str,
        headers: &'static [&'static str],
        rows: Vec<Vec<Cell>>,
    ) -> Export {
        Export {
            area: Some((s.area.id, s.area.path.clone())),
            filename: filename(what, &s.area.name),
            title: s.title(what),
            headers,
            rows: Box::new(move |_, out| {
                for r in &rows {
                    out.row(r)?;
                }
                Ok(())
            }),
        }
    }

    /// Marks the title: the file holds personal data.
    pub fn personal(self) -> Export {
        Export {
            title: format!("{} — {PERSONAL_DATA}", self.title),
            ..self
        }
    }

    /// A list of the subject's persons or households, read page by page: personal data.
    pub fn paged<F>(s: Subject, what: &str, headers: &'static [&'static str], mut page: F) -> Export
    where
        F: FnMut(&mut Conn<'_>, &Subject, PageReq) -> Result<Vec<Vec<Cell>>> + Send + 'static,
    {
        Export {
            area: Some((s.area.id, s.area.path.clone())),
            filename: filename(what, &s.area.name),
            title: s.title(what),
            headers,
            rows: Box::new(move |conn, out| page_through(conn, out, |c, p| page(c, &s, p))),
        }
        .personal()
    }
}

/// Rows read at a time by exports: bounds memory, and few enough pages that re-sorting
/// for each (`OFFSET` paging) stays cheap.
const EXPORT_PAGE: i64 = 5_000;

/// Reads pages until one comes back short.
pub fn page_through<F>(conn: &mut Conn<'_>, out: &mut dyn TableWriter, mut page: F) -> Result<()>
where
    F: FnMut(&mut Conn<'_>, PageReq) -> Result<Vec<Vec<Cell>>>,
{
    let per_page = EXPORT_PAGE;
    for n in 1.. {
        let rows = page(conn, PageReq { page: n, per_page })?;
        for r in &rows {
            out.row(r)?;
        }
        if (rows.len() as i64) < per_page {
            break;
        }
    }
    Ok(())
}

/// `tien-do_hoa-tham_2026-11-27.csv`: ASCII, so that every browser keeps it.
pub fn filename(what: &str, place: &str) -> String {
    let slug = |s: &str| {
        text::fold(s)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .split('-')
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("-")
    };
    format!(
        "{}_{}_{}",
        slug(what),
        slug(place),
        local_date(&crate::domain::Time::now())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_starts_with_a_bom_and_its_title_and_quotes_what_needs_it() {
        let buf = SharedBuf::default();
        let title = "Danh sách, xã A";
        let mut w = table_writer(Format::Csv, title, &["Tên", "Số"], buf.clone()).unwrap();
        w.row(&["Nguyễn, Văn \"A\"".into(), Cell::Int(3)]).unwrap();
        w.row(&[Cell::Empty, Cell::Num(66.67)]).unwrap();
        w.finish().unwrap();
        let bytes = buf.0.lock().unwrap().clone();
        assert_eq!(&bytes[..3], b"\xEF\xBB\xBF");
        assert_eq!(
            std::str::from_utf8(&bytes[3..]).unwrap(),
            "\"Danh sách, xã A\"\nTên,Số\n\"Nguyễn, Văn \"\"A\"\"\",3\n,66.67\n"
        );
    }

    #[derive(Clone, Default)]
    struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for SharedBuf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
