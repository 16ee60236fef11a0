//! Issue 20: the in-flight bound follows the service's latency (a sandbox slowing down mid-job gets more requests in
//! flight at once), and the pace a job reached, with what held it back, is said at its end, by `status`, in the
//! summary JSON and on its page (as the real binary).

use crate::common::rig::{Rig, customer, pace};
use crate::common::{self, WorkDir, stderr, stdout};
use pcbulk::engine::Mode;
use pcbulk::sandbox::{Faults, Sandbox, SandboxConfig};
use pcbulk::state::RowStatus;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// Customer billing requests the sandbox has answered.
fn requests(sandbox: &Sandbox) -> u64 {
    sandbox.counters().requests_by_route.get("customer_billing").copied().unwrap_or_default()
}

/// Waits (at most 120 s) until the sandbox has answered `count` requests, or the job ended.
async fn wait_for_requests(sandbox: &Sandbox, count: u64, job: &tokio::task::JoinHandle<pcbulk::job::JobOutcome>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while requests(sandbox) < count && !job.is_finished() {
        assert!(Instant::now() < deadline, "the sandbox saw {} requests, not {count}", requests(sandbox));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The sandbox answers in 10 ms, then in 600 ms: at 40 requests a second the job needs about 24 requests in flight
/// (more than the old fixed 8), and before the change about one. Set through the side endpoint while the job runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_rises_when_the_service_slows_down_mid_job() {
    let rig = Rig::start(240, Faults { latency_ms: 10, ..Faults::default() }, 7, "").await;
    let mut config = rig.apply_config(Mode::Apply, 40);
    config.api.pace = pace(40, pcbulk::pace::DEFAULT_MAX_CONCURRENCY, 6);
    let job = tokio::spawn(async move { common::rig::apply(&config).await });
    wait_for_requests(&rig.sandbox, 120, &job).await;
    let fast = rig.sandbox.counters().max_in_flight;
    assert!(fast <= 8, "{fast} requests in flight at once against a service answering in 10 ms");
    let answer = reqwest::Client::new()
        .post(format!("{}/_sandbox/latency", rig.sandbox.url()))
        .json(&json!({"latency_ms": 600}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
    assert_eq!(rig.sandbox.faults().latency_ms, 600);
    let outcome = job.await.unwrap();
    assert_eq!(common::rig::count(&outcome, RowStatus::Updated), 240);
    let slow = rig.sandbox.counters().max_in_flight;
    assert!(slow >= 16, "{slow} requests in flight at most once the service answered in 600 ms (before: {fast})");
    let reached = outcome.pace.expect("the job's pace");
    // The client counts a request from before it goes out until its answer is read, the server from its arrival
    // until it answers: the client's peak is never below the server's.
    let client = reached.peak_in_flight;
    assert!(client >= slow, "the client saw {client} in flight at most, the server {slow}");
    let counters = rig.sandbox.counters();
    assert_eq!(counters.total_puts_succeeded(), 240, "every row PUT once");
    assert_eq!(counters.puts_succeeded.values().max(), Some(&1));
}

/// The real binary against a sandbox answering in 300 ms with `--concurrency 2`: at most about 6.7 requests a
/// second of the 20 asked for, and the latency named as what held it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pace_reached_and_what_held_it_back_are_said_at_the_end_by_status_and_in_the_summary() {
    let work = WorkDir::new();
    let faults = Faults { latency_ms: 300, token_lifetime_secs: 3600, ..Faults::default() };
    let config = SandboxConfig { customer_ids: (0..16).map(customer).collect(), faults, ..SandboxConfig::default() };
    let sandbox = Sandbox::start(config).await.unwrap();
    let text: String = (0..16).map(|index| format!("{},Company {index}\n", customer(index))).collect();
    let csv = work.write("slow.csv", format!("customer_id,companyName\n{text}"));
    let (json_path, html_path) = (work.path("summary.json"), work.path("page.html"));
    let token = sandbox.mint_token();
    let args: Vec<String> = [
        "apply",
        &csv.display().to_string(),
        "--base-url",
        sandbox.url(),
        "--rate",
        "20",
        "--concurrency",
        "2",
        "--summary-json",
        &json_path.display().to_string(),
        "--html",
        &html_path.display().to_string(),
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    let output =
        tokio::task::spawn_blocking(move || common::pcbulk_with(&args, &[("PCBULK_TOKEN", &token)])).await.unwrap();
    let logs = stderr(&output);
    assert!(output.status.success(), "{logs}");
    let line = logs.lines().find(|line| line.starts_with("pace: reached ")).unwrap_or_else(|| panic!("{logs}"));
    assert!(line.contains("of --rate 20"), "{line}");
    assert!(line.contains("held back by latency: 2 requests in flight, the most --concurrency allows"), "{line}");

    let status = common::pcbulk(&["status", &csv.display().to_string()]);
    let said = stdout(&status);
    assert!(said.lines().any(|text| text.starts_with("pace:") && text.contains("held back by latency")), "{said}");

    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/report-v1.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    assert!(
        validator.is_valid(&summary),
        "{:?}",
        validator.iter_errors(&summary).map(|e| e.to_string()).collect::<Vec<_>>()
    );
    let pace = &summary["summary"]["pace"];
    assert_eq!(pace["held_back"], "latency", "{pace}");
    assert_eq!(pace["rate"], 20);
    let job_rate = pace["job_rate"].as_f64().unwrap();
    let requests = summary["summary"]["requests"].as_f64().unwrap();
    assert!(job_rate > 0.0 && job_rate < 0.9 * 20.0, "{pace}");
    let seconds = pace["seconds"].as_f64().unwrap();
    assert!((job_rate * seconds - requests).abs() < 0.5, "the job's rate is its requests over its time: {pace}");
    assert!(pace["last_minute_rate"].as_f64().unwrap() > 0.0, "{pace}");
    assert!(pace["peak_in_flight"].as_u64().unwrap() <= 2, "{pace}");
    let page = std::fs::read_to_string(&html_path).unwrap();
    assert!(page.contains("data-field=\"pace\"") && page.contains("held back by latency"), "{page}");
}
