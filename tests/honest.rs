//! Honest words (issue 14, points 4, 6 and 7): exit codes, logs, progress, counters and refusals that say what
//! happened, as the real binary shows them to an operator.

use crate::common;

use common::{WorkDir, pcbulk, pcbulk_with, stderr};
use pcbulk::sandbox::{Faults, Sandbox, SandboxConfig};
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

/// `partner set` killed after its PUT's answer was lost leaves the change unsettled: `undo` refuses, naming it,
/// until the same `set` run again has read the profile and settled it; then `undo` puts back what was there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsettled_partner_change_is_settled_by_the_same_set_and_undo_waits_for_it() {
    use pcbulk::state::StateFile;
    use pcbulk::state::audit::{PartnerOutcome, partner_changes};
    use pcbulk::wire::PartnerProfileKind::Support;
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let token = sandbox.mint_token();
    let original = sandbox.partner_profile(Support).unwrap();
    let work = WorkDir::new();
    let state = work.path("partner.db").display().to_string();
    let url = sandbox.url().to_string();
    let set = ["partner", "set", "support", "--set", "website=https://help.lucerne.example"];
    let tail = ["--base-url", url.as_str(), "--state", state.as_str()];
    let args = |head: &[&'static str]| head.iter().chain(tail.iter()).map(|arg| arg.to_string()).collect::<Vec<_>>();
    let env = [("PCBULK_TOKEN", token.as_str())];
    // The PUT lands and its answer is lost; the re-read is slow (2 s: time to see the change unknown even on a busy
    // machine), and the process is killed during it.
    sandbox.set_faults(Faults { drop_after_commit: 1.0, latency_ms: 2000, ..Faults::default() }).unwrap();
    let set_args = args(&set);
    let mut child = common::spawn_pcbulk(
        &set_args.iter().map(String::as_str).collect::<Vec<_>>(),
        &env,
        std::process::Stdio::null(),
    );
    let outcome = || {
        let file = StateFile::open_existing(std::path::Path::new(&state)).ok()?;
        partner_changes(&file, Support).ok()?.first().and_then(|change| change.outcome)
    };
    // The server counts the PUT once it has dropped its answer; the client then records the change unknown at
    // once and reads again, a read the server holds for 2 s: the kill lands inside that read. The state file is
    // read only once the process is gone (opening it over and over while it ran made the window flaky).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sandbox.counters().total_put_attempts() == 0 {
        assert!(std::time::Instant::now() < deadline, "the PUT never reached the sandbox");
        assert!(child.try_wait().unwrap().is_none(), "the set ended before its PUT");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(outcome(), Some(PartnerOutcome::Unknown), "the lost answer is recorded before the settling read");
    sandbox.set_faults(Faults::default()).unwrap();
    assert_eq!(sandbox.counters().total_put_attempts(), 1);

    let undo = pcbulk_with(&args(&["partner", "undo", "support"]), &env);
    assert_eq!(undo.status.code(), Some(1), "{}", stderr(&undo));
    assert!(stderr(&undo).contains("change 1 of the support profile is unsettled"), "{}", stderr(&undo));
    assert_eq!(sandbox.counters().total_put_attempts(), 1, "a refused undo sends nothing");

    let again = pcbulk_with(&set_args, &env);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(stderr(&again).contains("change 1 of the support profile, left unsettled by an earlier run: it landed"));
    assert_eq!(outcome(), Some(PartnerOutcome::Updated), "the rerun settled the change");
    assert_eq!(sandbox.counters().total_put_attempts(), 1, "the values were in place: no second PUT");

    let undo = pcbulk_with(&args(&["partner", "undo", "support"]), &env);
    assert_eq!(undo.status.code(), Some(0), "{}", stderr(&undo));
    assert_eq!(sandbox.partner_profile(Support).unwrap()["website"], original["website"]);
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A sandbox with the app credentials the tests use, serving `rows` customers.
async fn sandbox_with(rows: usize, faults: Faults) -> Sandbox {
    let credentials = pcbulk::sandbox::AcceptedCredentials {
        client_id: "app".into(),
        client_secret: "secret".into(),
        refresh_token: "r".into(),
    };
    let customer_ids = (0..rows).map(customer).collect();
    Sandbox::start(SandboxConfig { customer_ids, credentials, faults, ..SandboxConfig::default() }).await.unwrap()
}

fn statuses(report: &str) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for (_, status, _) in common::report_rows(report) {
        *counts.entry(status).or_default() += 1;
    }
    counts
}

/// A token endpoint where nothing answers is a credentials failure: the job stops (exit 1) with the cause named,
/// every row stays pending, and the API never sees a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_token_endpoint_stops_the_job_like_revoked_credentials() {
    let sandbox = sandbox_with(40, Faults::default()).await;
    let work = WorkDir::new();
    let csv = renames(&work, "jobs.csv", 40).display().to_string();
    let authority = format!("http://127.0.0.1:{}", closed_port());
    let url = sandbox.url().to_string();
    let args = ["apply", &csv, "--base-url", &url, "--authority", &authority, "--tenant", "t", "--client-id", "app"];
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    let output =
        tokio::task::spawn_blocking(move || pcbulk_with(&args, &[("PCBULK_CLIENT_SECRET", "secret")])).await.unwrap();
    let logs = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{logs}");
    assert!(logs.contains("credentials refused or revoked"), "{logs}");
    assert!(logs.contains(&format!("cannot reach the token endpoint {authority}")), "{logs}");
    assert!(!logs.contains("secret"), "{logs}");
    assert_eq!(statuses(&work.read("jobs.csv.report.csv")), [("pending".to_string(), 40)].into());
    assert_eq!(sandbox.counters().requests.values().sum::<u64>(), 0, "no request reached the api");
}

/// The figure of the summary line "…s, N requests, …".
fn requests_reported(logs: &str) -> u64 {
    let line = logs.lines().find(|line| line.contains(" requests, ")).unwrap_or_else(|| panic!("no summary:\n{logs}"));
    let before = line.split(" requests, ").next().unwrap_or_default();
    before.rsplit(' ').next().unwrap_or_default().parse().unwrap_or_else(|_| panic!("no count in {line:?}"))
}

/// A base URL where nothing listens: the first warning names it, the progress line goes on while no row settles,
/// and a job that never had one answer gives up (exit 1, every row pending, no request counted as sent).
#[test]
fn a_base_url_where_nothing_listens_is_named_and_given_up_on() {
    let work = WorkDir::new();
    let csv = renames(&work, "jobs.csv", 10).display().to_string();
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let env = [("PCBULK_TOKEN", "t"), ("PCBULK_PROGRESS_SECS", "0.5"), ("PCBULK_FIRST_ANSWER_SECS", "4")];
    let output = pcbulk_with(&["apply", &csv, "--base-url", &url, "--concurrency", "4"], &env);
    let logs = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{logs}");
    let first_warning =
        logs.lines().find(|line| line.contains("WARN")).unwrap_or_else(|| panic!("no warning:\n{logs}"));
    assert!(first_warning.contains(&format!("cannot connect to 127.0.0.1:{port}: connection refused")), "{logs}");
    assert!(logs.contains("no answer from the service in 4s since the job began"), "{logs}");
    let waiting = logs.lines().filter(|line| line.starts_with("progress: 0/10 rows")).count();
    assert!(waiting >= 3, "the progress line stopped while the job waited:\n{logs}");
    assert_eq!(statuses(&work.read("jobs.csv.report.csv")), [("pending".to_string(), 10)].into());
    assert_eq!(requests_reported(&logs), 0, "no request left this machine:\n{logs}");
    assert!(!logs.contains("pace settled at"), "no request sent, no pace to speak of:\n{logs}");
}

/// Out of file descriptors is said as that (not as a service outage), the job stops (exit 1, resumable), and the
/// request counter counts no attempt this machine could not make.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_is_named_and_not_counted_as_requests() {
    let sandbox = sandbox_with(400, Faults { latency_ms: 50, ..Faults::default() }).await;
    let token = sandbox.mint_token();
    let work = WorkDir::new();
    let csv = renames(&work, "jobs.csv", 400).display().to_string();
    let url = sandbox.url().to_string();
    let binary = env!("CARGO_BIN_EXE_pcbulk");
    let script = format!("ulimit -n 64 && exec {binary} apply {csv} --base-url {url} --concurrency 300 --rate 1000");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .args(["-c", &script])
            .env("PCBULK_TOKEN", token)
            .env_remove("PCBULK_BASE_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let logs = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{logs}");
    assert!(logs.contains("too many open files"), "{logs}");
    assert!(logs.contains("lower --concurrency (now 300) or raise ulimit -n"), "{logs}");
    assert!(!logs.contains("the service fails every request"), "{logs}");
    // Reads still on the wire at the stop are abandoned, not counted: the count is at most what the service saw,
    // though hundreds of attempts could not even be made.
    let seen: u64 = sandbox.counters().requests.values().sum();
    assert!(requests_reported(&logs) <= seen, "more requests than the service saw ({seen}):\n{logs}");
}

/// `apply --sandbox --delimiter tab`: the sandbox is seeded with the ids `input` reads with the delimiter given (no
/// second CSV reader guessing the delimiter); `pcbulk sandbox --seed-from` reads its CSV the same way.
#[test]
fn a_sandbox_rehearsal_reads_a_tab_separated_file_with_the_one_reader() {
    let work = WorkDir::new();
    let text: String = (0..4).map(|index| format!("{}\tRenamed {index}\n", customer(index))).collect();
    let csv = work.write("tabs.tsv", format!("customer_id\tcompanyName\n{text}"));
    let output = pcbulk_with(
        &["apply".as_ref(), "--sandbox".as_ref(), csv.as_os_str(), "--delimiter".as_ref(), "tab".as_ref()],
        &[],
    );
    let logs = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{logs}");
    assert!(logs.contains("sandbox: 4 successful PUTs"), "{logs}");
    let report = work.read("tabs.tsv.sandbox.report.csv");
    assert!(report.starts_with("\u{feff}line\tcustomer_id\t"), "the report takes the input's delimiter: {report}");
    assert_eq!(statuses(&report), [("updated".to_string(), 4)].into());
}

/// The figure of the summary line "… pace settled at R requests/s".
fn settled_reported(logs: &str) -> f64 {
    let tail = logs.split("pace settled at ").nth(1).unwrap_or_else(|| panic!("no pace figure:\n{logs}"));
    tail.split(' ').next().unwrap_or_default().parse().unwrap_or_else(|_| panic!("no figure in {tail:?}"))
}

/// Against a strict limiter of 10 requests a second, a job allowed 1000 a second says it settled near what the
/// service bore, not near what it was allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pace_settled_at_is_what_the_limiter_bore() {
    let faults = Faults { rate_limit: Some(10.0), rate_burst: Some(1.0), ..Faults::default() };
    let sandbox = sandbox_with(30, faults).await;
    let token = sandbox.mint_token();
    let work = WorkDir::new();
    let csv = renames(&work, "jobs.csv", 30).display().to_string();
    let url = sandbox.url().to_string();
    let args: Vec<String> =
        ["apply", &csv, "--base-url", &url, "--rate", "1000"].iter().map(|arg| arg.to_string()).collect();
    let output =
        tokio::task::spawn_blocking(move || pcbulk_with(&args, &[("PCBULK_TOKEN", token.as_str())])).await.unwrap();
    let logs = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{logs}");
    assert!(sandbox.counters().throttled > 0, "the limiter answered 429s");
    let settled = settled_reported(&logs);
    assert!(settled <= 15.0, "settled at {settled} requests/s against a limiter of 10:\n{logs}");
}

/// The "requests:" figure `pcbulk status` prints.
fn status_requests(state: &str) -> Option<u64> {
    let output = pcbulk(&["status", "--state", state]);
    let text = common::stdout(&output);
    let line = text.lines().find(|line| line.starts_with("requests:"))?;
    line.trim_start_matches("requests:").trim().split(',').next()?.trim().parse().ok()
}

/// `status` during a run shows the requests sent so far (not 0 until the end); a job killed keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_during_a_run_shows_the_requests_sent_so_far() {
    let sandbox = sandbox_with(60, Faults::default()).await;
    let token = sandbox.mint_token();
    let work = WorkDir::new();
    let csv = renames(&work, "jobs.csv", 60).display().to_string();
    let state = work.path("jobs.csv.pcbulk.db").display().to_string();
    let url = sandbox.url().to_string();
    let args = ["apply", csv.as_str(), "--base-url", url.as_str(), "--rate", "4"];
    let mut child = common::spawn_pcbulk(&args, &[("PCBULK_TOKEN", token.as_str())], std::process::Stdio::null());
    let seen = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(requests) = status_requests(&state).filter(|requests| *requests > 0) {
                child.kill().unwrap();
                child.wait().unwrap();
                return (requests, status_requests(&state));
            }
            assert!(std::time::Instant::now() < deadline, "status never showed a request of the running job");
            assert!(child.try_wait().unwrap().is_none(), "the job ended before status showed its requests");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    })
    .await
    .unwrap();
    let (during, after_kill) = seen;
    let server: u64 = sandbox.counters().requests.values().sum();
    assert!(during <= server, "status showed {during}, the service saw {server}");
    assert!(after_kill >= Some(during), "the killed job keeps the figure: {after_kill:?} after {during}");
}

/// A profile without its etag (every PUT gives a new one), as text: key order counts.
fn without_etag(mut profile: Value) -> String {
    if let Some(attributes) = profile.get_mut("attributes").and_then(Value::as_object_mut) {
        attributes.remove("etag");
    }
    profile.to_string()
}

/// `rollback` puts back a key that was absent before the job by removing it (not by writing null): each restored
/// profile is the original, byte for byte but its etag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_removes_a_key_that_was_absent_before_the_job() {
    let sandbox = sandbox_with(3, Faults::default()).await;
    let token = sandbox.mint_token();
    let originals: Vec<Value> = (0..3).map(|index| sandbox.customer(&customer(index)).unwrap()).collect();
    assert!(originals.iter().all(|profile| profile["defaultAddress"].get("addressLine3").is_none()));
    let work = WorkDir::new();
    let text: String = (0..3).map(|index| format!("{},Building {index}\n", customer(index))).collect();
    let csv = work.write("jobs.csv", format!("customer_id,defaultAddress.addressLine3\n{text}")).display().to_string();
    let url = sandbox.url().to_string();
    let run = |command: &'static str| {
        let args: Vec<String> = [command, &csv, "--base-url", &url].iter().map(|arg| arg.to_string()).collect();
        let token = token.clone();
        async move { tokio::task::spawn_blocking(move || pcbulk_with(&args, &[("PCBULK_TOKEN", &token)])).await.unwrap() }
    };
    let applied = run("apply").await;
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    assert_eq!(sandbox.customer(&customer(1)).unwrap()["defaultAddress"]["addressLine3"], "Building 1");
    let report = work.read("jobs.csv.report.csv");
    assert!(report.contains(r#"{""defaultAddress.addressLine3"":""Building 1""}"#), "{report}");
    let rolled_back = run("rollback").await;
    assert_eq!(rolled_back.status.code(), Some(0), "{}", stderr(&rolled_back));
    for (index, original) in originals.into_iter().enumerate() {
        let restored = sandbox.customer(&customer(index)).unwrap();
        assert_eq!(without_etag(restored), without_etag(original), "customer {index}");
    }
}
