//! Issue 15: where Partner Center and its SDKs disagree with what pcbulk first did. Each test makes the sandbox
//! behave like the real service and asserts on what the sandbox saw (README, "Partner Center facts and where they
//! come from").

use crate::common;

use common::WorkDir;
use common::rig::{self, customer};
use pcbulk::engine::preflight::PreflightConfig;
use pcbulk::engine::{Ending, Mode};
use pcbulk::job::{self, ApplyConfig, JobOutcome};
use pcbulk::pace::PaceConfig;
use pcbulk::progress::Silent;
use pcbulk::sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A customer billing profile with this address (the other fields valid).
fn profile(id: &str, address: Value) -> Value {
    let mut address = address;
    for (key, value) in [("addressLine1", "1 Main Street"), ("firstName", "Ava"), ("lastName", "Smith")] {
        address[key] = json!(value);
    }
    json!({"id": id, "firstName": "Ava", "lastName": "Smith", "email": "ava@contoso.example", "culture": "en-US",
        "language": "en", "companyName": "Contoso", "defaultAddress": address,
        "attributes": {"objectType": "CustomerBillingProfile"}})
}

fn pace() -> PaceConfig {
    rig::pace(500, 2, 3)
}

/// A row of the report: status, preflight cell, error.
#[derive(Debug)]
struct Row {
    status: String,
    preflight: String,
    error: String,
}

fn read_report(path: &std::path::Path) -> HashMap<u64, Row> {
    let text = common::read_text(path);
    let mut reader = common::report_reader(&text);
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|header| header == name);
    let (line, status, error) = (column("line").unwrap(), column("status").unwrap(), column("error").unwrap());
    let preflight = column("preflight");
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            let row = Row {
                status: record[status].to_string(),
                preflight: preflight.map(|index| record[index].to_string()).unwrap_or_default(),
                error: record[error].to_string(),
            };
            (record[line].parse().unwrap(), row)
        })
        .collect()
}

/// Runs a job over `csv` against `sandbox` in process; the report's rows by line.
async fn run(sandbox: &Sandbox, csv: &str, mode: Mode, preflight: bool) -> (JobOutcome, HashMap<u64, Row>) {
    let work = WorkDir::new();
    let path = work.write("rows.csv", csv);
    let report = work.path("rows.report.csv");
    let config = ApplyConfig {
        mode,
        grace: Duration::from_secs(5),
        preflight: PreflightConfig { rules: preflight, ..PreflightConfig::default() },
        ..rig::apply_config(path, work.path("rows.db"), report.clone(), rig::api(sandbox, pace()))
    };
    let outcome = job::apply(&config, Arc::new(Silent), CancellationToken::new()).await.unwrap();
    (outcome, read_report(&report))
}

async fn start(profiles: Vec<Value>) -> Sandbox {
    Sandbox::start(SandboxConfig { profiles, ..SandboxConfig::default() }).await.unwrap()
}

fn put_attempts(sandbox: &Sandbox, id: &str) -> u64 {
    sandbox.counters().put_attempts.get(id).copied().unwrap_or(0)
}

/// Point 4: `NSW` has three letters; offline, up to the longest documented code passes; with pre-flight, the value
/// is checked against the country's own list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_australian_states_of_three_letters_are_written_and_checked_against_the_list() {
    let ids: Vec<String> = (0..3).map(customer).collect();
    let perth = json!({"country": "AU", "city": "Perth", "state": "WA", "postalCode": "6000", "phoneNumber": "+61 8 9555 0100"});
    let sandbox = start(ids.iter().map(|id| profile(id, perth.clone())).collect()).await;
    let csv = format!(
        "customer_id,defaultAddress.city,defaultAddress.state,defaultAddress.postalCode\n\
         {},Sydney,NSW,2000\n{},Sydney,XYZ,2000\n{},Sydney,NSWX,2000\n",
        ids[0], ids[1], ids[2]
    );
    let (_, rows) = run(&sandbox, &csv, Mode::Apply, true).await;
    assert_eq!(rows[&2].status, "updated", "{:?}", rows[&2]);
    assert_eq!(sandbox.customer(&ids[0]).unwrap()["defaultAddress"]["state"], "NSW");
    assert_eq!(rows[&3].status, "updated", "a state not in the list is a warning: {:?}", rows[&3]);
    assert!(rows[&3].preflight.contains("state \"XYZ\" is not one of AU's states"), "{:?}", rows[&3]);
    assert_eq!(rows[&4].status, "invalid");
    assert!(rows[&4].error.contains("more than the 3 allowed"), "{:?}", rows[&4]);
    assert_eq!(put_attempts(&sandbox, &ids[2]), 0, "never sent");
}

/// Point 5: a phone number as people type it breaks the service's published pattern: a warning, and the row is
/// written (the sandbox takes it, as the service is not known to refuse it); a missing phone where the country
/// requires one, and a postal code of the wrong format, still make the row invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_only_rules_the_service_enforces_make_a_row_invalid() {
    let ids: Vec<String> = (0..4).map(customer).collect();
    let redmond =
        json!({"country": "US", "city": "Redmond", "state": "WA", "postalCode": "98052", "phoneNumber": "4255550100"});
    let mumbai = json!({"country": "IN", "city": "Mumbai", "state": "MH", "postalCode": "400001", "phoneNumber": "+91 9876543210"});
    let profiles = vec![
        profile(&ids[0], redmond.clone()),
        profile(&ids[1], redmond.clone()),
        profile(&ids[2], redmond),
        profile(&ids[3], mumbai),
    ];
    let sandbox = start(profiles).await;
    let csv = format!(
        "customer_id,defaultAddress.phoneNumber,defaultAddress.postalCode\n\
         {},+1 425 555 0100,\n{},(425) 555-0101,\n{},,ABCDE\n{},<clear>,\n",
        ids[0], ids[1], ids[2], ids[3]
    );
    let (_, rows) = run(&sandbox, &csv, Mode::Apply, true).await;
    assert_eq!(rows[&2].status, "updated", "{:?}", rows[&2]);
    assert!(rows[&2].preflight.contains("does not match US's published pattern"), "{:?}", rows[&2]);
    assert_eq!(sandbox.customer(&ids[0]).unwrap()["defaultAddress"]["phoneNumber"], "+1 425 555 0100");
    assert_eq!((rows[&3].status.as_str(), rows[&3].preflight.as_str()), ("updated", ""));
    assert_eq!(rows[&4].status, "invalid");
    assert!(rows[&4].preflight.contains("postal code \"ABCDE\" does not match US's format"), "{:?}", rows[&4]);
    assert_eq!(rows[&5].status, "invalid");
    assert!(rows[&5].preflight.contains("(error 600051)"), "{:?}", rows[&5]);
    assert_eq!(put_attempts(&sandbox, &ids[2]) + put_attempts(&sandbox, &ids[3]), 0);
    assert_eq!(sandbox.counters().total_puts_succeeded(), 2);
}

/// Point 6: the client reads the country under the service's key `iso2Code` (the sandbox now serves only that):
/// the rules are used, not dropped for want of a country.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_country_rules_are_read_under_iso2_code() {
    let sandbox = start(Vec::new()).await;
    let client = pcbulk::client::connect(&rig::api(&sandbox, pace())).unwrap();
    let body = client.get("/v1/countryvalidationrules/AU").await.unwrap().body;
    assert_eq!(body["iso2Code"], "AU");
    let rules: pcbulk::preflight::CountryRules = serde_json::from_value(body).unwrap();
    let checks = pcbulk::preflight::Checks::new(rules);
    assert_eq!(checks.country(), "AU");
}

/// Point 9: a customer moved to another country whose row leaves `state` empty keeps the old country's state:
/// pre-flight says so and names the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_a_state_kept_from_the_old_country_is_a_finding_with_its_fix() {
    let ids: Vec<String> = (0..2).map(customer).collect();
    let mumbai = json!({"country": "IN", "city": "Mumbai", "state": "MH", "postalCode": "400001", "phoneNumber": "+91 9876543210"});
    let sandbox = start(ids.iter().map(|id| profile(id, mumbai.clone())).collect()).await;
    let csv = format!(
        "customer_id,defaultAddress.country,defaultAddress.city,defaultAddress.state,defaultAddress.postalCode,\
         defaultAddress.phoneNumber\n{},GB,London,,SW1A 1AA,+44 20 7946 0000\n{},GB,London,<clear>,SW1A 1AA,+44 20 7946 0000\n",
        ids[0], ids[1]
    );
    let (_, rows) = run(&sandbox, &csv, Mode::DryRun, true).await;
    assert_eq!(rows[&2].status, "would_update");
    assert!(
        rows[&2]
            .preflight
            .contains("state \"MH\" was kept from the old address and is not a state of GB: clear it with <clear>"),
        "{:?}",
        rows[&2]
    );
    assert_eq!((rows[&3].status.as_str(), rows[&3].preflight.as_str()), ("would_update", ""));
}

/// Point 2: a run of customers without a reseller relationship (403, code 20002) fails those rows only; the job
/// goes on to the rows after them instead of stopping as if the credentials were gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_a_block_of_customers_without_a_relationship_does_not_stop_the_job() {
    let ids: Vec<String> = (0..30).map(customer).collect();
    let lapsed: Vec<String> = ids[..25].to_vec();
    let config = SandboxConfig { customer_ids: ids.clone(), forbidden_customers: lapsed, ..SandboxConfig::default() };
    let sandbox = Sandbox::start(config).await.unwrap();
    let text: String = ids.iter().map(|id| format!("{id},Renamed\n")).collect();
    let (outcome, rows) = run(&sandbox, &format!("customer_id,companyName\n{text}"), Mode::Apply, false).await;
    assert_eq!(outcome.ending, Ending::Complete);
    assert_eq!(rows.values().filter(|row| row.status == "failed").count(), 25);
    assert!(rows[&2].error.contains("20002"), "{:?}", rows[&2]);
    assert_eq!(rows.values().filter(|row| row.status == "updated").count(), 5);
    let counters = sandbox.counters();
    assert_eq!(counters.requests_with("GET", 403), 25);
    assert_eq!(counters.total_puts_succeeded(), 5, "the rows after the block were written");
}

/// Point 9: `pcbulk apply` runs the country-rules checks by default, as a dry run does, so the apply refuses what
/// the dry run refused; `--no-preflight` turns them off.
#[test]
fn issue_15_apply_runs_preflight_by_default_and_refuses_what_the_dry_run_refuses() {
    use clap::Parser;
    let server = tokio::runtime::Runtime::new().unwrap();
    let ids: Vec<String> = (0..2).map(customer).collect();
    let redmond =
        json!({"country": "US", "city": "Redmond", "state": "WA", "postalCode": "98052", "phoneNumber": "4255550100"});
    let sandbox = server.block_on(start(ids.iter().map(|id| profile(id, redmond.clone())).collect()));
    let token = sandbox.mint_token();
    let work = WorkDir::new();
    let csv =
        work.write("moves.csv", format!("customer_id,defaultAddress.postalCode\n{},ABCDE\n{},98053\n", ids[0], ids[1]));
    let environment = |name: &str| (name == "PCBULK_TOKEN").then(|| token.clone());
    let apply = |extra: &[&str]| {
        let mut args =
            vec!["pcbulk", "apply", csv.to_str().unwrap(), "--base-url", sandbox.url(), "--restart", "--yes"];
        args.extend_from_slice(extra);
        let cli = pcbulk::cli::Cli::try_parse_from(args).unwrap();
        pcbulk::cli::run(cli, &environment).unwrap()
    };
    let exit = apply(&[]);
    assert_eq!(exit, pcbulk::cli::Exit::RowsFailed);
    let rows = read_report(&work.path("moves.csv.report.csv"));
    assert_eq!(rows[&2].status, "invalid", "{:?}", rows[&2]);
    assert_eq!(rows[&3].status, "updated");
    assert_eq!(put_attempts(&sandbox, &ids[0]), 0, "the refused row was never sent");
    assert_eq!(sandbox.counters().requests_by_route.get("country_rules"), Some(&1), "one request per country");
    apply(&["--no-preflight"]);
    assert_eq!(put_attempts(&sandbox, &ids[0]), 1, "without pre-flight, the row goes out");
}
