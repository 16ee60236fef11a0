//! The listing of a partner's customers (`GET /v1/customers?size=N`): a `Collection` of `Customer`, paged by a
//! continuation.
//!
//! Where the next page is: the REST docs ("Get a list of customers") put it in `links.next` (`uri`, `method`, and
//! `headers`, a list of `{key, value}` that carries `MS-ContinuationToken`); the .NET SDK's
//! `ResourceCollection` also carries the token at the top level (`continuationToken`), and its enumerator sends it
//! back in that header on a GET of `links.next.uri`. The docs' `uri` is relative to the version
//! (`/customers?size=40&seekOperation=Next`); the SDK's is sometimes absolute below the root (`/v1/customers?...`).
//! [`Collection::next`] takes either, and the header's token before the top-level one.

use serde::{Deserialize, Serialize};

/// The listing's path.
pub const CUSTOMERS_PATH: &str = "/v1/customers";
/// The header that carries the continuation of a listing to its next page.
pub const HEADER_CONTINUATION: &str = "MS-ContinuationToken";
/// The query parameter of the page size.
pub const SIZE_QUERY: &str = "size";
/// The largest page the service returns; a larger `size` is cut to it (not documented; the SDK samples use 40 to
/// 500, and the sandbox serves at most this many).
pub const PAGE_MAX: usize = 500;

/// One page of the listing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Collection {
    pub total_count: u64,
    pub items: Vec<Customer>,
    pub links: CollectionLinks,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation_token: Option<String>,
    pub attributes: serde_json::Value,
}

/// A customer as the listing shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Customer {
    pub id: String,
    pub company_profile: CompanyProfile,
    pub relationship_to_partner: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CompanyProfile {
    pub tenant_id: String,
    pub domain: String,
    pub company_name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CollectionLinks {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Link>,
    #[serde(rename = "self", skip_serializing_if = "Option::is_none")]
    pub this: Option<Link>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Link {
    pub uri: String,
    pub method: String,
    pub headers: Vec<LinkHeader>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinkHeader {
    pub key: String,
    pub value: String,
}

/// Where the next page is: the path below the root, its query pairs, and the continuation to send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextPage {
    pub path: String,
    pub query: Vec<(String, String)>,
    pub continuation: String,
}

impl Collection {
    /// The next page, `None` when this is the last one (no `links.next`, or no continuation anywhere).
    pub fn next(&self) -> Option<NextPage> {
        let link = self.links.next.as_ref()?;
        let from_header = link.headers.iter().find(|header| header.key.eq_ignore_ascii_case(HEADER_CONTINUATION));
        let continuation =
            from_header.map(|header| header.value.clone()).or_else(|| self.continuation_token.clone())?;
        let (path, query) = link.uri.split_once('?').unwrap_or((&link.uri, ""));
        // Relative to the version, as the docs write it, or below the root.
        let path = match path.strip_prefix("/v1") {
            Some(rest) if rest.starts_with('/') => path.to_string(),
            _ => format!("/v1/{}", path.trim_start_matches('/')),
        };
        let query = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        Some(NextPage { path, query, continuation })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_docs_shape_gives_the_next_page_from_its_header() {
        let page: Collection = serde_json::from_value(json!({
            "totalCount": 2,
            "items": [{"id": "a", "companyProfile": {"tenantId": "a", "domain": "a.example", "companyName": "A"},
                       "relationshipToPartner": "reseller"}],
            "links": {"next": {"uri": "/customers?size=40&seekOperation=Next", "method": "GET",
                               "headers": [{"key": "MS-ContinuationToken", "value": "t1"}]}},
            "attributes": {"objectType": "Collection"}
        }))
        .unwrap();
        let next = page.next().unwrap();
        assert_eq!(next.path, "/v1/customers");
        assert_eq!(next.continuation, "t1");
        assert!(next.query.contains(&("seekOperation".to_string(), "Next".to_string())));
        assert_eq!(page.items[0].company_profile.domain, "a.example");
    }

    #[test]
    fn the_sdk_shape_gives_it_from_the_top_level_token() {
        let page: Collection = serde_json::from_value(json!({
            "items": [], "continuationToken": "t2",
            "links": {"next": {"uri": "/v1/customers?size=40&seekOperation=Next", "method": "GET", "headers": []}}
        }))
        .unwrap();
        let next = page.next().unwrap();
        assert_eq!((next.path.as_str(), next.continuation.as_str()), ("/v1/customers", "t2"));
    }

    #[test]
    fn the_last_page_has_no_next() {
        let page: Collection = serde_json::from_value(json!({"items": [], "links": {}})).unwrap();
        assert_eq!(page.next(), None);
    }
}
