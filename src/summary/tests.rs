use super::*;
use crate::state::{CallRecord, PlannedRow, Recorder, RowOutcome};
use serde_json::Value;

fn planned(line: u64, status: RowStatus, error: &str) -> Result<PlannedRow, crate::input::FileError> {
    let (customer_id, error, warnings) = (format!("c{line}"), error.to_string(), String::new());
    Ok(PlannedRow { line, customer_id, status, error, warnings, plan: None })
}

fn failed(line: u64, status: u16, code: Option<&str>, error: &str) -> RowOutcome {
    RowOutcome::new(line, RowStatus::Failed).with_call(CallRecord {
        http_status: Some(status),
        error_code: code.map(str::to_string),
        error: Some(error.to_string()),
        attempts: Some(1),
        request_id: Some(format!("request-{line}")),
        correlation_id: None,
    })
}

/// Lines 2-3 updated, 4-6 failed with code 600002, 7 failed with a bare 503, 8 invalid, 9 pending.
fn job() -> (StateFile, Job) {
    let mut state = StateFile::open_in_memory().unwrap();
    let rows = (2..=9).map(|line| match line {
        8 => planned(line, RowStatus::Invalid, "column email: value \"x\": not an email address"),
        _ => planned(line, RowStatus::Pending, ""),
    });
    let job = state.create_job(JobKind::Apply, "x.csv", "hash", "http://127.0.0.1:1", rows).unwrap().unwrap();
    let recorder = Recorder::start(state, job.id);
    let handle = recorder.handle();
    for line in 2..=3 {
        let outcome = RowOutcome::new(line, RowStatus::Updated);
        handle.record(outcome).unwrap();
    }
    for line in 4..=6 {
        handle.record(failed(line, 404, Some("600002"), "http 404: 600002: Customer was not found")).unwrap();
    }
    handle.record(failed(7, 503, None, "http 503: service unavailable")).unwrap();
    let state = recorder.finish().unwrap();
    let job = state.find_job(JobKind::Apply).unwrap().unwrap();
    (state, job)
}

#[test]
fn the_summary_counts_every_status_and_ranks_the_errors() {
    let (state, job) = job();
    let mut problems = Vec::new();
    let summary = Summary::read(&state, &job, |row| problems.push(row.line)).unwrap();
    assert_eq!(summary.rows, 8);
    assert_eq!(summary.counts.len(), RowStatus::ALL.len(), "every status, zero or not");
    assert_eq!((summary.count(RowStatus::Updated), summary.count(RowStatus::Failed)), (2, 4));
    assert_eq!(summary.count(RowStatus::Conflict), 0);
    assert_eq!(problems, [4, 5, 6, 7, 8, 9], "failed, invalid and pending rows, in input order");
    let errors: Vec<(&str, &str, u64)> =
        summary.top_errors.iter().map(|e| (e.code.as_str(), e.description.as_str(), e.rows)).collect();
    assert_eq!(
        errors,
        [
            ("600002", "Customer was not found", 3),
            ("HTTP 503", "service unavailable", 1),
            ("invalid", "column email: value \"…\": not an email address", 1),
        ],
        "most rows first; a pending row is no error"
    );
}

#[test]
fn the_json_rows_use_null_for_what_is_absent() {
    let (state, job) = job();
    let mut out = Vec::new();
    write_json(&state, &job, &mut out).unwrap();
    let report: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["schema"], SCHEMA);
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    assert_eq!(rows[0]["error"], Value::Null);
    assert_eq!(rows[0]["changed_fields"], serde_json::json!([]));
    assert_eq!(rows[2]["request_id"], "request-4");
    assert_eq!(rows[2]["http_status"], 404);
}

#[test]
fn a_dry_run_and_a_rollback_need_no_look_for_doing_their_job() {
    let row = |status: &str| StoredRow::new(2, String::new(), RowStatus::from_name(status).unwrap());
    for fine in ["updated", "unchanged", "would_update", "restored"] {
        assert!(!row(fine).status.needs_attention(), "{fine}");
    }
    for look in ["failed", "invalid", "conflict", "pending"] {
        assert!(row(look).status.needs_attention(), "{look}");
    }
}

#[test]
fn the_top_errors_group_by_code_and_shape_not_by_the_ids_inside() {
    let mut state = StateFile::open_in_memory().unwrap();
    let rows = (2..=6).map(|line| planned(line, RowStatus::Pending, ""));
    let job = state.create_job(JobKind::Apply, "x.csv", "hash", "http://127.0.0.1:1", rows).unwrap().unwrap();
    let recorder = Recorder::start(state, job.id);
    let handle = recorder.handle();
    for line in 2..=4 {
        let message = format!("http 404: 600002: Customer 6513270e-269e-4d37-b2a7-4de452e6b4{line:02} was not found");
        handle.record(failed(line, 404, Some("600002"), &message)).unwrap();
    }
    handle.record(failed(5, 400, Some("600002"), "http 400: 600002: quota of 50 reached")).unwrap();
    handle.record(failed(6, 400, Some("600002"), "http 400: 600002: quota of 70 reached")).unwrap();
    let state = recorder.finish().unwrap();
    let job = state.find_job(JobKind::Apply).unwrap().unwrap();
    let summary = Summary::read(&state, &job, |_| {}).unwrap();
    let errors: Vec<(&str, &str, u64)> =
        summary.top_errors.iter().map(|e| (e.code.as_str(), e.description.as_str(), e.rows)).collect();
    assert_eq!(errors, [("600002", "Customer <id> was not found", 3), ("600002", "quota of <n> reached", 2)]);
}

#[test]
fn the_verdict_says_the_job_in_one_line() {
    let (state, job) = job();
    let summary = Summary::read(&state, &job, |_| {}).unwrap();
    let verdict = summary.verdict();
    assert!(!verdict.good);
    assert_eq!(verdict.words, "6 of 8 rows need attention: 4 failed, 1 invalid, 1 pending");
    let counts = |pairs: &[(&str, u64)]| pairs.iter().map(|(name, n)| (name.to_string(), *n)).collect();
    let all = Summary { rows: 300, counts: counts(&[("updated", 300)]), ..summary.clone() };
    assert_eq!(all.verdict(), Verdict { good: true, words: "All 300 rows updated".into() });
    let dry = Summary { rows: 3, counts: counts(&[("would_update", 2), ("unchanged", 1)]), ..summary };
    assert_eq!(dry.verdict().words, "All 3 rows done: 2 would update, 1 unchanged");
}
