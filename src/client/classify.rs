//! What an answer means: the Errors table of partner-center.md turned into a verdict, and safe text from bodies.
//!
//! Pure: no I/O, no clock but the wall clock for an HTTP-date `Retry-After`. Never echoes a request or a header.

use crate::http::{excerpt, squeeze};
use crate::wire::{CODE_ETAG_STALE, ErrorBody, ErrorCode, ThrottleBody};
use std::time::{Duration, SystemTime};

/// The most characters of a service `description` kept in an error (the service sends up to 1024).
const DESCRIPTION_MAX: usize = 500;

/// What one answer means for the call.
#[derive(Debug, PartialEq)]
pub(crate) enum Meaning {
    /// 2xx: the body (JSON `null` when empty).
    Success(serde_json::Value),
    /// 429, with the wait the server asked for (header, or the body's "Try again in N seconds").
    Throttled(Option<Duration>),
    /// 401, with the service's words (the MFA requirement of App+User calls is said there).
    Unauthorized { detail: String },
    /// 408 or 5xx: the call may or may not have been carried out.
    Transient { status: u16, retry_after: Option<Duration>, detail: String },
    /// 409, 412, or 400 with code 2055: the profile changed since it was read.
    Stale { status: u16, code: Option<ErrorCode>, description: String },
    /// Any other status: the call was refused; retrying it as is cannot help.
    Refused { status: u16, code: Option<ErrorCode>, description: String },
    /// 2xx whose body is not JSON.
    Malformed { status: u16, excerpt: String },
}

/// Reads one answer. `retry_after` is the `Retry-After` header as sent, if any.
pub(crate) fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> Meaning {
    let retry_after = retry_after.and_then(parse_retry_after);
    match status {
        200..=299 => success(status, body),
        429 => Meaning::Throttled(retry_after.or_else(|| throttle_wait_in_body(body))),
        401 => {
            let (code, description) = read_error(body);
            Meaning::Unauthorized { detail: describe(code.as_ref(), &description) }
        }
        408 | 500..=599 => {
            let (code, description) = read_error(body);
            Meaning::Transient { status, retry_after, detail: describe(code.as_ref(), &description) }
        }
        _ => {
            let (code, description) = read_error(body);
            let etag_stale = status == 400 && code.as_ref().and_then(ErrorCode::as_number) == Some(CODE_ETAG_STALE);
            if status == 409 || status == 412 || etag_stale {
                Meaning::Stale { status, code, description }
            } else {
                Meaning::Refused { status, code, description }
            }
        }
    }
}

/// [`classify`] for the answer to a PUT, whose body nobody reads: a 2xx body is only checked to be JSON, not built
/// into a value (a fifth of the client's CPU went to that).
pub(crate) fn classify_put(status: u16, retry_after: Option<&str>, body: &[u8]) -> Meaning {
    if !(200..=299).contains(&status) {
        return classify(status, retry_after, body);
    }
    let blank = body.iter().all(u8::is_ascii_whitespace);
    match blank || serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        true => Meaning::Success(serde_json::Value::Null),
        false => Meaning::Malformed { status, excerpt: excerpt(body) },
    }
}

fn success(status: u16, body: &[u8]) -> Meaning {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Meaning::Success(serde_json::Value::Null);
    }
    match serde_json::from_slice(body) {
        Ok(value) => Meaning::Success(value),
        Err(_) => Meaning::Malformed { status, excerpt: excerpt(body) },
    }
}

/// The code and description of an error body, whichever shape it has; else a safe excerpt of the body.
fn read_error(body: &[u8]) -> (Option<ErrorCode>, String) {
    if let Ok(error) = serde_json::from_slice::<ErrorBody>(body)
        && (error.code.is_some() || error.description.is_some())
    {
        let description = error.description.as_deref().map(clean_description).unwrap_or_default();
        return (error.code, description);
    }
    if let Ok(throttle) = serde_json::from_slice::<ThrottleBody>(body) {
        return (None, clean_description(&throttle.message));
    }
    (None, excerpt(body))
}

/// `code: description`, or whichever of the two there is.
pub(crate) fn describe(code: Option<&ErrorCode>, description: &str) -> String {
    match (code, description.is_empty()) {
        (Some(code), false) => format!("{code}: {description}"),
        (Some(code), true) => format!("code {code}"),
        (None, _) => description.to_string(),
    }
}

fn clean_description(description: &str) -> String {
    squeeze(description, DESCRIPTION_MAX)
}

/// `Retry-After` as seconds or as an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>()
        && seconds.is_finite()
        && seconds >= 0.0
    {
        return Some(Duration::from_secs_f64(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// The wait in a 429 body's message: "Rate limit is exceeded. Try again in 57 seconds."
fn throttle_wait_in_body(body: &[u8]) -> Option<Duration> {
    let throttle: ThrottleBody = serde_json::from_slice(body).ok()?;
    let lower = throttle.message.to_ascii_lowercase();
    let after = &lower[lower.find("try again in")? + "try again in".len()..];
    let digits: String = after.trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused_code(verdict: &Meaning) -> Option<i64> {
        match verdict {
            Meaning::Refused { code, .. } | Meaning::Stale { code, .. } => code.as_ref().and_then(ErrorCode::as_number),
            _ => None,
        }
    }

    #[test]
    fn stale_is_412_409_or_400_with_code_2055_as_number_or_string() {
        let number = br#"{"code": 2055, "description": "Etag is no longer valid", "data": [], "source": "PartnerFD"}"#;
        let text = br#"{"code": "2055", "description": "Etag is no longer valid"}"#;
        assert!(matches!(classify(400, None, number), Meaning::Stale { status: 400, .. }));
        assert!(matches!(classify(400, None, text), Meaning::Stale { status: 400, .. }));
        assert!(matches!(classify(412, None, b""), Meaning::Stale { status: 412, .. }));
        assert!(matches!(classify(409, None, b"{}"), Meaning::Stale { status: 409, .. }));
        assert!(matches!(classify_put(412, None, b""), Meaning::Stale { status: 412, .. }));
        assert_eq!(classify_put(200, None, br#"{"id": "x"}"#), Meaning::Success(serde_json::Value::Null));
        assert!(matches!(classify_put(200, None, b"<html>"), Meaning::Malformed { status: 200, .. }));
    }

    #[test]
    fn other_4xx_are_refused_with_the_services_words() {
        let body =
            br#"{"code": 27002, "description": "A property has invalid data", "data": [], "source": "PartnerFD"}"#;
        let verdict = classify(400, None, body);
        assert_eq!(refused_code(&verdict), Some(27002));
        assert!(
            matches!(&verdict, Meaning::Refused { description, .. } if description == "A property has invalid data")
        );
        let forbidden = classify(403, None, br#"{"code": "20002", "description": "no relationship"}"#);
        assert_eq!(refused_code(&forbidden), Some(20002));
        assert!(matches!(classify(404, None, b""), Meaning::Refused { status: 404, .. }));
    }

    #[test]
    fn transient_statuses_keep_retry_after() {
        for status in [408, 500, 502, 503, 504] {
            let verdict = classify(status, Some("7"), b"");
            assert!(
                matches!(verdict, Meaning::Transient { retry_after: Some(wait), .. } if wait == Duration::from_secs(7))
            );
        }
        assert!(matches!(classify(401, None, b""), Meaning::Unauthorized { .. }));
    }

    #[test]
    fn a_429_waits_what_the_header_or_the_body_says() {
        let body = br#"{"statusCode": 429, "message": "Rate limit is exceeded. Try again in 57 seconds."}"#;
        assert_eq!(classify(429, Some("3"), body), Meaning::Throttled(Some(Duration::from_secs(3))));
        assert_eq!(classify(429, None, body), Meaning::Throttled(Some(Duration::from_secs(57))));
        assert_eq!(classify(429, None, b""), Meaning::Throttled(None));
    }

    #[test]
    fn an_html_page_keeps_a_short_clean_excerpt() {
        let page = format!("<html>\r\n<body>\t502 Bad Gateway\u{7}</body></html>{}", "x".repeat(500));
        let Meaning::Transient { detail, .. } = classify(502, None, page.as_bytes()) else { panic!("not transient") };
        assert!(detail.starts_with("<html> <body> 502 Bad Gateway </body>"), "{detail}");
        assert!(detail.chars().count() <= 200);
        assert!(!detail.chars().any(char::is_control));
        let Meaning::Malformed { excerpt, .. } = classify(200, None, b"<html>ok</html>") else {
            panic!("not malformed")
        };
        assert_eq!(excerpt, "<html>ok</html>");
        assert!(
            matches!(classify(403, None, b""), Meaning::Refused { description, .. } if description == "(empty body)")
        );
    }

    #[test]
    fn success_reads_json_and_an_empty_body() {
        assert_eq!(classify(200, None, br#"{"id": "a"}"#), Meaning::Success(json!({"id": "a"})));
        assert_eq!(classify(204, None, b""), Meaning::Success(serde_json::Value::Null));
    }

    #[test]
    fn long_descriptions_are_cut() {
        let body = json!({"code": 3000, "description": "d".repeat(1024)}).to_string();
        let Meaning::Refused { description, .. } = classify(400, None, body.as_bytes()) else { panic!("not refused") };
        assert_eq!(description.chars().count(), 500);
        assert!(description.ends_with('…'));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
        assert!(parse_retry_after(&later).is_some_and(|wait| wait > Duration::from_secs(3500)));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
