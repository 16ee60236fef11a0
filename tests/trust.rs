//! Issue 14, "trust under ordinary mistakes", as the real binary against a sandbox on 127.0.0.1: the input is
//! pinned for the life of a job, outputs never destroy anything, a rehearsal never touches a real job.

use crate::common;

use common::{WorkDir, report_rows, spawn_pcbulk, stderr, wait_at_most};
use pcbulk::sandbox::{Faults, Sandbox, SandboxConfig};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

fn customer(index: usize) -> String {
    format!("{index:08x}-1111-4222-8333-{index:012x}")
}

async fn sandbox(rows: usize, latency_ms: u64) -> Sandbox {
    let faults = Faults { latency_ms, token_lifetime_secs: 3600, ..Faults::default() };
    let config = SandboxConfig { customer_ids: (0..rows).map(customer).collect(), faults, ..SandboxConfig::default() };
    Sandbox::start(config).await.unwrap()
}

/// `customer_id,companyName` rows: line `index + 2` names customer `order(index)` with `value(index)`.
fn csv_text(rows: usize, order: impl Fn(usize) -> usize, value: impl Fn(usize) -> String) -> String {
    let mut text = String::from("customer_id,companyName\n");
    for index in 0..rows {
        text.push_str(&format!("{},{}\n", customer(order(index)), value(index)));
    }
    text
}

fn planned_text(rows: usize) -> String {
    csv_text(rows, |index| index, |index| format!("Planned {index}"))
}

/// What an operator's in-place rewrite would hold: other customers on each line, other values.
fn edited_text(rows: usize) -> String {
    csv_text(rows, |index| rows - 1 - index, |index| format!("Edited {index}"))
}

async fn run(args: Vec<String>, token: &str) -> Output {
    let token = token.to_string();
    tokio::task::spawn_blocking(move || common::pcbulk_with(&args, &[("PCBULK_TOKEN", &token)])).await.unwrap()
}

/// Runs the real binary from the directory `directory`.
async fn run_in(directory: &Path, args: Vec<String>, token: &str) -> Output {
    let (directory, token) = (directory.to_path_buf(), token.to_string());
    tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pcbulk"));
        command.current_dir(directory).args(&args).env("PCBULK_TOKEN", token).output().unwrap()
    })
    .await
    .unwrap()
}

/// Waits (at most `limit_secs`) for a running binary to end: its exit status and what it said on stderr.
async fn finish(mut child: std::process::Child, limit_secs: u64) -> (std::process::ExitStatus, String) {
    tokio::task::spawn_blocking(move || {
        let status = wait_at_most(&mut child, Duration::from_secs(limit_secs));
        let mut text = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut text).unwrap();
        (status, text)
    })
    .await
    .unwrap()
}

fn args(head: &[&str], sandbox: &Sandbox) -> Vec<String> {
    let tail = ["--base-url", sandbox.url(), "--concurrency", "4"];
    head.iter().chain(tail.iter()).map(|arg| arg.to_string()).collect()
}

fn company(sandbox: &Sandbox, index: usize) -> String {
    sandbox.customer(&customer(index)).unwrap()["companyName"].as_str().unwrap_or_default().to_string()
}

fn puts(sandbox: &Sandbox) -> u64 {
    sandbox.counters().total_put_attempts()
}

/// The soak test of point 1: the CSV rewritten in place at a random moment of a running job. No wrong write, no
/// report row that disagrees with the server, and rollback restores every row the job wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_rewritten_while_the_job_runs_stops_it_and_nothing_wrong_is_written() {
    let rows = 300;
    let sandbox = sandbox(rows, 2).await;
    let originals: Vec<String> = (0..rows).map(|index| company(&sandbox, index)).collect();
    let work = WorkDir::new();
    let csv = work.write("updates.csv", planned_text(rows));
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    let moment = 3 + seed % 200;
    eprintln!("the file is rewritten after {moment} PUTs (seed {seed})");
    let token = sandbox.mint_token();
    let apply = args(&["apply", csv.to_str().unwrap(), "--rate", "120"], &sandbox);
    let apply: Vec<&str> = apply.iter().map(String::as_str).collect();
    let mut child = spawn_pcbulk(&apply, &[("PCBULK_TOKEN", &token)], Stdio::piped());
    while puts(&sandbox) < moment && child.try_wait().unwrap().is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // `cat edited.csv > updates.csv`: the same inode, truncated and rewritten.
    std::fs::write(&csv, edited_text(rows)).unwrap();
    let (status, words) = finish(child, 120).await;
    let counters = sandbox.counters();
    let report = report_rows(&work.read("updates.csv.report.csv"));
    let updated: Vec<usize> =
        report.iter().filter(|(_, status, _)| status == "updated").map(|(line, _, _)| *line as usize - 2).collect();
    for (index, original) in originals.iter().enumerate() {
        let written = counters.puts_succeeded.get(&customer(index)).copied().unwrap_or_default();
        assert!(written <= 1, "customer {index} was written {written} times");
        match written {
            1 => assert_eq!(company(&sandbox, index), format!("Planned {index}"), "customer {index}: a wrong write"),
            _ => assert_eq!(&company(&sandbox, index), original, "customer {index} changed without a PUT"),
        }
        assert_eq!(updated.contains(&index), written == 1, "customer {index}: the report disagrees with the server");
    }
    if updated.len() < rows {
        assert_eq!(status.code(), Some(1), "{words}");
        assert!(words.contains("with other content while the job ran"), "{words}");
        assert!(words.contains("updates.csv"), "{words}");
        assert!(words.contains("--restart"), "{words}");
    }
    // The rollback reads the state file only: it restores every row the job wrote.
    let state = work.path("updates.csv.pcbulk.db");
    let rollback = run(args(&["rollback", "--state", state.to_str().unwrap()], &sandbox), &token).await;
    assert_eq!(rollback.status.code(), Some(0), "{}", stderr(&rollback));
    for (index, original) in originals.iter().enumerate() {
        assert_eq!(&company(&sandbox, index), original, "customer {index} restored");
    }
}

/// Point 1, between a stop and the resume: the edit is named line by line and nothing is sent; the file put back
/// resumes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_edited_before_the_resume_is_refused_naming_the_lines_until_it_is_put_back() {
    let rows = 12;
    let sandbox = sandbox(rows, 0).await;
    let token = sandbox.mint_token();
    let work = WorkDir::new();
    let csv = work.write("updates.csv", planned_text(rows));
    let path = csv.to_str().unwrap();
    let canary = run(args(&["apply", path, "--canary", "3"], &sandbox), &token).await;
    assert_eq!(canary.status.code(), Some(3), "{}", stderr(&canary));
    let mut edited = planned_text(rows).replace("Planned 7", "Planned seven");
    edited.push_str(&format!("{},Extra\n", customer(rows + 5)));
    std::fs::write(&csv, &edited).unwrap();
    let before = sandbox.counters().requests.values().sum::<u64>();
    let refused = run(args(&["apply", path], &sandbox), &token).await;
    let words = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{words}");
    assert!(words.contains("changed since this job was planned"), "{words}");
    assert!(words.contains("line 9"), "the line that differs is named: {words}");
    assert!(words.contains("Planned seven"), "{words}");
    assert!(words.contains("1 more data lines"), "{words}");
    assert!(words.contains("--restart"), "{words}");
    assert_eq!(sandbox.counters().requests.values().sum::<u64>(), before, "nothing was sent");
    std::fs::write(&csv, planned_text(rows)).unwrap();
    let resumed = run(args(&["apply", path], &sandbox), &token).await;
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert!((0..rows).all(|index| company(&sandbox, index) == format!("Planned {index}")));
}

/// Point 1: a pipe or standard input is refused at once, never read half, never a hang, nothing written.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipe_or_standard_input_is_refused_at_once() {
    let sandbox = sandbox(1, 0).await;
    let token = sandbox.mint_token();
    let work = WorkDir::new();
    let fifo = work.path("updates.csv");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    for input in [fifo.to_str().unwrap(), "-", "/dev/stdin"] {
        for args in [args(&["apply", input], &sandbox), vec!["validate".to_string(), input.to_string()]] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let output = finish(spawn_pcbulk(&args, &[("PCBULK_TOKEN", &token)], Stdio::piped()), 20).await;
            assert_eq!(output.0.code(), Some(1), "{input}: {}", output.1);
            assert!(output.1.contains("not a regular file"), "{input}: {}", output.1);
            assert!(!output.1.contains("empty"), "{input}: {}", output.1);
        }
    }
    assert_eq!(std::fs::read_dir(work.root()).unwrap().count(), 1, "nothing but the FIFO in the work dir");
    assert!(!Path::new("/dev/stdin.pcbulk.db").exists() && !Path::new("/dev/stdin.report.csv").exists());
    assert_eq!(sandbox.counters().requests.values().sum::<u64>(), 0);
}

/// Point 2: no output is the input, the state file or a device; an output that cannot be written is found before
/// the first request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_that_would_destroy_something_are_refused_before_any_request() {
    let rows = 4;
    let sandbox = sandbox(rows, 0).await;
    let token = sandbox.mint_token();
    let work = WorkDir::new();
    let csv = work.write("updates.csv", planned_text(rows));
    let path = csv.to_str().unwrap();
    std::fs::create_dir(work.path("adir")).unwrap();
    let same_csv = format!("{}/./updates.csv", work.root().display());
    let (directory, nowhere) =
        (work.path("adir").display().to_string(), work.path("nowhere/r.csv").display().to_string());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--report", path], "is the input CSV"),
        (vec!["--report", &same_csv], "is the input CSV"),
        (vec!["--html", path], "is the input CSV"),
        (vec!["--state", path], "is the input CSV"),
        (vec!["--summary-json", "/dev/null"], "a device"),
        (vec!["--report", "/dev/null"], "a device"),
        (vec!["--report", &directory], "a directory"),
        (vec!["--report", &nowhere], "does not exist"),
    ];
    let original = std::fs::read(&csv).unwrap();
    for (extra, words) in &cases {
        let mut command = vec!["apply", path];
        command.extend(extra);
        let output = run(args(&command, &sandbox), &token).await;
        assert_eq!(output.status.code(), Some(1), "{extra:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(words), "{extra:?}: {}", stderr(&output));
        assert_eq!(sandbox.counters().requests.values().sum::<u64>(), 0, "{extra:?}: nothing sent");
    }
    assert_eq!(std::fs::read(&csv).unwrap(), original, "the input is untouched");
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    }
    // A job that ran: `report --out` onto its state file (or its CSV) leaves both as they were.
    let done = run(args(&["apply", path], &sandbox), &token).await;
    assert_eq!(done.status.code(), Some(0), "{}", stderr(&done));
    let state = work.path("updates.csv.pcbulk.db");
    let kept = std::fs::read(&state).unwrap();
    for out in [state.to_str().unwrap(), path, &format!("{}-wal", state.display())] {
        let output = common::pcbulk(&["report", path, "--out", out]);
        assert_eq!(output.status.code(), Some(1), "{out}: {}", stderr(&output));
        assert!(stderr(&output).contains("it would be overwritten"), "{out}: {}", stderr(&output));
    }
    assert_eq!(std::fs::read(&state).unwrap(), kept, "the state file is intact");
    let rollback_dry = run(args(&["rollback", path, "--dry-run"], &sandbox), &token).await;
    assert_eq!(rollback_dry.status.code(), Some(0), "the record still serves a rollback: {}", stderr(&rollback_dry));
    let validate = common::pcbulk(&["validate", path, "--report", path]);
    assert_eq!(validate.status.code(), Some(1), "{}", stderr(&validate));
    assert_eq!(std::fs::read(&csv).unwrap(), original, "the input is untouched");
}

/// Point 2: a rollback by `--state` from another directory writes its report beside the state file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_by_state_from_elsewhere_writes_its_report_beside_the_state_file() {
    let sandbox = sandbox(3, 0).await;
    let token = sandbox.mint_token();
    let (work, elsewhere) = (WorkDir::new(), WorkDir::new());
    work.write("updates.csv", planned_text(3));
    let applied = run_in(work.root(), args(&["apply", "updates.csv"], &sandbox), &token).await;
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    let state = work.path("updates.csv.pcbulk.db").display().to_string();
    let rolled = run_in(elsewhere.root(), args(&["rollback", "--state", &state], &sandbox), &token).await;
    assert_eq!(rolled.status.code(), Some(0), "{}", stderr(&rolled));
    assert!(work.path("updates.csv.rollback.report.csv").exists(), "{}", stderr(&rolled));
    assert_eq!(std::fs::read_dir(elsewhere.root()).unwrap().count(), 0, "nothing written where the command ran");
}

/// Point 3: a sandbox rehearsal pointed at a real job's state file is refused and leaves it whole; `--restart`
/// over rows a job wrote needs `--yes`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsal_never_replaces_a_real_job_and_restart_needs_yes() {
    let rows = 3;
    let sandbox = sandbox(rows, 0).await;
    let token = sandbox.mint_token();
    let work = WorkDir::new();
    let csv = work.write("updates.csv", planned_text(rows));
    let path = csv.to_str().unwrap();
    let real = run(args(&["apply", path], &sandbox), &token).await;
    assert_eq!(real.status.code(), Some(0), "{}", stderr(&real));
    let state = work.path("updates.csv.pcbulk.db");
    let rehearsal = common::pcbulk(&["apply", path, "--sandbox", "--state", state.to_str().unwrap()]);
    assert_eq!(rehearsal.status.code(), Some(1), "{}", stderr(&rehearsal));
    assert!(stderr(&rehearsal).contains("base URL"), "{}", stderr(&rehearsal));
    let status = common::pcbulk(&["status", path]);
    assert!(common::stdout(&status).contains(sandbox.url().trim_end_matches('/')), "{}", common::stdout(&status));
    // Rehearsals of their own go on as before: each is planned afresh.
    for _ in 0..2 {
        let own = common::pcbulk(&["apply", path, "--sandbox"]);
        assert_eq!(own.status.code(), Some(0), "{}", stderr(&own));
    }
    let restart = run(args(&["apply", path, "--restart"], &sandbox), &token).await;
    assert_eq!(restart.status.code(), Some(1), "{}", stderr(&restart));
    assert!(stderr(&restart).contains("rollback"), "{}", stderr(&restart));
    assert!(stderr(&restart).contains("--yes"), "{}", stderr(&restart));
    let rollback = run(args(&["rollback", path], &sandbox), &token).await;
    assert_eq!(rollback.status.code(), Some(0), "the record still serves: {}", stderr(&rollback));
    let counts: BTreeMap<String, usize> =
        report_rows(&work.read("updates.csv.rollback.report.csv")).into_iter().fold(BTreeMap::new(), |mut all, row| {
            *all.entry(row.1).or_default() += 1;
            all
        });
    assert_eq!(counts.get("restored"), Some(&rows), "{counts:?}");
    let restart = run(args(&["apply", path, "--restart"], &sandbox), &token).await;
    assert_eq!(restart.status.code(), Some(0), "once rolled back, nothing is lost: {}", stderr(&restart));
}

/// Point 5: after Ctrl-C no request goes out that was not already on the wire (rows waiting on the pace are not
/// "in flight"), and the stop does not wait out the grace period when nothing useful is in flight.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_sends_nothing_more_even_for_rows_waiting_on_the_pace() {
    let rows = 20;
    // A strict limiter: one request every 5 s; the rest are answered 429 and every worker is held.
    let faults =
        Faults { rate_limit: Some(0.2), rate_burst: Some(1.0), token_lifetime_secs: 3600, ..Faults::default() };
    let config = SandboxConfig { customer_ids: (0..rows).map(customer).collect(), faults, ..SandboxConfig::default() };
    let sandbox = Sandbox::start(config).await.unwrap();
    let token = sandbox.mint_token();
    let work = WorkDir::new();
    let csv = work.write("updates.csv", planned_text(rows));
    let apply = args(&["apply", csv.to_str().unwrap(), "--rate", "50", "--grace", "30"], &sandbox);
    let apply: Vec<&str> = apply.iter().map(String::as_str).collect();
    let mut child = spawn_pcbulk(&apply, &[("PCBULK_TOKEN", &token)], Stdio::piped());
    while sandbox.counters().throttled == 0 {
        assert!(child.try_wait().unwrap().is_none(), "the job ended before it met a 429");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Every request sent before the hold has had its answer (the sandbox answers at once).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at_signal = sandbox.counters();
    let killed = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let (status, words) = finish(child, 20).await;
    assert_eq!(status.code(), Some(130), "{words}");
    let after = sandbox.counters();
    assert_eq!(after.requests, at_signal.requests, "requests went out after the stop: {words}");
    assert_eq!(after.total_puts_succeeded(), at_signal.total_puts_succeeded(), "{words}");
    // Nothing is left in doubt: the rerun settles every row without a PUT sent twice.
    sandbox.set_faults(Faults::default()).unwrap();
    let rerun = run(args(&["apply", csv.to_str().unwrap()], &sandbox), &token).await;
    assert_eq!(rerun.status.code(), Some(0), "{}", stderr(&rerun));
    let counters = sandbox.counters();
    for index in 0..rows {
        assert_eq!(counters.puts_succeeded.get(&customer(index)).copied(), Some(1), "customer {index}");
        assert_eq!(company(&sandbox, index), format!("Planned {index}"));
    }
}

/// Point 6: once a job is rolled back, running the same apply again neither claims its rows `updated` nor rewrites
/// its report; `status` and the summary page say the changes were rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_run_again_after_its_rollback_says_so_and_claims_nothing() {
    let rows = 5;
    let sandbox = sandbox(rows, 0).await;
    let token = sandbox.mint_token();
    let work = WorkDir::new();
    let csv = work.write("updates.csv", planned_text(rows));
    let path = csv.to_str().unwrap();
    let applied = run(args(&["apply", path], &sandbox), &token).await;
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    let rolled = run(args(&["rollback", path], &sandbox), &token).await;
    assert_eq!(rolled.status.code(), Some(0), "{}", stderr(&rolled));
    let report = work.read("updates.csv.report.csv");
    let before = sandbox.counters().requests.values().sum::<u64>();
    let again = run(args(&["apply", path], &sandbox), &token).await;
    let words = stderr(&again);
    assert_eq!(again.status.code(), Some(1), "{words}");
    assert!(words.contains("rolled back") && words.contains("5 rows restored"), "{words}");
    assert!(!words.contains("updated 5"), "{words}");
    assert_eq!(work.read("updates.csv.report.csv"), report, "the report is not rewritten");
    assert_eq!(sandbox.counters().requests.values().sum::<u64>(), before, "nothing was sent");
    let status = common::pcbulk(&["status", path]);
    let shown = common::stdout(&status);
    assert!(shown.contains("rollback:") && shown.contains("5 restored"), "{shown}");
    let page = work.path("page.html");
    let html = common::pcbulk(&["report", path, "--format", "html", "--out", page.to_str().unwrap()]);
    assert_eq!(html.status.code(), Some(0), "{}", stderr(&html));
    assert!(std::fs::read_to_string(&page).unwrap().contains("data-field=\"rolled_back\""));
    // Starting over needs no --yes: the rows it wrote are restored, nothing is lost.
    let restarted = run(args(&["apply", path, "--restart"], &sandbox), &token).await;
    assert_eq!(restarted.status.code(), Some(0), "{}", stderr(&restarted));
}
