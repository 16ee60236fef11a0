//! Pre-flight in a dry run: the merged addresses checked against the sandbox's country rules and its address
//! validation, before anything is written.

use crate::common;

use common::WorkDir;
use common::rig;
use pcbulk::engine::Mode;
use pcbulk::engine::preflight::PreflightConfig;
use pcbulk::job::{self, ApplyConfig};
use pcbulk::progress::Silent;
use pcbulk::sandbox::{Sandbox, SandboxConfig};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn customer(index: usize) -> String {
    format!("{index:08x}-cccc-4ddd-8eee-{index:012x}")
}

/// Every address field is named (or cleared), so the merged address is the row's whatever the sandbox seeded:
/// country, state, city, addressLine1, addressLine2, postalCode, phoneNumber, region.
const ROWS: [[&str; 8]; 8] = [
    ["US", "WA", "Seattle", "1200 Westlake Ave N", "<clear>", "98109", "(206) 555-0100", "<clear>"],
    ["US", "WA", "Seattle", "1200 Westlake Ave N", "<clear>", "9810", "(206) 555-0100", "<clear>"],
    ["CA", "ON", "Toronto", "100 King St W", "<clear>", "12345", "+1 416 555 0100", "<clear>"],
    ["IN", "KA", "Bengaluru", "21 MG Road", "<clear>", "560001", "<clear>", "<clear>"],
    ["DE", "<clear>", "Berlin", "Friedrichstr. 68", "<clear>", "10117", "+49 30 1234567", "<clear>"],
    ["US", "TX", "Austin", "500 W 2nd St", "<clear>", "78701", "(512) 555-0100", "West"],
    ["GB", "<clear>", "London", "10 Downing Street", "<clear>", "SW1A 2AA", "+44 20 7946 0000", "<clear>"],
    ["IN", "KA", "Bengaluru", "21 MG Road", "<clear>", "560001", "+91 9876543210", "<clear>"],
];

struct Outcome {
    status: String,
    preflight: String,
    suggested: String,
}

async fn dry_run(config: PreflightConfig) -> (HashMap<u64, Outcome>, Sandbox, Vec<String>) {
    let work = WorkDir::new();
    let ids: Vec<String> = (0..ROWS.len()).map(customer).collect();
    let sandbox =
        Sandbox::start(SandboxConfig { customer_ids: ids.clone(), ..SandboxConfig::default() }).await.unwrap();
    let mut text = String::from(
        "customer_id,defaultAddress.country,defaultAddress.state,defaultAddress.city,defaultAddress.addressLine1,\
         defaultAddress.addressLine2,defaultAddress.postalCode,defaultAddress.phoneNumber,defaultAddress.region\n",
    );
    for (id, row) in ids.iter().zip(ROWS) {
        text.push_str(&format!("{id},{}\n", row.join(",")));
    }
    let csv = work.write("moves.csv", text);
    let api = rig::api(&sandbox, rig::pace(500, 4, 3));
    let report = work.path("moves.report.csv");
    let config = ApplyConfig {
        mode: Mode::DryRun,
        grace: Duration::from_secs(5),
        preflight: config,
        ..rig::apply_config(csv, work.path("moves.db"), report.clone(), api)
    };
    job::apply(&config, Arc::new(Silent), CancellationToken::new()).await.unwrap();
    let text = common::read_text(&report);
    let mut reader = common::report_reader(&text);
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|header| header == name);
    let (line, status) = (column("line").unwrap(), column("status").unwrap());
    let (preflight, suggested) = (column("preflight"), column("suggested_address"));
    let outcomes = reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            let outcome = Outcome {
                status: record[status].to_string(),
                preflight: preflight.map(|index| record[index].to_string()).unwrap_or_default(),
                suggested: suggested.map(|index| record[index].to_string()).unwrap_or_default(),
            };
            (record[line].parse().unwrap(), outcome)
        })
        .collect();
    (outcomes, sandbox, headers.iter().map(str::to_string).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_flags_each_row_partner_center_would_refuse_and_passes_the_good_ones() {
    let config = PreflightConfig { rules: true, validate_addresses: true, strict_addresses: false };
    let (rows, sandbox, headers) = dry_run(config).await;
    assert!(headers.iter().any(|header| header == "preflight"));
    let expect = |line: u64, status: &str, words: &str| {
        let row = &rows[&line];
        assert_eq!(row.status, status, "line {line}: {}", row.preflight);
        assert!(row.preflight.contains(words), "line {line}: {:?} lacks {words:?}", row.preflight);
    };
    expect(2, "would_update", "");
    assert!(rows[&2].preflight.is_empty(), "{}", rows[&2].preflight);
    expect(3, "invalid", "postal code \"9810\" does not match US's format");
    expect(4, "invalid", "postal code \"12345\" does not match CA's format");
    expect(5, "invalid", "a phone number is required for customers in IN (error 600051)");
    expect(6, "would_update", "address validation: StreetPartial");
    assert_eq!(rows[&6].suggested, "Friedrichstraße 68, Berlin, 10117, DE");
    expect(7, "invalid", "a region on a US address is refused (error 27002)");
    expect(8, "would_update", "");
    expect(9, "would_update", "");
    // The rules of each country were fetched once, and nothing was written.
    let counters = sandbox.counters();
    assert_eq!(counters.total_put_attempts(), 0);
    let rules_fetched: u64 = counters
        .requests_by_route
        .iter()
        .filter(|(route, _)| route.as_str() == "country_rules")
        .map(|(_, count)| count)
        .sum();
    assert_eq!(rules_fetched, 5, "{:?}", counters.requests_by_route);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_addresses_make_an_unverified_address_invalid() {
    let config = PreflightConfig { rules: true, validate_addresses: true, strict_addresses: true };
    let (rows, _sandbox, _) = dry_run(config).await;
    assert_eq!(rows[&6].status, "invalid");
    assert_eq!(rows[&6].suggested, "Friedrichstraße 68, Berlin, 10117, DE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_preflight_the_report_has_no_preflight_columns_and_rows_are_not_checked() {
    let (rows, sandbox, headers) = dry_run(PreflightConfig::default()).await;
    assert!(!headers.iter().any(|header| header == "preflight" || header == "suggested_address"), "{headers:?}");
    assert!(rows.values().all(|row| row.status == "would_update"));
    assert!(!sandbox.counters().requests_by_route.contains_key("country_rules"));
}
