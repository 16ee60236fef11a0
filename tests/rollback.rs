//! `rollback` against the in-process sandbox, asserting on what the server holds: after an apply, every row is put
//! back exactly as it was, except the rows someone else changed since (left as found, `conflict`).

use crate::common;

use common::rig::{self, count, customer};
use common::{CancelAfter, report_rows};
use pcbulk::client::{ApiConfig, ClientConfig};
use pcbulk::engine::{Ending, Mode};
use pcbulk::job::rollback::{self, RollbackConfig};
use pcbulk::job::{self, ApplyConfig, JobError, JobOutcome};
use pcbulk::progress::Silent;
use pcbulk::sandbox::{Faults, StaleEtag};
use pcbulk::state::RowStatus;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The customers someone else edits after the apply.
const EDITED: [usize; 5] = [3, 17, 29, 41, 58];

/// The common rig (customers generated from seed 11, the CSV moving each to a new city and renaming its company),
/// their profiles as first seeded, and an apply job that wrote the CSV.
struct Rig {
    rig: rig::Rig,
    originals: BTreeMap<usize, Value>,
}

impl std::ops::Deref for Rig {
    type Target = rig::Rig;

    fn deref(&self) -> &rig::Rig {
        &self.rig
    }
}

impl Rig {
    /// The sandbox and the CSV, before the apply.
    async fn new(rows: usize, faults: Faults) -> Rig {
        let rig = rig::Rig::start(rows, faults, 11, "").await;
        let originals = (0..rows).map(|index| (index, rig.sandbox.customer(&customer(index)).unwrap())).collect();
        Rig { rig, originals }
    }

    async fn applied(rows: usize, faults: Faults) -> Rig {
        let rig = Rig::new(rows, faults).await;
        let outcome = job::apply(&rig.apply_config(), Arc::new(Silent), CancellationToken::new()).await.unwrap();
        assert_eq!(count(&outcome, RowStatus::Updated), rows as u64, "{:?}", outcome.counts);
        rig
    }

    fn api(&self) -> ApiConfig {
        self.rig.api(1000)
    }

    fn apply_config(&self) -> ApplyConfig {
        self.rig.apply_config(Mode::Apply, 1000)
    }

    fn config(&self, mode: Mode) -> RollbackConfig {
        RollbackConfig {
            state: self.work.path("updates.csv.pcbulk.db"),
            report: None,
            mode,
            restart: false,
            retry_failed: false,
            api: self.api(),
            grace: Duration::from_secs(30),
            delimiter: b',',
        }
    }

    async fn rollback(&self, config: &RollbackConfig) -> JobOutcome {
        rollback::rollback(config, Arc::new(Silent), CancellationToken::new()).await.unwrap()
    }

    fn edit_by_someone_else(&self) {
        for index in EDITED {
            self.sandbox.edit_customer(&customer(index), "defaultAddress.city", format!("Moved {index}")).unwrap();
        }
    }

    /// The default report of the rollback, as (line, status, error).
    fn report(&self) -> Vec<(u64, String, String)> {
        report_rows(&self.work.read("updates.csv.rollback.report.csv"))
    }

    /// Every customer but the edited ones holds its original profile exactly (the etag aside); no field was dropped.
    fn assert_restored(&self, except: &[usize]) {
        for (index, original) in &self.originals {
            if except.contains(index) {
                continue;
            }
            let mut now = self.sandbox.customer(&customer(*index)).unwrap();
            let mut original = original.clone();
            now["attributes"]["etag"] = Value::Null;
            original["attributes"]["etag"] = Value::Null;
            assert_eq!(now, original, "customer {index}");
        }
        let counters = self.sandbox.counters();
        assert_eq!(counters.fields_dropped_count, 0, "{:?}", counters.fields_dropped);
        assert_eq!(counters.unmodeled_altered_count, 0, "{:?}", counters.unmodeled_altered);
    }

    fn puts(&self) -> u64 {
        self.sandbox.counters().total_put_attempts()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_every_row_but_those_changed_since_which_are_conflicts_left_as_found() {
    let rig = Rig::applied(60, Faults::default()).await;
    rig.edit_by_someone_else();
    let puts = rig.puts();
    let outcome = rig.rollback(&rig.config(Mode::Apply)).await;
    assert_eq!(outcome.ending, Ending::Complete);
    assert_eq!(count(&outcome, RowStatus::Restored), 55, "{:?}", outcome.counts);
    assert_eq!(count(&outcome, RowStatus::Conflict), 5, "{:?}", outcome.counts);
    assert_eq!(rig.puts() - puts, 55);
    rig.assert_restored(&EDITED);
    for index in EDITED {
        let profile = rig.sandbox.customer(&customer(index)).unwrap();
        assert_eq!(profile["defaultAddress"]["city"], Value::from(format!("Moved {index}")));
        // The whole row is left alone: the field nobody else touched keeps what the job wrote.
        assert_eq!(profile["companyName"], Value::from(format!("Company {index}")));
    }
    let report = rig.report();
    assert_eq!(report.len(), rig.rows);
    for (line, status, error) in report {
        let index = line as usize - 2;
        if EDITED.contains(&index) {
            assert_eq!(status, "conflict");
            let expected = format!("defaultAddress.city is now \"Moved {index}\", the job wrote \"City {index}\"");
            assert!(error.starts_with(&expected), "{error}");
        } else {
            assert_eq!(status, "restored", "line {line}: {error}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_back_twice_changes_nothing_the_second_time() {
    let rig = Rig::applied(20, Faults::default()).await;
    rig.rollback(&rig.config(Mode::Apply)).await;
    rig.assert_restored(&[]);
    let (requests, puts) = (rig.sandbox.counters().requests, rig.puts());
    // The same rollback again is a finished job: nothing is read or written.
    let again = rig.rollback(&rig.config(Mode::Apply)).await;
    assert!(again.resumed);
    assert_eq!(rig.sandbox.counters().requests, requests);
    // Started over, it reads every row, finds every before-value in place, and writes nothing.
    let mut config = rig.config(Mode::Apply);
    config.restart = true;
    let fresh = rig.rollback(&config).await;
    assert!(!fresh.resumed);
    assert_eq!(count(&fresh, RowStatus::Restored), 20, "{:?}", fresh.counts);
    assert_eq!(rig.puts(), puts);
    rig.assert_restored(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_sends_no_put_and_is_not_progress_of_the_rollback() {
    let rig = Rig::applied(15, Faults::default()).await;
    let puts = rig.puts();
    let outcome = rig.rollback(&rig.config(Mode::DryRun)).await;
    assert_eq!(count(&outcome, RowStatus::WouldUpdate), 15, "{:?}", outcome.counts);
    assert_eq!(rig.puts(), puts);
    assert!(rig.work.path("updates.csv.rollback.dry-run.report.csv").exists());
    let real = rig.rollback(&rig.config(Mode::Apply)).await;
    assert!(!real.resumed);
    assert_eq!(count(&real, RowStatus::Restored), 15);
    rig.assert_restored(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_through_lost_answers_stale_etags_429s_and_edits_to_other_fields_restores_every_row() {
    let rig = Rig::applied(40, Faults::default()).await;
    let faults = Faults {
        drop_after_commit: 0.3,
        concurrent_edit: 0.3,
        stale_etag: StaleEtag::Mixed,
        error_rate: 0.05,
        rate_limit: Some(200.0),
        ..Faults::default()
    };
    rig.sandbox.set_faults(faults).unwrap();
    let outcome = rig.rollback(&rig.config(Mode::Apply)).await;
    let counters = rig.sandbox.counters();
    assert!(counters.connections_dropped > 0 && counters.total_concurrent_edits() > 0, "the faults did not fire");
    // Someone else's edits touch only `extensions.editsBySomeoneElse`, never a field the job wrote: so no row is a
    // conflict of values, and only a profile that kept changing through every re-read may be left as found.
    assert_eq!(count(&outcome, RowStatus::Restored) + count(&outcome, RowStatus::Conflict), 40, "{:?}", outcome.counts);
    assert_eq!(counters.lost_edits, 0);
    for (index, original) in &rig.originals {
        let mut now = rig.sandbox.customer(&customer(*index)).unwrap();
        let edits = counters.concurrent_edits.get(&customer(*index)).copied().unwrap_or_default();
        assert_eq!(now["extensions"]["editsBySomeoneElse"], Value::from(edits), "customer {index}");
        let mut original = original.clone();
        for profile in [&mut now, &mut original] {
            profile["attributes"]["etag"] = Value::Null;
            profile["extensions"]["editsBySomeoneElse"] = Value::Null;
        }
        let conflict = rig.report().iter().any(|row| row.0 == *index as u64 + 2 && row.1 == "conflict");
        if !conflict {
            assert_eq!(now, original, "customer {index}");
        }
        let puts = counters.puts_succeeded.get(&customer(*index)).copied().unwrap_or_default();
        assert!(puts <= 2, "customer {index} saw {puts} successful PUTs (apply and rollback)");
    }
    assert_eq!(counters.fields_dropped_count, 0, "{:?}", counters.fields_dropped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_rollback_resumes_where_it_stopped() {
    let rig = Rig::applied(60, Faults { latency_ms: 5, ..Faults::default() }).await;
    let cancel = CancellationToken::new();
    let progress = Arc::new(CancelAfter::new(15, cancel.clone()));
    let first = rollback::rollback(&rig.config(Mode::Apply), progress, cancel).await.unwrap();
    assert_eq!(first.ending, Ending::Interrupted);
    assert!(count(&first, RowStatus::Pending) > 0, "{:?}", first.counts);
    assert!(rig.report().iter().any(|row| row.1 == "pending"));
    let gets_before = rig.sandbox.counters().requests_with("GET", 200);
    let second = rig.rollback(&rig.config(Mode::Apply)).await;
    assert!(second.resumed);
    assert_eq!(second.ending, Ending::Complete);
    assert_eq!(count(&second, RowStatus::Restored), 60, "{:?}", second.counts);
    let gets = rig.sandbox.counters().requests_with("GET", 200) - gets_before;
    assert!(gets <= count(&first, RowStatus::Pending), "{gets} GETs on resume for {:?}", first.counts);
    rig.assert_restored(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_goes_only_where_its_job_went() {
    let rig = Rig::applied(3, Faults::default()).await;
    let mut config = rig.config(Mode::Apply);
    config.api.client = ClientConfig::new("http://127.0.0.1:9").unwrap();
    let error = rollback::rollback(&config, Arc::new(Silent), CancellationToken::new()).await.unwrap_err();
    assert!(matches!(error, JobError::OtherBaseUrl { .. }), "{error}");
    assert!(error.to_string().contains(rig.sandbox.url().trim_end_matches('/')), "{error}");
    assert!(error.to_string().contains("http://127.0.0.1:9"), "{error}");
    assert_eq!(rig.puts(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_file_without_an_apply_job_is_refused() {
    let rig = Rig::applied(2, Faults::default()).await;
    let mut config = rig.config(Mode::Apply);
    config.state = rig.work.path("elsewhere.pcbulk.db");
    let error = rollback::rollback(&config, Arc::new(Silent), CancellationToken::new()).await.unwrap_err();
    assert!(error.to_string().contains("no such file"), "{error}");
    let mut dry = rig.apply_config();
    dry.mode = Mode::DryRun;
    dry.state = config.state.clone();
    job::apply(&dry, Arc::new(Silent), CancellationToken::new()).await.unwrap();
    let error = rollback::rollback(&config, Arc::new(Silent), CancellationToken::new()).await.unwrap_err();
    assert!(matches!(error, JobError::NoApply { .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_made_for_an_earlier_apply_is_refused_unless_restart() {
    let rig = Rig::applied(4, Faults::default()).await;
    rig.rollback(&rig.config(Mode::Apply)).await;
    // Another apply job in the same state file: the rollback recorded there undoes the earlier one.
    let mut other = rig.apply_config();
    other.csv = rig.work.write("updates.csv", format!("customer_id,companyName\n{},Renamed\n", customer(1)));
    other.restart = true;
    job::apply(&other, Arc::new(Silent), CancellationToken::new()).await.unwrap();
    let refused = rollback::rollback(&rig.config(Mode::Apply), Arc::new(Silent), CancellationToken::new()).await;
    let error = refused.unwrap_err();
    assert!(matches!(error, JobError::OtherJob { .. }), "{error}");
    assert!(error.to_string().contains("--restart"), "{error}");
    let mut config = rig.config(Mode::Apply);
    config.restart = true;
    let outcome = rig.rollback(&config).await;
    assert_eq!(count(&outcome, RowStatus::Restored), 1, "{:?}", outcome.counts);
    rig.assert_restored(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_2_when_rows_are_conflicts_and_writes_the_report_beside_the_csv() {
    let rig = Rig::applied(10, Faults::default()).await;
    rig.sandbox.edit_customer(&customer(4), "companyName", "Someone Else Ltd").unwrap();
    let token = rig.sandbox.mint_token();
    let (url, csv) = (rig.sandbox.url().to_string(), rig.csv.display().to_string());
    let run = move || {
        let env = [("PCBULK_TOKEN", token.as_str()), ("PCBULK_BASE_URL", url.as_str())];
        let mut child = common::spawn_pcbulk(&["rollback", &csv], &env, std::process::Stdio::piped());
        let status = common::wait_at_most(&mut child, Duration::from_secs(60));
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        (status, stderr)
    };
    let (status, stderr) = tokio::task::spawn_blocking(run).await.unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("restored 9"), "{stderr}");
    assert!(stderr.contains("conflict 1"), "{stderr}");
    let report = rig.report();
    assert_eq!(report.iter().filter(|row| row.1 == "conflict").count(), 1);
    rig.assert_restored(&[4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_an_interrupted_apply_updates_after_a_rollback_join_the_next_rollback() {
    let rig = Rig::new(30, Faults { latency_ms: 5, ..Faults::default() }).await;
    let cancel = CancellationToken::new();
    let progress = Arc::new(CancelAfter::new(10, cancel.clone()));
    let first = job::apply(&rig.apply_config(), progress, cancel).await.unwrap();
    assert_eq!(first.ending, Ending::Interrupted);
    let partly = rig.rollback(&rig.config(Mode::Apply)).await;
    assert_eq!(count(&partly, RowStatus::Restored), count(&first, RowStatus::Updated), "{:?}", partly.counts);
    // The apply resumes and updates the rest (the restored rows stay settled in the apply job).
    let rest = job::apply(&rig.apply_config(), Arc::new(Silent), CancellationToken::new()).await.unwrap();
    assert_eq!(rest.ending, Ending::Complete);
    let again = rig.rollback(&rig.config(Mode::Apply)).await;
    assert!(again.resumed);
    assert_eq!(count(&again, RowStatus::Restored), 30, "{:?}", again.counts);
    assert_eq!(rig.report().len(), 30);
    rig.assert_restored(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_of_the_apply_job_still_in_doubt_refuses_the_rollback() {
    let rig = Rig::applied(3, Faults::default()).await;
    // As a kill between a PUT's intent and its answer leaves it.
    let connection = rusqlite::Connection::open(rig.work.path("updates.csv.pcbulk.db")).unwrap();
    connection.execute("UPDATE rows SET status = 'pending', put_sent = 1 WHERE line = 3", []).unwrap();
    drop(connection);
    let error =
        rollback::rollback(&rig.config(Mode::Apply), Arc::new(Silent), CancellationToken::new()).await.unwrap_err();
    assert!(matches!(error, JobError::InDoubt { count: 1 }), "{error}");
    assert_eq!(rig.puts(), 3);
    // The apply run again settles it (its values are in place: `updated`), and the rollback goes ahead.
    job::apply(&rig.apply_config(), Arc::new(Silent), CancellationToken::new()).await.unwrap();
    let outcome = rig.rollback(&rig.config(Mode::Apply)).await;
    assert_eq!(count(&outcome, RowStatus::Restored), 3, "{:?}", outcome.counts);
    rig.assert_restored(&[]);
}

#[test]
fn the_binary_needs_a_csv_or_a_state_file() {
    let output = common::pcbulk(&["rollback", "--base-url", "http://127.0.0.1:9"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = common::stderr(&output);
    assert!(
        stderr.contains("give the CSV of the job to undo, or --state FILE") || stderr.contains("credentials"),
        "{stderr}"
    );
}
