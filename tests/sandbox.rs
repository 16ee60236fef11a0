//! The sandbox as its clients see it: each test starts one in-process on 127.0.0.1:0, talks to it with reqwest, and
//! checks both what the client saw and what the server counted.

use pcbulk::sandbox::{Counters, Faults, Sandbox, SandboxConfig, StaleEtag};
use pcbulk::wire::{self, ErrorBody, PartnerProfileKind, ThrottleBody, TokenResponse};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// A client of one sandbox, holding a valid token.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// What a call answered.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> Option<i64> {
        let body: ErrorBody = serde_json::from_value(self.body.clone()).unwrap_or_default();
        body.code.as_ref().and_then(wire::ErrorCode::as_number)
    }

    fn etag(&self) -> String {
        self.body["attributes"]["etag"].as_str().unwrap_or_default().to_string()
    }
}

async fn start(config: SandboxConfig) -> (Sandbox, Api) {
    let sandbox = Sandbox::start(config).await.expect("the sandbox starts");
    let api = Api { http: reqwest::Client::new(), base: sandbox.url().to_string(), token: sandbox.mint_token() };
    (sandbox, api)
}

async fn start_with(customers: usize, faults: Faults) -> (Sandbox, Api) {
    start(SandboxConfig { customers, faults, ..SandboxConfig::default() }).await
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { status, headers, body })
    }

    async fn get(&self, path: &str) -> Answer {
        let request = self.http.get(self.url(path)).bearer_auth(&self.token);
        self.send(request).await.expect("the GET is answered")
    }

    async fn put(&self, path: &str, if_match: Option<&str>, body: &Value) -> Answer {
        let mut request = self.http.put(self.url(path)).bearer_auth(&self.token).json(body);
        if let Some(etag) = if_match {
            request = request.header("If-Match", format!("\"{etag}\""));
        }
        self.send(request).await.expect("the PUT is answered")
    }

    async fn get_customer(&self, id: &str) -> Answer {
        self.get(&wire::customer_billing_profile_path(id)).await
    }

    async fn put_customer(&self, id: &str, if_match: Option<&str>, body: &Value) -> Answer {
        self.put(&wire::customer_billing_profile_path(id), if_match, body).await
    }

    async fn token(&self, form: &[(&str, &str)]) -> Answer {
        let request = self.http.post(self.url(&wire::token_path("contoso.onmicrosoft.com"))).form(form);
        self.send(request).await.expect("the token endpoint answers")
    }

    async fn client_credentials(&self, secret: &str) -> Answer {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
            ("client_secret", secret),
            ("resource", wire::TOKEN_RESOURCE),
        ];
        self.token(&form).await
    }

    async fn refresh(&self, refresh_token: &str) -> Answer {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "sandbox-client"),
            ("resource", wire::TOKEN_RESOURCE),
        ];
        self.token(&form).await
    }

    /// The same client with another token.
    fn with_token(&self, token: &str) -> Api {
        Api { http: self.http.clone(), base: self.base.clone(), token: token.to_string() }
    }

    async fn side_post(&self, path: &str, body: Value) -> Answer {
        self.send(self.http.post(self.url(path)).json(&body)).await.expect("the side endpoint answers")
    }

    async fn side_counters(&self) -> Counters {
        let answer = self.send(self.http.get(self.url("/_sandbox/counters"))).await.expect("counters are served");
        serde_json::from_value(answer.body).expect("counters parse")
    }
}

fn first_customer(sandbox: &Sandbox) -> String {
    sandbox.customer_ids().first().cloned().expect("one customer at least")
}

#[tokio::test]
async fn a_stale_etag_is_412_and_the_etag_changes_on_every_write() {
    let (sandbox, api) = start_with(1, Faults::default()).await;
    let id = first_customer(&sandbox);
    let read = api.get_customer(&id).await;
    assert_eq!(read.status, StatusCode::OK);
    let first_etag = read.etag();
    let mut body = read.body.clone();
    body["companyName"] = json!("Renamed Ltd");
    let written = api.put_customer(&id, Some(&first_etag), &body).await;
    assert_eq!(written.status, StatusCode::OK);
    assert_ne!(written.etag(), first_etag);
    assert_eq!(written.body["companyName"], "Renamed Ltd");

    let stale = api.put_customer(&id, Some(&first_etag), &body).await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let again = api.put_customer(&id, Some(&written.etag()), &written.body).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_ne!(again.etag(), written.etag(), "a write that changes nothing still changes the etag");

    let counters = sandbox.counters();
    assert_eq!(counters.precondition_failed, 1);
    assert_eq!(counters.puts_succeeded.get(&id), Some(&2));
    assert_eq!(counters.put_attempts.get(&id), Some(&3));
    assert_eq!(counters.requests_with("PUT", 412), 1);
}

#[tokio::test]
async fn a_stale_etag_can_be_answered_400_2055_with_the_code_as_a_string() {
    let faults = Faults { stale_etag: StaleEtag::Code2055, ..Faults::default() };
    let config = SandboxConfig { customers: 1, faults, codes_as_strings: true, ..SandboxConfig::default() };
    let (sandbox, api) = start(config).await;
    let id = first_customer(&sandbox);
    let read = api.get_customer(&id).await;
    let stale = api.put_customer(&id, Some("12345"), &read.body).await;
    assert_eq!(stale.status, StatusCode::BAD_REQUEST);
    assert_eq!(stale.body["code"], json!("2055"));
    assert_eq!(stale.code(), Some(2055));
    assert_eq!(stale.body["description"], "Etag is no longer valid");
    assert_eq!(stale.body["source"], "PartnerFD");
    let counters = sandbox.counters();
    assert_eq!(counters.etag_stale_2055, 1);
    assert_eq!(counters.total_puts_succeeded(), 0);
}

#[tokio::test]
async fn a_put_without_if_match_is_412_and_changes_nothing() {
    let (sandbox, api) = start_with(1, Faults::default()).await;
    let id = first_customer(&sandbox);
    let mut body = api.get_customer(&id).await.body;
    body["companyName"] = json!("Nope");
    let answer = api.put_customer(&id, None, &body).await;
    assert_eq!(answer.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(answer.code(), Some(412));
    assert_ne!(sandbox.customer(&id).map(|profile| profile["companyName"].clone()), Some(json!("Nope")));
    assert_eq!(sandbox.counters().precondition_failed, 1);
}

#[tokio::test]
async fn an_unquoted_if_match_is_accepted_too() {
    let (sandbox, api) = start_with(1, Faults::default()).await;
    let id = first_customer(&sandbox);
    let read = api.get_customer(&id).await;
    let request = api
        .http
        .put(api.url(&wire::customer_billing_profile_path(&id)))
        .bearer_auth(&api.token)
        .header("If-Match", read.etag())
        .json(&read.body);
    let answer = api.send(request).await.expect("answered");
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(sandbox.counters().total_puts_succeeded(), 1);
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    let (sandbox, api) = start_with(1, Faults::default()).await;
    let id = first_customer(&sandbox);
    let path = api.url(&wire::customer_billing_profile_path(&id));
    let missing = api.send(api.http.get(&path)).await.expect("answered");
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.code(), Some(401));
    let forged = api.send(api.http.get(&path).bearer_auth("forged")).await.expect("answered");
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(sandbox.counters().unauthorized, 2);
}

#[tokio::test]
async fn tokens_expire_after_their_lifetime() {
    let (sandbox, api) = start_with(1, Faults { token_lifetime_secs: 1, ..Faults::default() }).await;
    let id = first_customer(&sandbox);
    assert_eq!(api.get_customer(&id).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = api.get_customer(&id).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(expired.body["description"].as_str().unwrap_or_default().contains("expired"));
    let counters = sandbox.counters();
    assert_eq!((counters.requests_with("GET", 200), counters.unauthorized), (1, 1));
}

#[tokio::test]
async fn both_grants_issue_tokens_and_a_wrong_secret_is_refused() {
    let (sandbox, api) = start_with(1, Faults::default()).await;
    let id = first_customer(&sandbox);
    let app = api.client_credentials("sandbox-secret").await;
    assert_eq!(app.status, StatusCode::OK);
    assert!(app.body["expires_in"].is_string(), "expires_in is a string, as AAD v1 sends it");
    let app: TokenResponse = serde_json::from_value(app.body).expect("a token response");
    assert_eq!(app.expires_in.0, 3600);
    assert!(app.refresh_token.is_none());

    let user = api.refresh("sandbox-refresh-token").await;
    assert_eq!(user.status, StatusCode::OK);
    let user: TokenResponse = serde_json::from_value(user.body).expect("a token response");
    let new_refresh = user.refresh_token.clone().expect("a new refresh token");
    assert_ne!(new_refresh, "sandbox-refresh-token");
    assert_eq!(api.refresh(&new_refresh).await.status, StatusCode::OK);
    assert_eq!(api.refresh("sandbox-refresh-token").await.status, StatusCode::OK, "the old one stays valid");
    assert_eq!(api.with_token(&app.access_token).get_customer(&id).await.status, StatusCode::OK);
    assert_eq!(api.with_token(&user.access_token).get_customer(&id).await.status, StatusCode::OK);

    let wrong = api.client_credentials("nope").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.body["error"], "invalid_grant");
    assert!(wrong.body["error_description"].is_string());
    let unknown = api.refresh("never-issued").await;
    assert_eq!((unknown.status, unknown.body["error"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_grant")));

    let counters = sandbox.counters();
    assert_eq!(counters.tokens_issued.get("client_credentials"), Some(&1));
    assert_eq!(counters.tokens_issued.get("refresh_token"), Some(&3));
    assert_eq!(counters.token_refusals, 2);
}

#[tokio::test]
async fn revocation_ends_every_access_and_refresh_token() {
    let (sandbox, api) = start_with(1, Faults::default()).await;
    let id = first_customer(&sandbox);
    let user: TokenResponse =
        serde_json::from_value(api.refresh("sandbox-refresh-token").await.body).expect("a token response");
    let new_refresh = user.refresh_token.clone().expect("a new refresh token");
    let revoke = api.send(api.http.post(api.url("/_sandbox/revoke"))).await.expect("answered");
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    assert_eq!(api.get_customer(&id).await.status, StatusCode::UNAUTHORIZED, "the minted token too");
    assert_eq!(api.with_token(&user.access_token).get_customer(&id).await.status, StatusCode::UNAUTHORIZED);
    for refresh_token in ["sandbox-refresh-token", new_refresh.as_str()] {
        let refused = api.refresh(refresh_token).await;
        assert_eq!((refused.status, refused.body["error"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_grant")));
    }
    assert_eq!(api.client_credentials("sandbox-secret").await.status, StatusCode::OK, "the app secret still works");
    let counters = sandbox.counters();
    assert_eq!((counters.unauthorized, counters.token_refusals), (2, 2));
}

#[tokio::test]
async fn the_token_bucket_answers_429_with_retry_after_in_the_real_shape() {
    let (sandbox, api) = start_with(1, Faults { rate_limit: Some(0.5), ..Faults::default() }).await;
    let id = first_customer(&sandbox);
    let mut statuses = Vec::new();
    let mut throttled = None;
    // A burst of one, then a token every 2 s: the next two requests (well within a second) are refused.
    for _ in 0..3 {
        let answer = api.get_customer(&id).await;
        statuses.push(answer.status.as_u16());
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(answer);
        }
    }
    assert_eq!(statuses, vec![200, 429, 429]);
    let throttled = throttled.expect("a 429");
    assert_eq!(throttled.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("2"));
    let body: ThrottleBody = serde_json::from_value(throttled.body).expect("the 429 shape");
    assert_eq!(body.status_code, 429);
    assert_eq!(body.message, "Rate limit is exceeded. Try again in 2 seconds.");
    let counters = sandbox.counters();
    assert_eq!((counters.throttled, counters.requests_with("GET", 200)), (2, 1));
}

/// The token bucket counts a request at the door, before the service's own time (the latency fault): requests
/// that arrive 150 ms apart all pass a limiter of 10 a second (one every 100 ms), however long each then takes. Counted
/// after a random latency of up to 400 ms, one pair in three reached the bucket closer than 100 ms apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_bucket_counts_a_request_at_the_door_before_its_latency() {
    let faults = Faults { rate_limit: Some(10.0), rate_burst: Some(1.0), jitter_ms: 400, ..Faults::default() };
    let (sandbox, api) = start_with(1, faults).await;
    let id = first_customer(&sandbox);
    let started = tokio::time::Instant::now();
    let requests = (0..12u32).map(|index| {
        let (api, id) = (&api, &id);
        async move {
            tokio::time::sleep_until(started + Duration::from_millis(150) * index).await;
            api.get_customer(id).await.status.as_u16()
        }
    });
    let statuses = futures::future::join_all(requests).await;
    assert_eq!(statuses, vec![200; 12]);
    assert_eq!(sandbox.counters().throttled, 0);
}

#[tokio::test]
async fn a_dropped_connection_after_commit_still_commits() {
    let (sandbox, api) = start_with(1, Faults::default()).await;
    let id = first_customer(&sandbox);
    let read = api.get_customer(&id).await;
    sandbox.set_faults(Faults { drop_after_commit: 1.0, ..Faults::default() }).expect("valid faults");
    let mut body = read.body.clone();
    body["companyName"] = json!("Committed Anyway");
    let request = api
        .http
        .put(api.url(&wire::customer_billing_profile_path(&id)))
        .bearer_auth(&api.token)
        .header("If-Match", format!("\"{}\"", read.etag()))
        .json(&body);
    let sent = request.send().await;
    let error = sent.expect_err("send() fails: no status line reached the client");
    assert!(!error.is_status() && !error.is_decode(), "{error:?}");
    let stored = sandbox.customer(&id).expect("stored");
    assert_eq!(stored["companyName"], "Committed Anyway");
    assert_ne!(stored["attributes"]["etag"].as_str(), Some(read.etag().as_str()));
    let counters = sandbox.counters();
    assert_eq!(counters.puts_succeeded.get(&id), Some(&1));
    assert_eq!(counters.connections_dropped, 1);
    assert_eq!(counters.requests.get("PUT dropped"), Some(&1));
}

#[tokio::test]
async fn a_concurrent_edit_after_a_get_makes_the_next_put_stale() {
    let (sandbox, api) = start_with(1, Faults { concurrent_edit: 1.0, ..Faults::default() }).await;
    let id = first_customer(&sandbox);
    let read = api.get_customer(&id).await;
    let stored = sandbox.customer(&id).expect("stored");
    assert_ne!(stored["attributes"]["etag"].as_str(), Some(read.etag().as_str()));
    assert_eq!(stored["extensions"]["editsBySomeoneElse"], json!(1));
    assert_eq!(read.body["extensions"]["editsBySomeoneElse"], json!(0), "the client saw the profile before the edit");
    let answer = api.put_customer(&id, Some(&read.etag()), &read.body).await;
    assert_eq!(answer.status, StatusCode::PRECONDITION_FAILED);
    let counters = sandbox.counters();
    assert_eq!(counters.concurrent_edits.get(&id), Some(&1));
    assert_eq!(counters.precondition_failed, 1);
}

#[tokio::test]
async fn unknown_fields_survive_a_faithful_round_trip_and_count_when_dropped() {
    let (sandbox, api) = start_with(2, Faults::default()).await;
    let ids = sandbox.customer_ids();
    let read = api.get_customer(&ids[0]).await;
    assert!(read.body["extensions"]["tags"].is_array());
    assert!(read.body["customerType"].is_string());
    let mut faithful = read.body.clone();
    faithful["defaultAddress"]["city"] = json!("Springfield");
    assert_eq!(api.put_customer(&ids[0], Some(&read.etag()), &faithful).await.status, StatusCode::OK);
    let stored = sandbox.customer(&ids[0]).expect("stored");
    assert_eq!(stored["extensions"], read.body["extensions"]);
    assert_eq!(stored["defaultAddress"]["district"], read.body["defaultAddress"]["district"]);
    assert_eq!(sandbox.counters().fields_dropped_count, 0);

    let read = api.get_customer(&ids[1]).await;
    let mut lossy = read.body.clone();
    let fields = lossy.as_object_mut().expect("an object");
    fields.remove("extensions");
    fields.remove("customerType");
    lossy["defaultAddress"].as_object_mut().map(|address| address.remove("middleName"));
    assert_eq!(api.put_customer(&ids[1], Some(&read.etag()), &lossy).await.status, StatusCode::OK);
    let counters = api.side_counters().await;
    assert_eq!(counters.fields_dropped_count, 3);
    let mut paths: Vec<&str> = counters.fields_dropped.iter().map(|field| field.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, vec!["customerType", "defaultAddress.middleName", "extensions"]);
    assert!(counters.fields_dropped.iter().all(|field| field.customer_id == ids[1]));
}

#[tokio::test]
async fn overwriting_someone_elses_edit_is_a_lost_edit() {
    let (sandbox, api) = start_with(1, Faults::default()).await;
    let id = first_customer(&sandbox);
    let old = api.get_customer(&id).await;
    sandbox.edit_customer(&id, "extensions.editsBySomeoneElse", 7).expect("edited");
    let fresh = api.get_customer(&id).await;
    let answer = api.put_customer(&id, Some(&fresh.etag()), &old.body).await;
    assert_eq!(answer.status, StatusCode::OK);
    let counters = sandbox.counters();
    assert_eq!(counters.lost_edits, 1);
    assert_eq!(counters.unmodeled_altered_count, 1);
    assert_eq!(counters.unmodeled_altered[0].path, "extensions.editsBySomeoneElse");
}

#[tokio::test]
async fn pascal_case_keys_are_read_and_stored_in_camel_case() {
    let (sandbox, api) = start_with(1, Faults::default()).await;
    let id = first_customer(&sandbox);
    let read = api.get_customer(&id).await;
    let mut body = serde_json::Map::new();
    for (key, value) in read.body.as_object().expect("an object") {
        let pascal = format!("{}{}", key[..1].to_uppercase(), &key[1..]);
        body.insert(pascal, value.clone());
    }
    let answer = api.put_customer(&id, Some(&read.etag()), &Value::Object(body)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.get("companyName").is_some() && answer.body.get("CompanyName").is_none());
    assert_eq!(sandbox.counters().fields_dropped_count, 0);
}

async fn put_with(api: &Api, sandbox: &Sandbox, edit: &[(&str, Value)]) -> Answer {
    let id = first_customer(sandbox);
    let read = api.get_customer(&id).await;
    let mut body = read.body.clone();
    for (path, value) in edit {
        let mut target = &mut body;
        for key in path.split('.') {
            target = &mut target[key];
        }
        *target = value.clone();
    }
    api.put_customer(&id, Some(&read.etag()), &body).await
}

#[tokio::test]
async fn the_service_rules_on_put_bodies_are_enforced() {
    let (sandbox, api) = start_with(1, Faults::default()).await;
    let us = [
        ("defaultAddress.country", json!("US")),
        ("defaultAddress.state", json!("WA")),
        ("defaultAddress.postalCode", json!("98052")),
    ];
    let cases: Vec<(Vec<(&str, Value)>, i64)> = vec![
        ([us.as_slice(), &[("defaultAddress.region", json!("West"))]].concat(), 27002),
        (vec![("defaultAddress.country", json!("UK"))], 3000),
        (vec![("defaultAddress.state", json!("WASH"))], 27002),
        (vec![("defaultAddress.addressLine1", json!(""))], 27002),
        (vec![("firstName", json!("x".repeat(51)))], 27002),
        (vec![("defaultAddress.country", json!("IN")), ("defaultAddress.phoneNumber", json!(""))], 600051),
    ];
    for (edit, code) in &cases {
        let answer = put_with(&api, &sandbox, edit).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, Some(*code)), "{edit:?}: {}", answer.body);
    }
    let not_json = api
        .send(
            api.http
                .put(api.url(&wire::customer_billing_profile_path(&first_customer(&sandbox))))
                .bearer_auth(&api.token)
                .body("[1]"),
        )
        .await
        .expect("answered");
    assert_eq!(not_json.status, StatusCode::PRECONDITION_FAILED, "If-Match is checked first");
    let fine = put_with(&api, &sandbox, &[us.as_slice(), &[("defaultAddress.region", Value::Null)]].concat()).await;
    assert_eq!(fine.status, StatusCode::OK);
    let counters = sandbox.counters();
    assert_eq!(counters.requests_with("PUT", 400), cases.len() as u64);
    assert_eq!(counters.total_puts_succeeded(), 1);
}

#[tokio::test]
async fn unknown_and_forbidden_customers_are_404_and_403() {
    let forbidden = "0b7c3c38-4a3b-4a9a-9d1e-000000000403".to_string();
    let config =
        SandboxConfig { customers: 1, forbidden_customers: vec![forbidden.clone()], ..SandboxConfig::default() };
    let (sandbox, api) = start(config).await;
    let unknown = api.get_customer("0b7c3c38-4a3b-4a9a-9d1e-000000000404").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.code().is_some());
    let denied = api.get_customer(&forbidden).await;
    assert_eq!((denied.status, denied.code()), (StatusCode::FORBIDDEN, Some(20002)));
    let counters = sandbox.counters();
    assert_eq!((counters.requests_with("GET", 404), counters.requests_with("GET", 403)), (1, 1));
}

#[tokio::test]
async fn partner_profiles_are_served_and_guarded() {
    let (sandbox, api) = start_with(0, Faults::default()).await;
    for kind in PartnerProfileKind::ALL {
        let read = api.get(kind.get_path()).await;
        assert_eq!(read.status, StatusCode::OK, "{kind:?}");
        assert_eq!(read.body["attributes"]["objectType"], kind.object_type());
    }
    let billing = api.get(PartnerProfileKind::Billing.get_path()).await;
    assert!(billing.body["taxId"].is_string() && billing.body["purchaseOrderNumber"].is_string());
    let mut changed = billing.body.clone();
    changed["purchaseOrderNumber"] = json!("1234");
    assert_eq!(api.put("/v1/profiles/billing", Some("stale"), &changed).await.status, StatusCode::PRECONDITION_FAILED);
    let written = api.put("/v1/profiles/billing", Some(&billing.etag()), &changed).await;
    assert_eq!(written.status, StatusCode::OK);
    assert_ne!(written.etag(), billing.etag());

    let mut legal = api.get("/v1/profiles/legalbusiness").await.body;
    legal["vettingStatus"] = json!("none");
    let refused = api.put("/v1/profiles/legalbusiness", None, &legal).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::BAD_REQUEST, Some(3000)));
    let mut organization = api.get("/v1/profiles/organization").await.body;
    organization["tenantId"] = json!("another");
    assert_eq!(api.put("/v1/profiles/organization", None, &organization).await.code(), Some(3000));

    let counters = sandbox.counters();
    assert_eq!(counters.puts_succeeded.get("partner:billing"), Some(&1));
    assert_eq!(counters.put_attempts.get("partner:billing"), Some(&2));
    assert_eq!(counters.precondition_failed, 1);
}

/// Issue 15: by default the support profile takes a PUT on `/v1/profiles/support` only (as the SDKs send it); the
/// documented `/v1/profiles/supportprofile` is 404. (It took both before.)
#[tokio::test]
async fn the_support_profile_has_no_etag_and_takes_a_put_where_the_sdks_send_it() {
    let (sandbox, api) = start_with(0, Faults::default()).await;
    let support = api.get("/v1/profiles/support").await.body;
    assert!(support["attributes"].get("etag").is_none());
    let mut body = support.clone();
    body["telephone"] = json!("4255550002");
    assert_eq!(api.put("/v1/profiles/supportprofile", None, &body).await.status, StatusCode::NOT_FOUND);
    assert_eq!(api.put("/v1/profiles/support", None, &body).await.status, StatusCode::OK);
    let stored = sandbox.partner_profile(PartnerProfileKind::Support).expect("stored");
    assert_eq!(stored["telephone"], "4255550002");
    let counters = sandbox.counters();
    assert_eq!(counters.puts_succeeded.get("partner:support"), Some(&1));
    assert_eq!(counters.requests_by_route.get("partner_support"), Some(&2), "one GET, one PUT");
    assert_eq!(counters.requests_by_route.get("partner_support_documented"), Some(&1));
}

#[tokio::test]
async fn country_rules_are_served_for_eight_countries() {
    let (sandbox, api) = start_with(0, Faults::default()).await;
    for country in ["US", "CA", "GB", "DE", "FR", "IN", "AU", "JP"] {
        let rules = api.get(&wire::country_rules_path(country)).await;
        assert_eq!(rules.status, StatusCode::OK, "{country}");
        // Issue 15: the service's key is `iso2Code` (it was `countryCode` here before).
        assert_eq!(rules.body["iso2Code"], country);
        assert!(rules.body.get("countryCode").is_none());
        assert!(rules.body["postalCodeRegex"].is_string() && rules.body["supportedCulturesList"].is_array());
    }
    let us = api.get(&wire::country_rules_path("US")).await.body;
    assert_eq!(us["isStateRequired"], true);
    assert!(us["supportedStatesList"].as_array().is_some_and(|states| states.contains(&json!("DC"))));
    let india = api.get(&wire::country_rules_path("IN")).await.body;
    assert!(india["phoneNumberRegex"].as_str().is_some_and(|regex| !regex.is_empty()));
    assert_eq!(api.get(&wire::country_rules_path("UK")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(sandbox.counters().requests_by_route.get("country_rules"), Some(&11));
}

#[tokio::test]
async fn addresses_are_validated_deterministically() {
    let (sandbox, api) = start_with(0, Faults::default()).await;
    let validate = |address: Value| {
        let request = api.http.post(api.url(wire::ADDRESS_VALIDATION_PATH)).bearer_auth(&api.token).json(&address);
        api.send(request)
    };
    let clean = validate(json!({"addressLine1": "1 Microsoft Way", "city": "Redmond", "state": "WA", "postalCode": "98052", "country": "US"})).await.expect("answered");
    assert_eq!(clean.body["status"], "Verified");
    let german = validate(json!({"addressLine1": "Friedrichstr.  12", "city": "berlin", "state": "", "postalCode": "10117", "country": "DE"})).await.expect("answered");
    assert_eq!(german.body["status"], "StreetPartial");
    assert_eq!(german.body["suggestedAddresses"][0]["addressLine1"], "Friedrichstraße 12");
    assert_eq!(german.body["originalAddress"]["city"], "berlin");
    let bad_postal = validate(
        json!({"addressLine1": "1 Main St", "city": "Toronto", "state": "ON", "postalCode": "90210", "country": "CA"}),
    )
    .await
    .expect("answered");
    assert_eq!(bad_postal.body["status"], "None");
    assert!(bad_postal.body["validationMessage"].as_str().is_some_and(|message| message.contains("postal code")));
    let bad_state = validate(
        json!({"addressLine1": "1 Main St", "city": "Austin", "state": "ZZ", "postalCode": "78701", "country": "US"}),
    )
    .await
    .expect("answered");
    assert_eq!(bad_state.body["status"], "None");
    let incomplete = validate(json!({"addressLine1": "1 Main St", "country": "US"})).await.expect("answered");
    assert_eq!(incomplete.status, StatusCode::BAD_REQUEST);
    assert_eq!(sandbox.counters().requests_by_route.get("address_validation"), Some(&5));
}

#[tokio::test]
async fn seeding_from_a_csv_and_generation_are_deterministic() {
    let directory = tempfile::tempdir().expect("a temp dir");
    let csv = directory.path().join("changes.csv");
    let content = "\u{feff}Customer_ID;defaultAddress.city\nA58CEBA5-60AC-48E4-A0BC-2A855811807A;Paris\nnot-a-guid;Lyon\n0b7c3c38-4a3b-4a9a-9d1e-2c5c6f3a1b2c;Nice\n";
    std::fs::write(&csv, content).expect("written");
    let input = pcbulk::input::InputConfig { delimiter: b';', sheet: None };
    let ids = pcbulk::cli::customer_ids(&csv, &input).expect("ids read");
    assert_eq!(ids, vec!["a58ceba5-60ac-48e4-a0bc-2a855811807a", "0b7c3c38-4a3b-4a9a-9d1e-2c5c6f3a1b2c"]);

    let config = SandboxConfig { customers: 5, seed: 42, customer_ids: ids.clone(), ..SandboxConfig::default() };
    let (first, api) = start(config.clone()).await;
    let (second, _) = start(config).await;
    assert_eq!(first.customer_ids(), second.customer_ids());
    assert_eq!(first.customer_ids().len(), 7);
    assert_eq!(&first.customer_ids()[5..], ids.as_slice());
    for id in first.customer_ids() {
        assert_eq!(first.customer(&id), second.customer(&id), "{id}");
    }
    let (other, _) = start(SandboxConfig { customers: 5, seed: 43, ..SandboxConfig::default() }).await;
    assert_ne!(other.customer_ids()[..5], first.customer_ids()[..5]);
    let answer = api.get_customer(&ids[0].to_uppercase()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(first.counters().requests_with("GET", 200), 1);
}

#[tokio::test]
async fn a_json_file_of_profiles_is_seeded_as_is() {
    let directory = tempfile::tempdir().expect("a temp dir");
    let path = directory.path().join("profiles.json");
    let profile = json!({"id": "a58ceba5-60ac-48e4-a0bc-2a855811807a", "firstName": "Gena", "lastName": "Soto",
        "defaultAddress": {"country": "US", "city": "Redmond", "state": "WA", "addressLine1": "1 Microsoft Way", "postalCode": "98052"},
        "custom": {"kept": true}});
    std::fs::write(&path, serde_json::to_string(&json!([profile])).expect("json")).expect("written");
    let profiles = pcbulk::sandbox::read_profiles(&path).expect("profiles read");
    let (sandbox, api) = start(SandboxConfig { profiles, ..SandboxConfig::default() }).await;
    let read = api.get_customer("a58ceba5-60ac-48e4-a0bc-2a855811807a").await;
    assert_eq!(read.body["custom"], json!({"kept": true}));
    assert!(!read.etag().is_empty());
    assert_eq!(sandbox.counters().requests_with("GET", 200), 1);
}

#[tokio::test]
async fn the_outage_switch_and_other_faults_are_set_through_the_side_endpoint() {
    let (sandbox, api) = start_with(1, Faults::default()).await;
    let id = first_customer(&sandbox);
    assert_eq!(api.side_post("/_sandbox/faults", json!({"outage": true})).await.status, StatusCode::OK);
    assert!(sandbox.faults().outage);
    assert_eq!(api.get_customer(&id).await.status, StatusCode::SERVICE_UNAVAILABLE);
    let refused = api.side_post("/_sandbox/faults", json!({"error_rate": 3})).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(sandbox.faults().outage, "a refused setting changes nothing");
    let cleared = api.side_post("/_sandbox/faults", json!({})).await;
    assert_eq!(cleared.body["outage"], false);
    assert_eq!(api.get_customer(&id).await.status, StatusCode::OK);

    let counters = api.side_counters().await;
    assert_eq!(counters.outage_rejections, 1);
    assert_eq!((counters.requests_with("GET", 503), counters.requests_with("GET", 200)), (1, 1));
    assert!(counters.requests_by_route.keys().all(|route| route != "other"), "side endpoints are not counted");
}

#[tokio::test]
async fn someone_elses_edit_and_minted_tokens_come_through_the_side_endpoints() {
    let (sandbox, api) = start_with(1, Faults::default()).await;
    let id = first_customer(&sandbox);
    let before = api.get_customer(&id).await;
    let edit = json!({"path": "defaultAddress.city", "value": "Elsewhere"});
    let edited = api.side_post(&format!("/_sandbox/customers/{id}/edit"), edit).await;
    assert_eq!(edited.status, StatusCode::OK);
    assert_eq!(edited.body["defaultAddress"]["city"], "Elsewhere");
    assert_ne!(edited.etag(), before.etag());
    let stored = api.send(api.http.get(api.url(&format!("/_sandbox/customers/{id}")))).await.expect("answered");
    assert_eq!(stored.body, edited.body);
    let unknown = api.side_post("/_sandbox/customers/nobody/edit", json!({"path": "a", "value": 1})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let minted = api.side_post("/_sandbox/token", json!({})).await;
    let token = minted.body["access_token"].as_str().unwrap_or_default();
    assert_eq!(api.with_token(token).get_customer(&id).await.status, StatusCode::OK);
    let counters = api.side_counters().await;
    assert_eq!(counters.concurrent_edits.get(&id), Some(&1));
    assert_eq!(counters.tokens_issued.get("minted"), Some(&2));
    assert_eq!(counters.requests_with("GET", 200), 2);
}

#[tokio::test]
async fn random_server_errors_apply_nothing() {
    let (sandbox, api) = start_with(1, Faults::default()).await;
    let id = first_customer(&sandbox);
    let read = api.get_customer(&id).await;
    sandbox.set_faults(Faults { error_rate: 1.0, ..Faults::default() }).expect("valid faults");
    let mut body = read.body.clone();
    body["companyName"] = json!("Never Stored");
    let answer = api.put_customer(&id, Some(&read.etag()), &body).await;
    assert!(matches!(answer.status.as_u16(), 500 | 503), "{}", answer.status);
    assert_eq!(
        sandbox.customer(&id).map(|profile| profile["companyName"].clone()),
        Some(read.body["companyName"].clone())
    );
    let counters = sandbox.counters();
    assert_eq!((counters.injected_errors, counters.total_put_attempts()), (1, 0));
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let (sandbox, api) = start_with(1, Faults::default()).await;
    let id = first_customer(&sandbox);
    assert_eq!(api.get_customer(&id).await.status, StatusCode::OK);
    sandbox.shutdown().await;
    let fresh = reqwest::Client::new();
    let after = fresh.get(api.url(&wire::customer_billing_profile_path(&id))).send().await;
    assert!(after.is_err(), "nothing listens after shutdown");
}

#[tokio::test]
async fn request_ids_are_echoed_and_repeated_put_ids_counted() {
    let (sandbox, api) = start_with(1, Faults::default()).await;
    let id = first_customer(&sandbox);
    let read = api.get_customer(&id).await;
    let path = api.url(&wire::customer_billing_profile_path(&id));
    let put = |request_id: &str| {
        let request = api
            .http
            .put(&path)
            .bearer_auth(&api.token)
            .header(wire::HEADER_REQUEST_ID, request_id)
            .header(wire::HEADER_CORRELATION_ID, "c-1")
            .header("If-Match", "stale")
            .json(&read.body);
        api.send(request)
    };
    let first = put("r-1").await.expect("answered");
    assert_eq!(first.headers.get("ms-requestid").and_then(|v| v.to_str().ok()), Some("r-1"));
    assert_eq!(first.headers.get("ms-correlationid").and_then(|v| v.to_str().ok()), Some("c-1"));
    put("r-1").await.expect("answered");
    put("r-2").await.expect("answered");
    let counters = sandbox.counters();
    assert_eq!(counters.put_request_id_repeats, 1);
    assert_eq!(counters.missing_request_id, 1, "the GET carried none");
    assert_eq!(counters.put_attempts.get(&id), Some(&3));
}
