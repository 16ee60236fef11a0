//! A table written to a file, as CSV or as an Excel workbook (`.xlsx`), chosen by the path's extension: the one way
//! pcbulk writes a table a person opens in a spreadsheet (the reports; the export plugs in the same way).
//!
//! The interface is small: a header of [`Column`]s (a name and a [`Kind`] each), then rows of string cells.
//! - CSV ([`CsvSink`]): a UTF-8 byte-order mark first (Excel's sign that the file is UTF-8), the delimiter given
//!   (the input's, so a `;` file gets a `;` table), and, where the table asks for it, formula-safe cells
//!   ([`formula_safe`]).
//! - xlsx (`xlsx::XlsxSink`): every text cell stored as text (a postal code `02134` or a phone number keeps every
//!   digit), numbers as numbers, the header frozen, an autofilter, columns sized to their contents, a status column
//!   coloured by status, note columns set apart. A text cell is never a formula in a workbook, so no cell is changed.
//!
//! A [`TableFile`] is created mode 0600 beside its final name and renamed into place when whole, so a crash never
//! leaves half a table where a whole one is expected. A leaf: it knows files, nothing of jobs, rows or SQLite.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

mod xlsx;

pub use xlsx::{MAX_CELL_CHARS, MAX_ROWS};

/// What a column holds, which decides how a workbook stores and shows its cells (a CSV writes text either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text, stored as text: never re-typed as a number or a date.
    Text,
    /// A whole number (a line, an HTTP status, a count): a number cell when the text is one, else text.
    Number,
    /// A row's status: text, its cell coloured by the status.
    Status,
    /// A note for people (a `#...` column): text, set apart in grey.
    Note,
}

impl Kind {
    /// The kind a header names by itself: a `#...` column is a note, any other text.
    pub fn of_header(name: &str) -> Kind {
        if name.starts_with('#') { Kind::Note } else { Kind::Text }
    }
}

/// A column of a table: its header and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
}

impl Column {
    pub fn new(name: impl Into<String>, kind: Kind) -> Column {
        Column { name: name.into(), kind }
    }
}

/// How a table is written where the format leaves a choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// The CSV delimiter (a workbook has none).
    pub delimiter: u8,
    /// Whether a CSV cell that a spreadsheet would run as a formula gets a `'` in front (the reports: yes; a file
    /// meant to be read back as values, such as an export: no).
    pub formula_safe: bool,
}

impl Default for Style {
    fn default() -> Style {
        Style { delimiter: b',', formula_safe: true }
    }
}

/// The format a path asks for: a workbook when its name ends in `.xlsx` (in any case), else CSV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|extension| extension.to_str()) {
            Some(extension) if extension.eq_ignore_ascii_case("xlsx") => Format::Xlsx,
            _ => Format::Csv,
        }
    }
}

/// A cell as a spreadsheet will show it, never run: a leading `=`, `+`, `-`, `@` (or tab, carriage return) gets a
/// `'` in front.
pub fn formula_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// Where the rows of a table go.
pub trait Sink {
    /// Writes one row: one cell per column, in the header's order.
    fn write_row(&mut self, cells: &[&str]) -> io::Result<()>;
    /// Writes what is left and flushes the file, which is then whole.
    fn finish(self: Box<Self>) -> io::Result<fs::File>;
}

/// A CSV table: the byte-order mark and the header first, then a record per row.
pub struct CsvSink<W: Write> {
    csv: csv::Writer<W>,
    formula_safe: bool,
}

impl<W: Write> CsvSink<W> {
    pub fn new(mut sink: W, columns: &[Column], style: Style) -> io::Result<CsvSink<W>> {
        sink.write_all(b"\xEF\xBB\xBF")?;
        let mut csv = csv::WriterBuilder::new().delimiter(style.delimiter).from_writer(sink);
        csv.write_record(columns.iter().map(|column| column.name.as_str())).map_err(io::Error::from)?;
        Ok(CsvSink { csv, formula_safe: style.formula_safe })
    }

    pub fn write_row<'a>(&mut self, cells: &[&'a str]) -> io::Result<()> {
        let formula_safe_cells = self.formula_safe;
        let safe = |cell: &&'a str| if formula_safe_cells { formula_safe(cell) } else { (*cell).into() };
        let cells: Vec<std::borrow::Cow<'a, str>> = cells.iter().map(safe).collect();
        self.csv.write_record(cells.iter().map(|cell| cell.as_bytes())).map_err(io::Error::from)
    }

    /// The sink, flushed.
    pub fn into_inner(self) -> io::Result<W> {
        self.csv.into_inner().map_err(|error| error.into_error())
    }
}

impl Sink for CsvSink<io::BufWriter<fs::File>> {
    fn write_row(&mut self, cells: &[&str]) -> io::Result<()> {
        CsvSink::write_row(self, cells)
    }

    fn finish(self: Box<Self>) -> io::Result<fs::File> {
        self.into_inner()?.into_inner().map_err(|error| error.into_error())
    }
}

/// A table file being written: a temporary file beside `path`, renamed onto it by [`TableFile::commit`].
pub struct TableFile {
    path: PathBuf,
    temporary: PathBuf,
    sink: Box<dyn Sink>,
}

impl TableFile {
    /// Starts the table at `path`, as a workbook when the path ends in `.xlsx`, else as CSV.
    pub fn create(path: &Path, columns: &[Column], style: Style) -> io::Result<TableFile> {
        crate::files::refuse_non_regular(path)?;
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        let temporary = path.with_file_name(name);
        // A leftover from a crash may carry other permissions: start from nothing.
        let _ = fs::remove_file(&temporary);
        let file = crate::files::create_private(&temporary)?;
        let sink: Box<dyn Sink> = match Format::of(path) {
            Format::Csv => Box::new(CsvSink::new(io::BufWriter::new(file), columns, style)?),
            Format::Xlsx => Box::new(xlsx::XlsxSink::new(file, &temporary, columns)?),
        };
        Ok(TableFile { path: path.to_path_buf(), temporary, sink })
    }

    pub fn write(&mut self, cells: &[&str]) -> io::Result<()> {
        self.sink.write_row(cells)
    }

    /// Flushes the table to disk and puts it in its place.
    pub fn commit(self) -> io::Result<()> {
        let file = self.sink.finish()?;
        file.sync_all()?;
        fs::rename(&self.temporary, &self.path)
    }
}

#[cfg(test)]
mod tests;
