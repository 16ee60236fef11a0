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
            ("invalid", "column email: value \"x\": not an email address", 1),
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
