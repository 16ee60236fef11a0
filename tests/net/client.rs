//! The client on the wire: headers, ids across retries, classification, and a PUT never sent twice.

use super::support::{RawReply, RawServer, Reply, Server, client_for, header_in, pace, static_auth};
use pcbulk::client::{CallError, ClientConfig, ErrorClass};
use pcbulk::wire::ErrorCode;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

const PATH: &str = "/v1/customers/0f5a3a4e-0000-4000-8000-000000000001/profiles/billing";

#[tokio::test]
async fn every_call_sends_the_documented_headers() {
    let server = Server::start().await;
    let client = client_for(&server.url, static_auth("tok-1"), pace(100, 3));
    client.get(PATH).await.unwrap();
    let body = json!({"id": "x", "attributes": {"etag": "-2279334701316321663"}});
    client.put(PATH, &body, Some("-2279334701316321663")).await.unwrap();

    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(request.path, PATH);
        assert_eq!(request.header("authorization").as_deref(), Some("Bearer tok-1"));
        assert_eq!(request.header("accept").as_deref(), Some("application/json"));
        assert_eq!(request.header("ms-contract-version").as_deref(), Some("v1"));
        assert_eq!(
            request.header("ms-partnercenter-application"),
            Some(format!("pcbulk/{}", env!("CARGO_PKG_VERSION")))
        );
        assert_eq!(request.header("x-locale").as_deref(), Some("en-US"));
        Uuid::parse_str(&request.request_id()).unwrap();
        Uuid::parse_str(&request.header("ms-correlationid").unwrap()).unwrap();
    }
    let (get, put) = (&seen[0], &seen[1]);
    assert_eq!(get.method, "GET");
    assert_eq!(get.header("content-type"), None);
    assert_eq!(get.header("if-match"), None);
    assert_eq!(put.method, "PUT");
    assert_eq!(put.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(put.header("if-match").as_deref(), Some("\"-2279334701316321663\""));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&put.body).unwrap(), body);
    assert_ne!(get.request_id(), put.request_id(), "a new MS-RequestId after a 2xx");
    assert_ne!(get.header("ms-correlationid"), put.header("ms-correlationid"));
}

#[tokio::test]
async fn a_get_retried_after_a_503_keeps_its_request_id() {
    let server = Server::start().await;
    server.script([Reply::new(503, "").header("retry-after", "0"), Reply::ok(r#"{"id": "a"}"#)]);
    let client = client_for(&server.url, static_auth("t"), pace(100, 3));
    let fetched = client.get(PATH).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].request_id(), seen[1].request_id());
    assert_eq!(seen[0].header("ms-correlationid"), seen[1].header("ms-correlationid"));
    assert_eq!(fetched.ids.request_id.to_string(), seen[1].request_id());
    assert_eq!(fetched.attempts, 2);
    assert_eq!(fetched.body, json!({"id": "a"}));
}

#[tokio::test]
async fn a_get_retried_after_a_dropped_connection_keeps_its_request_id() {
    let server = RawServer::start(vec![RawReply::Drop, RawReply::Ok(r#"{"id": "b"}"#)]).await;
    let client = client_for(&server.url, static_auth("t"), pace(100, 3));
    let fetched = client.get(PATH).await.unwrap();
    let ids = server.request_ids();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
    assert_eq!(fetched.attempts, 2);
    assert_eq!(fetched.body, json!({"id": "b"}));
}

#[tokio::test]
async fn a_put_is_not_resent_after_a_dropped_connection() {
    let server = RawServer::start(vec![RawReply::Drop, RawReply::Ok("{}")]).await;
    let client = client_for(&server.url, static_auth("t"), pace(100, 6));
    let error = client.put(PATH, &json!({"a": 1}), Some("e1")).await.unwrap_err();
    assert!(matches!(error, CallError::OutcomeUnknown { status: None, attempts: 1, .. }), "{error:?}");
    assert_eq!(error.class(), ErrorClass::OutcomeUnknown);
    let heads = server.heads();
    assert_eq!(heads.len(), 1, "the server saw one PUT");
    assert!(heads[0].starts_with("put "));
    assert_eq!(error.ids().request_id.to_string(), header_in(&heads[0], "ms-requestid").unwrap());
}

#[tokio::test]
async fn a_put_is_not_resent_after_a_5xx_or_a_timeout() {
    let server = Server::start().await;
    server.script([Reply::new(503, "<html>busy</html>")]);
    let client = client_for(&server.url, static_auth("t"), pace(100, 6));
    let error = client.put(PATH, &json!({}), Some("e")).await.unwrap_err();
    assert!(matches!(error, CallError::OutcomeUnknown { status: Some(503), .. }), "{error:?}");

    server.script([Reply::ok("{}").delayed(Duration::from_secs(5))]);
    let mut config = ClientConfig::new(&server.url).unwrap();
    config.timeout = Duration::from_millis(200);
    let slow = pcbulk::client::Client::new(config, static_auth("t"), pace(100, 6)).unwrap();
    let error = slow.put(PATH, &json!({}), Some("e")).await.unwrap_err();
    assert!(
        matches!(&error, CallError::OutcomeUnknown { status: None, detail, .. } if detail.contains("timed out")),
        "{error:?}"
    );
    assert_eq!(server.seen().len(), 2, "one PUT each");
}

#[tokio::test]
async fn a_get_that_times_out_is_retried_with_the_same_request_id() {
    let server = Server::start().await;
    server.script([Reply::ok("{}").delayed(Duration::from_secs(5)), Reply::ok(r#"{"late": false}"#)]);
    let mut config = ClientConfig::new(&server.url).unwrap();
    config.timeout = Duration::from_millis(300);
    let client = pcbulk::client::Client::new(config, static_auth("t"), pace(100, 3)).unwrap();
    let fetched = client.get(PATH).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].request_id(), seen[1].request_id());
    assert_eq!(fetched.body, json!({"late": false}));
}

#[tokio::test]
async fn transient_failures_stop_at_max_attempts() {
    let server = Server::start().await;
    server.script((0..10).map(|_| Reply::new(502, "<html><body>502 Bad Gateway</body></html>")));
    let client = client_for(&server.url, static_auth("t"), pace(100, 3));
    let error = client.get(PATH).await.unwrap_err();
    assert!(matches!(&error, CallError::Exhausted { status: Some(502), attempts: 3, .. }), "{error:?}");
    assert!(error.is_retryable() && !error.is_fatal());
    assert!(error.to_string().contains("502 Bad Gateway"), "{error}");
    assert_eq!(server.seen().len(), 3);
    let ids: Vec<String> = server.seen().iter().map(|seen| seen.request_id()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one MS-RequestId across the retries");
}

#[tokio::test]
async fn answers_are_classified_as_the_errors_table_says() {
    let server = Server::start().await;
    let client = client_for(&server.url, static_auth("t"), pace(100, 3));
    let cases = [
        (
            400,
            r#"{"code": 27002, "description": "A property has invalid data", "data": [], "source": "PartnerFD"}"#,
            ErrorClass::Refused,
            Some(27002),
        ),
        (400, r#"{"code": 2055, "description": "Etag is no longer valid"}"#, ErrorClass::Stale, Some(2055)),
        (400, r#"{"code": "2055", "description": "Etag is no longer valid"}"#, ErrorClass::Stale, Some(2055)),
        (403, r#"{"code": "20002", "description": "no relationship"}"#, ErrorClass::Refused, Some(20002)),
        (404, "", ErrorClass::Refused, None),
        (409, r#"{"code": 409, "description": "conflict"}"#, ErrorClass::Stale, Some(409)),
        (412, "", ErrorClass::Stale, None),
    ];
    for (status, body, class, code) in cases {
        server.script([Reply::new(status, body)]);
        let error = client.put(PATH, &json!({}), Some("e")).await.unwrap_err();
        assert_eq!(error.class(), class, "{status} {body}: {error:?}");
        assert_eq!(error.status(), Some(status));
        assert_eq!(error.code().and_then(ErrorCode::as_number), code, "{status} {body}");
        assert_eq!(error.attempts(), 1);
    }
    assert_eq!(server.seen().len(), cases.len(), "no retry of a refused or stale call");
    let ids: std::collections::HashSet<String> = server.seen().iter().map(|seen| seen.request_id()).collect();
    assert_eq!(ids.len(), cases.len(), "a new MS-RequestId after each 4xx");
}

#[tokio::test]
async fn a_refusal_keeps_the_status_and_a_safe_excerpt_of_a_page() {
    let server = Server::start().await;
    let page = format!("<html>\n<title>Forbidden</title>\u{1b}[31m{}</html>", "x".repeat(1000));
    server.script([Reply::new(403, &page), Reply::ok("<html>not json</html>")]);
    let client = client_for(&server.url, static_auth("t"), pace(100, 3));
    let CallError::Refused { status, description, .. } = client.get(PATH).await.unwrap_err() else { panic!() };
    assert_eq!(status, 403);
    assert!(description.starts_with("<html> <title>Forbidden</title>"), "{description}");
    assert!(description.chars().count() <= 200 && !description.chars().any(char::is_control));
    let error = client.get(PATH).await.unwrap_err();
    assert!(matches!(error, CallError::Malformed { status: 200, .. }), "{error:?}");
}

#[tokio::test]
async fn a_429_slows_the_pace_and_does_not_use_up_attempts() {
    let server = Server::start().await;
    let body = r#"{"statusCode": 429, "message": "Rate limit is exceeded. Try again in 0 seconds."}"#;
    server.script([Reply::new(429, body), Reply::new(429, body).header("retry-after", "0"), Reply::ok("{}")]);
    let pace = pace(10, 1);
    let client = client_for(&server.url, static_auth("t"), pace.clone());
    let fetched = client.get(PATH).await.unwrap();
    assert_eq!((fetched.attempts, fetched.throttled), (1, 2), "two 429s and one attempt, with max_attempts 1");
    assert_eq!(pace.throttled(), 2);
    assert_eq!(pace.requests_sent(), 3);
    assert!(pace.current_rate() < 10, "the pace went down");
    let ids: std::collections::HashSet<String> = server.seen().iter().map(|seen| seen.request_id()).collect();
    assert_eq!(ids.len(), 3, "a new MS-RequestId after each 429");
}

#[tokio::test(start_paused = true)]
async fn endless_429s_end_the_call() {
    let server = Server::start().await;
    server.script((0..60).map(|_| Reply::new(429, "").header("retry-after", "1")));
    let pace = pace(10, 3);
    let client = client_for(&server.url, static_auth("t"), pace.clone());
    let error = client.get(PATH).await.unwrap_err();
    assert!(matches!(error, CallError::Throttled { throttles: 50, attempts: 0, .. }), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(server.seen().len(), 50);
    assert_eq!(pace.current_rate(), 1);
}

#[tokio::test]
async fn a_static_token_refused_fails_the_job_with_a_clear_word() {
    let server = Server::start().await;
    server.script([Reply::new(401, "")]);
    let client = client_for(&server.url, static_auth("t"), pace(100, 3));
    let error = client.get(PATH).await.unwrap_err();
    assert!(error.is_fatal(), "{error:?}");
    assert!(error.to_string().contains("cannot be renewed"), "{error}");
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_put_that_could_not_connect_is_retried_for_it_never_left() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = client_for(&url, static_auth("t"), pace(100, 3));
    let error = client.put(PATH, &json!({}), Some("e")).await.unwrap_err();
    assert!(
        matches!(&error, CallError::Exhausted { status: None, attempts: 3, detail, .. } if detail.contains("cannot connect to 127.0.0.1:")),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_holds_every_worker_then_the_pace_climbs_back() {
    let server = Server::start().await;
    server.script([Reply::new(429, "").header("retry-after", "30")]);
    let pace = pace(10, 1);
    let client = client_for(&server.url, static_auth("t"), pace.clone());
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..5 {
                    client.get(PATH).await.unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let seen = server.seen();
    assert_eq!(seen.len(), 21, "20 calls and one 429");
    let throttled_at = seen[0].at;
    let hold_end = throttled_at + Duration::from_secs(30);
    assert!(seen[1..].iter().all(|request| request.at >= hold_end), "no worker sent during the hold");
    // After the hold, the pace is 5/s (halved from 10), climbing by 1/s: 20 requests spread over more than 2 s.
    let last = seen.last().unwrap().at;
    assert!(last - hold_end >= Duration::from_millis(2500), "{:?}", last - hold_end);
    assert_eq!(pace.throttled(), 1);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(pace.current_rate(), 9, "climbed back to 95% of the rate that met the 429, for a minute after it");
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(pace.current_rate(), 10, "then to the configured rate");
}
