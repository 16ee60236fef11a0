//! The pure core of an edited export's apply (issue 17): three values per cell, the export's (base), the CSV's
//! (ours) and the service's now (theirs), and what each combination means.
//!
//! Pure: no I/O, no clock; like [`crate::merge`] and [`crate::undo`], whose types it speaks. The snapshot profile
//! (the JSON an export read, with its etag) is the base of every cell of its customer's row.
//!
//! # The API, in the order a row uses it
//!
//! **Planning** (no network): [`plan_row`]`(line, snapshot, cells, excel) -> Planned { changes, problems }`, or
//! [`plan_cell`] for one cell. `cells` are the row's catalog columns with their raw text (untrimmed, as the CSV holds
//! them; leave out `customer_id` and `#` note columns). For each cell:
//! - equal to the base is no change: both trimmed; absent, `null` and an empty cell are one; values compared as the
//!   field's rule writes them (`us` is `US` for a country); a JSON boolean or number in the base compared as the text
//!   a person sees. A cell left equal to the base is never checked against its rule: it is not written.
//! - emptied (or `<clear>`) where the base holds a value: [`Edit::Clear`]; a required field gives a problem instead.
//! - otherwise [`Edit::Set`] with the value as the field's rule writes it ([`Field::check`], the same check `input`
//!   makes), or the rule's problem;
//! - unless the change has the shape of what Excel does to a value ([`excel_damage`]: leading zeros dropped,
//!   scientific notation, 15-digit precision, a date, trailing zeros of a decimal, `TRUE`/`FALSE`, a `+` dropped,
//!   a phone number computed as a formula): a problem naming the reason and showing the base, unless `excel` is
//!   [`ExcelChanges::Accept`].
//!
//! A cell written `="02134"` (the form that keeps Excel from reading a value as a number, should an export write
//! it so) is read as `02134`, with `""` inside it as `"`; a cell written `'+1 425 555 0100` (the `'` an export puts
//! before a cell a spreadsheet would run as a formula) is read without its `'`.
//!
//! Every problem is located (line, column, value) as `input`'s are. No changes and no problems: the row is
//! `unchanged` and costs no request. Any problem: the row is `invalid`.
//!
//! **Writing**: [`resolve`]`(theirs, snapshot, changes) -> Resolved`, the plan's step for a profile as read. Per
//! change: theirs equal to the base → ours is merged in; theirs already ours → nothing to do for that field;
//! otherwise a [`Conflict`] `{ field, base, theirs, ours }`. **A row with any conflict is not written at all**, not
//! even its other fields: [`Resolved::Conflict`] lists them all ([`describe`] gives the report's words:
//! `defaultAddress.city: base "Oslo", theirs "Bergen", ours "Trondheim"`). Without a conflict,
//! [`Resolved::Merged`] is [`merge::merge`] of the changes still to make onto theirs, so every field the row did not
//! change keeps theirs, keys pcbulk does not know included.
//!
//! The first write needs no read: the snapshot profile is written with the snapshot's etag, so its step is
//! `resolve(snapshot, snapshot, changes)` (theirs is the base: every change merges onto the snapshot). On 412 or
//! 400/2055 the profile is read and the step is `resolve(read, snapshot, changes)`. In `engine::row`, a three-way
//! `Plan` holding the snapshot and the changes steps as
//! `match threeway::resolve(read, snapshot, changes)? { Resolved::Merged(merged) => merged, Resolved::Conflict(c) =>
//! return Ok(Step::Conflict(threeway::describe(&c))) }`, and its `etag` is the snapshot's on the first attempt.
//!
//! A rollback needs nothing from here: a job's `FieldChange`s record the snapshot's value as each field's `before`
//! when the first write lands on the snapshot, so `undo` puts the base back where ours still holds.

use crate::fields::Field;
use crate::input::{Change, Edit, Problem, quote};
use crate::merge::{self, MergeError, Merged};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// Whether a change that looks like Excel's doing is refused (the default) or applied (`--accept-excel-changes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExcelChanges {
    Refuse,
    Accept,
}

/// One catalog cell of an edited export's row: its field and its text as the CSV holds it.
#[derive(Clone, Copy, Debug)]
pub struct Cell<'a> {
    pub field: &'static Field,
    pub text: &'a str,
}

/// What planning makes of a row: the changes to write (none: `unchanged`) and the problems (any: `invalid`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Planned {
    pub changes: Vec<Change>,
    pub problems: Vec<Problem>,
}

/// Plans every cell of a row against the snapshot profile.
pub fn plan_row(line: u64, snapshot: &Value, cells: &[Cell<'_>], excel: ExcelChanges) -> Planned {
    let mut planned = Planned::default();
    for cell in cells {
        match plan_cell(line, snapshot, *cell, excel) {
            Ok(Some(change)) => planned.changes.push(change),
            Ok(None) => {}
            Err(problem) => planned.problems.push(problem),
        }
    }
    planned
}

/// Plans one cell: `None` when it equals the base, the change it asks, or why it cannot be applied.
pub fn plan_cell(line: u64, snapshot: &Value, cell: Cell<'_>, excel: ExcelChanges) -> Result<Option<Change>, Problem> {
    let field = cell.field;
    let base_slot = merge::slot_at(snapshot, field.path);
    let base = text_of(&base_slot);
    let ours = excel_text(cell.text.trim());
    let ours = ours.as_ref();
    let located = |value: Option<&str>, message: String| Problem {
        line,
        column: Some(field.name.to_string()),
        value: value.map(str::to_string),
        message,
    };
    let emptied = ours.is_empty() || ours.eq_ignore_ascii_case(crate::fields::CLEAR);
    if emptied {
        if base.is_empty() {
            return Ok(None);
        }
        return match field.check_clear() {
            Ok(()) => Ok(Some(Change { field, edit: Edit::Clear })),
            Err(broken) => Err(located(
                (!ours.is_empty()).then_some(ours),
                format!("the cell was emptied (the export holds \"{}\"), but {broken}", quote(&base)),
            )),
        };
    }
    if same_text(field, &base_slot, &base, ours) {
        return Ok(None);
    }
    if excel == ExcelChanges::Refuse
        && let Some(damage) = excel_damage(&base, ours)
    {
        let message = format!(
            "{damage}, the export holds \"{}\": put that back, or use --accept-excel-changes if the change is meant",
            quote(&base)
        );
        return Err(located(Some(ours), message));
    }
    match field.check(ours) {
        Ok(value) => Ok(Some(Change { field, edit: Edit::Set(value) })),
        Err(broken) => Err(located(Some(ours), broken.0)),
    }
}

/// The text of a cell written as Excel's text formula `="…"`; any other cell as it is.
fn excel_text(cell: &str) -> Cow<'_, str> {
    // The `'` an export puts before a cell a spreadsheet would run as a formula (`report::formula_safe`).
    if let Some(rest) = cell.strip_prefix('\'')
        && rest.starts_with(['=', '+', '-', '@'])
    {
        return Cow::Borrowed(rest);
    }
    match cell.strip_prefix("=\"").and_then(|rest| rest.strip_suffix('"')) {
        Some(inner) => Cow::Owned(inner.replace("\"\"", "\"").trim().to_string()),
        None => Cow::Borrowed(cell),
    }
}

/// A base value as the text an export writes and a person reads, trimmed: empty when absent or `null`.
fn text_of(slot: &Option<Value>) -> String {
    match slot {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.trim().to_string(),
        Some(other) => other.to_string(),
    }
}

/// Whether a non-empty cell says what the base holds: the same text, the same value once the field's rule has
/// written both, or the same boolean in any case (a JSON `true` exported as `true` comes back from Excel as `TRUE`).
fn same_text(field: &Field, base_slot: &Option<Value>, base: &str, ours: &str) -> bool {
    if ours == base {
        return true;
    }
    if matches!(base_slot, Some(Value::Bool(_))) {
        return ours.eq_ignore_ascii_case(base);
    }
    match (field.check(base), field.check(ours)) {
        (Ok(base), Ok(ours)) => base == ours,
        _ => false,
    }
}

/// A field someone else changed since the export to another value than ours.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    pub field: &'static str,
    /// The export's value; `None` when the key was absent.
    pub base: Option<Value>,
    /// The service's value now.
    pub theirs: Option<Value>,
    /// The value the row asks (an empty string for a clear).
    pub ours: Option<Value>,
}

/// A value as a conflict names it: quoted text, or `empty` for absent, `null` and `""` alike.
fn named(slot: &Option<Value>) -> String {
    match slot {
        None | Some(Value::Null) => "empty".to_string(),
        Some(Value::String(text)) if text.is_empty() => "empty".to_string(),
        Some(Value::String(text)) => format!("\"{}\"", quote(text)),
        Some(other) => quote(&other.to_string()),
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (base, theirs, ours) = (named(&self.base), named(&self.theirs), named(&self.ours));
        write!(f, "{}: base {base}, theirs {theirs}, ours {ours}", self.field)
    }
}

/// The conflicts of a row as its report cell says them.
pub fn describe(conflicts: &[Conflict]) -> String {
    let listed: Vec<String> = conflicts.iter().map(ToString::to_string).collect();
    format!("changed since the export by someone else, row not written: {}", listed.join("; "))
}

/// What a write of an edited export's row makes of the profile as read.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved {
    /// The profile to write (or `Unchanged`: theirs already holds every change).
    Merged(Merged),
    /// Fields changed by someone else to another value than ours: the row is not written, none of it.
    Conflict(Vec<Conflict>),
}

/// Whether two values are the same to a three-way comparison: equal, or both empty (absent, `null` or `""`: an
/// export writes each as an empty cell, and the service may answer any of them for a field it holds nothing in).
fn same(left: &Option<Value>, right: &Option<Value>) -> bool {
    let empty = |slot: &Option<Value>| match slot {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => text.is_empty(),
        Some(_) => false,
    };
    left == right || (empty(left) && empty(right))
}

/// The value a change asks its field to hold.
fn asked(edit: &Edit) -> Option<Value> {
    match edit {
        Edit::Set(value) => Some(Value::String(value.clone())),
        Edit::Clear => Some(Value::String(String::new())),
        Edit::Restore(value) => value.clone(),
    }
}

/// Whether theirs holds ours as the field's rule writes it (`us` for a country set to `US`).
fn holds_as_written(theirs: &Value, change: &Change) -> bool {
    match (&change.edit, merge::slot_at(theirs, change.field.path)) {
        (Edit::Set(ours), Some(Value::String(now))) => change.field.check(now.trim()).is_ok_and(|now| now == *ours),
        _ => false,
    }
}

/// Decides a row's write from the profile as read (`theirs`), the snapshot profile (the base) and the row's changes
/// (as [`plan_row`] gave them). The first write's step is `resolve(snapshot, snapshot, changes)`.
pub fn resolve(theirs: Value, snapshot: &Value, changes: &[Change]) -> Result<Resolved, MergeError> {
    if !theirs.is_object() {
        return Err(MergeError::NotAnObject);
    }
    let mut conflicts = Vec::new();
    let mut to_make = Vec::new();
    for change in changes {
        if merge::holds(&theirs, change) || holds_as_written(&theirs, change) {
            continue;
        }
        let base = merge::slot_at(snapshot, change.field.path);
        let now = merge::slot_at(&theirs, change.field.path);
        if same(&now, &base) {
            to_make.push(change.clone());
        } else {
            conflicts.push(Conflict { field: change.field.name, base, theirs: now, ours: asked(&change.edit) });
        }
    }
    if !conflicts.is_empty() {
        return Ok(Resolved::Conflict(conflicts));
    }
    merge::merge(theirs, &to_make).map(Resolved::Merged)
}

/// What Excel did to a value, as far as its shape tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// `02134` → `2134`, `0049 30 1234` → `49 30 1234` or `49301234`.
    LeadingZeros,
    /// `4255550100` → `4.26E+09`, `123456789012` → `1.23457E+11` (or `1,23457E+11`).
    Scientific,
    /// `12345678901234567890` → `12345678901234500000`: Excel keeps 15 significant digits.
    Precision,
    /// `03-04` → `2026-03-04`, `3/4/2026`, `04.03.2026`, `4-Mar`, `Mar-04`.
    Date,
    /// `1.50` → `1.5`.
    TrailingZeros,
    /// `+4930123456` → `4930123456`: a `+` and digits read as a number.
    LeadingPlus,
    /// `+1-425-555-0100` → `-1079`, `+1 425 555 0100` → `#NULL!`: a cell starting with `+`, `-` or `=` read as a
    /// formula, saved as what it computes.
    Formula,
    /// `true` → `TRUE`.
    UpperCaseBoolean,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Damage::LeadingZeros => "looks like Excel dropped the leading zeros",
            Damage::Scientific => "looks like Excel turned the digits into scientific notation",
            Damage::Precision => "looks like Excel cut the digits to 15 significant ones",
            Damage::Date => "looks like Excel turned the value into a date",
            Damage::TrailingZeros => "looks like Excel dropped the trailing zeros of a decimal",
            Damage::LeadingPlus => "looks like Excel dropped the leading + of a number",
            Damage::Formula => "looks like Excel computed the value as a formula",
            Damage::UpperCaseBoolean => "looks like Excel upper-cased a true or false",
        })
    }
}

/// A test of whether `ours` has a damage's shape given `base`.
type Shape = fn(&str, &str) -> bool;

/// Each damage and its shape, in the order they are tried.
const SHAPES: [(Shape, Damage); 8] = [
    (leading_zeros_dropped, Damage::LeadingZeros),
    (scientific, Damage::Scientific),
    (precision_lost, Damage::Precision),
    (dated, Damage::Date),
    (trailing_zeros_dropped, Damage::TrailingZeros),
    (upper_cased_boolean, Damage::UpperCaseBoolean),
    (plus_dropped, Damage::LeadingPlus),
    (computed, Damage::Formula),
];

/// The damage Excel does when it opens and saves a file, when `ours` (trimmed) has its shape given `base`.
/// A value equal to the base is never damage; a real edit that merely looks similar (`02134` → `02135`, another
/// phone number, one digit more) is not either: each shape must reproduce the base's own digits.
pub fn excel_damage(base: &str, ours: &str) -> Option<Damage> {
    if ours == base || ours.is_empty() {
        return None;
    }
    SHAPES.iter().find(|(check, _)| check(base, ours)).map(|(_, damage)| *damage)
}

/// Digits with the separators of a telephone number or a postal code, and at least one digit.
fn is_digitlike(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_digit()) && text.bytes().all(|b| b.is_ascii_digit() || b" -().+/".contains(&b))
}

/// The digits of a value, leading zeros left out (`0` stays `0`).
fn significant_digits(text: &str) -> String {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() && !digits.is_empty() { "0".to_string() } else { trimmed.to_string() }
}

fn leading_zeros_dropped(base: &str, ours: &str) -> bool {
    if !base.starts_with('0') || !is_digitlike(base) {
        return false;
    }
    let stripped = base.trim_start_matches('0');
    let stripped = if stripped.is_empty() { "0" } else { stripped };
    ours == stripped || (ours.bytes().all(|b| b.is_ascii_digit()) && ours == significant_digits(base))
}

/// The first `count` digits of `digits` rounded half up (padded with zeros when there are fewer); `carry`: the
/// rounding added a digit, `999` → `100`, one power of ten more.
fn rounded(digits: &str, count: usize) -> (String, bool) {
    if count >= digits.len() {
        return (format!("{digits:0<count$}"), false);
    }
    let mut kept: Vec<u8> = digits.as_bytes()[..count].to_vec();
    if digits.as_bytes()[count] >= b'5' {
        for digit in kept.iter_mut().rev() {
            if *digit == b'9' {
                *digit = b'0';
            } else {
                *digit += 1;
                return (String::from_utf8_lossy(&kept).into_owned(), false);
            }
        }
        kept.insert(0, b'1');
        kept.pop();
        return (String::from_utf8_lossy(&kept).into_owned(), true);
    }
    (String::from_utf8_lossy(&kept).into_owned(), false)
}

/// `1.23457E+11`, `1,23457E+11`, `4E+09`: the mantissa's digits and the exponent.
fn parse_scientific(text: &str) -> Option<(String, usize)> {
    let (mantissa, exponent) = text.split_once(['E', 'e'])?;
    let exponent = exponent.strip_prefix('+').unwrap_or(exponent);
    if exponent.is_empty() || exponent.len() > 3 || !exponent.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (whole, fraction) = mantissa.split_once(['.', ',']).unwrap_or((mantissa, ""));
    let whole_ok = whole.len() == 1 && whole.bytes().all(|b| (b'1'..=b'9').contains(&b));
    if !whole_ok || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((format!("{whole}{fraction}"), exponent.parse().ok()?))
}

fn scientific(base: &str, ours: &str) -> bool {
    if !is_digitlike(base) {
        return false;
    }
    let Some((mantissa, exponent)) = parse_scientific(ours) else { return false };
    let digits = significant_digits(base);
    // Excel keeps the first 15 significant digits (the rest become zeros), then shows as many as fit, rounded.
    let stored = format!("{:0<width$}", &digits[..15.min(digits.len())], width = digits.len());
    let shown = mantissa.len();
    // A tie (`…5000`) may round either way: Excel's binary double of the value may fall on either side of it.
    let tie =
        digits.len() > shown && digits[shown..].strip_prefix('5').is_some_and(|rest| rest.bytes().all(|b| b == b'0'));
    let cut = tie.then(|| (digits[..shown].to_string(), false));
    [Some(rounded(&digits, shown)), Some(rounded(&stored, shown)), cut]
        .iter()
        .flatten()
        .any(|(shown, carry)| *shown == mantissa && exponent + 1 == digits.len() + usize::from(*carry))
}

fn precision_lost(base: &str, ours: &str) -> bool {
    let digits = significant_digits(base);
    if !is_digitlike(base) || digits.len() <= 15 || !ours.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let zeros = "0".repeat(digits.len() - 15);
    let cut = format!("{}{zeros}", &digits[..15]);
    let (round, carry) = rounded(&digits, 15);
    ours == cut || (!carry && ours == format!("{round}{zeros}"))
}

fn trailing_zeros_dropped(base: &str, ours: &str) -> bool {
    let unsigned = base.strip_prefix(['-', '+']).unwrap_or(base);
    let Some((whole, fraction)) = unsigned.split_once(['.', ',']) else { return false };
    let number = whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) && !whole.is_empty();
    if !number || !fraction.ends_with('0') {
        return false;
    }
    let shortened = base.trim_end_matches('0').trim_end_matches(['.', ',']);
    let without_zeros = shortened.trim_start_matches('0');
    ours == shortened || (whole.len() > 1 && ours == without_zeros)
}

fn upper_cased_boolean(base: &str, ours: &str) -> bool {
    (base.eq_ignore_ascii_case("true") || base.eq_ignore_ascii_case("false")) && ours == base.to_ascii_uppercase()
}

fn plus_dropped(base: &str, ours: &str) -> bool {
    let Some(digits) = base.strip_prefix('+') else { return false };
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && ours == significant_digits(digits)
}

/// What Excel shows for a formula it cannot compute.
const EXCEL_ERRORS: [&str; 7] = ["#NULL!", "#NAME?", "#VALUE!", "#REF!", "#DIV/0!", "#NUM!", "#N/A"];

fn computed(base: &str, ours: &str) -> bool {
    let formula = base.strip_prefix('=').unwrap_or(base);
    if !base.starts_with(['+', '-', '=']) || !is_digitlike(formula) {
        return false;
    }
    EXCEL_ERRORS.contains(&ours) || ours.parse::<i128>().ok().is_some_and(|value| sum_of_terms(formula) == Some(value))
}

/// `+1-425-555-0100` computed: digits joined by `+` and `-` only, `None` for anything else.
fn sum_of_terms(formula: &str) -> Option<i128> {
    let mut sum: i128 = 0;
    let mut rest = formula;
    while !rest.is_empty() {
        let negative = rest.starts_with('-');
        rest = rest.strip_prefix(['+', '-']).unwrap_or(rest);
        let length = rest.bytes().take_while(u8::is_ascii_digit).count();
        let term: i128 = rest[..length].parse().ok()?;
        sum = if negative { sum.checked_sub(term)? } else { sum.checked_add(term)? };
        rest = &rest[length..];
        if !rest.is_empty() && !rest.starts_with(['+', '-']) {
            return None;
        }
    }
    Some(sum)
}

/// A part of a date-like value: a number as written (its value and how many digits), or a month's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Number(u32, usize),
    Month(u32),
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/// The parts of a value split at `-`, `/`, `.`, spaces and commas; `None` when a part is neither a number of up to
/// four digits nor an English month's name (`Mar`, `March`).
fn parts(text: &str) -> Option<Vec<Part>> {
    let pieces = text.split(['-', '/', '.', ' ', ',']).filter(|piece| !piece.is_empty());
    pieces
        .map(|piece| {
            if piece.len() <= 4 && piece.bytes().all(|b| b.is_ascii_digit()) {
                return piece.parse().ok().map(|value| Part::Number(value, piece.len()));
            }
            let lower = piece.to_ascii_lowercase();
            let month = MONTHS.iter().position(|month| lower.len() >= 3 && month_name(month).starts_with(&lower))?;
            Some(Part::Month(month as u32 + 1))
        })
        .collect()
}

/// A month's full English name from its first three letters.
fn month_name(short: &str) -> &'static str {
    const FULL: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    FULL.iter().find(|full| full.starts_with(short)).copied().unwrap_or("")
}

/// A date as Excel writes it, in one of its readings: the month, and the day and year when shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Date {
    year: Option<u32>,
    month: u32,
    day: Option<u32>,
}

/// Every reading of `text` as a date Excel writes: `2026-03-04`, `3/4/2026` (either order), `04.03.2026`,
/// `4-Mar`, `4-Mar-26`, `Mar-04` (day or year), `March 4, 2026`.
fn readings(text: &str) -> Vec<Date> {
    use Part::{Month, Number};
    let date = |year, month, day| Date { year, month, day };
    let year = |value: u32, digits: usize| matches!(digits, 2 | 4).then_some(value);
    let candidates = match parts(text).unwrap_or_default().as_slice() {
        [Number(y, 4), Number(m, _), Number(d, _)] => vec![date(Some(*y), *m, Some(*d))],
        [Number(a, _), Number(b, _), Number(y, digits)] if year(*y, *digits).is_some() => {
            vec![date(Some(*y), *a, Some(*b)), date(Some(*y), *b, Some(*a))]
        }
        [Number(d, _), Month(m)] => vec![date(None, *m, Some(*d))],
        [Number(d, _), Month(m), Number(y, digits)] => vec![date(year(*y, *digits), *m, Some(*d))],
        [Month(m), Number(n, digits)] => vec![date(None, *m, Some(*n)), date(year(*n, *digits), *m, None)],
        [Month(m), Number(d, _), Number(y, 4)] => vec![date(Some(*y), *m, Some(*d))],
        _ => Vec::new(),
    };
    candidates
        .into_iter()
        .filter(|date| (1..=12).contains(&date.month) && date.day.is_none_or(|day| (1..=31).contains(&day)))
        .collect()
}

/// Whether `ours` is a date Excel made of `base`: a base of two or three parts (`03-04`, `3/4/26`, `4 Mar`; never a
/// run of digits alone), every part found in the date (a two-digit number may be the year's last two digits), the
/// month among them; the date adds at most a year and the first day of a month.
fn dated(base: &str, ours: &str) -> bool {
    let Some(base_parts) = parts(base) else { return false };
    let numbers = base_parts.iter().filter(|part| matches!(part, Part::Number(..))).count();
    if !(2..=3).contains(&base_parts.len()) || numbers == 0 || base_parts.len() - numbers > 1 {
        return false;
    }
    readings(ours).iter().any(|date| made_of(date, &base_parts))
}

/// Whether every part of the base fills its own slot of the date (month, day, year), and the slots left are ones
/// Excel fills itself: the year, or day 1.
fn made_of(date: &Date, base: &[Part]) -> bool {
    fn fits(part: Part, slot: usize, date: &Date) -> bool {
        match (part, slot) {
            (Part::Month(month), 0) => month == date.month,
            (Part::Number(value, _), 0) => value == date.month,
            (Part::Number(value, _), 1) => date.day == Some(value),
            (Part::Number(value, 1 | 2), 2) => date.year.is_some_and(|year| year % 100 == value),
            (Part::Number(value, 4), 2) => date.year == Some(value),
            _ => false,
        }
    }
    fn assign(parts: &[Part], taken: [bool; 3], date: &Date) -> bool {
        let Some((first, rest)) = parts.split_first() else {
            return taken[0] && (taken[1] || date.day.is_none_or(|day| day == 1));
        };
        (0..3).any(|slot| {
            let mut now = taken;
            now[slot] = true;
            !taken[slot] && fits(*first, slot, date) && assign(rest, now, date)
        })
    }
    assign(base, [false; 3], date)
}

#[cfg(test)]
mod tests;
