//! The middleware every API request passes through: counting (every `/v1` and token request, by method, status and
//! route kind), and the `/v1` gate (outage, latency, bearer token, withdrawn consent, token bucket, random server
//! errors, in that order), before any handler runs or anything is applied.
//!
//! The side endpoints (`/_sandbox/...`) pass through neither: they are never counted, authenticated or faulted.

use super::Shared;
use super::auth::Access;
use super::respond::{DropConnection, throttled};
use crate::wire::{HEADER_CORRELATION_ID, HEADER_REQUEST_ID};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// The kind of route a path belongs to (a counter key).
pub(crate) fn route_kind(path: &str) -> &'static str {
    match path {
        "/v1/profiles/billing" => "partner_billing",
        "/v1/profiles/legalbusiness" => "partner_legalbusiness",
        "/v1/profiles/organization" => "partner_organization",
        "/v1/profiles/support" => "partner_support",
        crate::wire::SUPPORT_PUT_PATH_DOCUMENTED => "partner_support_documented",
        crate::wire::ADDRESS_VALIDATION_PATH => "address_validation",
        crate::wire::listing::CUSTOMERS_PATH => "customer_list",
        _ if path.starts_with("/v1/customers/") => "customer_billing",
        _ if path.starts_with("/v1/countryvalidationrules/") => "country_rules",
        _ if path.ends_with("/oauth2/token") || path.contains("/oauth2/v2.0/") => "token",
        _ => "other",
    }
}

/// Counts a request once answered (a response marked to be dropped counts as `"<METHOD> dropped"`), and echoes its
/// `MS-RequestId` and `MS-CorrelationId` on the response, as the service does.
pub(crate) async fn count(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = route_kind(request.uri().path());
    let request_id = request.headers().get(HEADER_REQUEST_ID).cloned();
    let correlation_id = request.headers().get(HEADER_CORRELATION_ID).cloned();
    if request_id.is_none() && route != "token" {
        shared.counters.record_missing_request_id();
    }
    let _in_flight = (route != "token").then(|| shared.counters.request_started());
    let mut response = next.run(request).await;
    for (name, value) in [(HEADER_REQUEST_ID, request_id), (HEADER_CORRELATION_ID, correlation_id)] {
        if let Some(value) = value {
            response.headers_mut().insert(name, value);
        }
    }
    let status = match response.extensions().get::<DropConnection>() {
        Some(_) => None,
        None => Some(response.status().as_u16()),
    };
    shared.counters.record_request(method.as_str(), route, status);
    response
}

/// Lets a `/v1` request through to its handler, or answers it with a fault or a 401.
pub(crate) async fn guard(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if shared.faults.read(|faults| faults.outage) {
        shared.counters.record_outage();
        return shared.codes.error(StatusCode::SERVICE_UNAVAILABLE, 503, "Service unavailable", Vec::new());
    }
    // The limiter counts a request at the door, as a gateway does: before the service's own time (the latency
    // fault). Counted after it, every request's turn at the bucket moved by the timer's whole millisecond and the
    // runtime's wake-up, and a client spacing its requests 10.5 ms apart against a limit of 100/s saw 429s that a
    // limiter at the door never sends (issue 20 point 3, docs/performance.md).
    let admitted = shared.faults.admit();
    if let Some(delay) = shared.faults.delay() {
        tokio::time::sleep(delay).await;
    }
    let authorization = request.headers().get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
    let access = shared.tokens.check(authorization);
    if access != Access::Granted {
        return unauthorized(&shared, access);
    }
    if shared.faults.read(|faults| faults.mfa_required) && shared.tokens.is_app_user(authorization) {
        let description = "MFA required: the App+User access token carries no multifactor authentication claim";
        return unauthorized_with(&shared, description);
    }
    if shared.faults.read(|faults| faults.consent_withdrawn) {
        let description = "The partner is not authorized to perform this operation";
        return shared.codes.error(StatusCode::FORBIDDEN, 403, description, Vec::new());
    }
    if let Err(retry_after) = admitted {
        return throttled(retry_after);
    }
    if let Some(status) = shared.faults.injected_error() {
        shared.counters.record_injected_error();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let description = status.canonical_reason().unwrap_or("Server error");
        return shared.codes.error(status, i64::from(status.as_u16()), description, Vec::new());
    }
    next.run(request).await
}

fn unauthorized(shared: &Shared, access: Access) -> Response {
    let description = match access {
        Access::Missing => "Unauthorized: the request has no bearer token",
        Access::Expired => "Unauthorized: the bearer token has expired",
        Access::Unknown | Access::Granted => "Unauthorized: the bearer token is not valid",
    };
    unauthorized_with(shared, description)
}

fn unauthorized_with(shared: &Shared, description: &str) -> Response {
    let mut response = shared.codes.error(StatusCode::UNAUTHORIZED, 401, description, Vec::new());
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_route_kinds() {
        assert_eq!(route_kind("/v1/customers/abc/profiles/billing"), "customer_billing");
        assert_eq!(route_kind("/v1/profiles/support"), "partner_support");
        assert_eq!(route_kind("/v1/profiles/supportprofile"), "partner_support_documented");
        assert_eq!(route_kind("/v1/countryvalidationrules/US"), "country_rules");
        assert_eq!(route_kind("/tenant/oauth2/token"), "token");
        assert_eq!(route_kind("/v1/nothing"), "other");
    }
}
