//! A workbook's sheet as the reader's records: the adaptor between calamine and [`super::Reader`], which applies
//! the same rules to a sheet's rows as to a CSV's records.
//!
//! Each cell comes out as the text a person sees in it: text as it is, a whole number without a decimal point
//! (`2134`, `4255551234`: what the person has, for the rules to judge), a date as `YYYY-MM-DD`, a boolean as `TRUE`
//! or `FALSE`. A cell holding an error (`#N/A`, `#REF!`) makes its row invalid, naming the cell. A record's line is
//! the row's number in Excel. The sheet is read whole (a worksheet holds at most 1,048,576 rows).

use super::{FileError, Problem};
use calamine::{Data, Range, Reader as _, Xlsx, XlsxError};
use std::path::Path;

/// The first bytes of an OLE compound file: what an encrypted workbook (or an old `.xls`) is.
const COMPOUND_FILE: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
/// The first bytes of a zip archive: what an `.xlsx` is.
const ZIP: &[u8] = b"PK\x03\x04";

/// The rows of one sheet, handed out one at a time.
pub(super) struct Sheet {
    range: Range<Data>,
    /// The next row, counted from the first row the sheet uses.
    next: usize,
    /// The cells of the row last handed out that hold an error: (column index, the error as Excel shows it).
    flawed: Vec<(usize, String)>,
}

impl Sheet {
    /// The sheet named `wanted` (without regard to case, as Excel names them), or the first.
    pub(super) fn open(bytes: Vec<u8>, path: &Path, wanted: Option<&str>) -> Result<Sheet, FileError> {
        let display = path.display().to_string();
        if bytes.starts_with(&COMPOUND_FILE) {
            return Err(FileError::Encrypted { path: display });
        }
        if !bytes.starts_with(ZIP) {
            let message = "it is not a zip archive, as every .xlsx is (a CSV named .xlsx? give it a .csv name)";
            return Err(FileError::NotWorkbook { path: display, message: message.to_string() });
        }
        let mut workbook = Xlsx::new(std::io::Cursor::new(bytes)).map_err(|error| workbook_error(error, &display))?;
        let names = workbook.sheet_names();
        let name = match wanted {
            Some(wanted) => {
                names.iter().find(|name| name.to_lowercase() == wanted.to_lowercase()).ok_or_else(|| {
                    FileError::NoSheet { path: display.clone(), sheet: wanted.to_string(), found: names.clone() }
                })?
            }
            None => names.first().ok_or_else(|| FileError::NotWorkbook {
                path: display.clone(),
                message: "it has no sheet".to_string(),
            })?,
        }
        .clone();
        let range = workbook.worksheet_range(&name).map_err(|error| workbook_error(error, &display))?;
        Ok(Sheet { range, next: 0, flawed: Vec::new() })
    }

    /// Puts the next row's cells into `record` as text; `None` after the last row, else the row's number in Excel.
    pub(super) fn next_row(&mut self, record: &mut csv::ByteRecord) -> Option<u64> {
        let (first_row, _) = self.range.start()?;
        if self.next >= self.range.height() {
            return None;
        }
        let row = self.next;
        self.next += 1;
        record.clear();
        self.flawed.clear();
        for column in 0..self.range.width() {
            let cell = self.range.get((row, column)).unwrap_or(&Data::Empty);
            match cell {
                Data::Error(error) => {
                    self.flawed.push((column, error.to_string()));
                    record.push_field(b"");
                }
                cell => record.push_field(text_of(cell).as_bytes()),
            }
        }
        Some(u64::from(first_row) + 1 + row as u64)
    }

    /// Whether a cell of the row last handed out holds an error.
    pub(super) fn has_flaws(&self) -> bool {
        !self.flawed.is_empty()
    }

    /// The problems of the row last handed out: each cell that holds an error, named by `column_name`.
    pub(super) fn flaws(&self, line: u64, column_name: impl Fn(usize) -> String) -> Vec<Problem> {
        let problem = |(index, error): &(usize, String)| Problem {
            line,
            column: Some(column_name(*index)),
            value: Some(error.clone()),
            message: "the cell holds an error (a formula that failed): type the value, or fix the formula".into(),
        };
        self.flawed.iter().map(problem).collect()
    }
}

fn workbook_error(error: XlsxError, path: &str) -> FileError {
    match error {
        XlsxError::Password => FileError::Encrypted { path: path.to_string() },
        error => FileError::NotWorkbook { path: path.to_string(), message: error.to_string() },
    }
}

/// A cell as the text a person sees in it.
pub(super) fn text_of(cell: &Data) -> String {
    match cell {
        Data::Empty | Data::Error(_) => String::new(),
        Data::String(text) | Data::DateTimeIso(text) | Data::DurationIso(text) => text.clone(),
        Data::Int(number) => number.to_string(),
        Data::Float(number) => number_text(*number),
        Data::Bool(true) => "TRUE".to_string(),
        Data::Bool(false) => "FALSE".to_string(),
        Data::DateTime(date) if date.is_datetime() => {
            let (year, month, day, hour, minute, second, _) = date.to_ymd_hms_milli();
            match (hour, minute, second) {
                (0, 0, 0) => format!("{year:04}-{month:02}-{day:02}"),
                _ => format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}"),
            }
        }
        Data::DateTime(duration) => number_text(duration.as_f64()),
    }
}

/// A number as Excel shows it in a cell of the General format: a whole number without a decimal point or an
/// exponent (up to 15 digits, Excel's precision), anything else as its shortest exact decimal.
fn number_text(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e15 {
        return format!("{}", number as i64);
    }
    format!("{number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_a_person_sees_them() {
        assert_eq!(text_of(&Data::Float(2134.0)), "2134");
        assert_eq!(text_of(&Data::Float(4255551234.0)), "4255551234");
        assert_eq!(text_of(&Data::Float(-3.0)), "-3");
        assert_eq!(text_of(&Data::Float(0.5)), "0.5");
        assert_eq!(text_of(&Data::Int(7)), "7");
        assert_eq!(text_of(&Data::Bool(true)), "TRUE");
        assert_eq!(text_of(&Data::String(" 02134 ".into())), " 02134 ");
        let date = calamine::ExcelDateTime::new(45_000.0, calamine::ExcelDateTimeType::DateTime, false);
        assert_eq!(text_of(&Data::DateTime(date)), "2023-03-15");
    }
}
