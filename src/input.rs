//! The CSV reader: bytes in, typed change rows out. A workbook's sheet comes through the same [`Reader`], adapted
//! by `sheet` (its cells as text, Excel's row numbers as lines), so it meets the same rules.
//!
//! Streaming: one reused record buffer, so memory does not grow with the number of rows, except for the set of
//! customer ids seen (needed to find duplicates in one pass), which grows with the number of distinct ids (about
//! 50 MB at a million, 75 MB while it grows). A pass over a file whose duplicates are already known leaves it out
//! ([`Reader::without_duplicate_check`]).
//! Pure in the sense that matters: it reads from any `io::Read` and knows nothing of HTTP, SQLite or tokio.
//! It never refuses a row silently: every row comes out, valid or with the problems that make it invalid.

use crate::fields::{self, CLEAR, CUSTOMER_BILLING, CUSTOMER_ID_COLUMNS, Field};
use std::collections::HashMap;
use std::fmt;
use std::io;

/// How the file of changes is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputConfig {
    /// A CSV's delimiter.
    pub delimiter: u8,
    /// A workbook's sheet (`--sheet`); `None`: the first.
    pub sheet: Option<String>,
}

impl Default for InputConfig {
    fn default() -> Self {
        InputConfig { delimiter: b',', sheet: None }
    }
}

/// A customer tenant id: a GUID, compared and written in lower case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomerId(u128);

impl CustomerId {
    /// Parses the 36-character form `8-4-4-4-12` of hex digits, in any case.
    pub fn parse(text: &str) -> Option<CustomerId> {
        let bytes = text.as_bytes();
        if bytes.len() != 36 {
            return None;
        }
        let mut value: u128 = 0;
        for (index, &byte) in bytes.iter().enumerate() {
            if matches!(index, 8 | 13 | 18 | 23) {
                if byte != b'-' {
                    return None;
                }
                continue;
            }
            let digit = (byte as char).to_digit(16)?;
            value = (value << 4) | u128::from(digit);
        }
        Some(CustomerId(value))
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = format!("{:032x}", self.0);
        write!(f, "{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
    }
}

/// What a cell asks of its field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Replace the value with this one (already normalised by the field's rule).
    Set(String),
    /// Empty the field: `""`, or left as it is when absent or `null`.
    Clear,
    /// Put back a value a job recorded as the field's before-value (rollback): `None` removes the key (it was
    /// absent); `Some(Null)` leaves an absent or null field as it is (a state file written before absent was told
    /// apart from null recorded both as null).
    Restore(Option<serde_json::Value>),
}

/// One field a row changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub field: &'static Field,
    pub edit: Edit,
}

/// A valid row: the customer and the changes the row asks for, in column order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeRow {
    /// The input line the record starts on (the header is line 1).
    pub line: u64,
    pub customer_id: CustomerId,
    pub changes: Vec<Change>,
}

/// A problem with a row (or a warning about it), located by line, column and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub column: Option<String>,
    pub value: Option<String>,
    pub message: String,
}

/// The longest value a message quotes before cutting it short.
const QUOTED_MAX: usize = 60;

/// A value made safe to quote in a message: control characters escaped, long values cut.
pub fn quote(value: &str) -> String {
    let mut quoted = String::new();
    for (count, c) in value.chars().enumerate() {
        if count == QUOTED_MAX {
            quoted.push('…');
            break;
        }
        match c {
            '"' => quoted.push_str("\\\""),
            c if c.is_control() => quoted.extend(c.escape_default()),
            c => quoted.push(c),
        }
    }
    quoted
}

impl Problem {
    /// The problem without its line, for a report that has a line column:
    /// `column C: value "V": what is wrong`.
    pub fn detail(&self) -> String {
        let mut text = String::new();
        if let Some(column) = &self.column {
            text.push_str("column ");
            text.push_str(column);
            text.push_str(": ");
        }
        if let Some(value) = &self.value {
            text.push_str("value \"");
            text.push_str(&quote(value));
            text.push_str("\": ");
        }
        text.push_str(&self.message);
        text
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(_) => write!(f, "line {}, {}", self.line, self.detail()),
            None => write!(f, "line {}: {}", self.line, self.detail()),
        }
    }
}

/// What to do with a file that is not UTF-8.
pub const NOT_UTF8_FIX: &str = "Save it as UTF-8 (in Excel: Save As, then \"CSV UTF-8 (Comma delimited)\")";

/// Bytes that are not valid UTF-8, shown with each bad byte as `\xNN`.
fn escape_invalid(bytes: &[u8]) -> String {
    let mut text = String::new();
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for byte in chunk.invalid() {
            text.push_str(&format!("\\x{byte:02X}"));
        }
    }
    text
}

/// Whether a row can be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Validity {
    Valid(ChangeRow),
    Invalid(Vec<Problem>),
}

/// One data record of the file, valid or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub line: u64,
    /// The customer id cell as written (trimmed), for the report.
    pub customer_cell: String,
    pub validity: Validity,
    /// Things worth a look that do not make the row invalid.
    pub warnings: Vec<Problem>,
    /// The cells as written, for an edited export's three-way planning ([`Reader::with_raw_cells`]); `None`
    /// otherwise.
    pub raw: Option<RawCells>,
}

/// A record's cells as written, for `threeway` to judge against the export's values: each field column's text
/// (untrimmed), and the `#export` note naming the export it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawCells {
    pub export: Option<String>,
    pub cells: Vec<(&'static Field, String)>,
}

/// The note column whose cells name the export a CSV came from.
pub const EXPORT_COLUMN: &str = "#export";

/// Why the file as a whole cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Open { path: String, source: io::Error },
    #[error(
        "{path} is {kind}, not a regular file: pcbulk reads the CSV again to resume and checks that it did not \
         change, so save it to a file first (for example: cat > updates.csv), then give that file"
    )]
    NotRegular { path: String, kind: &'static str },
    #[error("{path} is not UTF-8: it looks like {encoding}. {}", NOT_UTF8_FIX)]
    Encoding { path: String, encoding: &'static str },
    #[error("{path} changed {detail}: nothing was planned from it; run the command again once the file is saved")]
    Changed { path: String, detail: String },
    #[error("the file is empty: it needs a header row")]
    Empty,
    #[error("the header is not usable:\n{}", .0.join("\n"))]
    Header(Vec<String>),
    #[error("line {line}: cannot read the file: {message}")]
    Read { line: u64, message: String },
    #[error("{path} is not an Excel workbook (.xlsx) pcbulk can read: {message}")]
    NotWorkbook { path: String, message: String },
    #[error(
        "{path} is encrypted (a workbook with a password to open it, or an old .xls): pcbulk cannot read it; in \
         Excel, remove the password (File > Info > Protect Workbook) and save it as .xlsx, then give that file"
    )]
    Encrypted { path: String },
    #[error("{path} has no sheet named \"{sheet}\": its sheets are {}", .found.join(", "))]
    NoSheet { path: String, sheet: String, found: Vec<String> },
    #[error("--sheet {sheet}: {path} is a CSV, which has no sheets (--sheet is for an .xlsx workbook)")]
    SheetOfCsv { path: String, sheet: String },
}

/// What one column of the file holds.
#[derive(Clone, Copy, Debug)]
enum Column {
    Customer,
    Field(&'static Field),
    /// A column whose header cell is empty (Excel leaves these at the end of a row): its cells must be empty.
    Unnamed,
    /// A note for people (a header starting with `#`: `#domain`, an operator's comment): never read as a change.
    Note,
}

/// The header, resolved.
#[derive(Debug)]
struct Layout {
    columns: Vec<Column>,
    customer: usize,
    /// The `#export` note column, when there is one.
    export: Option<usize>,
}

fn trim_bom(cell: &[u8]) -> &[u8] {
    cell.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(cell)
}

fn resolve_header(header: &csv::ByteRecord, need_fields: bool) -> Result<Layout, FileError> {
    let mut problems = Vec::new();
    let mut columns = Vec::with_capacity(header.len());
    let mut customer: Option<usize> = None;
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    for (index, raw) in header.iter().enumerate() {
        let raw = if index == 0 { trim_bom(raw) } else { raw };
        let name = String::from_utf8_lossy(raw);
        let name = name.trim();
        let position = index + 1;
        if name.is_empty() {
            columns.push(Column::Unnamed);
        } else if name.starts_with('#') {
            columns.push(Column::Note);
        } else if CUSTOMER_ID_COLUMNS.iter().any(|alias| alias.eq_ignore_ascii_case(name)) {
            if let Some(first) = customer {
                problems.push(format!(
                    "column {position} ({name}) names the customer again: column {} already does",
                    first + 1
                ));
            }
            customer.get_or_insert(index);
            columns.push(Column::Customer);
        } else if let Some(field) = fields::lookup(CUSTOMER_BILLING, name) {
            if let Some(first) = seen.insert(field.name, position) {
                problems.push(format!("column {position} ({name}) repeats column {first}: each field may appear once"));
            }
            columns.push(Column::Field(field));
        } else {
            let hint = match fields::suggest(CUSTOMER_BILLING, name) {
                Some(near) => format!(": did you mean {near}?"),
                None => String::new(),
            };
            problems.push(format!("column {position}: unknown column \"{}\"{hint}", quote(name)));
            columns.push(Column::Unnamed);
        }
    }
    if customer.is_none() {
        problems.push(format!("no column names the customer: add a {} column", CUSTOMER_ID_COLUMNS.join(" / ")));
    }
    if let Some(hint) = delimiter_hint(header) {
        // One column holding the whole header: the file is separated by another delimiter; that is the one fix.
        return Err(FileError::Header(vec![hint]));
    }
    if need_fields && seen.is_empty() && problems.is_empty() {
        problems.push("no column names a field to change".to_string());
    }
    match customer {
        Some(customer) if problems.is_empty() => {
            let export = header
                .iter()
                .position(|raw| String::from_utf8_lossy(trim_bom(raw)).trim().eq_ignore_ascii_case(EXPORT_COLUMN));
            Ok(Layout { columns, customer, export })
        }
        _ => Err(FileError::Header(problems)),
    }
}

/// When the header is one cell that holds `;` or tabs but no `,`, the file is separated by them: say so, with the
/// option that reads it.
fn delimiter_hint(header: &csv::ByteRecord) -> Option<String> {
    if header.len() != 1 {
        return None;
    }
    let cell = header.get(0)?;
    let (name, option) = match (cell.contains(&b';'), cell.contains(&b'\t')) {
        (true, _) => ("`;`", "--delimiter ';'"),
        (false, true) => ("tab", "--delimiter tab"),
        (false, false) => return None,
    };
    Some(format!("the header looks {name}-separated (\"{}\"): try {option}", quote(&String::from_utf8_lossy(cell))))
}

/// A source that notes where its line breaks are, so a record's first line can be told exactly.
///
/// The csv crate's own line numbers drift on CRLF files and blank lines; its byte offsets are right, but point at
/// the first byte the previous record left unread, which may be the `\n` of a CRLF or a blank line. So this keeps
/// the runs of `\r`/`\n` bytes that the parser has not yet passed (a few buffers' worth at most).
struct LineCounter<R> {
    inner: R,
    offset: u64,
    /// Runs of line-break bytes not yet passed: (first byte, one past the last byte, number of `\n` in it).
    runs: std::collections::VecDeque<(u64, u64, u64)>,
    /// `\n` bytes in the runs already passed.
    passed: u64,
}

impl<R: io::Read> io::Read for LineCounter<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buffer)?;
        let mut index = 0;
        while let Some(found) = memchr::memchr2(b'\r', b'\n', &buffer[index..count]) {
            let start = index + found;
            let mut end = start;
            let mut newlines = 0;
            while end < count && matches!(buffer[end], b'\r' | b'\n') {
                newlines += u64::from(buffer[end] == b'\n');
                end += 1;
            }
            let (first, last) = (self.offset + start as u64, self.offset + end as u64);
            match self.runs.back_mut() {
                Some(run) if run.1 == first => {
                    run.1 = last;
                    run.2 += newlines;
                }
                _ => self.runs.push_back((first, last, newlines)),
            }
            index = end;
        }
        self.offset += count as u64;
        Ok(count)
    }
}

impl<R> LineCounter<R> {
    /// The line of a record the parser says begins at `byte`: past any line breaks it left unread.
    fn line_at(&mut self, byte: u64) -> u64 {
        while let Some(&(first, last, newlines)) = self.runs.front() {
            if first > byte {
                break;
            }
            // A run that starts at or before the record is behind it, all of it: a record never starts with a
            // line break, so a run holding `byte` ends where the record really starts.
            self.passed += newlines;
            self.runs.pop_front();
            if last > byte {
                break;
            }
        }
        1 + self.passed
    }
}

/// Where the records come from: a CSV, or a workbook's sheet (whose type ignores `R`).
enum Source<R> {
    Csv(csv::Reader<LineCounter<R>>),
    Sheet(sheet::Sheet),
}

/// Reads records one at a time from a CSV source or a workbook's sheet.
pub struct Reader<R> {
    source: Source<R>,
    layout: Layout,
    buffer: csv::ByteRecord,
    /// Customer id → the line it first appeared on; `None` when the caller knows the duplicates already.
    seen: Option<seen::SeenIds>,
    /// Records keep their cells as written, unjudged ([`Reader::with_raw_cells`]).
    raw: bool,
}

impl<R: io::Read> Reader<R> {
    /// Reads the header and resolves every column; a bad header is an error for the whole file.
    pub fn new(source: R, config: InputConfig) -> Result<Reader<R>, FileError> {
        Self::with_header_check(source, config, true)
    }

    /// A reader of a file that names customers and maybe no field (`export --customers`): a header with a customer
    /// column and no field column is good, and its records are read for their customer ids.
    pub fn of_ids(source: R, config: InputConfig) -> Result<Reader<R>, FileError> {
        Self::with_header_check(source, config, false)
    }

    fn with_header_check(source: R, config: InputConfig, need_fields: bool) -> Result<Reader<R>, FileError> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(config.delimiter)
            .from_reader(LineCounter { inner: source, offset: 0, runs: Default::default(), passed: 0 });
        let mut header = csv::ByteRecord::new();
        let found = csv.read_byte_record(&mut header).map_err(|error| read_error(&error, 1))?;
        if !found {
            return Err(FileError::Empty);
        }
        let layout = resolve_header(&header, need_fields)?;
        Ok(Reader::of(Source::Csv(csv), layout))
    }

    /// Reads a workbook's sheet (`config.sheet`, else the first) from its bytes, as a CSV's records: the same rules
    /// and problems, each record's line its row number in Excel. `path` names the file in errors.
    pub fn from_workbook(bytes: Vec<u8>, path: &std::path::Path, config: &InputConfig) -> Result<Reader<R>, FileError> {
        let mut sheet = sheet::Sheet::open(bytes, path, config.sheet.as_deref())?;
        let mut header = csv::ByteRecord::new();
        if sheet.next_row(&mut header).is_none() {
            return Err(FileError::Empty);
        }
        let layout = resolve_header(&header, true)?;
        Ok(Reader::of(Source::Sheet(sheet), layout))
    }

    fn of(source: Source<R>, layout: Layout) -> Reader<R> {
        Reader { source, layout, buffer: csv::ByteRecord::new(), seen: Some(seen::SeenIds::default()), raw: false }
    }

    /// Leaves duplicate customer ids to the caller: a row repeating an earlier row's customer is read like any
    /// other, and memory no longer grows with the number of ids. Only for a pass over a file whose duplicates are
    /// already known and skipped by line (the engine's, once planning has recorded them as `invalid`).
    pub fn without_duplicate_check(mut self) -> Reader<R> {
        self.seen = None;
        self
    }

    /// Keeps every record's cells as written ([`Record::raw`]) and leaves them unjudged: an edited export's cells
    /// are judged against the export's values (`threeway`), a cell equal to its export value never against its
    /// field's rule. The customer id and the number of cells are still checked.
    pub fn with_raw_cells(mut self) -> Reader<R> {
        self.raw = true;
        self
    }

    /// Whether the header has an `#export` column: the file came from `pcbulk export`.
    pub fn has_export_column(&self) -> bool {
        self.layout.export.is_some()
    }

    /// The next data record, `None` at the end of the file.
    pub fn next_record(&mut self) -> Option<Result<Record, FileError>> {
        loop {
            let line = match &mut self.source {
                Source::Csv(csv) => match csv.read_byte_record(&mut self.buffer) {
                    Ok(false) => return None,
                    Err(error) => {
                        let line = csv.position().line();
                        return Some(Err(read_error(&error, line)));
                    }
                    Ok(true) => {
                        let byte = self.buffer.position().map_or(0, |position| position.byte());
                        csv.get_mut().line_at(byte)
                    }
                },
                Source::Sheet(sheet) => sheet.next_row(&mut self.buffer)?,
            };
            // A record of nothing but empty cells is a blank line as a spreadsheet saves it: not a row. (A sheet's
            // cell holding an error is empty in the buffer, but its row is a row: invalid, never dropped.)
            let flawed = matches!(&self.source, Source::Sheet(sheet) if sheet.has_flaws());
            if !flawed && self.buffer.iter().all(|cell| cell.trim_ascii().is_empty()) {
                continue;
            }
            return Some(Ok(self.judge(line)));
        }
    }

    fn judge(&mut self, line: u64) -> Record {
        let customer_cell =
            self.buffer.get(self.layout.customer).map(|cell| String::from_utf8_lossy(cell).trim().to_string());
        let customer_cell = customer_cell.unwrap_or_default();
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let expected = self.layout.columns.len();
        if self.buffer.len() != expected {
            problems.push(Problem {
                line,
                column: None,
                value: None,
                message: format!("{} cells where the header has {expected}", self.buffer.len()),
            });
            return Record { line, customer_cell, validity: Validity::Invalid(problems), warnings, raw: None };
        }
        let customer_id = self.check_customer(line, &mut problems);
        if self.raw {
            let raw = Some(self.raw_cells(line, &mut problems));
            let validity = match customer_id {
                Some(customer_id) if problems.is_empty() => {
                    Validity::Valid(ChangeRow { line, customer_id, changes: Vec::new() })
                }
                _ => Validity::Invalid(problems),
            };
            return Record { line, customer_cell, validity, warnings, raw };
        }
        let changes = self.check_cells(line, &mut problems);
        if let Source::Sheet(sheet) = &self.source {
            problems.extend(sheet.flaws(line, |index| self.column_name(index)));
        }
        if changes.is_empty() && problems.is_empty() {
            problems.push(Problem {
                line,
                column: None,
                value: None,
                message: "every field cell is empty: the row changes nothing".to_string(),
            });
        }
        warn_region(line, &changes, &mut warnings);
        let validity = match customer_id {
            Some(customer_id) if problems.is_empty() => Validity::Valid(ChangeRow { line, customer_id, changes }),
            _ => Validity::Invalid(problems),
        };
        Record { line, customer_cell, validity, warnings, raw: None }
    }

    /// The record's field cells and its `#export` note, as written; a field cell that is not UTF-8 is a problem.
    fn raw_cells(&self, line: u64, problems: &mut Vec<Problem>) -> RawCells {
        let export = self.layout.export.and_then(|index| self.buffer.get(index));
        let export = export.map(|raw| String::from_utf8_lossy(raw).trim().to_string());
        let mut cells = Vec::new();
        for (column, raw) in self.layout.columns.iter().zip(self.buffer.iter()) {
            let Column::Field(field) = column else { continue };
            match std::str::from_utf8(raw) {
                Ok(text) => cells.push((*field, text.to_string())),
                Err(_) => problems.push(Problem {
                    line,
                    column: Some(field.name.to_string()),
                    value: Some(escape_invalid(raw)),
                    message: "not valid UTF-8".to_string(),
                }),
            }
        }
        RawCells { export, cells }
    }

    fn check_customer(&mut self, line: u64, problems: &mut Vec<Problem>) -> Option<CustomerId> {
        let column = Some("customer_id".to_string());
        let raw = self.buffer.get(self.layout.customer).unwrap_or_default();
        let Ok(text) = std::str::from_utf8(raw) else {
            let value = Some(escape_invalid(raw));
            problems.push(Problem { line, column, value, message: "not valid UTF-8".to_string() });
            return None;
        };
        let text = text.trim();
        if text.is_empty() {
            problems.push(Problem { line, column, value: None, message: "the customer id is empty".to_string() });
            return None;
        }
        let Some(id) = CustomerId::parse(text) else {
            let message = "not a GUID: a customer id looks like 0b7b8b4c-1d2e-4f5a-9b6c-7d8e9f0a1b2c".to_string();
            problems.push(Problem { line, column, value: Some(text.to_string()), message });
            return None;
        };
        let Some(seen) = self.seen.as_mut() else {
            return Some(id);
        };
        match seen.first_line(id.0, line) {
            Some(first) => {
                let message = format!("the same customer as line {first}: the earlier line wins, this one is skipped");
                problems.push(Problem { line, column, value: Some(text.to_string()), message });
                None
            }
            None => Some(id),
        }
    }

    /// The name of a column as a problem names it.
    fn column_name(&self, index: usize) -> String {
        match self.layout.columns.get(index) {
            Some(Column::Customer) => "customer_id".to_string(),
            Some(Column::Field(field)) => field.name.to_string(),
            _ => "(no name)".to_string(),
        }
    }

    fn check_cells(&self, line: u64, problems: &mut Vec<Problem>) -> Vec<Change> {
        let mut changes = Vec::new();
        for (column, raw) in self.layout.columns.iter().zip(self.buffer.iter()) {
            let field = match column {
                Column::Customer | Column::Note => continue,
                Column::Field(field) => Some(*field),
                Column::Unnamed => None,
            };
            let name = field.map_or("(no name)", |field| field.name);
            let located = |value: Option<String>, message: String| Problem {
                line,
                column: Some(name.to_string()),
                value,
                message,
            };
            let Ok(text) = std::str::from_utf8(raw) else {
                problems.push(located(Some(escape_invalid(raw)), "not valid UTF-8".into()));
                continue;
            };
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let Some(field) = field else {
                problems.push(located(Some(text.to_string()), "a value under a column with no name".into()));
                continue;
            };
            let edit = if text.eq_ignore_ascii_case(CLEAR) {
                field.check_clear().map(|()| Edit::Clear)
            } else {
                field.check(text).map(Edit::Set)
            };
            match edit {
                Ok(edit) => changes.push(Change { field, edit }),
                Err(broken) => problems.push(located(Some(text.to_string()), broken.0)),
            }
        }
        changes
    }
}

impl<R: io::Read> Iterator for Reader<R> {
    type Item = Result<Record, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
    }
}

fn read_error(error: &csv::Error, line: u64) -> FileError {
    let line = error.position().map_or(line, |position| position.line());
    FileError::Read { line, message: error.to_string() }
}

/// Partner Center refuses `defaultAddress.region` on a US address (27002); offline, the row's own country is all
/// that is known, so warn when the row names both.
fn warn_region(line: u64, changes: &[Change], warnings: &mut Vec<Problem>) {
    let set_value = |name: &str| {
        changes.iter().find_map(|change| match (&change.edit, change.field.name == name) {
            (Edit::Set(value), true) => Some(value.clone()),
            _ => None,
        })
    };
    if let (Some(region), Some(country)) = (set_value("defaultAddress.region"), set_value("defaultAddress.country"))
        && fields::region_refused_in(&country)
    {
        warnings.push(Problem {
            line,
            column: Some("defaultAddress.region".to_string()),
            value: Some(region),
            message: format!(
                "Partner Center refuses a region on a {country} address (error 27002): leave the cell empty"
            ),
        });
    }
}

/// Opens a file to read its customer ids ([`Reader::of_ids`]: a header with no field column is good); a workbook as
/// [`open`] reads it.
pub fn open_ids(
    path: &std::path::Path,
    config: &InputConfig,
) -> Result<Reader<io::BufReader<std::fs::File>>, FileError> {
    if is_workbook(path) {
        return open(path, config);
    }
    Reader::of_ids(io::BufReader::with_capacity(64 * 1024, open_regular(path)?), config.clone())
}

/// Opens a file of changes for reading: a workbook when its name ends in `.xlsx` (read whole), else a CSV (read
/// as a stream).
pub fn open(path: &std::path::Path, config: &InputConfig) -> Result<Reader<io::BufReader<std::fs::File>>, FileError> {
    let file = open_regular(path)?;
    if is_workbook(path) {
        return Reader::from_workbook(read_whole(file, path)?, path, config);
    }
    if let Some(sheet) = &config.sheet {
        return Err(FileError::SheetOfCsv { path: path.display().to_string(), sheet: sheet.clone() });
    }
    Reader::new(io::BufReader::with_capacity(64 * 1024, file), config.clone())
}

/// Whether a path names an Excel workbook (`.xlsx`, in any case), which is read as one, not as a CSV.
pub fn is_workbook(path: &std::path::Path) -> bool {
    path.extension().and_then(|extension| extension.to_str()).is_some_and(|ext| ext.eq_ignore_ascii_case("xlsx"))
}

/// Every byte of an open file.
pub fn read_whole(mut file: std::fs::File, path: &std::path::Path) -> Result<Vec<u8>, FileError> {
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut file, &mut bytes)
        .map_err(|source| FileError::Open { path: path.display().to_string(), source })?;
    Ok(bytes)
}

/// Opens a file that must be a regular file: standard input (`-`), a pipe, a device or a directory is refused at
/// once (before any open, which blocks on a FIFO), never read half and never mistaken for an empty file.
pub fn open_regular(path: &std::path::Path) -> Result<std::fs::File, FileError> {
    let display = path.display().to_string();
    if path.as_os_str() == "-" {
        return Err(FileError::NotRegular { path: display, kind: "standard input" });
    }
    let metadata = std::fs::metadata(path).map_err(|source| FileError::Open { path: display.clone(), source })?;
    if let Some(kind) = crate::files::not_regular(&metadata) {
        return Err(FileError::NotRegular { path: display, kind });
    }
    let mut file = std::fs::File::open(path).map_err(|source| FileError::Open { path: display.clone(), source })?;
    if is_workbook(path) {
        // A workbook is a zip of binary parts: its encoding is the reader's business.
        return Ok(file);
    }
    if let Some(encoding) = not_utf8(&mut file).map_err(|source| FileError::Open { path: display.clone(), source })? {
        return Err(FileError::Encoding { path: display, encoding });
    }
    Ok(file)
}

/// UTF-16 (by its byte-order mark or NUL bytes in its first 64 KiB), which no row of could be read: the file is
/// refused once, with the fix. A file in a single-byte encoding (Windows-1252) is read: its rows without such bytes
/// are good, those with them are invalid, and `validate` names the encoding once at the end. Leaves the file at its
/// start.
fn not_utf8(file: &mut std::fs::File) -> io::Result<Option<&'static str>> {
    use io::{Read, Seek};
    let mut head = Vec::with_capacity(64 * 1024);
    file.by_ref().take(64 * 1024).read_to_end(&mut head)?;
    file.seek(io::SeekFrom::Start(0))?;
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) || head.contains(&0) {
        return Ok(Some("UTF-16"));
    }
    Ok(None)
}

mod seen;
mod sheet;

#[cfg(test)]
mod tests;
