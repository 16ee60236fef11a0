//! The input pinned for the life of a job. The engine applies the plan the state file holds, never the CSV read
//! again; this module notices when the file is no longer what was planned, so the operator hears of it: while a
//! job runs (a [`Watch`] looks at the file once a second and stops the job), and before a resume (the refusal says
//! which lines differ from the plan).

use super::hash_file;
use crate::input::{self, InputConfig, Record, Validity};
use crate::state::plan::{self, Cursor, PlanRow, Rows};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// How often a running job looks at its CSV.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// What identifies a file's content cheaply: a change to any of these is worth hashing the file again.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    let metadata = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: metadata.len(),
        modified: metadata.modified().ok(),
        #[cfg(unix)]
        inode: {
            use std::os::unix::fs::MetadataExt;
            (metadata.dev(), metadata.ino())
        },
    })
}

/// The CSV of a running job, as it was when the job was planned or resumed.
#[derive(Clone, Debug)]
pub(crate) struct Watch {
    path: PathBuf,
    hash: String,
    stamp: Option<Stamp>,
}

impl Watch {
    /// Taken before the file is hashed: a change after this moment is seen by the first look.
    pub(crate) fn before_hashing(path: &Path) -> Watch {
        Watch { path: path.to_path_buf(), hash: String::new(), stamp: stamp(path) }
    }

    /// The hash the job was planned with.
    pub(crate) fn with_hash(self, hash: &str) -> Watch {
        Watch { hash: hash.to_string(), ..self }
    }

    /// Why the file is no longer the job's, if it is not: gone, or holding other bytes. A save of the same bytes
    /// (an editor's) is not a change.
    fn changed(&mut self) -> Option<String> {
        let now = stamp(&self.path);
        if now == self.stamp {
            return None;
        }
        let Some(now) = now else { return Some("was removed or can no longer be read".to_string()) };
        match hash_file(&self.path) {
            Ok(hash) if hash == self.hash => {
                self.stamp = Some(now);
                None
            }
            Ok(_) => Some("was rewritten with other content".to_string()),
            Err(error) => Some(format!("can no longer be read ({error})")),
        }
    }

    /// Looks at the file once a second until `done`; on a change, cancels `stop` and says what happened.
    pub(crate) async fn run(mut self, stop: CancellationToken, done: CancellationToken) -> Option<String> {
        let mut ticks = tokio::time::interval(WATCH_EVERY);
        loop {
            tokio::select! {
                // One look after the job's end, so a change during its last second is said too.
                () = done.cancelled() => return self.look().await,
                _ = ticks.tick() => {}
            }
            if let Some(change) = self.look().await {
                stop.cancel();
                return Some(change);
            }
        }
    }

    async fn look(&mut self) -> Option<String> {
        let mut watch = self.clone();
        let (change, watch) = tokio::task::spawn_blocking(move || (watch.changed(), watch)).await.ok()?;
        *self = watch;
        change
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// What differs between the CSV as it is now and the job's plan: up to three lines named, and the counts.
pub(crate) fn describe_change(state: &Path, job: i64, csv: &Path, config: &InputConfig) -> String {
    let cursor = match Cursor::open(state, job, Rows::All) {
        Ok(cursor) => cursor,
        Err(error) => return format!("(the plan cannot be read to compare: {error})"),
    };
    let reader = match input::open(csv, config) {
        Ok(reader) => reader.without_duplicate_check(),
        Err(error) => return format!("it no longer reads as a CSV of changes: {error}"),
    };
    let mut plan_rows = cursor.filter_map(Result::ok).peekable();
    let mut differences = Differences::default();
    for record in reader {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                differences.note(format!("{error}"));
                break;
            }
        };
        while plan_rows.peek().is_some_and(|row| row.line < record.line) {
            differences.fewer += 1;
            plan_rows.next();
        }
        match plan_rows.next_if(|row| row.line == record.line) {
            Some(row) => differences.compare(&row, &record),
            None => differences.more += 1,
        }
    }
    differences.fewer += plan_rows.count() as u64;
    differences.words()
}

#[derive(Default)]
struct Differences {
    differ: u64,
    more: u64,
    fewer: u64,
    named: Vec<String>,
}

impl Differences {
    fn note(&mut self, words: String) {
        if self.named.len() < 3 {
            self.named.push(words);
        }
    }

    fn compare(&mut self, planned: &PlanRow, record: &Record) {
        let now = match &record.validity {
            Validity::Valid(row) => Some(plan::encode(&row.changes)),
            Validity::Invalid(_) => None,
        };
        if planned.customer_id == record.customer_cell && planned.plan == now {
            return;
        }
        self.differ += 1;
        let side = |plan: &Option<String>| plan.clone().unwrap_or_else(|| "an invalid row".to_string());
        let words = if planned.customer_id != record.customer_cell {
            let (line, before, now) = (record.line, &planned.customer_id, &record.customer_cell);
            format!("line {line}: customer {before} in the plan, {now} in the file")
        } else {
            format!(
                "line {} (customer {}): {} in the plan, {} in the file",
                record.line,
                record.customer_cell,
                side(&planned.plan),
                side(&now)
            )
        };
        self.note(words);
    }

    fn words(&self) -> String {
        let mut parts = Vec::new();
        if self.differ > 0 {
            parts.push(format!("{} {} differ", self.differ, if self.differ == 1 { "row" } else { "rows" }));
        }
        if self.more > 0 {
            parts.push(format!("{} more data lines", self.more));
        }
        if self.fewer > 0 {
            parts.push(format!("{} fewer data lines", self.fewer));
        }
        if parts.is_empty() {
            parts.push("its rows read as planned, but its bytes differ (spacing, quoting or line ends)".to_string());
        }
        let mut words = parts.join(", ");
        if !self.named.is_empty() {
            words.push_str(&format!(" ({})", self.named.join("; ")));
        }
        words
    }
}
