//! The plan on the terminal, the way `terraform plan` shows one: after a dry run, per changed row its line, customer
//! id and each field `before → after` (the first [`DEFAULT_ROWS`], or every row with `--show all`), then the rows
//! per field, the rows pre-flight would refuse with their rule, and the command that runs the job for real. The same
//! summary without the per-row lines ends every job.
//!
//! Built from the state file alone (the rows' before/after JSON), never from the engine's memory, so what is shown is
//! what was recorded. Values are shown as JSON, so a control character in a cell cannot reach the terminal raw.

use crate::state::{Job, JobKind, RowStatus, StateError, StateFile, StoredRow};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

/// Rows shown by default.
pub const DEFAULT_ROWS: usize = 20;

/// How many changed rows to show one by one (`--show N|all`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Show {
    First(usize),
    All,
}

impl Default for Show {
    fn default() -> Show {
        Show::First(DEFAULT_ROWS)
    }
}

impl FromStr for Show {
    type Err = String;

    fn from_str(text: &str) -> Result<Show, String> {
        match text {
            "all" => Ok(Show::All),
            _ => text.parse().map(Show::First).map_err(|_| format!("{text:?}: give a number of rows, or all")),
        }
    }
}

impl Show {
    fn allows(self, shown: usize) -> bool {
        match self {
            Show::All => true,
            Show::First(limit) => shown < limit,
        }
    }
}

/// One changed row: its line, customer id and `(field, before, after)` as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangedRow {
    pub line: u64,
    pub customer_id: String,
    pub changes: Vec<(String, String, String)>,
}

/// A row pre-flight refused, with the rule it breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub line: u64,
    pub customer_id: String,
    pub rule: String,
}

/// What a job changed (or, for a dry run, would change), read from its state file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanView {
    pub kind: Option<JobKind>,
    /// Rows that changed (or would).
    pub changed: u64,
    /// The first changed rows, as many as asked.
    pub rows: Vec<ChangedRow>,
    /// Rows per field (shown most rows first).
    pub fields: BTreeMap<String, u64>,
    /// Rows pre-flight refused: how many, and the first of them.
    pub refused: u64,
    pub refusals: Vec<Refusal>,
}

/// Whether a row of this status changed (or, in a dry run, would change) something.
fn changed(status: &RowStatus) -> bool {
    matches!(status, RowStatus::WouldUpdate | RowStatus::Updated | RowStatus::Restored)
}

/// The shown form of a row's changes, from its stored before/after JSON objects and its changed fields.
fn changes_of(row: &StoredRow) -> Vec<(String, String, String)> {
    let object = |text: &str| serde_json::from_str::<Map<String, Value>>(text).unwrap_or_default();
    let (before, after) = (object(&row.before), object(&row.after));
    row.changed_fields
        .split_whitespace()
        .map(|field| {
            let side = |values: &Map<String, Value>| crate::merge::shown(&values.get(field).cloned());
            (field.to_string(), side(&before), side(&after))
        })
        .collect()
}

impl PlanView {
    /// Reads the job's plan; `show` is how many changed rows to keep one by one (`None`: none, only the counts).
    pub fn read(state: &StateFile, job: &Job, show: Option<Show>) -> Result<PlanView, StateError> {
        let mut view = PlanView { kind: Some(job.kind), ..PlanView::default() };
        let limit = show.unwrap_or(Show::First(0));
        state.each_row(job.id, |row| {
            if changed(&row.status) {
                view.changed += 1;
                for field in row.changed_fields.split_whitespace() {
                    *view.fields.entry(field.to_string()).or_default() += 1;
                }
                if limit.allows(view.rows.len()) {
                    let changes = changes_of(&row);
                    view.rows.push(ChangedRow { line: row.line, customer_id: row.customer_id, changes });
                }
            } else if row.status == RowStatus::Invalid && !row.preflight.is_empty() {
                view.refused += 1;
                if show.unwrap_or_default().allows(view.refusals.len()) {
                    let refusal = Refusal { line: row.line, customer_id: row.customer_id, rule: row.preflight };
                    view.refusals.push(refusal);
                }
            }
            Ok(())
        })?;
        Ok(view)
    }

    fn dry_run(&self) -> bool {
        matches!(self.kind, Some(JobKind::DryRun | JobKind::RollbackDryRun))
    }

    fn verb(&self) -> &'static str {
        match self.kind {
            Some(JobKind::DryRun) => "would change",
            Some(JobKind::RollbackDryRun) => "would be put back",
            Some(JobKind::Rollback) => "put back",
            _ => "changed",
        }
    }

    /// The text to print. `report` is where every row is; `run` the command that runs a dry run's job for real.
    pub fn render(&self, paint: Paint, report: &str, run: Option<&str>) -> String {
        let mut text = String::new();
        let rows = |n: u64| crate::words::counted(n, "row");
        let _ = writeln!(text, "{}", paint.bold(&format!("{} {}", rows(self.changed), self.verb())));
        self.row_lines(&mut text, paint, report);
        if !self.fields.is_empty() {
            let mut fields: Vec<(&String, &u64)> = self.fields.iter().collect();
            fields.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
            let fields: Vec<String> = fields.iter().map(|(field, n)| format!("{field}: {}", rows(**n))).collect();
            let _ = writeln!(text, "{} {}", paint.bold("fields:"), fields.join(", "));
        }
        if self.refused > 0 {
            let heading = if self.dry_run() { "pre-flight would refuse" } else { "pre-flight refused" };
            let _ = writeln!(text, "{}", paint.yellow(&format!("{heading} {}:", rows(self.refused))));
            for refusal in &self.refusals {
                let (id, rule) = (printable(&refusal.customer_id), printable(&refusal.rule));
                let _ = writeln!(text, "  line {} {id}: {rule}", refusal.line);
            }
            let more = self.refused - self.refusals.len() as u64;
            if more > 0 {
                let _ = writeln!(text, "  ... and {} more (the report has them all: {report})", rows(more));
            }
        }
        if let Some(run) = run.filter(|_| self.dry_run()) {
            let _ = writeln!(text, "{}\n  {}", paint.bold("to run it for real:"), run);
        }
        text
    }

    fn row_lines(&self, text: &mut String, paint: Paint, report: &str) {
        for row in &self.rows {
            let _ = writeln!(text, "  line {} {}", row.line, paint.dim(&printable(&row.customer_id)));
            for (field, before, after) in &row.changes {
                let _ = writeln!(text, "    {field}: {} → {}", paint.red(before), paint.green(after));
            }
        }
        let more = self.changed.saturating_sub(self.rows.len() as u64);
        if !self.rows.is_empty() && more > 0 {
            let _ = writeln!(
                text,
                "  ... and {more} more (--show all prints every row; the report has them all: {report})"
            );
        }
    }
}

/// Text from the state file as it may reach a terminal: a control character (an escape sequence) becomes `�`.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect()
}

/// Colour, or none: ANSI escapes only when the output is a terminal and `NO_COLOR` is unset or empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paint {
    pub colour: bool,
}

impl Paint {
    /// Colour for a stream that is (or is not) a terminal, as `NO_COLOR` (no-color.org) allows.
    pub fn for_stream(terminal: bool) -> Paint {
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        Paint { colour: terminal && !no_colour }
    }

    fn code(self, code: &str, text: &str) -> String {
        if self.colour { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }

    fn bold(self, text: &str) -> String {
        self.code("1", text)
    }

    fn dim(self, text: &str) -> String {
        self.code("2", text)
    }

    fn red(self, text: &str) -> String {
        self.code("31", text)
    }

    fn green(self, text: &str) -> String {
        self.code("32", text)
    }

    fn yellow(self, text: &str) -> String {
        self.code("33", text)
    }
}

/// Prints the plan of the job of this kind on stdout after the job (`show`: `None` prints only the counts).
pub fn print_after_job(
    state_path: &std::path::Path,
    kind: JobKind,
    show: Option<Show>,
    report: &std::path::Path,
    run: Option<&str>,
) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    let state = StateFile::open_existing(state_path)?;
    let job = super::find(&state, kind)?;
    let view = PlanView::read(&state, &job, show)?;
    let paint = Paint::for_stream(std::io::stdout().is_terminal());
    let text = view.render(paint, &report.display().to_string(), run);
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is no failure of the job.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> PlanView {
        PlanView {
            kind: Some(JobKind::DryRun),
            changed: 3,
            rows: vec![ChangedRow {
                line: 2,
                customer_id: "c2".into(),
                changes: vec![("email".into(), "(absent)".into(), "\"a@b.c\"".into())],
            }],
            fields: [("email".to_string(), 3), ("defaultAddress.city".to_string(), 1)].into(),
            refused: 1,
            refusals: vec![Refusal { line: 5, customer_id: "c5".into(), rule: "600051: phone required".into() }],
        }
    }

    #[test]
    fn no_escape_sequence_from_the_state_file_reaches_the_terminal() {
        let refusal = Refusal { line: 5, customer_id: "c5".into(), rule: "phone \u{1b}[2J\"x\"".into() };
        let hostile = PlanView { refusals: vec![refusal], ..view() };
        let text = hostile.render(Paint { colour: false }, "r.csv", None);
        assert!(!text.contains('\x1b') && text.contains("phone \u{fffd}[2J"), "{text}");
    }

    #[test]
    fn show_reads_a_number_or_all() {
        assert_eq!("all".parse::<Show>(), Ok(Show::All));
        assert_eq!("5".parse::<Show>(), Ok(Show::First(5)));
        assert!("some".parse::<Show>().is_err());
    }

    #[test]
    fn the_plan_names_rows_fields_refusals_and_the_command() {
        let text = view().render(Paint { colour: false }, "r.csv", Some("pcbulk apply x.csv"));
        assert!(text.starts_with("3 rows would change\n"), "{text}");
        assert!(text.contains("  line 2 c2\n    email: (absent) → \"a@b.c\"\n"), "{text}");
        assert!(text.contains("... and 2 more (--show all"), "{text}");
        assert!(text.contains("fields: email: 3 rows, defaultAddress.city: 1 row\n"), "{text}");
        assert!(text.contains("pre-flight would refuse 1 row:\n  line 5 c5: 600051: phone required\n"), "{text}");
        assert!(text.ends_with("to run it for real:\n  pcbulk apply x.csv\n"), "{text}");
        assert!(!text.contains('\x1b'), "no colour asked");
    }

    #[test]
    fn colour_wraps_before_and_after_only_when_asked() {
        let text = view().render(Paint { colour: true }, "r.csv", None);
        assert!(text.contains("\x1b[31m(absent)\x1b[0m → \x1b[32m\"a@b.c\"\x1b[0m"), "{text}");
        assert!(!text.contains("to run it for real"), "no command given");
    }

    #[test]
    fn a_real_job_never_offers_to_run_itself() {
        let apply = PlanView { kind: Some(JobKind::Apply), ..view() };
        let text = apply.render(Paint { colour: false }, "r.csv", Some("pcbulk apply x.csv"));
        assert!(text.starts_with("3 rows changed\n") && !text.contains("for real"), "{text}");
        assert!(text.contains("pre-flight refused 1 row"), "{text}");
    }
}
