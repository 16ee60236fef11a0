use super::*;
use serde_json::json;

fn planned(line: u64, status: RowStatus) -> Result<PlannedRow, crate::input::FileError> {
    Ok(PlannedRow { line, customer_id: format!("c{line}"), status, error: String::new(), warnings: String::new() })
}

fn job_with_rows(state: &mut StateFile, lines: u64) -> Job {
    let rows = (2..2 + lines).map(|line| planned(line, RowStatus::Pending));
    state.create_job(JobKind::Apply, "x.csv", "hash", "http://127.0.0.1:1", rows).unwrap().unwrap()
}

fn change() -> FieldChange {
    FieldChange { field: "defaultAddress.city", before: json!("Redmond"), after: json!("Seattle") }
}

#[tokio::test]
async fn outcomes_and_intents_are_committed_by_the_recorder() {
    let mut state = StateFile::open_in_memory().unwrap();
    let job = job_with_rows(&mut state, 3);
    let recorder = Recorder::start(state, job.id);
    let handle = recorder.handle();
    handle.intend_put(2, &[change()]).await.unwrap();
    handle.intend_put(3, &[change()]).await.unwrap();
    handle
        .record(RowOutcome {
            line: 2,
            status: Some(RowStatus::Updated),
            changes: vec![change()],
            http_status: Some(200),
            attempts: 2,
            request_id: Some("r".into()),
            ..RowOutcome::default()
        })
        .unwrap();
    handle.flush().await.unwrap();
    let state = recorder.finish().unwrap();
    let counts = state.counts(job.id).unwrap();
    assert_eq!(counts[&RowStatus::Updated], 1);
    assert_eq!(counts[&RowStatus::Pending], 2);
    let settled = state.settled_lines(job.id, false).unwrap();
    assert!(settled.contains(2) && !settled.contains(3) && !settled.contains(4));
    let unsettled = state.unsettled_puts(job.id).unwrap();
    assert_eq!(unsettled.keys().copied().collect::<Vec<_>>(), [3]);
    assert_eq!(unsettled[&3].0, r#"{"defaultAddress.city":"Redmond"}"#);
    let mut rows = Vec::new();
    state
        .each_row(job.id, |row| {
            rows.push(row);
            Ok(())
        })
        .unwrap();
    assert_eq!(rows[0].changed_fields, "defaultAddress.city");
    assert_eq!(rows[0].after, r#"{"defaultAddress.city":"Seattle"}"#);
    assert_eq!(rows[0].attempts, Some(2));
}

#[test]
fn failed_rows_are_settled_unless_retried() {
    let mut state = StateFile::open_in_memory().unwrap();
    let rows = [planned(2, RowStatus::Invalid), planned(3, RowStatus::Pending)];
    let job = state.create_job(JobKind::Apply, "x.csv", "h", "u", rows.into_iter()).unwrap().unwrap();
    state.connection.execute("UPDATE rows SET status = 'failed' WHERE line = 3", []).unwrap();
    assert!(state.settled_lines(job.id, false).unwrap().contains(3));
    let retried = state.settled_lines(job.id, true).unwrap();
    assert!(!retried.contains(3) && retried.contains(2));
}

#[test]
fn a_file_that_is_not_ours_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    std::fs::write(&path, b"these are my notes, not a database at all, and long enough to be read").unwrap();
    let error = StateFile::open_for_job(&path).err().unwrap().to_string();
    assert!(error.contains("not a pcbulk state file"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), b"these are my notes, not a database at all, and long enough to be read");
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
    assert!(StateFile::open_for_job(&other).err().unwrap().to_string().contains("not a pcbulk state file"));
}

#[test]
fn a_state_file_is_private_and_locked_while_a_job_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.pcbulk.db");
    let state = StateFile::open_for_job(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(matches!(StateFile::open_for_job(&path), Err(StateError::Locked { .. })));
    drop(state);
    let state = StateFile::open_for_job(&path).unwrap();
    assert!(state.find_job(JobKind::Apply).unwrap().is_none());
}

#[test]
fn line_sets() {
    let mut lines = LineSet::default();
    for line in [2, 64, 65, 1_000_000, 64] {
        lines.insert(line);
    }
    assert_eq!(lines.len(), 4);
    assert!(lines.contains(1_000_000) && lines.contains(64) && !lines.contains(3) && !lines.contains(5_000_000));
}
