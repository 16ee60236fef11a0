//! `GET /v1/customers?size=N`: the partner's customers a page at a time, in the order they were seeded (stable, so
//! paging neither skips nor repeats), in the service's shape (a `Collection` of `Customer`, `links.next` with its
//! `MS-ContinuationToken` header, the token at the top level too, as the .NET SDK reads it: `wire::listing`).
//!
//! A page holds at most `PAGE_MAX` customers (a larger `size` is cut to it). A continuation token names the offset
//! it continues from and is signed with a key made when the sandbox starts: a token from another sandbox (stale) or
//! made up (forged) is refused with 400 and the service's error body. Customers seeded as "no relationship" are not
//! listed (the partner does not have them).

use super::Shared;
use super::profile::CODE_INVALID_PROPERTY;
use crate::wire::listing::{
    CUSTOMERS_PATH, Collection, CollectionLinks, CompanyProfile, Customer, HEADER_CONTINUATION, Link, LinkHeader,
    PAGE_MAX, SIZE_QUERY,
};
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

/// The page size when the request names none.
const PAGE_DEFAULT: usize = 100;

/// Signs continuation tokens: a key made at start, so a token of another sandbox run is stale here.
pub(crate) struct TokenKey(u64);

impl TokenKey {
    pub(crate) fn new() -> TokenKey {
        TokenKey(std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now()))
    }

    fn mac(&self, offset: usize, size: usize) -> u64 {
        let mut hasher = std::hash::DefaultHasher::new();
        hasher.write_u64(self.0);
        hasher.write_usize(offset);
        hasher.write_usize(size);
        hasher.finish()
    }

    fn token(&self, offset: usize, size: usize) -> String {
        format!("{offset:x}.{size:x}.{:016x}", self.mac(offset, size))
    }

    /// The offset and page size a token continues with, if this sandbox made it.
    fn open(&self, token: &str) -> Option<(usize, usize)> {
        let mut parts = token.trim().split('.');
        let offset = usize::from_str_radix(parts.next()?, 16).ok()?;
        let size = usize::from_str_radix(parts.next()?, 16).ok()?;
        let mac = u64::from_str_radix(parts.next()?, 16).ok()?;
        (parts.next().is_none() && mac == self.mac(offset, size)).then_some((offset, size))
    }
}

pub(crate) async fn list_customers(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let asked = pairs.iter().find(|(name, _)| name.eq_ignore_ascii_case(SIZE_QUERY)).map(|(_, value)| value);
    let size = match asked.map(|value| value.parse::<usize>()) {
        None => PAGE_DEFAULT,
        Some(Ok(size)) if size > 0 => size.min(PAGE_MAX),
        Some(_) => {
            let description = format!("Invalid property: size must be a number from 1 to {PAGE_MAX}");
            return shared.codes.error(StatusCode::BAD_REQUEST, CODE_INVALID_PROPERTY, description, Vec::new());
        }
    };
    let continuation = headers.get(HEADER_CONTINUATION).map(|value| value.to_str().unwrap_or("\u{fffd}"));
    let (offset, size) = match continuation {
        None => (0, size),
        Some(token) => match shared.listing_key.open(token) {
            Some(opened) => opened,
            None => {
                let description = "The continuation token is not valid or has expired: list from the first page";
                let data = vec![Value::String(HEADER_CONTINUATION.to_string())];
                return shared.codes.error(StatusCode::BAD_REQUEST, CODE_INVALID_PROPERTY, description, data);
            }
        },
    };
    let listed = shared.store.listed_ids();
    let items = listed.iter().skip(offset).take(size).map(|id| customer(&shared, id)).collect();
    let end = offset + size;
    let next = (end < listed.len()).then(|| {
        let token = shared.listing_key.token(end, size);
        let uri = format!("/customers?size={size}&seekOperation=Next");
        let header = LinkHeader { key: HEADER_CONTINUATION.to_string(), value: token.clone() };
        (Link { uri, method: "GET".into(), headers: vec![header] }, token)
    });
    let this = Link { uri: format!("/customers?size={size}"), method: "GET".into(), headers: Vec::new() };
    let (next, continuation_token) = next.map_or((None, None), |(link, token)| (Some(link), Some(token)));
    Json(Collection {
        total_count: listed.len() as u64,
        items,
        links: CollectionLinks { next, this: Some(this) },
        continuation_token,
        attributes: json!({"objectType": "Collection"}),
    })
    .into_response()
}

/// A customer as the listing shows it: its company name and a domain from its profile.
fn customer(shared: &Shared, id: &str) -> Customer {
    let profile = shared.customer(id).unwrap_or(Value::Null);
    let text = |key: &str| profile.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    let domain = match text("email").split_once('@') {
        Some((_, domain)) => domain.to_string(),
        None => format!("{}.onmicrosoft.com", &id[..id.len().min(8)]),
    };
    let company_profile = CompanyProfile { tenant_id: id.to_string(), domain, company_name: text("companyName") };
    Customer { id: id.to_string(), company_profile, relationship_to_partner: "reseller".to_string() }
}

/// The listing's route, for the router.
pub(crate) const PATH: &str = CUSTOMERS_PATH;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_only_under_the_key_that_made_it() {
        let (key, other) = (TokenKey(1), TokenKey(2));
        let token = key.token(40, 20);
        assert_eq!(key.open(&token), Some((40, 20)));
        assert_eq!(other.open(&token), None, "stale: another sandbox's token");
        assert_eq!(key.open("28.14.0000000000000000"), None, "forged");
        assert_eq!(key.open("garbage"), None);
    }
}
