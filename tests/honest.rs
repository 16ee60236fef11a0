//! Honest words (issue 14, points 4, 6 and 7): exit codes, logs, progress, counters and refusals that say what
//! happened, as the real binary shows them to an operator.

mod common;

use common::{WorkDir, pcbulk, pcbulk_with, stderr};
use serde_json::Value;

fn customer(index: usize) -> String {
    format!("{index:08x}-bbbb-4ccc-8ddd-{index:012x}")
}

/// A CSV of `rows` renames, comma-separated, in the work dir.
fn renames(work: &WorkDir, name: &str, rows: usize) -> std::path::PathBuf {
    let text: String = (0..rows).map(|index| format!("{},Renamed {index}\n", customer(index))).collect();
    work.write(name, format!("customer_id,companyName\n{text}"))
}

#[test]
fn bad_arguments_exit_1_not_clap_2_and_help_exits_0() {
    for args in [&["apply"][..], &["--no-such-option"], &["apply", "x.csv", "--rate", "fast"], &["frobnicate"]] {
        let output = pcbulk(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", stderr(&output));
    }
    assert_eq!(pcbulk(&["--help"]).status.code(), Some(0));
    assert_eq!(pcbulk(&["--version"]).status.code(), Some(0));
}

#[test]
fn logs_off_a_terminal_carry_no_colour_codes() {
    let work = WorkDir::new();
    let csv = renames(&work, "small.csv", 3);
    let output = pcbulk_with(&["apply".as_ref(), "--sandbox".as_ref(), csv.as_os_str()], &[("RUST_LOG", "debug")]);
    let logs = stderr(&output);
    assert!(output.status.success(), "{logs}");
    assert!(logs.contains("DEBUG"), "debug logging ran:\n{logs}");
    assert!(!logs.contains('\u{1b}'), "an escape code in logs written to a pipe:\n{logs}");
}

#[test]
fn json_logs_at_the_default_level_carry_the_jobs_start_and_end_with_counts() {
    let work = WorkDir::new();
    let csv = renames(&work, "small.csv", 3);
    let args = ["--log-format".as_ref(), "json".as_ref(), "apply".as_ref(), "--sandbox".as_ref(), csv.as_os_str()];
    let output = pcbulk_with(&args, &[]);
    let logs = stderr(&output);
    assert!(output.status.success(), "{logs}");
    let events: Vec<Value> = logs
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .filter(|record: &Value| record["fields"]["event"].is_string())
        .collect();
    let named = |name: &str| events.iter().find(|record| record["fields"]["event"] == name).cloned();
    let start = named("start").unwrap_or_else(|| panic!("no start event:\n{logs}"));
    assert_eq!(start["fields"]["total"], 3);
    let end = named("end").unwrap_or_else(|| panic!("no end event:\n{logs}"));
    assert_eq!((end["fields"]["done"].clone(), end["fields"]["updated"].clone()), (Value::from(3), Value::from(3)));
    assert!(!logs.lines().any(|line| line.starts_with("progress:")), "a plain progress line among json:\n{logs}");
}
