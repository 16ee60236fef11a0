//! Issue 17: `pcbulk export` and the three-way apply of an edited export, through the real binary against the
//! sandbox; every count is the sandbox's own (profile reads and PUTs per customer, listing calls). Issue 21's part:
//! the export as a workbook, the export's CSV in `--delimiter`, and an edited workbook applied three-way (the
//! helpers `edit_workbook`, `workbook_table` serve `office.rs` too).

use crate::common::rig::customer;
use crate::common::{WorkDir, pcbulk_with, spawn_pcbulk, stderr};
use pcbulk::sandbox::{Counters, Faults, Sandbox, SandboxConfig};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);

/// A sandbox on its own runtime, kept alive across runs of the binary, with a token for them.
pub(crate) struct Server {
    pub(crate) sandbox: Sandbox,
    token: String,
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    pub(crate) fn start(customers: usize, faults: Faults) -> Server {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
        let ids = (0..customers).map(customer).collect();
        let config = SandboxConfig { customer_ids: ids, faults, ..SandboxConfig::default() };
        let sandbox = runtime.block_on(Sandbox::start(config)).expect("the sandbox starts");
        let token = sandbox.mint_token();
        Server { sandbox, token, _runtime: runtime }
    }

    pub(crate) fn counters(&self) -> Counters {
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
pub(crate) struct Trip {
    pub(crate) work: WorkDir,
}

impl Trip {
    pub(crate) fn new() -> Trip {
        Trip { work: WorkDir::new() }
    }

    pub(crate) fn path(&self, name: &str) -> String {
        self.work.path(name).to_str().expect("a UTF-8 temporary path").to_string()
    }

    /// Runs `pcbulk COMMAND ARGS... --base-url URL` with the server's token.
    pub(crate) fn run(&self, server: &Server, command: &str, args: &[&str]) -> Output {
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
        self.table(name).1
    }

    /// The header and the records of a CSV pcbulk wrote.
    fn table(&self, name: &str) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
        let bytes = std::fs::read(self.work.path(name)).expect("the CSV was written");
        let text = String::from_utf8(bytes).expect("UTF-8");
        let text = text.strip_prefix('\u{feff}').expect("a byte-order mark first");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers: Vec<String> = reader.headers().expect("a header").iter().map(String::from).collect();
        let rows = reader
            .records()
            .map(|record| headers.iter().cloned().zip(record.expect("a record").iter().map(String::from)).collect())
            .collect();
        (headers, rows)
    }

    /// The export edited as a person would in a spreadsheet (`edit` changes cells of rows by index), saved as
    /// `name` with a BOM, in the same column order.
    fn edit(&self, name: &str, edit: impl FnOnce(&mut Vec<BTreeMap<String, String>>)) -> String {
        let (headers, mut rows) = self.table("current.csv");
        edit(&mut rows);
        let mut writer = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
        writer.write_record(&headers).expect("a header");
        for row in &rows {
            writer.write_record(headers.iter().map(|column| &row[column])).expect("a record");
        }
        self.work.write(name, writer.into_inner().expect("written"));
        self.path(name)
    }

    /// The report's rows as maps of column to cell.
    fn report(&self, name: &str) -> Vec<BTreeMap<String, String>> {
        let mut reader = csv::Reader::from_path(self.work.path(name)).expect("a report");
        let headers: Vec<String> = reader.headers().expect("a header").iter().map(String::from).collect();
        reader
            .records()
            .map(|record| headers.iter().cloned().zip(record.expect("a record").iter().map(String::from)).collect())
            .collect()
    }
}

/// Requests the sandbox answered for customer billing profiles (GETs and PUTs), all customers.
pub(crate) fn profile_requests(server: &Server) -> u64 {
    server.counters().requests_by_route.get("customer_billing").copied().unwrap_or_default()
}

/// Applies an edited export (exit 2: some rows need attention) and checks it cost one request and one PUT per
/// changed row, none for the others.
pub(crate) fn apply_changed(trip: &Trip, server: &Server, edited: &str, changed: u64) {
    let before = profile_requests(server);
    let applied = trip.run(server, "apply", &[edited, "--no-preflight"]);
    assert_eq!(applied.status.code(), Some(2), "{}", stderr(&applied));
    assert_eq!(profile_requests(server) - before, changed, "one request per changed row, none for the others");
    assert_eq!(server.counters().total_puts_succeeded(), changed);
}

pub(crate) fn ok(output: &Output) {
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
    kill_once_read(&server, &out, "25", 40);
    let listed = server.listing_calls();
    assert!(listed <= 6, "six pages at most: {listed}");
    let recorded = snapshots(&state);
    assert!(!recorded.is_empty() && recorded.len() < 150, "killed half-way: {} recorded", recorded.len());
    let resumed = trip.run(&server, "export", &["--out", &out, "--page-size", "25"]);
    ok(&resumed);
    assert!(stderr(&resumed).contains("(resumed)"), "{}", stderr(&resumed));
    // A resume lists only the pages not recorded: at most the one in flight at the kill is asked for twice.
    assert!(server.listing_calls() <= 7, "no recorded page listed again: {} calls", server.listing_calls());
    assert_read_once_but_in_flight(&server, &recorded, 150);
    assert_eq!(trip.rows("current.csv").len(), 150);
}

/// `pcbulk export --out out` in pages of `page_size` (2 in flight), killed with SIGKILL once `reads` profiles are read.
fn kill_once_read(server: &Server, out: &str, page_size: &str, reads: u64) {
    let args =
        ["export", "--out", out, "--page-size", page_size, "--concurrency", "2", "--base-url", server.sandbox.url()];
    let mut child = spawn_pcbulk(&args, &[("PCBULK_TOKEN", &server.token)], Stdio::null());
    let started = Instant::now();
    while server.counters().total_profile_reads() < reads {
        assert!(started.elapsed() < LIMIT, "the export reads");
        assert!(child.try_wait().expect("waitable").is_none(), "the export is still running");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
}

/// After a kill and a resume: every one of `customers` read, those `recorded` before the kill once, the others (read
/// but not yet recorded when killed: at most those in flight) once more, never more.
fn assert_read_once_but_in_flight(server: &Server, recorded: &[String], customers: usize) {
    let reads = server.reads();
    assert_eq!(reads.len(), customers, "every customer read");
    for (id, count) in &reads {
        match recorded.contains(id) {
            true => assert_eq!(*count, 1, "{id} was recorded before the kill and read again"),
            false => assert!(*count <= 2, "{id} read {count} times"),
        }
    }
    let twice = reads.values().filter(|count| **count == 2).count();
    assert!(twice <= 8, "only reads in flight at the kill are repeated: {twice}");
}

/// An export of 200 customers in pages of 5 (40 pages, each waiting for the one before, ≥ 40 ms each), killed
/// once 10 profiles are read: far from the listing's end. The listing calls made by then.
fn killed_while_listing(server: &Server, trip: &Trip) -> u64 {
    kill_once_read(server, &trip.path("current.csv"), "5", 10);
    let listed = server.listing_calls();
    assert!(listed < 40, "killed while it listed (reads began before the listing ended): {listed} of 40 pages");
    listed
}

#[test]
fn an_export_killed_while_it_lists_and_reads_resumes_with_no_page_or_customer_skipped_or_repeated() {
    let server = Server::start(200, Faults { latency_ms: 40, ..Faults::default() });
    let trip = Trip::new();
    killed_while_listing(&server, &trip);
    let recorded = snapshots(&trip.path("current.csv.pcbulk.db"));
    assert!(!recorded.is_empty(), "reads were recorded while the listing went on");
    let resumed = trip.run(&server, "export", &["--out", &trip.path("current.csv"), "--page-size", "5"]);
    ok(&resumed);
    assert!(stderr(&resumed).contains("(resumed)"), "{}", stderr(&resumed));
    assert!(server.listing_calls() <= 41, "no recorded page listed again: {} calls", server.listing_calls());
    let ids: Vec<String> = trip.rows("current.csv").into_iter().map(|row| row["customer_id"].clone()).collect();
    let expected: Vec<String> = (0..200).map(customer).collect();
    assert_eq!(ids, expected, "every customer once, in the listing's order");
    assert_read_once_but_in_flight(&server, &recorded, 200);
}

#[test]
fn a_page_that_cannot_be_listed_stops_the_export_after_the_pages_before_it_are_read() {
    let server = Server::start(200, Faults { latency_ms: 40, ..Faults::default() });
    let trip = Trip::new();
    killed_while_listing(&server, &trip);
    // The next page's continuation forged: the service refuses it (400), which no retry mends.
    let state = trip.path("current.csv.pcbulk.db");
    let connection = rusqlite::Connection::open(&state).expect("the state file opens");
    let next: String =
        connection.query_row("SELECT next_page FROM exports", [], |row| row.get(0)).expect("a next page");
    let mut next: Value = serde_json::from_str(&next).expect("JSON");
    next["continuation"] = "a.b.c".into();
    connection.execute("UPDATE exports SET next_page = ?1", [next.to_string()]).expect("forged");
    let pages: u64 = connection.query_row("SELECT pages FROM exports", [], |row| row.get(0)).expect("pages");
    drop(connection);
    let resumed = trip.run(&server, "export", &["--out", &trip.path("current.csv"), "--page-size", "5"]);
    assert!(!resumed.status.success());
    let words = stderr(&resumed);
    assert!(words.contains(&format!("listing the customers failed on page {}", pages + 1)), "{words}");
    // Every customer of the pages recorded was read before the export stopped; nothing past them.
    let listed: Vec<String> = {
        let connection = rusqlite::Connection::open(&state).expect("the state file opens");
        let mut statement = connection.prepare("SELECT customer_id FROM rows ORDER BY line").expect("rows");
        statement.query_map([], |row| row.get(0)).expect("rows").map(|id| id.expect("an id")).collect()
    };
    assert_eq!(listed.len() as u64, pages * 5);
    let mut read = snapshots(&state);
    read.sort();
    let mut expected = listed.clone();
    expected.sort();
    assert_eq!(read, expected, "the customers listed, each read");
    assert!(!trip.work.path("current.csv").exists(), "no CSV for an export that did not finish");
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

/// A round trip's start: `customers` in the sandbox, exported to `current.csv` (every column).
fn exported(customers: usize) -> (Server, Trip) {
    let server = Server::start(customers, Faults::default());
    let trip = Trip::new();
    ok(&trip.export(&server, &[]));
    (server, trip)
}

pub(crate) fn status_of(report: &[BTreeMap<String, String>], customer_id: &str) -> String {
    let row = report.iter().find(|row| row["customer_id"] == customer_id).expect("the customer's row");
    row["status"].clone()
}

#[test]
fn an_unchanged_row_costs_no_request_and_a_changed_row_one() {
    let (server, trip) = exported(20);
    let edited = trip.edit("edited.csv", |rows| {
        rows[3].insert("defaultAddress.city".into(), "Trondheim".into());
        rows[7].insert("email".into(), "billing@contoso.example".into());
        rows[11].insert("defaultAddress.addressLine2".into(), String::new());
    });
    let before = profile_requests(&server);
    let dry = trip.run(&server, "apply", &[&edited, "--dry-run", "--no-preflight"]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    assert_eq!(profile_requests(&server) - before, 3, "the dry run reads the 3 changed rows only");
    let report = trip.report("edited.csv.dry-run.report.csv");
    assert_eq!(report.iter().filter(|row| row["status"] == "unchanged").count(), 17);
    let before = profile_requests(&server);
    let applied = trip.run(&server, "apply", &[&edited, "--no-preflight"]);
    ok(&applied);
    assert_eq!(profile_requests(&server) - before, 3, "one request per changed row, none for the 17 others");
    let counters = server.counters();
    assert_eq!(counters.total_puts_succeeded(), 3);
    assert_eq!(counters.fields_dropped_count + counters.lost_edits, 0);
    let stored = |index: usize| server.sandbox.customer(&customer(index)).expect("a customer");
    assert_eq!(stored(3)["defaultAddress"]["city"], "Trondheim");
    assert_eq!(stored(7)["email"], "billing@contoso.example");
    assert_eq!(stored(11)["defaultAddress"]["addressLine2"], "", "an emptied cell clears the field");
    let report = trip.report("edited.csv.report.csv");
    assert_eq!(status_of(&report, &customer(3)), "updated");
    assert_eq!(status_of(&report, &customer(0)), "unchanged");
    // Rolled back: the export's values where the service still holds ours.
    let before_city = trip.rows("current.csv")[3]["defaultAddress.city"].clone();
    let rolled = trip.run(&server, "rollback", &[&edited]);
    ok(&rolled);
    assert_eq!(stored(3)["defaultAddress"]["city"], before_city.as_str());
}

#[test]
fn someone_elses_change_to_the_same_field_is_a_conflict_and_to_another_field_is_kept() {
    let (server, trip) = exported(6);
    let edited = trip.edit("edited.csv", |rows| {
        rows[1].insert("defaultAddress.city".into(), "Trondheim".into());
        rows[2].insert("defaultAddress.city".into(), "Stavanger".into());
    });
    let base_city = trip.rows("current.csv")[1]["defaultAddress.city"].clone();
    server.sandbox.edit_customer(&customer(1), "defaultAddress.city", "Bergen").expect("an edit");
    server.sandbox.edit_customer(&customer(2), "email", "someone.else@contoso.example").expect("an edit");
    let before = profile_requests(&server);
    let applied = trip.run(&server, "apply", &[&edited, "--no-preflight"]);
    assert_eq!(applied.status.code(), Some(2), "{}", stderr(&applied));
    // Each: a PUT refused by If-Match, a read; then for the second only, the PUT that lands.
    assert_eq!(profile_requests(&server) - before, 5);
    let stored = |index: usize| server.sandbox.customer(&customer(index)).expect("a customer");
    assert_eq!(stored(1)["defaultAddress"]["city"], "Bergen", "someone else's value is left as found");
    assert_eq!(stored(2)["defaultAddress"]["city"], "Stavanger");
    assert_eq!(stored(2)["email"], "someone.else@contoso.example", "someone else's change to another field kept");
    assert_eq!(server.counters().lost_edits, 0);
    let report = trip.report("edited.csv.report.csv");
    let conflict = report.iter().find(|row| row["customer_id"] == customer(1)).expect("the row");
    assert_eq!(conflict["status"], "conflict");
    let words = format!("defaultAddress.city: base \"{base_city}\", theirs \"Bergen\", ours \"Trondheim\"");
    assert!(conflict["error"].contains(&words), "{}", conflict["error"]);
    assert_eq!(status_of(&report, &customer(2)), "updated");
}

#[test]
fn excel_damage_is_refused_shown_by_validate_and_applied_when_accepted() {
    let server = Server::start(4, Faults::default());
    server.sandbox.edit_customer(&customer(0), "defaultAddress.postalCode", "02134").expect("an edit");
    server.sandbox.edit_customer(&customer(1), "defaultAddress.addressLine2", "03-04").expect("an edit");
    server.sandbox.edit_customer(&customer(2), "defaultAddress.phoneNumber", "425555012345").expect("an edit");
    let trip = Trip::new();
    ok(&trip.export(&server, &[]));
    // What Excel does to these cells when it opens and saves the file.
    let edited = trip.edit("saved-by-excel.csv", |rows| {
        rows[0].insert("defaultAddress.postalCode".into(), "2134".into());
        rows[1].insert("defaultAddress.addressLine2".into(), "3/4/2021".into());
        rows[2].insert("defaultAddress.phoneNumber".into(), "4.25555E+11".into());
        rows[3].insert("companyName".into(), "Contoso Ltd".into());
    });
    let validated = pcbulk_with(&["validate", &edited, "--base", &trip.path("current.csv")], &[]);
    assert_eq!(validated.status.code(), Some(2));
    let printed = String::from_utf8_lossy(&validated.stdout).into_owned();
    for words in ["leading zeros", "into a date", "scientific notation", "\"02134\""] {
        assert!(printed.contains(words), "{words} in {printed}");
    }
    let before = profile_requests(&server);
    let applied = trip.run(&server, "apply", &[&edited, "--no-preflight"]);
    assert_eq!(applied.status.code(), Some(2), "{}", stderr(&applied));
    assert_eq!(profile_requests(&server) - before, 1, "only the real change is written");
    let report = trip.report("saved-by-excel.csv.report.csv");
    for index in 0..3 {
        assert_eq!(status_of(&report, &customer(index)), "invalid");
    }
    let stored = |index: usize| server.sandbox.customer(&customer(index)).expect("a customer");
    assert_eq!(stored(0)["defaultAddress"]["postalCode"], "02134");
    let accepted = trip.edit("meant.csv", |rows| {
        rows[0].insert("defaultAddress.postalCode".into(), "2134".into());
        rows[1].insert("defaultAddress.addressLine2".into(), "3/4/2021".into());
    });
    ok(&trip.run(&server, "apply", &[&accepted, "--no-preflight", "--accept-excel-changes"]));
    assert_eq!(stored(0)["defaultAddress"]["postalCode"], "2134");
    assert_eq!(stored(1)["defaultAddress"]["addressLine2"], "3/4/2021");
}

#[test]
fn an_edited_export_finds_its_snapshot_by_its_id_or_by_base() {
    let (server, trip) = exported(3);
    let elsewhere = WorkDir::new();
    let (_, rows) = trip.table("current.csv");
    let edited = trip.edit("renamed copy.csv", |rows| {
        rows[0].insert("firstName".into(), "Ada".into());
    });
    // Saved under another name beside the export: found by the #export id.
    ok(&trip.run(&server, "apply", &[&edited, "--dry-run", "--no-preflight"]));
    // Never applied to another service than the one it was exported from.
    let other = Server::start(3, Faults::default());
    let elsewhere_applied = trip.run(&other, "apply", &[&edited, "--no-preflight"]);
    assert_eq!(elsewhere_applied.status.code(), Some(1));
    assert!(stderr(&elsewhere_applied).contains("where it was exported from"), "{}", stderr(&elsewhere_applied));
    assert_eq!(other.counters().requests.values().sum::<u64>(), 0);
    // Moved elsewhere: not found, and the error says what to give.
    let moved = elsewhere.path("moved.csv");
    std::fs::copy(&edited, &moved).expect("a copy");
    let moved = moved.to_str().unwrap();
    let lost = trip.run(&server, "apply", &[moved, "--no-preflight"]);
    assert_eq!(lost.status.code(), Some(1));
    let words = stderr(&lost);
    assert!(words.contains(&rows[0]["#export"]) && words.contains("--base"), "{words}");
    assert_eq!(server.counters().total_put_attempts(), 0);
    ok(&trip.run(&server, "apply", &[moved, "--no-preflight", "--base", &trip.path("current.csv")]));
    assert_eq!(server.sandbox.customer(&customer(0)).unwrap()["firstName"], "Ada");
    assert_eq!(server.counters().total_put_attempts(), 1);
}

#[test]
fn note_columns_of_a_plain_csv_are_ignored_by_validate_and_apply() {
    let server = Server::start(2, Faults::default());
    let trip = Trip::new();
    let text = format!("#ticket,customer_id,email,# who\nCHG-1,{},ap@contoso.example,=HYPERLINK(\"x\")\n", customer(1));
    let csv = trip.work.write("plain.csv", text);
    let csv = csv.to_str().unwrap();
    let validated = pcbulk_with(&["validate", csv], &[]);
    assert!(validated.status.success(), "{}", stderr(&validated));
    ok(&trip.run(&server, "apply", &[csv, "--no-preflight"]));
    let profile = server.sandbox.customer(&customer(1)).expect("a customer");
    assert_eq!(profile["email"], "ap@contoso.example");
    assert_eq!(server.counters().total_puts_succeeded(), 1);
}

/// A workbook's first sheet as its header and its rows, each a map of column to the cell's text.
pub(crate) fn workbook_table(path: &Path) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let rows = crate::excel::sheet_rows(path);
    let header: Vec<String> = rows[0].iter().map(ToString::to_string).collect();
    let maps = rows[1..].iter().map(|row| header.iter().cloned().zip(row.iter().map(ToString::to_string)).collect());
    (header.clone(), maps.collect())
}

/// The export's workbook `from` edited as a person would in a spreadsheet and saved as `to`: `edit` changes cells
/// of rows by index (typed as text), then each `(row, column)` of `numbers` is stored as a number, as Excel stores
/// `2134` typed into a cell of the General format. Written with rust_xlsxwriter, as a person's Excel stores cells.
pub(crate) fn edit_workbook(
    from: &Path,
    to: &Path,
    numbers: &[(usize, &str)],
    edit: impl FnOnce(&mut Vec<BTreeMap<String, String>>),
) {
    let (header, mut rows) = workbook_table(from);
    edit(&mut rows);
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (column, name) in header.iter().enumerate() {
        sheet.write_string(0, column as u16, name).expect("a header cell");
    }
    for (index, row) in rows.iter().enumerate() {
        for (column, name) in header.iter().enumerate() {
            let (at, text) = ((index + 1) as u32, row[name].as_str());
            if numbers.contains(&(index, name.as_str())) {
                sheet.write_number(at, column as u16, text.parse::<f64>().expect("a number")).expect("a cell");
            } else if !text.is_empty() {
                sheet.write_string(at, column as u16, text).expect("a cell");
            }
        }
    }
    workbook.save(to).expect("the edited workbook is saved");
}

#[test]
fn an_export_to_a_workbook_holds_every_cell_as_text_with_its_header_frozen_and_its_notes_apart() {
    let server = Server::start(3, Faults::default());
    server.sandbox.edit_customer(&customer(0), "defaultAddress.postalCode", "02134").expect("an edit");
    server.sandbox.edit_customer(&customer(1), "companyName", "Müller GmbH").expect("an edit");
    server.sandbox.edit_customer(&customer(2), "defaultAddress.phoneNumber", "+1 425 555 0100").expect("an edit");
    let trip = Trip::new();
    let out = trip.path("current.xlsx");
    ok(&trip.run(&server, "export", &["--out", &out]));
    ok(&trip.export(&server, &[]));
    let (header, rows) = workbook_table(Path::new(&out));
    assert_eq!(header, trip.table("current.csv").0, "the same columns as the CSV export");
    let ids: Vec<&str> = rows.iter().map(|row| row["customer_id"].as_str()).collect();
    assert_eq!(ids, [customer(0), customer(1), customer(2)], "the listing's order");
    assert_eq!(rows[0]["defaultAddress.postalCode"], "02134");
    assert_eq!(rows[1]["companyName"], "Müller GmbH");
    assert_eq!(rows[2]["defaultAddress.phoneNumber"], "+1 425 555 0100", "a workbook's text is never a formula: no '");
    let export = &rows[0]["#export"];
    assert!(export.len() == 8 && rows.iter().all(|row| &row["#export"] == export), "{rows:?}");
    let cells = crate::excel::sheet_rows(Path::new(&out));
    for cell in cells.iter().flatten() {
        let text = matches!(cell, calamine::Data::String(_) | calamine::Data::Empty);
        assert!(text, "every cell is stored as text: {cell:?}");
    }
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&out).expect("the workbook")).expect("a zip");
    let mut xml = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("xl/worksheets/sheet1.xml").expect("a sheet"), &mut xml)
        .expect("the sheet's XML");
    assert!(xml.contains(r#"state="frozen""#) && xml.contains(r#"<autoFilter ref="A1:"#), "{xml}");
    assert!(xml.contains("<cols><col"), "columns sized: {xml}");
    let style = |column: &str| {
        let cell = format!(r#"<c r="{column}2" s=""#);
        let at = xml.find(&cell).expect("the cell") + cell.len();
        xml[at..].split('"').next().expect("a style").to_string()
    };
    let last = header.len() - 1;
    let note_column = char::from(b'A' + last as u8).to_string();
    assert_ne!(style("A"), style(&note_column), "note columns are set apart");
    // The export's report follows the same rule: a workbook for a workbook.
    let report = crate::excel::sheet_rows(&trip.work.path("current.xlsx.export-report.xlsx"));
    assert_eq!(report.len(), 4, "a header and a row per customer");
}

#[test]
fn a_csv_export_takes_the_delimiter_given_for_itself_and_its_report() {
    let server = Server::start(2, Faults::default());
    let trip = Trip::new();
    ok(&trip.export(&server, &["--delimiter", ";"]));
    let text = std::fs::read_to_string(trip.work.path("current.csv")).expect("the export");
    let header = text.strip_prefix('\u{feff}').expect("a byte-order mark").lines().next().expect("a header");
    assert!(header.starts_with("customer_id;firstName;"), "{header}");
    let report = std::fs::read_to_string(trip.work.path("current.csv.export-report.csv")).expect("the report");
    assert!(report.starts_with("\u{feff}line;"), "{report}");
    let semi = trip.path("current.csv");
    let validated = pcbulk_with(&["validate", &semi, "--delimiter", ";"], &[]);
    assert!(validated.status.success(), "an unedited export changes nothing: {}", stderr(&validated));
}

#[test]
fn an_edited_workbook_is_applied_three_way_as_a_csv_is() {
    let server = Server::start(12, Faults::default());
    server.sandbox.edit_customer(&customer(5), "defaultAddress.postalCode", "02134").expect("an edit");
    server.sandbox.edit_customer(&customer(9), "defaultAddress.addressLine2", "Suite 9").expect("an edit");
    let trip = Trip::new();
    let current = trip.path("current.xlsx");
    ok(&trip.run(&server, "export", &["--out", &current]));
    let edited = trip.path("edited copy.xlsx");
    edit_workbook(Path::new(&current), Path::new(&edited), &[(5, "defaultAddress.postalCode")], |rows| {
        rows[3].insert("defaultAddress.city".into(), "Trondheim".into());
        rows[7].insert("email".into(), "billing@contoso.example".into());
        rows[9].insert("defaultAddress.addressLine2".into(), String::new());
        rows[5].insert("defaultAddress.postalCode".into(), "2134".into());
    });
    let validated = pcbulk_with(&["validate", &edited, "--base", &current], &[]);
    assert_eq!(validated.status.code(), Some(2), "{}", stderr(&validated));
    let printed = String::from_utf8_lossy(&validated.stdout).into_owned();
    assert!(printed.contains("line 7, column defaultAddress.postalCode: value \"2134\""), "{printed}");
    assert!(printed.contains("leading zeros") && printed.contains("\"02134\""), "{printed}");
    let before = profile_requests(&server);
    let dry = trip.run(&server, "apply", &[&edited, "--dry-run", "--no-preflight"]);
    assert_eq!(dry.status.code(), Some(2), "{}", stderr(&dry));
    assert_eq!(profile_requests(&server) - before, 3, "the dry run reads the 3 changed rows only");
    let (_, report) = workbook_table(&trip.work.path("edited copy.xlsx.dry-run.report.xlsx"));
    let counted =
        |report: &[BTreeMap<String, String>], status: &str| report.iter().filter(|row| row["status"] == status).count();
    assert_eq!(
        [counted(&report, "unchanged"), counted(&report, "would_update"), counted(&report, "invalid")],
        [8, 3, 1]
    );
    apply_changed(&trip, &server, &edited, 3);
    let stored = |index: usize| server.sandbox.customer(&customer(index)).expect("a customer");
    assert_eq!(stored(3)["defaultAddress"]["city"], "Trondheim");
    assert_eq!(stored(7)["email"], "billing@contoso.example");
    assert_eq!(stored(9)["defaultAddress"]["addressLine2"], "", "an emptied cell clears the field");
    assert_eq!(stored(5)["defaultAddress"]["postalCode"], "02134", "Excel's damage is refused");
    let (_, report) = workbook_table(&trip.work.path("edited copy.xlsx.report.xlsx"));
    assert_eq!(status_of(&report, &customer(5)), "invalid");
    assert_eq!(status_of(&report, &customer(3)), "updated");
    // Moved away from the export, named by --base, the change meant: applied.
    let elsewhere = WorkDir::new();
    let moved = elsewhere.path("meant.xlsx");
    std::fs::copy(&edited, &moved).expect("a copy");
    let moved = moved.to_str().expect("a UTF-8 path");
    let lost = trip.run(&server, "apply", &[moved, "--no-preflight"]);
    assert_eq!(lost.status.code(), Some(1), "{}", stderr(&lost));
    assert!(stderr(&lost).contains("--base"), "{}", stderr(&lost));
    let accepted = trip.run(&server, "apply", &[moved, "--no-preflight", "--accept-excel-changes", "--base", &current]);
    ok(&accepted);
    assert_eq!(stored(5)["defaultAddress"]["postalCode"], "2134");
    assert_eq!(stored(3)["defaultAddress"]["city"], "Trondheim");
    assert_eq!(server.counters().lost_edits, 0);
}
