//! The operator's view: completions, JSON logs, the JSON report held to its schema, and the summary page checked
//! against the state file of a real job run against the in-process sandbox.

use crate::common;

use common::rig::{self, customer};
use common::{WorkDir, pcbulk, stderr, stdout};
use pcbulk::sandbox::{Faults, Sandbox, SandboxConfig};
use pcbulk::state::{JobKind, RowStatus, StateFile};
use scraper::{Html, Selector};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const HOSTILE_ID: &str = "<script>alert(1)</script>";
const HOSTILE_EMAIL: &str = r#""quotes"&<b>bold</b>"#;

/// A job with 4 updated, 2 unchanged, 2 failed (not seeded: 404) and 3 invalid rows, run to its end against a
/// sandbox that answers 429 past 2 requests per second (so the minutes hold some).
struct Job {
    work: WorkDir,
    state: PathBuf,
    _sandbox: Sandbox,
}

async fn run_mixed_job() -> Job {
    let work = WorkDir::new();
    let seeded: Vec<String> = (0..6).map(customer).collect();
    let faults = Faults { rate_limit: Some(2.0), ..Faults::default() };
    let config = SandboxConfig { customer_ids: seeded.clone(), seed: 7, faults, ..SandboxConfig::default() };
    let sandbox = Sandbox::start(config).await.unwrap();
    let mut text = String::from("customer_id,companyName,email\n");
    for (index, id) in seeded.iter().enumerate().take(4) {
        text.push_str(&format!("{id},Company {index},\n"));
    }
    for id in &seeded[4..] {
        let current = sandbox.customer(id).unwrap()["companyName"].as_str().unwrap().to_string();
        text.push_str(&format!("{id},\"{}\",\n", current.replace('"', "\"\"")));
    }
    text.push_str(&format!("{},Nobody,\n{},Nobody either,\n", customer(900), customer(901)));
    text.push_str(&format!("\"{HOSTILE_ID}\",Evil,\n"));
    text.push_str(&format!("{},Bad mail,\"{}\"\n", customer(3), HOSTILE_EMAIL.replace('"', "\"\"")));
    text.push_str("not-a-guid,,\n");
    let csv = work.write("updates.csv", text);
    let state = work.path("updates.csv.pcbulk.db");
    let api = rig::api(&sandbox, rig::pace(1000, 4, 1));
    let config = rig::apply_config(csv, state.clone(), work.path("report.csv"), api);
    rig::apply(&config).await;
    Job { work, state, _sandbox: sandbox }
}

/// (line, customer id, status) of a row.
type RowKey = (u64, String, String);

/// What the state file says: counts per status, and every row needing attention.
fn state_truth(state: &Path) -> (BTreeMap<String, u64>, Vec<RowKey>) {
    let file = StateFile::open_existing(state).unwrap();
    let job = file.find_job(JobKind::Apply).unwrap().unwrap();
    let counts = file.counts(job.id).unwrap().into_iter().map(|(status, n)| (status.name().to_string(), n)).collect();
    let mut rows = Vec::new();
    file.each_row(job.id, |row| {
        if !["updated", "unchanged"].contains(&row.status.name()) {
            rows.push((row.line, row.customer_id, row.status.name().to_string()));
        }
        Ok(())
    })
    .unwrap();
    (counts, rows)
}

fn select<'a>(page: &'a Html, selector: &str) -> Vec<scraper::ElementRef<'a>> {
    page.select(&Selector::parse(selector).unwrap()).collect()
}

fn text(element: &scraper::ElementRef) -> String {
    element.text().collect::<String>()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_what_the_state_file_holds_and_escapes_every_hostile_cell() {
    let job = run_mixed_job().await;
    let (counts, problems) = state_truth(&job.state);
    let expected: BTreeMap<String, u64> =
        [("updated", 4), ("unchanged", 2), ("failed", 2), ("invalid", 3)].map(|(s, n)| (s.to_string(), n)).into();
    assert_eq!(counts, expected, "the job itself");
    let out = job.work.path("page.html");
    let state = job.state.to_str().unwrap();
    let output = pcbulk(&["report", "--state", state, "--format", "html", "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let raw = std::fs::read_to_string(&out).unwrap();
    std::fs::write("/tmp/op_page.html", &raw).unwrap();
    let page = Html::parse_document(&raw);

    let bars: BTreeMap<String, u64> = select(&page, "svg#counts g.bar")
        .iter()
        .map(|bar| (bar.attr("data-status").unwrap().to_string(), bar.attr("data-count").unwrap().parse().unwrap()))
        .collect();
    assert_eq!(bars, counts, "one bar per status, with the state file's counts");

    let table: Vec<RowKey> = select(&page, "table#problems tbody tr")
        .iter()
        .map(|row| {
            let cells: Vec<String> = row.child_elements().map(|cell| text(&cell)).collect();
            (cells[0].parse().unwrap(), cells[1].clone(), cells[2].clone())
        })
        .collect();
    assert_eq!(table, problems, "exactly the rows needing attention, in input order");
    assert!(table.iter().any(|(_, id, _)| id == HOSTILE_ID), "the hostile id is shown as text");
    for status in ["failed", "invalid"] {
        assert_eq!(select(&page, &format!("input#show-{status}[type=radio]")).len(), 1, "a filter for {status}");
    }

    let header = |field: &str| text(&select(&page, &format!("dd[data-field={field}]"))[0]);
    assert!(header("csv").ends_with("updates.csv"));
    assert!(header("target").starts_with("http://127.0.0.1:"));
    let requests: u64 = header("requests").parse().unwrap();
    assert!(requests >= 12, "6 GETs and 4 PUTs of seeded rows, 2 GETs that met 404: {requests}");
    let minutes = &select(&page, "svg#minutes")[0];
    assert!(minutes.attr("data-points").unwrap().parse::<u64>().unwrap() >= 1, "the job's pace is recorded");
    assert!(!select(&page, "table#errors tbody tr").is_empty(), "the top errors are listed");

    // Nothing from the CSV or the service reaches the page raw; nothing is loaded from elsewhere.
    assert_eq!(raw.matches("<script").count(), 1, "only the page's own script");
    assert!(!raw.contains("<script>alert"), "a script tag got through");
    assert!(!raw.contains("<b>bold"), "markup from a cell got through");
    assert!(raw.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    for external in ["src=", "href=", "@import", "url("] {
        assert!(!raw.contains(external), "the page refers to something outside it: {external}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_report_holds_to_its_schema_and_to_the_state_file() {
    let job = run_mixed_job().await;
    let (counts, problems) = state_truth(&job.state);
    let out = job.work.path("report.json");
    let state = job.state.to_str().unwrap();
    let output = pcbulk(&["report", "--state", state, "--format", "json", "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    std::fs::copy(&out, "/tmp/op_report.json").unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_schema(&report);
    for (status, count) in &counts {
        assert_eq!(report["summary"]["counts"][status], Value::from(*count), "{status}");
    }
    assert_eq!(report["summary"]["rows"], Value::from(11));
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 11);
    let needing: Vec<RowKey> = rows
        .iter()
        .filter(|row| !["updated", "unchanged"].contains(&row["status"].as_str().unwrap()))
        .map(|row| {
            (
                row["line"].as_u64().unwrap(),
                row["customer_id"].as_str().unwrap().into(),
                row["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(needing, problems);
    let updated = rows.iter().find(|row| row["status"] == "updated").unwrap();
    assert_eq!(updated["changed_fields"], serde_json::json!(["companyName"]));
    assert_eq!(updated["after"]["companyName"], Value::from("Company 0"));
    assert!(updated["request_id"].is_string(), "the request id a support ticket asks for");
    let summary = &report["summary"];
    let minutes = summary["minutes"].as_array().unwrap();
    let sum = |key: &str| minutes.iter().map(|minute| minute[key].as_u64().unwrap()).sum::<u64>();
    assert!(summary["throttled"].as_u64().unwrap() > 0, "the sandbox's rate limit was met: {summary}");
    assert_eq!(Value::from(sum("requests")), summary["requests"], "the minutes add up to the job's requests");
    assert_eq!(Value::from(sum("throttled")), summary["throttled"], "the minutes add up to the job's 429s");
    let codes: Vec<&str> =
        report["summary"]["top_errors"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"invalid"), "{codes:?}");
}

fn assert_schema(instance: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/report-v1.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|error| format!("{} at {}", error, error.instance_path())).collect();
    assert!(errors.is_empty(), "the report breaks its schema:\n{}", errors.join("\n"));
}

#[test]
fn completions_are_made_for_every_shell_and_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let output = pcbulk(&["completions", shell]);
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        let script = stdout(&output);
        for subcommand in ["validate", "apply", "status", "report", "partner", "sandbox", "completions"] {
            assert!(script.contains(subcommand), "{shell} script lacks {subcommand}");
        }
    }
    assert!(!pcbulk(&["completions", "tcsh"]).status.success(), "an unknown shell is refused");
}

/// `apply --sandbox` with JSON logs at debug level, and the end-of-job files.
#[test]
fn json_logs_and_the_files_apply_writes_at_the_end() {
    let work = WorkDir::new();
    let text: String = (0..3).map(|index| format!("{},Company {index}\n", customer(index))).collect();
    let csv = work.write("small.csv", format!("customer_id,companyName\n{text}"));
    let (json, html) = (work.path("summary.json"), work.path("page.html"));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pcbulk"))
        .args(["--log-format", "json", "apply", "--sandbox"])
        .arg(&csv)
        .arg("--summary-json")
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .env("RUST_LOG", "debug")
        .env_remove("PCBULK_TOKEN")
        .env_remove("PCBULK_BASE_URL")
        .output()
        .unwrap();
    let logs = stderr(&output);
    assert!(output.status.success(), "{logs}");
    let json_lines: Vec<&str> = logs.lines().filter(|line| line.starts_with('{')).collect();
    assert!(!json_lines.is_empty(), "debug logging said nothing:\n{logs}");
    for line in json_lines {
        let record: Value = serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}"));
        assert!(record["level"].is_string() && record["timestamp"].is_string(), "{line}");
    }
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_schema(&summary);
    assert_eq!(summary["summary"]["counts"]["updated"], Value::from(3));
    let page = Html::parse_document(&std::fs::read_to_string(&html).unwrap());
    assert_eq!(select(&page, "svg#counts g.bar[data-status=updated][data-count='3']").len(), 1);
    assert_eq!(select(&page, "p#no-problems").len(), 1);
}

#[test]
fn row_statuses_spell_the_schema_enum() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/report-v1.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut known: Vec<&str> =
        schema["$defs"]["status"]["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let mut ours: Vec<&str> = RowStatus::ALL.iter().map(|status| status.name()).collect();
    known.sort_unstable();
    ours.sort_unstable();
    assert_eq!(known, ours, "a new status needs report-v2 (or at least the schema's enum)");
}

/// Issue 19, words: `--canary 0` is refused, and a finished job run again says nothing about a pace it never had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_of_nothing_is_refused_and_a_rerun_claims_no_pace() {
    let config = SandboxConfig { customer_ids: (0..2).map(customer).collect(), ..SandboxConfig::default() };
    let sandbox = Sandbox::start(config).await.unwrap();
    let work = WorkDir::new();
    let text = format!("customer_id,companyName\n{},A\n{},B\n", customer(0), customer(1));
    let csv = work.write("jobs.csv", text).display().to_string();
    let (token, url) = (sandbox.mint_token(), sandbox.url().to_string());
    let run = move |extra: &'static [&'static str]| {
        let (token, url, csv) = (token.clone(), url.clone(), csv.clone());
        tokio::task::spawn_blocking(move || {
            let mut args = vec!["apply", &csv, "--base-url", &url];
            args.extend_from_slice(extra);
            common::pcbulk_with(&args, &[("PCBULK_TOKEN", &token)])
        })
    };
    let zero = run(&["--canary", "0"]).await.unwrap();
    assert_eq!(zero.status.code(), Some(1), "{}", stderr(&zero));
    assert!(stderr(&zero).contains("--canary 0"), "{}", stderr(&zero));
    assert_eq!(sandbox.counters().requests.values().sum::<u64>(), 0);
    let first = run(&[]).await.unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(stderr(&first).contains("pace settled at"), "{}", stderr(&first));
    let again = run(&[]).await.unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(stderr(&again).contains("0 requests") && !stderr(&again).contains("pace"), "{}", stderr(&again));
}
