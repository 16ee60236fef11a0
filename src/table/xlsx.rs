//! A table as an Excel workbook: one sheet, written a row at a time (rust_xlsxwriter's constant-memory mode keeps
//! the rows in a temporary file beside the table, not in memory), then assembled into the file when finished.
//!
//! Every text cell is stored as text and its column formatted as text (`@`), so a postal code or a phone number
//! keeps every digit, even when a person types a new one in; a [`Kind::Number`] cell that holds a whole number is a
//! number. The header is frozen and bold with an autofilter on it, each column is as wide as its longest line (up to
//! [`MAX_WIDTH`]), a [`Kind::Status`] cell is coloured by its status, and [`Kind::Note`] columns are grey and italic.

use super::{Column, Kind, Sink};
use rust_xlsxwriter::{Color, Format, FormatBorder, Workbook, Worksheet, XlsxError};
use std::fs;
use std::io;
use std::path::Path;

/// The rows a worksheet holds below its header (Excel's 1,048,576, less the header).
pub const MAX_ROWS: u32 = 1_048_575;
/// The most characters a cell holds (Excel's limit); a longer value is cut, and says so.
pub const MAX_CELL_CHARS: usize = 32_767;
/// The widest a column is made, in characters: wider cells wrap or are cut off on screen, never in the file.
const MAX_WIDTH: usize = 60;
/// The largest whole number a number cell holds exactly (2^53).
const EXACT_NUMBERS: u64 = 1 << 53;

fn xlsx_error(error: XlsxError) -> io::Error {
    io::Error::other(format!("cannot write the workbook: {error}"))
}

/// The formats of a table, made once.
struct Formats {
    header: Format,
    note_header: Format,
    text: Format,
    note: Format,
    number: Format,
}

impl Formats {
    fn new() -> Formats {
        let header = Format::new().set_bold().set_border_bottom(FormatBorder::Thin);
        Formats {
            note_header: header.clone().set_italic().set_background_color(Color::RGB(0xE7E6E6)),
            header: header.set_background_color(Color::RGB(0xD9E1F2)),
            text: Format::new().set_num_format("@"),
            note: Format::new().set_num_format("@").set_italic().set_font_color(Color::RGB(0x595959)),
            number: Format::new(),
        }
    }

    fn of(&self, kind: Kind) -> &Format {
        match kind {
            Kind::Text | Kind::Status => &self.text,
            Kind::Note => &self.note,
            Kind::Number => &self.number,
        }
    }
}

/// A status cell's colours (fill, font), as Excel's Good, Neutral and Bad styles show them.
fn status_format(status: &str) -> Format {
    let (fill, font) = match status {
        "updated" | "restored" | "valid" => (0xC6EFCE, 0x006100),
        "would_update" => (0xDDEBF7, 0x1F4E78),
        "pending" => (0xFFEB9C, 0x9C5700),
        "failed" | "invalid" | "conflict" => (0xFFC7CE, 0x9C0006),
        _ => (0xF2F2F2, 0x000000),
    };
    Format::new().set_num_format("@").set_background_color(Color::RGB(fill)).set_font_color(Color::RGB(font))
}

/// A workbook being written a row at a time.
pub(super) struct XlsxSink {
    file: fs::File,
    workbook: Workbook,
    kinds: Vec<Kind>,
    widths: Vec<usize>,
    formats: Formats,
    /// The row the next write goes to (the header is row 0).
    row: u32,
}

impl XlsxSink {
    /// A workbook whose sheet starts with `columns`; its rows wait in a temporary file in `beside`'s directory.
    pub(super) fn new(file: fs::File, beside: &Path, columns: &[Column]) -> io::Result<XlsxSink> {
        let mut workbook = Workbook::new();
        let directory = beside.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
        workbook.set_tempdir(directory).map_err(xlsx_error)?;
        let formats = Formats::new();
        let sheet = workbook.add_worksheet_with_constant_memory().map_err(xlsx_error)?;
        for (index, column) in columns.iter().enumerate() {
            let header = if column.kind == Kind::Note { &formats.note_header } else { &formats.header };
            let index = column_index(index)?;
            sheet.write_string_with_format(0, index, &column.name, header).map_err(xlsx_error)?;
            sheet.set_column_format(index, formats.of(column.kind)).map_err(xlsx_error)?;
        }
        sheet.set_freeze_panes(1, 0).map_err(xlsx_error)?;
        // The header's width, and room for the filter's button.
        let widths = columns.iter().map(|column| column.name.chars().count() + 3).collect();
        let kinds = columns.iter().map(|column| column.kind).collect();
        Ok(XlsxSink { file, workbook, kinds, widths, formats, row: 1 })
    }

    fn sheet(&mut self) -> io::Result<&mut Worksheet> {
        self.workbook.worksheet_from_index(0).map_err(xlsx_error)
    }

    fn write_cell(&mut self, column: usize, text: &str) -> io::Result<()> {
        let kind = self.kinds.get(column).copied().unwrap_or(Kind::Text);
        let widest = text.lines().map(|line| line.chars().count()).max().unwrap_or(0);
        if let Some(width) = self.widths.get_mut(column) {
            *width = (*width).max(widest);
        }
        if text.is_empty() {
            return Ok(());
        }
        let (row, index) = (self.row, column_index(column)?);
        let number = match kind {
            Kind::Number => whole_number(text),
            _ => None,
        };
        let format = match kind {
            Kind::Status => status_format(text),
            kind => self.formats.of(kind).clone(),
        };
        let text = cut(text);
        let sheet = self.sheet()?;
        match number {
            Some(number) => sheet.write_number_with_format(row, index, number, &format),
            None => sheet.write_string_with_format(row, index, text.as_ref(), &format),
        }
        .map_err(xlsx_error)?;
        Ok(())
    }
}

impl Sink for XlsxSink {
    fn write_row(&mut self, cells: &[&str]) -> io::Result<()> {
        if self.row > MAX_ROWS {
            return Err(io::Error::other(format!(
                "the table has more rows than a worksheet holds ({MAX_ROWS} below its header): write it as .csv"
            )));
        }
        for (column, cell) in cells.iter().enumerate() {
            self.write_cell(column, cell)?;
        }
        self.row += 1;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<fs::File> {
        let (last_row, last_column) = (self.row - 1, column_index(self.kinds.len().max(1) - 1)?);
        let widths = std::mem::take(&mut self.widths);
        let sheet = self.sheet()?;
        for (column, width) in widths.into_iter().enumerate() {
            sheet.set_column_width(column_index(column)?, (width.min(MAX_WIDTH) + 2) as f64).map_err(xlsx_error)?;
        }
        sheet.autofilter(0, 0, last_row, last_column).map_err(xlsx_error)?;
        let XlsxSink { file, mut workbook, .. } = *self;
        workbook.save_to_writer(&file).map_err(xlsx_error)?;
        Ok(file)
    }
}

fn column_index(column: usize) -> io::Result<u16> {
    u16::try_from(column).ok().filter(|&index| index < 16_384).ok_or_else(|| {
        io::Error::other(format!("the table has more columns than a worksheet holds ({} of 16384)", column + 1))
    })
}

/// A whole number written without a sign, a leading zero or anything else, small enough to be held exactly.
fn whole_number(text: &str) -> Option<f64> {
    let plain = text.bytes().all(|byte| byte.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    let number: u64 = text.parse().ok().filter(|_| plain)?;
    (number < EXACT_NUMBERS).then_some(number as f64)
}

/// A value cut to what a cell holds, saying how much was left out.
pub(super) fn cut(text: &str) -> std::borrow::Cow<'_, str> {
    let count = text.chars().count();
    if count <= MAX_CELL_CHARS {
        return text.into();
    }
    let note = format!("… (cut: {count} characters; the CSV report holds all)");
    let kept: String = text.chars().take(MAX_CELL_CHARS - note.chars().count()).collect();
    format!("{kept}{note}").into()
}
