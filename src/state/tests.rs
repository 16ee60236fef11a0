use super::*;
use serde_json::json;

fn planned(line: u64, status: RowStatus) -> Result<PlannedRow, crate::input::FileError> {
    Ok(PlannedRow {
        line,
        customer_id: format!("c{line}"),
        status,
        error: String::new(),
        warnings: String::new(),
        plan: None,
    })
}

fn job_with_rows(state: &mut StateFile, lines: u64) -> Job {
    let rows = (2..2 + lines).map(|line| planned(line, RowStatus::Pending));
    state.create_job(JobKind::Apply, "x.csv", "hash", "http://127.0.0.1:1", rows).unwrap().unwrap()
}

fn change() -> FieldChange {
    FieldChange { field: "defaultAddress.city", before: Some(json!("Redmond")), after: Some(json!("Seattle")) }
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
        .record(RowOutcome::new(2, RowStatus::Updated).with_changes(vec![change()]).with_call(CallRecord {
            http_status: Some(200),
            attempts: Some(2),
            request_id: Some("r".into()),
            ..CallRecord::default()
        }))
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
    assert_eq!(rows[0].call.attempts, Some(2));
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

/// A lock let go a moment after a job asks for it (a child process between fork and exec holding the descriptor of
/// a job that has just ended) is waited for, not taken for another job's.
#[test]
fn a_lock_let_go_within_a_moment_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.pcbulk.db");
    let state = StateFile::open_for_job(&path).unwrap();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(state);
    });
    let state = StateFile::open_for_job(&path).expect("the lock let go after 100 ms is taken");
    holder.join().unwrap();
    assert!(state.find_job(JobKind::Apply).unwrap().is_none());
}

/// A reader (`status` from another process) that meets a state file the starting job has made but not yet filled
/// says so and makes nothing: the job makes its own tables (a reader that made them raced the job's switch to WAL).
#[test]
fn a_reader_of_a_file_not_yet_made_by_its_job_makes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("starting.pcbulk.db");
    std::fs::write(&path, b"").unwrap();
    let refused = StateFile::open_existing(&path).err().expect("an empty file is refused to a reader");
    assert!(refused.to_string().contains("a job is starting"), "{refused}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "the reader wrote nothing");
    let state = StateFile::open_for_job(&path).unwrap();
    assert!(state.find_job(JobKind::Apply).unwrap().is_none());
    drop(state);
    assert!(StateFile::open_existing(&path).is_ok(), "once the job made it, a reader reads it");
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

/// The status of a row as another process reading the state file sees it now.
fn status_seen_by_a_reader(path: &std::path::Path, job: i64, line: u64) -> String {
    let reader = StateFile::open_existing(path).unwrap();
    reader
        .connection
        .query_row("SELECT status FROM rows WHERE job_id = ?1 AND line = ?2", rusqlite::params![job, line], |row| {
            row.get(0)
        })
        .unwrap()
}

fn updated(line: u64) -> RowOutcome {
    RowOutcome::new(line, RowStatus::Updated).with_changes(vec![change()])
}

#[tokio::test]
async fn an_outcome_rides_the_next_intents_commit_or_waits_at_most_a_moment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut state = StateFile::open_for_job(&path).unwrap();
    let job = job_with_rows(&mut state, 3);
    let recorder = Recorder::start(state, job.id);
    let handle = recorder.handle();

    // An intent's commit takes along every outcome recorded before it.
    handle.intend_put(2, &[change()]).await.unwrap();
    handle.record(updated(2)).unwrap();
    handle.intend_put(3, &[change()]).await.unwrap();
    assert_eq!(status_seen_by_a_reader(&path, job.id, 2), "updated");

    // With no intent to ride, an outcome is committed on its own soon after (OUTCOME_WAIT, 200 ms).
    handle.record(updated(3)).unwrap();
    let recorded = std::time::Instant::now();
    while status_seen_by_a_reader(&path, job.id, 3) != "updated" {
        assert!(recorded.elapsed() < std::time::Duration::from_secs(10), "the outcome was never committed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // And what is recorded last is committed when the recorder finishes.
    handle.record(updated(4)).unwrap();
    drop(recorder.finish().unwrap());
    assert_eq!(status_seen_by_a_reader(&path, job.id, 4), "updated");
}

#[test]
fn absent_and_null_before_values_are_told_apart_and_old_files_still_read() {
    let catalog = crate::fields::CUSTOMER_BILLING;
    let absent = FieldChange { field: "email", before: None, after: Some(json!("new@contoso.com")) };
    let null = FieldChange { field: "culture", before: Some(Value::Null), after: Some(json!("en-US")) };
    let changes = [absent.clone(), null.clone()];
    let (before, after) = (changes_json(&changes, |c| &c.before), changes_json(&changes, |c| &c.after));
    assert_eq!(before, r#"{"culture":null}"#);
    let mut decoded = decode_changes(catalog, &before, &after);
    decoded.sort_by_key(|change| change.field);
    assert_eq!(decoded, [null, absent]);
    // A file written before: absent was recorded as null, and reads as null (put back as before the change).
    let old = decode_changes(catalog, r#"{"email":null}"#, r#"{"email":"new@contoso.com"}"#);
    assert_eq!(old[0].before, Some(Value::Null));
}

#[test]
fn a_status_this_build_does_not_know_is_an_error_naming_it() {
    let mut state = StateFile::open_in_memory().unwrap();
    let job = job_with_rows(&mut state, 2);
    state.connection.execute("UPDATE rows SET status = 'frozen' WHERE line = 3", []).unwrap();
    let mut seen = Vec::new();
    let read = state.each_row(job.id, |row| {
        seen.push(row.status);
        Ok(())
    });
    let error = read.unwrap_err().to_string();
    assert!(error.contains("unknown row status \"frozen\" on line 3"), "{error}");
    assert_eq!(seen, [RowStatus::Pending], "the rows before it were read");
    let error = state.counts(job.id).unwrap_err().to_string();
    assert!(error.contains("\"frozen\""), "{error}");
}

#[tokio::test]
async fn a_page_committed_by_the_recorder_is_read_by_a_cursor_that_met_its_end_and_follows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut state = StateFile::open_for_job(&path).unwrap();
    let columns = vec!["defaultAddress.city".to_string()];
    let export = export::Export { id: "e".into(), columns, listed: false, pages: 0, next_page: None };
    let job = state.create_export("out.csv", "http://127.0.0.1:1", &export).unwrap();
    let read = |line: u64| PlannedRow {
        plan: Some(plan::encode_read(Default::default())),
        ..planned(line, RowStatus::Pending).unwrap()
    };
    let recorder = Recorder::start(state, job.id);
    let handle = recorder.handle();
    handle.record_page(vec![read(2), read(3)], Some("{\"next\":1}".into())).await.unwrap();
    let mut cursor = plan::Cursor::open(&path, job.id, plan::Rows::ToDo { retry_failed: false }).unwrap();
    let lines = |cursor: &mut plan::Cursor| cursor.map(|row| row.unwrap().line).collect::<Vec<_>>();
    assert_eq!(lines(&mut cursor), [2, 3], "the page is durable once record_page returns");
    handle.record_page(vec![read(4)], None).await.unwrap();
    assert!(lines(&mut cursor).is_empty(), "a cursor at its end stays there until told to follow");
    cursor.follow();
    assert_eq!(lines(&mut cursor), [4], "then it reads the rows added since, after the last it read");
    let state = recorder.finish().unwrap();
    let export = state.export_of(job.id).unwrap().unwrap();
    assert_eq!((export.pages, export.listed, export.next_page), (2, true, None));
}
