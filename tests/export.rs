//! Issue 17: `pcbulk export` and the three-way apply of an edited export, through the real binary against the
//! sandbox; every count is the sandbox's own (profile reads and PUTs per customer, listing calls).

use crate::common::rig::customer;
use crate::common::{WorkDir, pcbulk_with, spawn_pcbulk, stderr};
use pcbulk::sandbox::{Counters, Faults, Sandbox, SandboxConfig};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);

/// A sandbox on its own runtime, kept alive across runs of the binary, with a token for them.
struct Server {
    sandbox: Sandbox,
    token: String,
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    fn start(customers: usize, faults: Faults) -> Server {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
        let ids = (0..customers).map(customer).collect();
        let config = SandboxConfig { customer_ids: ids, faults, ..SandboxConfig::default() };
        let sandbox = runtime.block_on(Sandbox::start(config)).expect("the sandbox starts");
        let token = sandbox.mint_token();
        Server { sandbox, token, _runtime: runtime }
    }

    fn counters(&self) -> Counters {
        self.sandbox.counters()
    }

    fn reads(&self) -> BTreeMap<String, u64> {
        self.counters().profile_reads
    }

    fn listing_calls(&self) -> u64 {
        self.counters().requests_by_route.get("customer_list").copied().unwrap_or_default()
    }
}

/// The files of a round trip in one work dir.
struct Trip {
    work: WorkDir,
}

impl Trip {
    fn new() -> Trip {
        Trip { work: WorkDir::new() }
    }

    fn path(&self, name: &str) -> String {
        self.work.path(name).to_str().expect("a UTF-8 temporary path").to_string()
    }

    /// Runs `pcbulk COMMAND ARGS... --base-url URL` with the server's token.
    fn run(&self, server: &Server, command: &str, args: &[&str]) -> Output {
        let mut all = vec![command];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--base-url", server.sandbox.url()]);
        pcbulk_with(&all, &[("PCBULK_TOKEN", &server.token)])
    }

    fn export(&self, server: &Server, extra: &[&str]) -> Output {
        let out = self.path("current.csv");
        let mut args = vec!["--out", out.as_str()];
        args.extend_from_slice(extra);
        self.run(server, "export", &args)
    }

    /// The exported CSV's records (BOM and header off), as maps of column to cell.
    fn rows(&self, name: &str) -> Vec<BTreeMap<String, String>> {
        let bytes = std::fs::read(self.work.path(name)).expect("the CSV was written");
        let text = String::from_utf8(bytes).expect("UTF-8");
        let text = text.strip_prefix('\u{feff}').expect("a byte-order mark first");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers: Vec<String> = reader.headers().expect("a header").iter().map(String::from).collect();
        reader
            .records()
            .map(|record| headers.iter().cloned().zip(record.expect("a record").iter().map(String::from)).collect())
            .collect()
    }
}

fn ok(output: &Output) {
    assert!(output.status.success(), "exit {:?}: {}", output.status.code(), stderr(output));
}

#[test]
fn an_export_lists_every_customer_once_through_faults_and_reads_each_profile_once() {
    let faults = Faults { error_rate: 0.15, rate_limit: Some(40.0), latency_ms: 5, ..Faults::default() };
    let server = Server::start(57, faults);
    let trip = Trip::new();
    let output = trip.export(&server, &["--page-size", "10", "--rate", "200", "--max-attempts", "10"]);
    ok(&output);
    let rows = trip.rows("current.csv");
    let ids: Vec<&str> = rows.iter().map(|row| row["customer_id"].as_str()).collect();
    let expected: Vec<String> = (0..57).map(customer).collect();
    assert_eq!(ids, expected, "every customer, once, in the listing's order");
    let reads = server.reads();
    assert_eq!(reads.len(), 57);
    assert!(reads.values().all(|count| *count == 1), "each profile read once: {reads:?}");
    let counters = server.counters();
    assert!(counters.injected_errors > 0, "the faults were met: {counters:?}");
    // 6 pages; a page answered 500/503 or 429 is asked again with the same continuation.
    assert!(server.listing_calls() >= 6);
    assert_eq!(counters.requests_with("GET", 200) - 57, 6, "six pages answered: none skipped or repeated");
}

#[test]
fn the_exported_csv_is_what_apply_reads_with_notes_and_a_bom() {
    let server = Server::start(3, Faults::default());
    let trip = Trip::new();
    ok(&trip.export(&server, &["--columns", "email,defaultAddress.postalCode,defaultAddress.phoneNumber"]));
    let rows = trip.rows("current.csv");
    let first = &rows[0];
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    for column in ["customer_id", "email", "defaultAddress.postalCode", "#companyName", "#domain", "#export"] {
        assert!(keys.contains(&column), "{column} in {keys:?}");
    }
    assert!(!keys.contains(&"firstName"), "only the columns asked for");
    let profile = server.sandbox.customer(&customer(0)).expect("a customer");
    assert_eq!(first["email"], profile["email"].as_str().unwrap());
    let phone = profile["defaultAddress"]["phoneNumber"].as_str().unwrap();
    assert_eq!(first["defaultAddress.phoneNumber"].trim_start_matches('\''), phone);
    let id = &first["#export"];
    assert_eq!(id.len(), 8);
    assert!(rows.iter().all(|row| &row["#export"] == id), "every row names the export");
    // validate reads it as it is: the note columns are ignored.
    let current = trip.path("current.csv");
    let validated = pcbulk_with(&["validate", &current], &[]);
    assert!(validated.status.success(), "{}", stderr(&validated));
}

#[test]
fn a_column_that_is_not_in_the_catalog_is_refused_with_the_nearest_name() {
    let server = Server::start(1, Faults::default());
    let trip = Trip::new();
    let output = trip.export(&server, &["--columns", "email,defaultAdress.city"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("did you mean defaultAddress.city"), "{}", stderr(&output));
    assert_eq!(server.counters().requests.values().sum::<u64>(), 0, "nothing sent");
}

#[test]
fn an_export_of_the_ids_of_a_csv_reads_only_those() {
    let server = Server::start(10, Faults::default());
    let trip = Trip::new();
    let ids = trip.work.write("ids.csv", format!("customer_id,#note\n{},a\n{},b\n", customer(7), customer(2)));
    ok(&trip.export(&server, &["--customers", ids.to_str().unwrap()]));
    let rows = trip.rows("current.csv");
    assert_eq!(rows.iter().map(|row| row["customer_id"].clone()).collect::<Vec<_>>(), [customer(7), customer(2)]);
    assert_eq!(server.listing_calls(), 0);
    assert_eq!(server.counters().total_profile_reads(), 2);
}

#[test]
fn an_export_killed_and_resumed_reads_no_recorded_profile_again_nor_lists_again() {
    let faults = Faults { latency_ms: 40, ..Faults::default() };
    let server = Server::start(150, faults);
    let trip = Trip::new();
    let (out, state) = (trip.path("current.csv"), trip.path("current.csv.pcbulk.db"));
    let args = ["export", "--out", &out, "--page-size", "25", "--concurrency", "2", "--base-url", server.sandbox.url()];
    let mut child = spawn_pcbulk(&args, &[("PCBULK_TOKEN", &server.token)], Stdio::null());
    let started = Instant::now();
    while server.counters().total_profile_reads() < 40 {
        assert!(started.elapsed() < LIMIT, "the export reads");
        assert!(child.try_wait().expect("waitable").is_none(), "the export is still running");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let listed = server.listing_calls();
    assert_eq!(listed, 6, "the listing was whole before the reads began");
    let recorded = snapshots(&state);
    assert!(!recorded.is_empty() && recorded.len() < 150, "killed half-way: {} recorded", recorded.len());
    let resumed = trip.run(&server, "export", &["--out", &out, "--page-size", "25"]);
    ok(&resumed);
    assert!(stderr(&resumed).contains("(resumed)"), "{}", stderr(&resumed));
    assert_eq!(server.listing_calls(), listed, "a resume does not list again");
    let reads = server.reads();
    assert_eq!(reads.len(), 150, "every customer read");
    for (id, count) in &reads {
        match recorded.contains(id) {
            true => assert_eq!(*count, 1, "{id} was recorded before the kill and read again"),
            // Read but not yet recorded when killed (at most those in flight): read once more, never more.
            false => assert!(*count <= 2, "{id} read {count} times"),
        }
    }
    let twice = reads.values().filter(|count| **count == 2).count();
    assert!(twice <= 8, "only reads in flight at the kill are repeated: {twice}");
    assert_eq!(trip.rows("current.csv").len(), 150);
}

/// The customers whose snapshot the state file holds.
fn snapshots(state: &str) -> Vec<String> {
    let connection = rusqlite::Connection::open(state).expect("the state file opens");
    let mut statement = connection.prepare("SELECT customer_id FROM snapshots").expect("a snapshots table");
    statement.query_map([], |row| row.get(0)).expect("rows").map(|id| id.expect("an id")).collect()
}

#[tokio::test]
async fn a_stale_or_forged_continuation_is_refused_with_the_services_error() {
    let start =
        || Sandbox::start(SandboxConfig { customer_ids: (0..30).map(customer).collect(), ..SandboxConfig::default() });
    let (server, other) = (start().await.expect("a sandbox"), start().await.expect("another"));
    let client = reqwest::Client::new();
    let get = async |server: &Sandbox, token: Option<&str>| {
        let mut request = client
            .get(format!("{}/v1/customers?size=10", server.url()))
            .bearer_auth(server.mint_token())
            .header("MS-RequestId", "8f1c3f5e-0000-4000-8000-000000000001");
        if let Some(token) = token {
            request = request.header("MS-ContinuationToken", token);
        }
        let response = request.send().await.expect("an answer");
        (response.status().as_u16(), response.json::<Value>().await.expect("JSON"))
    };
    let (status, first) = get(&server, None).await;
    assert_eq!(status, 200);
    assert_eq!(first["totalCount"], 30);
    assert_eq!(first["items"].as_array().unwrap().len(), 10);
    assert_eq!(first["items"][0]["companyProfile"]["tenantId"], customer(0).as_str());
    let token = first["links"]["next"]["headers"][0]["value"].as_str().unwrap().to_string();
    assert_eq!(first["continuationToken"], token.as_str(), "the SDK's top-level token too");
    let (status, second) = get(&server, Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(second["items"][0]["id"], customer(10).as_str());
    let (status, stale) = get(&other, Some(&token)).await;
    assert_eq!(status, 400, "another sandbox's token: {stale}");
    assert!(stale["description"].as_str().unwrap().contains("continuation token"));
    let (status, _) = get(&server, Some("a.b.c")).await;
    assert_eq!(status, 400, "forged");
    let (status, _) = get(&server, Some("14.a.0000000000000000")).await;
    assert_eq!(status, 400, "forged with a plausible offset");
}
