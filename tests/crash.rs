//! Crash safety, proved on the real binary against an in-process sandbox: a job killed with SIGKILL at random
//! moments, then run again, applies every row exactly once and reports every row truthfully; Ctrl-C and SIGTERM stop
//! it cleanly (exit 130, a resume command, the rest `pending`) and a rerun finishes the job. The same holds of a
//! rollback killed mid-way.
//!
//! The sandbox lives in this test process (on its own tokio runtime) across every run of the binary, so its
//! counters are the server's truth over the whole job.

use crate::common;

use common::{WorkDir, spawn_pcbulk, wait_at_most};
use pcbulk::sandbox::{Counters, Faults, Sandbox, SandboxConfig};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::time::Duration;

/// A run of the binary that is not killed must end within this (a generous bound, not a speed assertion).
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A row of the input CSV and what should become of it.
struct InputRow {
    line: u64,
    customer_id: String,
    company: String,
    city: String,
    email: String,
    valid: bool,
}

/// The input of a job: its rows, and the ids the sandbox must be seeded with.
struct Input {
    rows: Vec<InputRow>,
    seeded: Vec<String>,
}

impl Input {
    /// `valid` rows changing `companyName` and `defaultAddress.city`, each of its own customer; with `planted`, four
    /// invalid rows among them: a customer id that is no GUID, a duplicate id (the earlier line wins), a bad
    /// email, a row with every field cell empty.
    fn generate(rng: &mut StdRng, valid: usize, planted: bool) -> Input {
        let mut rows = Vec::new();
        let mut seeded = Vec::new();
        for index in 0..valid {
            let id = guid(rng);
            seeded.push(id.clone());
            rows.push(InputRow {
                line: 0,
                customer_id: id,
                company: format!("Renamed Company {index}"),
                city: format!("Newtown {index}"),
                email: String::new(),
                valid: true,
            });
        }
        if planted {
            let invalid = |customer_id: String, company: &str, city: &str, email: &str| InputRow {
                line: 0,
                customer_id,
                company: company.to_string(),
                city: city.to_string(),
                email: email.to_string(),
                valid: false,
            };
            let (bad_email, all_empty) = (guid(rng), guid(rng));
            seeded.extend([bad_email.clone(), all_empty.clone()]);
            let duplicate = rows[valid / 3].customer_id.clone();
            rows.insert(valid / 5, invalid("not-a-guid".into(), "Nobody", "Nowhere", ""));
            rows.insert(2 * valid / 5, invalid(bad_email, "Bad Email Inc", "Mailtown", "not-an-email"));
            rows.insert(3 * valid / 5, invalid(duplicate, "Second Writer", "Elsewhere", ""));
            rows.insert(4 * valid / 5, invalid(all_empty, "", "", ""));
        }
        for (index, row) in rows.iter_mut().enumerate() {
            row.line = index as u64 + 2;
        }
        Input { rows, seeded }
    }

    fn csv(&self) -> String {
        let mut text = String::from("customer_id,companyName,defaultAddress.city,email\n");
        for row in &self.rows {
            let _ = writeln!(text, "{},{},{},{}", row.customer_id, row.company, row.city, row.email);
        }
        text
    }

    fn valid(&self) -> impl Iterator<Item = &InputRow> {
        self.rows.iter().filter(|row| row.valid)
    }
}

/// A GUID drawn from the seeded generator (a valid version-4 UUID).
fn guid(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.random::<u128>().to_le_bytes()).into_uuid().to_string()
}

/// A sandbox on its own runtime, kept alive across runs of the binary.
struct Server {
    // Declared first so that it is dropped while the runtime still runs.
    sandbox: Sandbox,
    token: String,
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    fn start(customer_ids: Vec<String>, faults: Faults, seed: u64) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let config = SandboxConfig { customer_ids, faults, seed, ..SandboxConfig::default() };
        let sandbox = runtime.block_on(Sandbox::start(config)).expect("the sandbox starts");
        let token = sandbox.mint_token();
        Server { sandbox, token, _runtime: runtime }
    }

    fn counters(&self) -> Counters {
        self.sandbox.counters()
    }

    fn customer(&self, id: &str) -> Value {
        self.sandbox.customer(id).unwrap_or_else(|| panic!("customer {id} is in the sandbox"))
    }

    /// Whether the stored profile holds the row's new values.
    fn holds(&self, row: &InputRow) -> bool {
        let profile = self.customer(&row.customer_id);
        profile["companyName"] == row.company.as_str() && profile["defaultAddress"]["city"] == row.city.as_str()
    }
}

/// The files of one job, and how to run `pcbulk apply` on them.
struct Job {
    work: WorkDir,
    csv: PathBuf,
    state: PathBuf,
    report: PathBuf,
    runs: usize,
}

impl Job {
    fn new(input: &Input) -> Job {
        let work = WorkDir::new();
        let csv = work.write("changes.csv", input.csv());
        let (state, report) = (work.path("job.pcbulk.db"), work.path("job.report.csv"));
        Job { work, csv, state, report, runs: 0 }
    }

    /// Starts `pcbulk apply` with these extra options; its stderr goes to a file of its own.
    fn spawn(&mut self, server: &Server, extra: &[&str]) -> (Child, PathBuf) {
        self.spawn_command(server, "apply", extra)
    }

    /// Starts `pcbulk COMMAND` (`apply` or `rollback`) on the job's files; `rollback` reports beside the report.
    fn spawn_command(&mut self, server: &Server, command: &str, extra: &[&str]) -> (Child, PathBuf) {
        let token = server.token.clone();
        self.spawn_full(server, command, extra, &[("PCBULK_TOKEN", &token)])
    }

    /// Like [`Job::spawn`], with the credentials given in `env`.
    fn spawn_with(&mut self, server: &Server, extra: &[&str], env: &[(&str, &str)]) -> (Child, PathBuf) {
        self.spawn_full(server, "apply", extra, env)
    }

    fn spawn_full(&mut self, server: &Server, command: &str, extra: &[&str], env: &[(&str, &str)]) -> (Child, PathBuf) {
        self.runs += 1;
        let stderr_path = self.work.path(&format!("stderr-{}.txt", self.runs));
        let stderr = std::fs::File::create(&stderr_path).expect("a stderr file");
        let path = |path: &PathBuf| path.to_str().expect("a UTF-8 temporary path").to_string();
        let report = if command == "rollback" { self.rollback_report() } else { self.report.clone() };
        let (csv, state, report) = (path(&self.csv), path(&self.state), path(&report));
        let mut args = vec![command, &csv, "--base-url", server.sandbox.url(), "--state", &state, "--report", &report];
        args.extend_from_slice(extra);
        let child = spawn_pcbulk(&args, env, Stdio::from(stderr));
        (child, stderr_path)
    }

    fn rollback_report(&self) -> PathBuf {
        self.work.path("job.rollback.report.csv")
    }

    /// Runs `pcbulk apply` to its end.
    fn run(&mut self, server: &Server, extra: &[&str]) -> (ExitStatus, String) {
        self.run_command(server, "apply", extra)
    }

    /// Runs `pcbulk COMMAND` to its end.
    fn run_command(&mut self, server: &Server, command: &str, extra: &[&str]) -> (ExitStatus, String) {
        let (mut child, stderr) = self.spawn_command(server, command, extra);
        let status = wait_at_most(&mut child, RUN_LIMIT);
        (status, std::fs::read_to_string(stderr).unwrap_or_default())
    }

    fn report(&self) -> Vec<ReportRow> {
        read_report(&std::fs::read_to_string(&self.report).expect("the report was written"))
    }

    /// What the state file says now (read after the process is gone): rows whose PUT intent is committed but whose
    /// outcome is not, that is rows a kill left in doubt.
    fn in_doubt(&self) -> Vec<u64> {
        if !self.state.exists() {
            return Vec::new();
        }
        // Opening it recovers the write-ahead log, as the next run's open would anyway.
        let connection = rusqlite::Connection::open(&self.state).expect("the state file opens");
        let query = "SELECT line FROM rows WHERE put_sent = 1 AND status = 'pending' ORDER BY line";
        // A kill before the job was planned leaves a file with no table yet: nothing in doubt.
        let Ok(mut statement) = connection.prepare(query) else { return Vec::new() };
        let lines = statement.query_map([], |row| row.get(0)).expect("the rows of the job");
        lines.map(|line| line.expect("a line number")).collect()
    }
}

/// A row of the report, the columns these tests read.
#[derive(Debug)]
struct ReportRow {
    line: u64,
    customer_id: String,
    status: String,
    after: String,
    error: String,
}

fn read_report(text: &str) -> Vec<ReportRow> {
    let mut reader = common::report_reader(text);
    let headers = reader.headers().expect("a header").clone();
    let column = |name: &str| headers.iter().position(|header| header == name).expect("a report column");
    let (line, customer_id, status, after, error) =
        (column("line"), column("customer_id"), column("status"), column("after"), column("error"));
    reader
        .records()
        .map(|record| {
            let record = record.expect("a report record");
            ReportRow {
                line: record[line].parse().expect("a line number"),
                customer_id: record[customer_id].to_string(),
                status: record[status].to_string(),
                after: record[after].to_string(),
                error: record[error].to_string(),
            }
        })
        .collect()
}

/// Server-side truth for a finished job: every valid row's customer holds its new values and was written exactly
/// once; no edit by someone else was lost; no field was dropped.
fn assert_applied_once(server: &Server, input: &Input) {
    let counters = server.counters();
    for row in input.valid() {
        let id = row.customer_id.as_str();
        assert!(server.holds(row), "line {}: customer {id} holds {}", row.line, server.customer(id));
        let puts = counters.puts_succeeded.get(id).copied().unwrap_or(0);
        assert_eq!(puts, 1, "line {}: customer {id} was written {puts} times", row.line);
    }
    for id in &input.seeded {
        let edits = counters.concurrent_edits.get(id).copied().unwrap_or(0);
        let stored = server.customer(id)["extensions"]["editsBySomeoneElse"].as_u64();
        assert_eq!(stored, Some(edits), "customer {id}: an edit by someone else was lost");
    }
    assert_eq!(counters.lost_edits, 0, "a PUT overwrote someone else's edit");
    assert_eq!(counters.fields_dropped_count, 0, "fields dropped: {:?}", counters.fields_dropped);
}

/// The report has one row per data line, in input order, each with its customer id.
fn assert_report_lines(report: &[ReportRow], input: &Input) {
    let lines: Vec<u64> = report.iter().map(|row| row.line).collect();
    let expected: Vec<u64> = input.rows.iter().map(|row| row.line).collect();
    assert_eq!(lines, expected, "one report row per data line, in order");
    for (reported, row) in report.iter().zip(&input.rows) {
        assert_eq!(reported.customer_id, row.customer_id, "line {}", row.line);
    }
}

/// What the kills hit, for the test's output (and one assertion that they hit something).
#[derive(Debug, Default)]
struct KillFigures {
    kills: usize,
    exited_before_the_kill: usize,
    kills_with_rows_in_doubt: usize,
    rows_in_doubt: usize,
    /// Rows in doubt whose PUT had landed: the next run must call them `updated`, not `unchanged`.
    landed_unrecorded: usize,
    /// PUTs the server applied whose answer was dropped (the drop-after-commit fault).
    dropped_answers: u64,
}

#[test]
fn a_job_killed_six_times_applies_every_row_exactly_once() {
    let mut rng = StdRng::seed_from_u64(0x06b1_11ed);
    let input = Input::generate(&mut rng, 400, true);
    let faults =
        Faults { latency_ms: 5, jitter_ms: 15, drop_after_commit: 0.05, concurrent_edit: 0.05, ..Faults::default() };
    let server = Server::start(input.seeded.clone(), faults, 11);
    let mut job = Job::new(&input);
    let pace = ["--rate", "150", "--concurrency", "8"];
    let valid_lines: HashMap<u64, &InputRow> = input.valid().map(|row| (row.line, row)).collect();

    let mut figures = KillFigures::default();
    for _ in 0..6 {
        let (mut child, _) = job.spawn(&server, &pace);
        std::thread::sleep(Duration::from_millis(rng.random_range(50..=700)));
        figures.kills += 1;
        if child.try_wait().expect("the child can be waited for").is_some() {
            figures.exited_before_the_kill += 1;
            continue;
        }
        child.kill().expect("SIGKILL is sent");
        child.wait().expect("the killed child is reaped");
        // Let the sandbox finish whatever the dead client had sent, so the figures below see the server's truth.
        std::thread::sleep(Duration::from_millis(100));
        let in_doubt = job.in_doubt();
        figures.kills_with_rows_in_doubt += usize::from(!in_doubt.is_empty());
        figures.rows_in_doubt += in_doubt.len();
        figures.landed_unrecorded +=
            in_doubt.iter().filter(|line| valid_lines.get(line).is_some_and(|row| server.holds(row))).count();
    }
    figures.dropped_answers = server.counters().connections_dropped;

    let mut finished = None;
    for _ in 0..5 {
        let (status, stderr) = job.run(&server, &pace);
        match status.code() {
            Some(2) => {
                finished = Some(stderr);
                break;
            }
            code => eprintln!("a rerun exited {code:?}, running again:\n{stderr}"),
        }
    }
    let stderr = finished.expect("the job finishes with exit 2 (the planted invalid rows) within five reruns");
    eprintln!("{figures:#?}\nlast run:\n{stderr}");
    assert!(figures.kills_with_rows_in_doubt > 0, "no kill left a row in doubt: the test proves little ({figures:?})");

    assert_applied_once(&server, &input);
    let report = job.report();
    assert_report_lines(&report, &input);
    for (reported, row) in report.iter().zip(&input.rows) {
        let expected = if row.valid { "updated" } else { "invalid" };
        assert_eq!(reported.status, expected, "line {}: {reported:?}", row.line);
        if row.valid {
            let after: Value = serde_json::from_str(&reported.after).unwrap_or(Value::Null);
            assert_eq!(after["companyName"], row.company.as_str(), "line {}: after {}", row.line, reported.after);
            assert_eq!(after["defaultAddress.city"], row.city.as_str(), "line {}: after {}", row.line, reported.after);
        } else {
            assert!(!reported.error.is_empty(), "line {}: an invalid row says why", row.line);
        }
    }

    // Finished rows are neither fetched nor written again: one more run sends nothing and reports the same.
    let (before, report_before) = (server.counters(), std::fs::read_to_string(&job.report).unwrap_or_default());
    let (status, stderr) = job.run(&server, &pace);
    assert_eq!(status.code(), Some(2), "{stderr}");
    let after = server.counters();
    assert_eq!(after.requests, before.requests, "a run of a finished job sent requests");
    assert_eq!(after.requests_by_route, before.requests_by_route);
    assert_eq!(std::fs::read_to_string(&job.report).unwrap_or_default(), report_before);
}

/// Sends a signal (by name, like `INT`) to a running child.
fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("kill(1) runs");
    assert!(status.success(), "kill -{name} failed");
}

/// A job stopped by a signal after about a second ends cleanly, and a rerun finishes it.
fn stop_then_resume(signal_name: &str, seed: u64, concurrency: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let input = Input::generate(&mut rng, 60, false);
    let faults = Faults { latency_ms: 100, ..Faults::default() };
    let server = Server::start(input.seeded.clone(), faults, seed);
    let mut job = Job::new(&input);

    let concurrency = concurrency.to_string();
    let (mut child, stderr_path) =
        job.spawn(&server, &["--rate", "20", "--grace", "20", "--concurrency", &concurrency]);
    // Some rows written first (a stop leaves a row whose PUT has not gone out pending, so a fixed second may
    // find none written yet: pre-flight's reads come first).
    std::thread::sleep(Duration::from_secs(1));
    while server.counters().total_puts_succeeded() == 0 {
        assert!(child.try_wait().expect("the child can be waited for").is_none(), "the job ended before the signal");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(child.try_wait().expect("the child can be waited for").is_none(), "the job ended before the signal");
    signal(&child, signal_name);
    // Taken once the signal is delivered: from here on, only rows already in flight may still be written.
    let written_at_signal = server.counters().total_puts_succeeded();
    let status = wait_at_most(&mut child, RUN_LIMIT);
    let stderr = std::fs::read_to_string(stderr_path).unwrap_or_default();
    assert_eq!(status.code(), Some(130), "{stderr}");
    let resume = stderr.lines().find(|line| line.starts_with("to resume: pcbulk apply ")).unwrap_or_else(|| {
        panic!("no resume command in:\n{stderr}");
    });
    assert!(resume.contains(job.csv.to_str().unwrap_or_default()), "{resume}");

    // Rows in flight were finished and recorded; the rows not reached are `pending` and untouched on the server.
    let report = job.report();
    assert_report_lines(&report, &input);
    let counters = server.counters();
    let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
    for (reported, row) in report.iter().zip(&input.rows) {
        *statuses.entry(reported.status.as_str()).or_default() += 1;
        let puts = counters.puts_succeeded.get(&row.customer_id).copied().unwrap_or(0);
        match reported.status.as_str() {
            "updated" => assert!(server.holds(row) && puts == 1, "line {}: updated but {puts} PUTs", row.line),
            "pending" => assert!(!server.holds(row) && puts == 0, "line {}: pending but {puts} PUTs", row.line),
            other => panic!("line {}: status {other} after an interruption", row.line),
        }
    }
    eprintln!("after SIG{signal_name}: {statuses:?}, {written_at_signal} written when it arrived");
    // At most one row per worker was in progress when the signal came (one more for the signal's own delivery time).
    let written_after = counters.total_puts_succeeded() - written_at_signal;
    let workers = concurrency.parse::<usize>().unwrap_or_default() * pcbulk::engine::ROWS_PER_REQUEST_SLOT;
    assert!(
        written_after <= workers as u64 + 1,
        "{written_after} rows were written after the signal with --concurrency {concurrency}: new rows were taken"
    );
    assert!(statuses.get("updated").is_some_and(|&count| count > 0), "{statuses:?}");
    assert!(statuses.get("pending").is_some_and(|&count| count > 0), "{statuses:?}");

    // The rerun (faster: the pace is not part of the job) finishes the job.
    server.sandbox.set_faults(Faults { latency_ms: 5, ..Faults::default() }).expect("valid faults");
    let (status, stderr) = job.run(&server, &["--rate", "200"]);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("(resumed)"), "{stderr}");
    assert_applied_once(&server, &input);
    let report = job.report();
    assert_report_lines(&report, &input);
    assert!(report.iter().all(|row| row.status == "updated"), "{report:?}");
}

#[test]
fn ctrl_c_stops_cleanly_and_a_rerun_finishes() {
    stop_then_resume("INT", 21, 8);
}

#[test]
fn sigterm_stops_cleanly_and_a_rerun_finishes() {
    stop_then_resume("TERM", 22, 1);
}

/// A kill in the first milliseconds of a job's first run (while the state file is being made) leaves a state file
/// the next run accepts. The kill moments sweep the start-up, so some land inside the making of the schema.
#[test]
fn a_kill_while_the_state_file_is_made_leaves_it_usable() {
    let mut rng = StdRng::seed_from_u64(0x005c_e11a);
    let input = Input::generate(&mut rng, 1, false);
    let server = Server::start(input.seeded.clone(), Faults::default(), 5);
    let mut job = Job::new(&input);
    let mut refused = Vec::new();
    for step in 0..=100_u64 {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = job.state.clone().into_os_string();
            path.push(suffix);
            // Absent on the first step and after a kill before the file was made: nothing to remove then.
            let _ = std::fs::remove_file(path);
        }
        let (mut child, _) = job.spawn(&server, &[]);
        std::thread::sleep(Duration::from_micros(step * 250));
        // It may have finished already (a late step): then there is nothing to kill.
        let _ = child.kill();
        child.wait().expect("the killed child is reaped");
        let (status, stderr) = job.run(&server, &[]);
        if status.code() != Some(0) {
            refused.push(format!("killed after {} µs: exit {:?}: {stderr}", step * 250, status.code()));
        }
    }
    assert!(refused.is_empty(), "{} runs refused their state file:\n{}", refused.len(), refused.join("\n"));
}

/// The soak: 5,000 rows with every fault on at once (latency, 429s, 5xx, dropped answers, concurrent edits, tokens
/// that live 4 s and are renewed through the token endpoint) and SIGKILLs at random moments; then every row is checked
/// on the server side. Every figure it measures (wrong rows, lost edits, dropped fields, excess PUTs) is 0.
#[test]
fn soak_every_fault_at_once_with_kills() {
    // Its pace must meet the sandbox's rate limit: never beside a spreadsheet engine's conversions.
    let _turn = common::heavy_turn();
    let mut rng = StdRng::seed_from_u64(0x50a4);
    let input = Input::generate(&mut rng, 5000, true);
    let faults = Faults {
        latency_ms: 1,
        jitter_ms: 3,
        rate_limit: Some(250.0),
        // A strict bucket (burst 4): 16 requests in flight meet it whatever pace a loaded machine reaches, so the
        // 429s this soak is about always fire (with a second's burst, a job slowed below 250/s by a busy machine
        // met none).
        rate_burst: Some(4.0),
        error_rate: 0.03,
        drop_after_commit: 0.02,
        concurrent_edit: 0.03,
        stale_etag: pcbulk::sandbox::StaleEtag::Mixed,
        token_lifetime_secs: 4,
        ..Faults::default()
    };
    let server = Server::start(input.seeded.clone(), faults, 23);
    let mut job = Job::new(&input);
    let url = server.sandbox.url().to_string();
    let client_id = server.sandbox.credentials().client_id.clone();
    let secret = server.sandbox.credentials().client_secret.clone();
    let options =
        ["--rate", "400", "--concurrency", "16", "--authority", &url, "--tenant", "soak", "--client-id", &client_id];
    let app = [("PCBULK_CLIENT_SECRET", secret.as_str())];
    for _ in 0..4 {
        let (mut child, _) = job.spawn_with(&server, &options, &app);
        std::thread::sleep(Duration::from_millis(rng.random_range(300..=2500)));
        let _ = child.kill();
        child.wait().expect("the killed child is reaped");
    }
    let mut finished = false;
    for _ in 0..6 {
        let (mut child, stderr) = job.spawn_with(&server, &options, &app);
        let status = wait_at_most(&mut child, Duration::from_secs(150));
        if status.code() == Some(2) {
            finished = true;
            break;
        }
        eprintln!("a soak rerun exited {:?}:\n{}", status.code(), std::fs::read_to_string(stderr).unwrap_or_default());
    }
    assert!(finished, "the soak job finishes with exit 2 (the planted invalid rows)");
    let counters = server.counters();
    let fired = (counters.throttled, counters.injected_errors, counters.connections_dropped);
    assert!(fired.0 > 0 && fired.1 > 0 && fired.2 > 0, "429s, 5xx, dropped answers: {fired:?}");
    assert!(counters.tokens_issued.values().sum::<u64>() > 1, "{:?}", counters.tokens_issued);
    let wrong_rows = input.valid().filter(|row| !server.holds(row)).count();
    let excess_puts: u64 = counters.puts_succeeded.values().map(|puts| puts.saturating_sub(1)).sum();
    eprintln!(
        "soak: wrong rows {wrong_rows}, lost edits {}, dropped fields {}, excess PUTs {excess_puts}; {} requests, {} 429s",
        counters.lost_edits,
        counters.fields_dropped_count,
        counters.requests.values().sum::<u64>(),
        counters.throttled
    );
    assert_applied_once(&server, &input);
    let report = job.report();
    assert_report_lines(&report, &input);
    for (reported, row) in report.iter().zip(&input.rows) {
        assert_eq!(reported.status, if row.valid { "updated" } else { "invalid" }, "line {}", row.line);
    }
}

/// A rollback killed with SIGKILL at random moments, then run again, puts every row back exactly once: each customer
/// saw two PUTs in all (the job's and the rollback's), holds its values from before the job, and is `restored`.
#[test]
fn a_rollback_killed_four_times_restores_every_row_exactly_once() {
    let mut rng = StdRng::seed_from_u64(0x0b0c_cade);
    let input = Input::generate(&mut rng, 200, false);
    let faults = Faults { latency_ms: 5, jitter_ms: 15, drop_after_commit: 0.05, ..Faults::default() };
    let server = Server::start(input.seeded.clone(), faults, 13);
    let originals: HashMap<String, Value> = input.seeded.iter().map(|id| (id.clone(), server.customer(id))).collect();
    let mut job = Job::new(&input);
    let pace = ["--rate", "150", "--concurrency", "8"];
    let (status, stderr) = job.run(&server, &pace);
    assert_eq!(status.code(), Some(0), "{stderr}");

    let mut kills_with_rows_in_doubt = 0;
    for _ in 0..4 {
        let (mut child, _) = job.spawn_command(&server, "rollback", &pace);
        std::thread::sleep(Duration::from_millis(rng.random_range(100..=600)));
        if child.try_wait().expect("the child can be waited for").is_some() {
            continue;
        }
        child.kill().expect("SIGKILL is sent");
        child.wait().expect("the killed child is reaped");
        std::thread::sleep(Duration::from_millis(100));
        kills_with_rows_in_doubt += usize::from(!job.in_doubt().is_empty());
    }
    let (status, stderr) = job.run_command(&server, "rollback", &pace);
    assert_eq!(status.code(), Some(0), "{stderr}");
    eprintln!("{kills_with_rows_in_doubt} kills left rows in doubt\n{stderr}");
    assert!(kills_with_rows_in_doubt > 0, "no kill left a row in doubt: the test proves little");

    let counters = server.counters();
    for row in input.valid() {
        let (id, original) = (row.customer_id.as_str(), &originals[&row.customer_id]);
        let now = server.customer(id);
        assert_eq!(now["companyName"], original["companyName"], "line {}: customer {id}", row.line);
        assert_eq!(now["defaultAddress"], original["defaultAddress"], "line {}: customer {id}", row.line);
        let puts = counters.puts_succeeded.get(id).copied().unwrap_or(0);
        assert_eq!(puts, 2, "line {}: customer {id} was written {puts} times (job and rollback)", row.line);
    }
    assert_eq!(counters.fields_dropped_count, 0, "fields dropped: {:?}", counters.fields_dropped);
    let report = read_report(&std::fs::read_to_string(job.rollback_report()).expect("the rollback report"));
    assert_report_lines(&report, &input);
    assert!(report.iter().all(|row| row.status == "restored"), "{report:?}");
}

/// A second Ctrl-C while stopping exits at once; the state stays consistent and the next run settles the rows that
/// were in flight (no row twice, every row right).
#[test]
fn a_second_ctrl_c_exits_at_once_and_the_rerun_settles_what_was_in_flight() {
    let mut rng = StdRng::seed_from_u64(0x2c);
    let input = Input::generate(&mut rng, 40, false);
    let server = Server::start(input.seeded.clone(), Faults { latency_ms: 400, ..Faults::default() }, 5);
    let mut job = Job::new(&input);
    let (mut child, stderr_path) = job.spawn(&server, &["--rate", "20", "--grace", "60"]);
    // The first Ctrl-C while PUTs are on the wire (a stop with only reads in flight ends at once by itself).
    std::thread::sleep(Duration::from_millis(1200));
    while server.counters().total_put_attempts() == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(100));
    signal(&child, "INT");
    let status = wait_at_most(&mut child, RUN_LIMIT);
    let stderr = std::fs::read_to_string(stderr_path).unwrap_or_default();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("exiting at once"), "{stderr}");
    server.sandbox.set_faults(Faults { latency_ms: 5, ..Faults::default() }).expect("valid faults");
    let (status, stderr) = job.run(&server, &["--rate", "200"]);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_applied_once(&server, &input);
    assert!(job.report().iter().all(|row| row.status == "updated"));
}
