//! What the job commands (`apply`, `rollback`) and the state-file readers (`status`, `report`) share: the default
//! paths beside the CSV, the signals that cancel a job, and the summary on stderr with its exit code and the command
//! that resumes.

use super::Exit;
use crate::engine::Ending;
use crate::job::JobOutcome;
use crate::state::{JobKind, RowStatus};
use crate::summary::plan::Show;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// A path with a suffix appended to its file name: `updates.csv` → `updates.csv.pcbulk.db`.
pub fn beside(csv: &Path, suffix: &str) -> PathBuf {
    let mut name = csv.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// The default state file of a CSV.
pub fn default_state(csv: &Path) -> PathBuf {
    beside(csv, ".pcbulk.db")
}

/// The first Ctrl-C (or SIGTERM) stops the job cleanly; a second Ctrl-C exits at once (the state stays
/// consistent: rows in flight are settled by the next run).
pub(super) fn watch_signals(cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut terminate = terminate_signal();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = async { match terminate.as_mut() { Some(signal) => { signal.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        eprintln!("stopping: finishing the requests in flight (Ctrl-C again to exit at once)");
        cancel.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("exiting at once: the next run settles the rows that were in flight");
            std::process::exit(i32::from(Exit::Interrupted.code()));
        }
    });
}

#[cfg(unix)]
fn terminate_signal() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok()
}

#[cfg(not(unix))]
fn terminate_signal() -> Option<()> {
    None
}

/// The summary on stderr, and the exit code.
pub(super) fn summarise(subject: &Path, outcome: &JobOutcome) -> Exit {
    let counts: Vec<String> = outcome.counts.iter().map(|(status, count)| format!("{status} {count}")).collect();
    eprintln!("{}: {}", subject.display(), counts.join(", "));
    // No request sent, no pace to speak of.
    let pace = outcome.figures.settled_rate.map(|rate| format!(", pace settled at {rate:.1} requests/s"));
    eprintln!(
        "{:.1}s, {}, {} answered 429{}{}",
        outcome.duration.as_secs_f64(),
        crate::words::counted(outcome.figures.requests, "request"),
        outcome.figures.throttled,
        pace.unwrap_or_default(),
        if outcome.resumed { " (resumed)" } else { "" }
    );
    if let Some(reached) = &outcome.pace {
        eprintln!("pace: {}", reached.line());
    }
    eprintln!("report: {}", outcome.report.display());
    let resume = || eprintln!("to resume: {}", resume_command());
    match &outcome.ending {
        Ending::Interrupted => {
            resume();
            Exit::Interrupted
        }
        Ending::Halted(crate::engine::Halt::InputChanged(words)) => {
            eprintln!("error: {words}");
            Exit::Failed
        }
        Ending::Halted(halt) => {
            eprintln!("error: the job stopped: {halt}");
            resume();
            Exit::Failed
        }
        Ending::Canary(rows) => {
            show_canary(rows);
            eprintln!("to continue: {}", continue_command());
            Exit::Stopped
        }
        Ending::BudgetSpent(budget) => {
            eprintln!(
                "stopped: more than {budget} in this run (--max-failures); rows not reached stay pending. Fix the \
                 cause, then resume with --retry-failed to try the failed rows again:"
            );
            eprintln!("  {} --retry-failed", resume_command());
            Exit::Stopped
        }
        Ending::Complete if outcome.counts.keys().any(|status| status.is_problem()) => Exit::RowsFailed,
        Ending::Complete if outcome.counts.contains_key(&RowStatus::Pending) => Exit::Failed,
        Ending::Complete => Exit::Clean,
    }
}

/// What the canary did, row by row, with the before and after of every field it changed.
fn show_canary(rows: &[crate::engine::CanaryRow]) {
    eprintln!("canary: {} done; look at them before the rest runs:", crate::words::counted(rows.len() as u64, "row"));
    for row in rows {
        let outcome = &row.outcome;
        eprintln!("  line {} ({}): {}", outcome.line, row.customer_id, outcome.status);
        for change in &outcome.changes {
            let (before, after) = (crate::merge::shown(&change.before), crate::merge::shown(&change.after));
            eprintln!("    {}: {before} -> {after}", change.field);
        }
        if let Some(error) = &outcome.call.error {
            eprintln!("    {error}");
        }
    }
}

/// The command that continues after a canary: the same, without `--canary N`.
fn continue_command() -> String {
    let mut skip_next = false;
    let args: Vec<String> = std::env::args()
        .filter(|arg| {
            let skip = std::mem::take(&mut skip_next) || arg.starts_with("--canary=");
            skip_next = arg == "--canary";
            !skip && arg != "--canary"
        })
        .collect();
    command_line(args)
}

/// The command that runs a dry run's job for real: the same, without `--dry-run` and `--show`.
pub(super) fn real_command() -> String {
    let mut skip_next = false;
    let args: Vec<String> = std::env::args()
        .filter(|arg| {
            let skip = std::mem::take(&mut skip_next) || arg.starts_with("--show=");
            skip_next = arg == "--show";
            !skip && arg != "--show" && arg != "--dry-run"
        })
        .collect();
    command_line(args)
}

/// Prints the job's plan (a dry run: its rows, as `show` asks, and the command that runs it) or, after a real job,
/// its counts per field and pre-flight refusals, on stdout.
/// A plan that cannot be read is a warning: the job itself is done and recorded.
pub(super) fn show_plan(state: &Path, kind: JobKind, show: Show, outcome: &JobOutcome) {
    let dry_run = matches!(kind, JobKind::DryRun | JobKind::RollbackDryRun);
    let (show, run) = if dry_run { (Some(show), Some(real_command())) } else { (None, None) };
    if let Err(error) = crate::summary::plan::print_after_job(state, kind, show, &outcome.report, run.as_deref()) {
        eprintln!("warning: cannot show the plan: {error:#}");
    }
}

/// The command line as given (secrets never appear on it: they come from the environment).
fn resume_command() -> String {
    command_line(std::env::args().collect())
}

fn command_line(args: Vec<String>) -> String {
    let quote = |arg: String| {
        if arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
            arg
        } else {
            format!("'{}'", arg.replace('\'', r"'\''"))
        }
    };
    let mut args = args.into_iter();
    let program = args.next().map(|_| "pcbulk".to_string()).unwrap_or_default();
    // A webhook URL is a secret (`--notify URL`): left out; env PCBULK_NOTIFY_URL keeps it off the command line.
    let mut skip_next = false;
    let args = args.filter(|arg| {
        let skip = std::mem::take(&mut skip_next) || arg.starts_with("--notify=");
        skip_next = arg == "--notify";
        !skip && arg != "--notify" && arg != "--restart"
    });
    std::iter::once(program).chain(args.map(quote)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::command_line;

    #[test]
    fn a_webhook_url_never_reaches_a_printed_command() {
        let args =
            ["/opt/pcbulk", "apply", "u.csv", "--notify", "https://h/SECRET", "--notify=https://h/S2", "--rate", "5"];
        assert_eq!(command_line(args.map(String::from).to_vec()), "pcbulk apply u.csv --rate 5");
    }
}
