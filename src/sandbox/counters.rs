//! Server-side truth: what the sandbox saw and did, counted as it happened, read by tests through
//! `Sandbox::counters()` or `GET /_sandbox/counters`.
//!
//! Recording is O(1) per request under a short lock, never held across an await. Lists of fields are capped
//! (`FIELD_LIST_CAP`) so a long run cannot grow them without bound; their counts are exact.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many dropped or altered fields are listed; past that, only counted.
pub const FIELD_LIST_CAP: usize = 1000;

/// A field of a stored profile that a PUT dropped or altered. `customer_id` is `partner:<kind>` for a partner profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlteredField {
    pub customer_id: String,
    /// The JSON path, dot-separated (`defaultAddress.district`).
    pub path: String,
}

/// A snapshot of the counters. Serialized as the side endpoint's JSON; deserialize it to read that endpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// Requests by method and status, like `"GET 200"`; a PUT answered by a dropped connection is `"PUT dropped"`.
    pub requests: BTreeMap<String, u64>,
    /// Requests by route kind: `customer_billing`, `customer_list`, `partner_billing`, `partner_legalbusiness`,
    /// `partner_organization`, `partner_support`, `partner_support_documented` (`/v1/profiles/supportprofile`), `country_rules`, `address_validation`, `token`, `other`.
    pub requests_by_route: BTreeMap<String, u64>,
    /// 412 answers.
    pub precondition_failed: u64,
    /// 400 answers with code 2055.
    pub etag_stale_2055: u64,
    /// 429 answers.
    pub throttled: u64,
    /// 401 answers.
    pub unauthorized: u64,
    /// Random 500/503 answers (the error-rate fault).
    pub injected_errors: u64,
    /// 503 answers of the outage switch.
    pub outage_rejections: u64,
    /// PUTs applied and then answered by a dropped connection.
    pub connections_dropped: u64,
    /// Tokens issued, by grant: `client_credentials`, `refresh_token`, `minted`.
    pub tokens_issued: BTreeMap<String, u64>,
    /// Token requests refused.
    pub token_refusals: u64,
    /// Successful (applied) PUTs per customer id.
    pub puts_succeeded: BTreeMap<String, u64>,
    /// PUT attempts per customer id (of customers that exist), whatever their outcome.
    pub put_attempts: BTreeMap<String, u64>,
    /// Edits by someone else per customer id (the concurrent-edit fault and `POST /_sandbox/customers/{id}/edit`).
    pub concurrent_edits: BTreeMap<String, u64>,
    /// Billing profile reads (GETs answered with the profile) per customer id.
    pub profile_reads: BTreeMap<String, u64>,
    /// Fields present in the stored profile (at any depth) and absent from an applied PUT's body (first ones listed).
    pub fields_dropped: Vec<AlteredField>,
    pub fields_dropped_count: u64,
    /// Fields pcbulk does not model whose value an applied PUT changed (first ones listed).
    pub unmodeled_altered: Vec<AlteredField>,
    pub unmodeled_altered_count: u64,
    /// Applied PUTs that overwrote someone else's edit (`extensions.editsBySomeoneElse` differs from the stored one).
    pub lost_edits: u64,
    /// `/v1` requests that carried no `MS-RequestId` header.
    pub missing_request_id: u64,
    /// PUTs that carried the same `MS-RequestId` as the previous PUT of the same profile (retries of one call).
    pub put_request_id_repeats: u64,
    /// The most `/v1` requests the sandbox was answering at once (a client's `--concurrency` bounds it).
    #[serde(default)]
    pub max_in_flight: u64,
    /// Reads of the legal business profile that carried `?vettingVersion=Current`.
    pub vetting_version_current: u64,
}

impl Counters {
    /// The count of requests with this method and status.
    pub fn requests_with(&self, method: &str, status: u16) -> u64 {
        self.requests.get(&format!("{method} {status}")).copied().unwrap_or(0)
    }

    /// Applied PUTs over every customer.
    pub fn total_puts_succeeded(&self) -> u64 {
        self.puts_succeeded.values().sum()
    }

    /// PUT attempts over every customer.
    pub fn total_put_attempts(&self) -> u64 {
        self.put_attempts.values().sum()
    }

    /// Edits by someone else over every customer.
    /// Billing profile reads of all customers.
    pub fn total_profile_reads(&self) -> u64 {
        self.profile_reads.values().sum()
    }

    pub fn total_concurrent_edits(&self) -> u64 {
        self.concurrent_edits.values().sum()
    }
}

/// What one applied PUT did to the fields of the stored profile.
#[derive(Debug, Default)]
pub(crate) struct PutEffects {
    pub dropped: Vec<String>,
    pub unmodeled_altered: Vec<String>,
    pub lost_edit: bool,
}

/// The live counters.
#[derive(Default)]
pub(crate) struct CounterStore {
    counters: Mutex<Counters>,
    /// The `MS-RequestId` of the last PUT of each profile (one entry per profile, not per request).
    last_put_request_ids: Mutex<HashMap<String, String>>,
    /// `/v1` requests being answered now.
    in_flight: AtomicU64,
}

/// A `/v1` request being answered: counted in flight until dropped (answered, or its connection gone).
pub(crate) struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl CounterStore {
    fn update(&self, change: impl FnOnce(&mut Counters)) {
        // Every update is a handful of increments: a panic cannot leave the counters half-written in a way that matters.
        let mut counters = super::lock(&self.counters);
        change(&mut counters);
    }

    pub(crate) fn snapshot(&self) -> Counters {
        super::lock(&self.counters).clone()
    }

    /// Counts an answered request (`status` is `None` for a dropped connection).
    pub(crate) fn record_request(&self, method: &str, route: &'static str, status: Option<u16>) {
        let key = match status {
            Some(status) => format!("{method} {status}"),
            None => format!("{method} dropped"),
        };
        self.update(|counters| {
            *counters.requests.entry(key).or_default() += 1;
            *counters.requests_by_route.entry(route.to_string()).or_default() += 1;
            match status {
                Some(401) => counters.unauthorized += 1,
                Some(412) => counters.precondition_failed += 1,
                Some(429) => counters.throttled += 1,
                None => counters.connections_dropped += 1,
                _ => {}
            }
        });
    }

    /// Counts a `/v1` request in flight until the returned guard is dropped, noting the most at once.
    pub(crate) fn request_started(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.update(|counters| counters.max_in_flight = counters.max_in_flight.max(now));
        InFlight(&self.in_flight)
    }

    pub(crate) fn record_missing_request_id(&self) {
        self.update(|counters| counters.missing_request_id += 1);
    }

    /// Notes the `MS-RequestId` of a PUT of `key`, counting it when it repeats the previous PUT's.
    pub(crate) fn record_put_request_id(&self, key: &str, request_id: &str) {
        let repeated = {
            // One insert per call: a poisoned map is still a valid map.
            let mut last = super::lock(&self.last_put_request_ids);
            match last.get_mut(key) {
                Some(previous) if previous == request_id => true,
                Some(previous) => {
                    request_id.clone_into(previous);
                    false
                }
                None => {
                    last.insert(key.to_string(), request_id.to_string());
                    false
                }
            }
        };
        if repeated {
            self.update(|counters| counters.put_request_id_repeats += 1);
        }
    }

    pub(crate) fn record_stale_2055(&self) {
        self.update(|counters| counters.etag_stale_2055 += 1);
    }

    pub(crate) fn record_injected_error(&self) {
        self.update(|counters| counters.injected_errors += 1);
    }

    pub(crate) fn record_vetting_version_current(&self) {
        self.update(|counters| counters.vetting_version_current += 1);
    }

    pub(crate) fn record_outage(&self) {
        self.update(|counters| counters.outage_rejections += 1);
    }

    pub(crate) fn record_token(&self, grant: &'static str) {
        self.update(|counters| *counters.tokens_issued.entry(grant.to_string()).or_default() += 1);
    }

    pub(crate) fn record_token_refusal(&self) {
        self.update(|counters| counters.token_refusals += 1);
    }

    pub(crate) fn record_put_attempt(&self, customer_id: &str) {
        self.update(|counters| *counters.put_attempts.entry(customer_id.to_string()).or_default() += 1);
    }

    pub(crate) fn record_profile_read(&self, customer_id: &str) {
        self.update(|counters| *counters.profile_reads.entry(customer_id.to_string()).or_default() += 1);
    }

    pub(crate) fn record_concurrent_edit(&self, customer_id: &str) {
        self.update(|counters| *counters.concurrent_edits.entry(customer_id.to_string()).or_default() += 1);
    }

    /// Counts an applied PUT and what it did to the stored fields.
    pub(crate) fn record_put_applied(&self, customer_id: &str, effects: PutEffects) {
        self.update(|counters| {
            *counters.puts_succeeded.entry(customer_id.to_string()).or_default() += 1;
            counters.fields_dropped_count += effects.dropped.len() as u64;
            counters.unmodeled_altered_count += effects.unmodeled_altered.len() as u64;
            counters.lost_edits += u64::from(effects.lost_edit);
            push_capped(&mut counters.fields_dropped, customer_id, effects.dropped);
            push_capped(&mut counters.unmodeled_altered, customer_id, effects.unmodeled_altered);
        });
    }
}

fn push_capped(list: &mut Vec<AlteredField>, customer_id: &str, paths: Vec<String>) {
    for path in paths {
        if list.len() >= FIELD_LIST_CAP {
            return;
        }
        list.push(AlteredField { customer_id: customer_id.to_string(), path });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_method_status_and_route() {
        let store = CounterStore::default();
        store.record_request("GET", "customer_billing", Some(200));
        store.record_request("PUT", "customer_billing", Some(412));
        store.record_request("PUT", "customer_billing", None);
        let counters = store.snapshot();
        assert_eq!(counters.requests_with("GET", 200), 1);
        assert_eq!(counters.precondition_failed, 1);
        assert_eq!(counters.connections_dropped, 1);
        assert_eq!(counters.requests.get("PUT dropped"), Some(&1));
        assert_eq!(counters.requests_by_route.get("customer_billing"), Some(&3));
    }

    #[test]
    fn field_lists_are_capped_but_counted() {
        let store = CounterStore::default();
        let dropped: Vec<String> = (0..FIELD_LIST_CAP + 5).map(|i| format!("f{i}")).collect();
        store.record_put_applied("c", PutEffects { dropped, ..PutEffects::default() });
        let counters = store.snapshot();
        assert_eq!(counters.fields_dropped.len(), FIELD_LIST_CAP);
        assert_eq!(counters.fields_dropped_count, (FIELD_LIST_CAP + 5) as u64);
        assert_eq!(counters.total_puts_succeeded(), 1);
    }

    #[test]
    fn a_repeated_request_id_is_counted_per_profile() {
        let store = CounterStore::default();
        store.record_put_request_id("a", "r1");
        store.record_put_request_id("b", "r1");
        store.record_put_request_id("a", "r1");
        store.record_put_request_id("a", "r2");
        assert_eq!(store.snapshot().put_request_id_repeats, 1);
    }

    #[test]
    fn counters_round_trip_through_json() {
        let store = CounterStore::default();
        store.record_token("minted");
        let counters = store.snapshot();
        let json = serde_json::to_string(&counters).unwrap_or_default();
        let back: Counters = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, counters);
    }
}
