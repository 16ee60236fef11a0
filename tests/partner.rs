//! `pcbulk partner get|set` against the in-process sandbox on 127.0.0.1: each test runs the command in process
//! (`partner::run_with_output`, as the binary would) with a token from `sandbox.mint_token()` passed through the
//! environment closure, and checks what the server stored and counted.

use crate::common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use clap::Parser;
use common::WorkDir;
use pcbulk::cli::Exit;
use pcbulk::cli::partner::{self, PartnerArgs};
use pcbulk::sandbox::{Faults, Sandbox, SandboxConfig, SupportPutPath};
use pcbulk::state::StateFile;
use pcbulk::state::audit::{PartnerOutcome, partner_changes};
use pcbulk::wire::PartnerProfileKind;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The `pcbulk partner` part of the command line, as the binary parses it.
#[derive(Parser)]
struct PartnerCli {
    #[command(flatten)]
    partner: PartnerArgs,
}

/// The shape the binary's command line takes once `Partner(PartnerArgs)` is one of its subcommands.
#[derive(Parser)]
struct PcbulkCli {
    #[command(subcommand)]
    command: PcbulkCommand,
}

#[derive(clap::Subcommand)]
enum PcbulkCommand {
    Partner(PartnerArgs),
}

#[test]
fn the_partner_command_line_parses_as_a_subcommand() {
    let line = ["pcbulk", "partner", "set", "support", "--set", "email=a@b.example", "--set", "website=b.example"];
    let PcbulkCommand::Partner(args) = PcbulkCli::try_parse_from(line).unwrap().command;
    let partner::PartnerCommand::Set(set) = args.command else { panic!("expected set") };
    assert_eq!(set.set, ["email=a@b.example", "website=b.example"]);
    assert_eq!(set.write.state, PathBuf::from(partner::DEFAULT_STATE));
    assert!(!set.write.dry_run && !set.write.yes);
    assert!(PcbulkCli::try_parse_from(["pcbulk", "partner", "set", "support"]).is_err(), "--set is required");
    let get = PcbulkCli::try_parse_from(["pcbulk", "partner", "get", "billing", "--base-url", "http://127.0.0.1:9"]);
    assert!(get.is_ok());
}

/// What one run of `pcbulk partner ...` gave.
struct Ran {
    result: Result<Exit, String>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn ok(&self) -> &Self {
        assert_eq!(self.result, Ok(Exit::Clean), "stderr: {}", self.stderr);
        self
    }

    fn error(&self) -> &str {
        self.result.as_ref().err().map(String::as_str).unwrap_or_else(|| panic!("expected an error: {}", self.stderr))
    }
}

/// A sandbox, a token for it, and a work directory for the state file.
struct Setup {
    sandbox: Sandbox,
    token: String,
    dir: WorkDir,
}

impl Setup {
    async fn start() -> Setup {
        Setup::start_with(SandboxConfig::default()).await
    }

    async fn start_with(config: SandboxConfig) -> Setup {
        let sandbox = Sandbox::start(config).await.expect("the sandbox starts");
        let token = sandbox.mint_token();
        Setup { sandbox, token, dir: WorkDir::new() }
    }

    fn state_path(&self) -> PathBuf {
        self.dir.path("partner.db")
    }

    fn profile(&self, kind: PartnerProfileKind) -> Value {
        self.sandbox.partner_profile(kind).expect("the sandbox serves every partner profile")
    }

    /// Runs `pcbulk partner ARGS --base-url SANDBOX [--state FILE]` in process.
    async fn run(&self, args: &[&str]) -> Ran {
        self.run_against(self.sandbox.url(), args).await
    }

    async fn run_against(&self, base_url: &str, args: &[&str]) -> Ran {
        self.run_with(base_url, args, vec![("PCBULK_TOKEN".to_string(), self.token.clone())]).await
    }

    /// Runs with this environment (names and values) instead of a token.
    async fn run_with(&self, base_url: &str, args: &[&str], environment: Vec<(String, String)>) -> Ran {
        let mut line: Vec<String> = ["pcbulk"].iter().chain(args).map(|arg| arg.to_string()).collect();
        line.extend(["--base-url".to_string(), base_url.to_string()]);
        if matches!(args.first(), Some(&"set" | &"undo")) && !args.contains(&"--state") {
            line.extend(["--state".to_string(), self.state_path().display().to_string()]);
        }
        let parsed = PartnerCli::try_parse_from(&line).expect("the command line parses").partner;
        tokio::task::spawn_blocking(move || {
            let environment =
                move |name: &str| environment.iter().find(|(known, _)| known == name).map(|(_, value)| value.clone());
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            let result = partner::run_with_output(parsed, &environment, &mut stdout, &mut stderr);
            Ran {
                result: result.map_err(|error| format!("{error:#}")),
                stdout: String::from_utf8_lossy(&stdout).into_owned(),
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
            }
        })
        .await
        .expect("the command does not panic")
    }

    fn puts(&self, kind: PartnerProfileKind) -> u64 {
        let key = format!("partner:{}", kind.name());
        self.sandbox.counters().put_attempts.get(&key).copied().unwrap_or(0)
    }

    fn audit(&self, kind: PartnerProfileKind) -> Vec<pcbulk::state::audit::PartnerChange> {
        let state = StateFile::open_existing(&self.state_path()).expect("the state file exists");
        partner_changes(&state, kind).expect("the audit trail reads")
    }
}

/// The profile with these top-level or dotted fields and the etag taken out, to compare the rest.
fn without(profile: &Value, paths: &[&str]) -> Value {
    let mut rest = profile.clone();
    for path in paths.iter().chain(&["attributes.etag"]) {
        let keys: Vec<&str> = path.split('.').collect();
        let (leaf, parents) = keys.split_last().expect("a path has a key");
        let mut object = &mut rest;
        for parent in parents {
            object = &mut object[*parent];
        }
        if let Some(fields) = object.as_object_mut() {
            fields.shift_remove(*leaf);
        }
    }
    rest
}

#[tokio::test]
async fn get_prints_each_profile_exactly_as_read() {
    let setup = Setup::start().await;
    for kind in PartnerProfileKind::ALL {
        let ran = setup.run(&["get", kind.name()]).await;
        ran.ok();
        let printed: Value = serde_json::from_str(&ran.stdout).expect("get prints json");
        let stored = setup.profile(kind);
        assert_eq!(printed, stored, "{}", kind.name());
        // Key order is kept too.
        assert_eq!(serde_json::to_string(&printed).unwrap(), serde_json::to_string(&stored).unwrap());
    }
    let legal = setup.run(&["get", "LegalBusiness"]).await;
    assert!(legal.ok().stdout.contains("\"vettingStatus\": \"authorized\""), "{}", legal.stdout);
    assert!(setup.run(&["get", "payroll"]).await.error().contains("KIND: value \"payroll\": not a partner profile"));
}

#[tokio::test]
async fn set_support_changes_the_telephone_and_the_website_and_nothing_else() {
    let setup = Setup::start().await;
    let before = setup.profile(PartnerProfileKind::Support);
    let ran = setup
        .run(&[
            "set",
            "support",
            "--set",
            "Telephone= +1 425 555 0199 ",
            "--set",
            "website=https://support.lucerne.example",
        ])
        .await;
    ran.ok();
    let after = setup.profile(PartnerProfileKind::Support);
    assert_eq!(after["telephone"], "+1 425 555 0199");
    assert_eq!(after["website"], "https://support.lucerne.example");
    assert_eq!(without(&after, &["telephone", "website"]), without(&before, &["telephone", "website"]));
    assert_eq!(setup.puts(PartnerProfileKind::Support), 1);
    assert!(ran.stderr.contains("telephone: \"4255555555\" → \"+1 425 555 0199\""), "{}", ran.stderr);
    assert!(setup.sandbox.counters().fields_dropped.is_empty());
}

#[tokio::test]
async fn set_billing_purchase_order_keeps_the_tax_id() {
    let setup = Setup::start().await;
    let before = setup.profile(PartnerProfileKind::Billing);
    setup.run(&["set", "billing", "--set", "purchaseOrderNumber=PO-2024-17"]).await.ok();
    let after = setup.profile(PartnerProfileKind::Billing);
    assert_eq!(after["purchaseOrderNumber"], "PO-2024-17");
    assert_eq!(after["taxId"], before["taxId"]);
    assert_eq!(without(&after, &["purchaseOrderNumber"]), without(&before, &["purchaseOrderNumber"]));
    assert_ne!(after["attributes"]["etag"], before["attributes"]["etag"]);
}

#[tokio::test]
async fn every_kind_can_be_set_and_keeps_its_other_fields() {
    let setup = Setup::start().await;
    let cases = [
        (PartnerProfileKind::Billing, "address.city", "Seattle"),
        (PartnerProfileKind::LegalBusiness, "companyApproverEmail", "approver@lucerne.example"),
        (PartnerProfileKind::Organization, "defaultAddress.phoneNumber", "4255550123"),
        (PartnerProfileKind::Support, "email", "help@lucerne.example"),
    ];
    for (kind, path, value) in cases {
        let before = setup.profile(kind);
        let assignment = format!("{path}={value}");
        setup.run(&["set", kind.name(), "--set", &assignment, "--yes"]).await.ok();
        let after = setup.profile(kind);
        let keys: Vec<&str> = path.split('.').collect();
        let mut changed = &after;
        for key in &keys {
            changed = &changed[*key];
        }
        assert_eq!(changed, value, "{}", kind.name());
        assert_eq!(without(&after, &[path]), without(&before, &[path]), "{}", kind.name());
        let audit = setup.audit(kind);
        assert_eq!(audit.len(), 1, "{}", kind.name());
        assert_eq!(audit[0].outcome, Some(PartnerOutcome::Updated));
        assert_eq!(audit[0].changed_fields, path);
    }
}

#[tokio::test]
async fn the_legal_business_profile_needs_yes_but_a_dry_run_does_not() {
    let setup = Setup::start().await;
    let before = setup.profile(PartnerProfileKind::LegalBusiness);
    // Issue 15: `companyName` (the legal name) is the service's now; the approver's email is the partner's.
    let ran =
        setup.run(&["set", "legalbusiness", "--set", "companyApproverEmail=legal@lucernepublishing.example"]).await;
    assert!(ran.error().contains("add --yes"), "{}", ran.error());
    assert!(ran.stderr.contains("may verify the partner again"), "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("companyApproverEmail: \"gena@lucernepublishing.example\" → \"legal@lucernepublishing.example\""),
        "{}",
        ran.stderr
    );
    let dry = setup
        .run(&["set", "legalbusiness", "--set", "companyApproverEmail=legal@lucernepublishing.example", "--dry-run"])
        .await;
    assert!(dry.ok().stderr.contains("dry run: nothing was sent"), "{}", dry.stderr);
    assert_eq!(setup.puts(PartnerProfileKind::LegalBusiness), 0);
    assert_eq!(setup.profile(PartnerProfileKind::LegalBusiness), before);
    assert!(setup.audit(PartnerProfileKind::LegalBusiness).is_empty());
}

#[tokio::test]
async fn a_service_owned_or_unknown_field_is_refused_before_any_request() {
    let setup = Setup::start().await;
    let ran = setup.run(&["set", "legalbusiness", "--set", "vettingStatus=authorized", "--yes"]).await;
    assert_eq!(ran.error(), "--set vettingStatus=authorized: vettingStatus is owned by Partner Center: cannot be set");
    let ran = setup.run(&["set", "organization", "--set", "tenantId=x"]).await;
    assert!(ran.error().contains("owned by Partner Center"), "{}", ran.error());
    let ran = setup.run(&["set", "billing", "--set", "address.country=UK"]).await;
    assert!(ran.error().starts_with("--set address.country=UK: not an ISO 3166-1 alpha-2 country code: use GB"));
    let ran = setup.run(&["set", "billing", "--set", "adress.city=Seattle"]).await;
    assert!(ran.error().contains("did you mean address.city?"), "{}", ran.error());
    let counters = setup.sandbox.counters();
    assert_eq!(counters.requests.values().sum::<u64>(), 0, "{:?}", counters.requests);
    assert!(!setup.state_path().exists());
}

#[tokio::test]
async fn a_dry_run_reads_and_shows_but_sends_no_put() {
    let setup = Setup::start().await;
    let before = setup.profile(PartnerProfileKind::Organization);
    let ran = setup.run(&["set", "organization", "--set", "culture=en-gb", "--set", "language=EN", "--dry-run"]).await;
    assert!(ran.ok().stderr.contains("culture: \"en-US\" → \"en-GB\""), "{}", ran.stderr);
    assert!(ran.stderr.contains("1 field to change"), "{}", ran.stderr);
    assert_eq!(setup.puts(PartnerProfileKind::Organization), 0);
    assert_eq!(setup.profile(PartnerProfileKind::Organization), before);
    assert!(!setup.state_path().exists(), "a dry run makes no state file");
}

#[tokio::test]
async fn values_already_in_place_send_no_put() {
    let setup = Setup::start().await;
    let ran = setup.run(&["set", "support", "--set", "telephone=4255555555"]).await;
    assert!(ran.ok().stderr.contains("no change"), "{}", ran.stderr);
    assert_eq!(setup.puts(PartnerProfileKind::Support), 0);
    assert!(setup.audit(PartnerProfileKind::Support).is_empty());
}

#[tokio::test]
async fn the_audit_trail_holds_before_and_after_and_the_ids() {
    let setup = Setup::start().await;
    setup
        .run(&["set", "billing", "--set", "taxId=<clear>", "--set", "primaryContact.email=ap@lucerne.example"])
        .await
        .ok();
    let audit = setup.audit(PartnerProfileKind::Billing);
    assert_eq!(audit.len(), 1);
    let row = &audit[0];
    assert_eq!(row.kind, "billing");
    assert_eq!(row.changed_fields, "taxId primaryContact.email");
    assert_eq!(row.before, r#"{"taxId":"91-1144442","primaryContact.email":"gena@lucernepublishing.example"}"#);
    assert_eq!(row.after, r#"{"taxId":"","primaryContact.email":"ap@lucerne.example"}"#);
    assert_eq!((row.outcome, row.call.http_status), (Some(PartnerOutcome::Updated), Some(200)));
    assert!(row.call.request_id.is_some() && row.call.correlation_id.is_some() && row.finished_at.is_some());
    assert_eq!(row.base_url, setup.sandbox.url());
    let file = std::fs::read(setup.state_path()).unwrap();
    assert!(!String::from_utf8_lossy(&file).contains(&setup.token), "no token in the state file");
}

#[tokio::test]
async fn a_put_whose_answer_is_lost_is_settled_by_reading_again() {
    let setup = Setup::start().await;
    setup.sandbox.set_faults(Faults { drop_after_commit: 1.0, ..Faults::default() }).unwrap();
    let ran = setup.run(&["set", "support", "--set", "website=https://help.lucerne.example"]).await;
    assert!(ran.ok().stderr.contains("answer was lost"), "{}", ran.stderr);
    assert_eq!(setup.puts(PartnerProfileKind::Support), 1, "never sent twice");
    assert_eq!(setup.profile(PartnerProfileKind::Support)["website"], "https://help.lucerne.example");
    let audit = setup.audit(PartnerProfileKind::Support);
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].outcome, Some(PartnerOutcome::Updated));
}

/// A stand-in between pcbulk and the sandbox: forwards every request; after the first `edits` GETs of the
/// billing profile, someone else changes `primaryContact.phoneNumber` before the answer goes back; with
/// `refuse_puts`, answers every PUT with a 400 of the service's shape.
struct Meddler {
    target: String,
    token: String,
    edits: AtomicU32,
    refuse_puts: bool,
    http: reqwest::Client,
}

async fn meddle(
    State(meddler): State<Arc<Meddler>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::PUT && meddler.refuse_puts {
        let refusal =
            json!({"code": 27002, "description": "A property has invalid data", "data": [], "source": "PartnerFD"});
        return (StatusCode::BAD_REQUEST, axum::Json(refusal)).into_response();
    }
    let url = format!("{}{}", meddler.target, uri.path());
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
    let mut request = meddler.http.request(method.clone(), &url).body(body.to_vec());
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = request.send().await.unwrap();
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let bytes = answer.bytes().await.unwrap();
    let billing = uri.path() == PartnerProfileKind::Billing.get_path();
    if method == reqwest::Method::GET && billing && meddler.edits.load(Ordering::SeqCst) > 0 {
        meddler.edits.fetch_sub(1, Ordering::SeqCst);
        let mut theirs: Value = serde_json::from_slice(&bytes).unwrap();
        theirs["primaryContact"]["phoneNumber"] = json!("4255550000");
        let etag = theirs["attributes"]["etag"].as_str().unwrap().to_string();
        let edit = meddler.http.put(&url).bearer_auth(&meddler.token).header("If-Match", etag).json(&theirs);
        assert!(edit.send().await.unwrap().status().is_success(), "someone else's edit lands");
    }
    (status, [("content-type", "application/json")], bytes).into_response()
}

async fn start_meddler(setup: &Setup, edits: u32, refuse_puts: bool) -> String {
    let meddler = Arc::new(Meddler {
        target: setup.sandbox.url().to_string(),
        token: setup.token.clone(),
        edits: AtomicU32::new(edits),
        refuse_puts,
        http: reqwest::Client::new(),
    });
    let app = axum::Router::new().fallback(meddle).with_state(meddler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn an_edit_between_get_and_put_is_merged_again_and_survives() {
    let setup = Setup::start().await;
    let meddler = start_meddler(&setup, 1, false).await;
    let ran = setup.run_against(&meddler, &["set", "billing", "--set", "purchaseOrderNumber=PO-77"]).await;
    assert!(ran.ok().stderr.contains("changed since it was read: reading it again"), "{}", ran.stderr);
    let after = setup.profile(PartnerProfileKind::Billing);
    assert_eq!(after["purchaseOrderNumber"], "PO-77");
    assert_eq!(after["primaryContact"]["phoneNumber"], "4255550000", "the other edit survives");
    assert_eq!(setup.sandbox.counters().precondition_failed, 1);
    let outcomes: Vec<_> = setup.audit(PartnerProfileKind::Billing).iter().map(|row| row.outcome).collect();
    assert_eq!(outcomes, [Some(PartnerOutcome::Conflict), Some(PartnerOutcome::Updated)]);
}

#[tokio::test]
async fn a_profile_that_keeps_changing_is_given_up_on() {
    let setup = Setup::start().await;
    let meddler = start_meddler(&setup, 100, false).await;
    let ran = setup.run_against(&meddler, &["set", "billing", "--set", "purchaseOrderNumber=PO-78"]).await;
    assert!(ran.error().contains("kept changing"), "{}", ran.error());
    assert_eq!(setup.sandbox.counters().precondition_failed, u64::from(pcbulk::partner::RE_MERGES) + 1);
    assert_ne!(setup.profile(PartnerProfileKind::Billing)["purchaseOrderNumber"], "PO-78");
}

#[tokio::test]
async fn a_refused_put_fails_with_the_services_words_and_ids() {
    let setup = Setup::start().await;
    let meddler = start_meddler(&setup, 0, true).await;
    let ran = setup.run_against(&meddler, &["set", "billing", "--set", "purchaseOrderNumber=PO-79"]).await;
    let error = ran.error();
    assert!(error.starts_with("PUT /v1/profiles/billing: http 400: 27002: A property has invalid data"), "{error}");
    assert!(error.contains("request id ") && error.contains("correlation id "), "{error}");
    let audit = setup.audit(PartnerProfileKind::Billing);
    assert_eq!((audit[0].outcome, audit[0].call.http_status), (Some(PartnerOutcome::Failed), Some(400)));
    assert_eq!(audit[0].call.error_code.as_deref(), Some("27002"));
    assert!(error.contains(audit[0].call.request_id.as_deref().unwrap()), "{error}");
}

#[tokio::test]
async fn undo_puts_back_the_last_change_and_nothing_else() {
    let setup = Setup::start().await;
    let before = setup.profile(PartnerProfileKind::Support);
    setup
        .run(&["set", "support", "--set", "telephone=+1 425 555 0199", "--set", "website=help.contoso.example"])
        .await
        .ok();
    let changed = setup.profile(PartnerProfileKind::Support);
    assert_ne!(changed["telephone"], before["telephone"]);
    let ran = setup.run(&["undo", "support"]).await;
    ran.ok();
    assert!(ran.stderr.contains("undoing change"), "{}", ran.stderr);
    let after = setup.profile(PartnerProfileKind::Support);
    assert_eq!(without(&after, &[]), without(&before, &[]), "every field as it was before the change");
    assert_eq!(setup.puts(PartnerProfileKind::Support), 2);
    assert_eq!(setup.audit(PartnerProfileKind::Support).len(), 2, "the undo is in the audit trail too");
}

#[tokio::test]
async fn undo_leaves_a_profile_changed_since_as_found() {
    let setup = Setup::start().await;
    setup.run(&["set", "billing", "--set", "purchaseOrderNumber=PO-1"]).await.ok();
    // Someone else (another state file: another operator) changes the same field afterwards.
    let other = setup.dir.path("someone-else.db").display().to_string();
    setup.run(&["set", "billing", "--set", "purchaseOrderNumber=PO-2", "--state", &other]).await.ok();
    let ran = setup.run(&["undo", "billing"]).await;
    assert!(ran.error().contains("was changed since change"), "{}", ran.error());
    assert_eq!(setup.profile(PartnerProfileKind::Billing)["purchaseOrderNumber"], "PO-2");
    assert_eq!(setup.puts(PartnerProfileKind::Billing), 2, "the undo sent nothing");
}

/// Issue 15, point 1: the support profile's PUT goes to `/v1/profiles/support`, as both SDKs send it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_the_support_profile_is_put_where_the_sdks_put_it() {
    let setup = Setup::start().await;
    setup.run(&["set", "support", "--set", "telephone=4255550142"]).await.ok();
    let counters = setup.sandbox.counters();
    assert_eq!(counters.requests_by_route.get("partner_support"), Some(&2), "one GET, one PUT");
    assert_eq!(counters.requests_by_route.get("partner_support_documented"), None);
    assert_eq!(setup.profile(PartnerProfileKind::Support)["telephone"], "4255550142");
}

/// Issue 15, point 1: where only the documented `/v1/profiles/supportprofile` takes the PUT, the first PUT meets 405
/// and goes there once; the path is remembered, so the next change goes there directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_the_documented_support_path_is_the_fallback_and_is_remembered() {
    let config = SandboxConfig { support_put_path: SupportPutPath::Documented, ..SandboxConfig::default() };
    let setup = Setup::start_with(config).await;
    setup.run(&["set", "support", "--set", "telephone=4255550143"]).await.ok();
    setup.run(&["set", "support", "--set", "telephone=4255550144"]).await.ok();
    let counters = setup.sandbox.counters();
    assert_eq!(counters.requests_with("PUT", 405), 1, "only the first change tried /v1/profiles/support");
    assert_eq!(counters.requests_by_route.get("partner_support_documented"), Some(&2));
    assert_eq!(setup.profile(PartnerProfileKind::Support)["telephone"], "4255550144");
    assert_eq!(setup.audit(PartnerProfileKind::Support).len(), 2, "one audited change each");
}

/// Issue 15, point 7: with app-only credentials (client-credentials grant), the profiles that take App+User only
/// are refused before anything is sent, naming the credentials to use; the legal business GET takes app-only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_app_only_credentials_are_refused_before_anything_is_sent() {
    let setup = Setup::start().await;
    let url = setup.sandbox.url().to_string();
    let app_only = vec![("PCBULK_CLIENT_SECRET".to_string(), setup.sandbox.credentials().client_secret.clone())];
    let client_id = setup.sandbox.credentials().client_id.clone();
    let grant = ["--tenant", "sandbox-tenant", "--client-id", client_id.as_str(), "--authority", url.as_str()];
    fn with_grant<'a>(args: &[&'a str], grant: &[&'a str]) -> Vec<&'a str> {
        args.iter().chain(grant).copied().collect()
    }
    for args in [
        &["get", "billing"][..],
        &["set", "support", "--set", "telephone=4255550145"],
        &["set", "legalbusiness", "--set", "primaryContact.phoneNumber=4255550146", "--yes"],
    ] {
        let ran = setup.run_with(&url, &with_grant(args, &grant), app_only.clone()).await;
        let error = ran.error();
        assert!(error.contains("needs App+User credentials") && error.contains("PCBULK_REFRESH_TOKEN"), "{error}");
    }
    let counters = setup.sandbox.counters();
    assert!(counters.requests.is_empty(), "nothing was sent: {counters:?}");
    assert_eq!(counters.tokens_issued.get("client_credentials"), None, "not even the token request");
    setup.run_with(&url, &with_grant(&["get", "legalbusiness"], &grant), app_only).await.ok();
    assert_eq!(setup.sandbox.counters().tokens_issued.get("client_credentials"), Some(&1));
}

/// Issue 15, point 8: the legal business profile's legal name and the country of its legal address are the
/// service's: refused by name with the reason, before any call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_legal_business_fields_the_service_owns_are_refused_with_the_reason() {
    let setup = Setup::start().await;
    let country = setup.run(&["set", "legalbusiness", "--set", "address.country=CA", "--yes"]).await;
    assert!(
        country.error().contains("does not let a partner change the country of its legal address"),
        "{}",
        country.error()
    );
    let name = setup.run(&["set", "legalbusiness", "--set", "companyName=Lucerne Holdings", "--yes"]).await;
    assert!(
        name.error().contains("legal name changes only through a request to Partner Center support"),
        "{}",
        name.error()
    );
    assert!(setup.sandbox.counters().requests.is_empty(), "nothing was sent");
    // The sandbox, like the service, keeps them too: a body that changes one is refused.
    let client = pcbulk::client::connect(&common::rig::api(&setup.sandbox, common::rig::pace(1000, 1, 1))).unwrap();
    let mut legal = setup.profile(PartnerProfileKind::LegalBusiness);
    let etag = legal["attributes"]["etag"].as_str().unwrap().to_string();
    legal["address"]["country"] = json!("CA");
    let refused = client.put("/v1/profiles/legalbusiness", &legal, Some(&etag)).await.unwrap_err();
    assert_eq!(refused.status(), Some(400));
}

/// Issue 15: the legal business profile is read with `?vettingVersion=Current`, as the docs' example and the .NET
/// SDK send it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_the_legal_business_profile_is_read_with_the_current_vetting_version() {
    let setup = Setup::start().await;
    let ran = setup.run(&["get", "legalbusiness"]).await;
    ran.ok();
    assert!(ran.stdout.contains("vettingStatus"));
    assert_eq!(setup.sandbox.counters().vetting_version_current, 1);
}

/// Issue 15, point 3: `--cloud china` asks the token endpoint for the 21Vianet audience (a sandbox that accepts only
/// that one issues the token); `--base-url` and `--authority` still point at the sandbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_the_china_cloud_asks_for_its_own_token_audience() {
    let config = SandboxConfig {
        token_resource: "https://partner.partnercenterapi.microsoftonline.cn".into(),
        ..SandboxConfig::default()
    };
    let setup = Setup::start_with(config).await;
    let url = setup.sandbox.url().to_string();
    let client_id = setup.sandbox.credentials().client_id.clone();
    let grant = vec![("PCBULK_CLIENT_SECRET".to_string(), setup.sandbox.credentials().client_secret.clone())];
    let args =
        ["get", "legalbusiness", "--tenant", "t", "--client-id", client_id.as_str(), "--authority", url.as_str()];
    let public = setup.run_with(&url, &args, grant.clone()).await;
    assert!(public.error().contains("no access token"), "{}", public.error());
    let china: Vec<&str> = args.iter().copied().chain(["--cloud", "china"]).collect();
    setup.run_with(&url, &china, grant).await.ok();
    let counters = setup.sandbox.counters();
    assert_eq!(counters.token_refusals, 1, "the public audience was refused");
    assert_eq!(counters.tokens_issued.get("client_credentials"), Some(&1));
    assert_eq!(counters.requests_by_route.get("partner_legalbusiness"), Some(&1));
}

/// Issue 15: from April 2026 Partner Center refuses App+User calls signed in without MFA. The sandbox answers such a
/// token with a 401 naming MFA; the token is renewed once, then pcbulk says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_an_app_user_token_without_mfa_is_named_with_what_to_do() {
    let config =
        SandboxConfig { faults: Faults { mfa_required: true, ..Faults::default() }, ..SandboxConfig::default() };
    let setup = Setup::start_with(config).await;
    let url = setup.sandbox.url().to_string();
    let client_id = setup.sandbox.credentials().client_id.clone();
    let refresh = vec![("PCBULK_REFRESH_TOKEN".to_string(), setup.sandbox.credentials().refresh_token.clone())];
    let args = ["get", "billing", "--tenant", "t", "--client-id", client_id.as_str(), "--authority", url.as_str()];
    let ran = setup.run_with(&url, &args, refresh).await;
    let error = ran.error();
    assert!(error.contains("requires multifactor authentication for App+User calls"), "{error}");
    assert!(error.contains("sign in again with MFA"), "{error}");
    let counters = setup.sandbox.counters();
    assert_eq!(counters.unauthorized, 2, "one 401, one renewal, one more 401");
    assert_eq!(counters.tokens_issued.get("refresh_token"), Some(&2));
}
