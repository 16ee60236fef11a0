//! The store: customer billing profiles (sharded by id), the partner's profiles, and their etags.
//!
//! Every read and write is a short critical section with no await inside; a write is checked (etag, rules) and applied
//! under one shard lock, so two writers can never both win with the same etag. Etags are opaque strings that change on
//! every write, deterministic from the seed.

use super::lock;
use super::profile::{self, CODE_INVALID_PROPERTY, Comparison, EDITS_BY_SOMEONE_ELSE, Invalid};
use crate::wire::PartnerProfileKind;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

const SHARDS: usize = 16;

/// Why a PUT was not applied.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PutRefusal {
    NotFound,
    Forbidden,
    MissingIfMatch,
    StaleEtag,
    Invalid(Invalid),
}

/// An applied PUT: the profile as now stored, and what the body did to the stored fields.
#[derive(Debug)]
pub(crate) struct Applied {
    pub profile: Value,
    pub comparison: Comparison,
}

/// The result of looking a customer up.
#[derive(Debug)]
pub(crate) enum Lookup {
    Found(Value),
    Forbidden,
    NotFound,
}

/// Hands out etags: a counter scrambled by a bijection, so each is unique and looks like the service's
/// (`"-2279334701316321663"`).
struct EtagSource {
    next: AtomicU64,
}

impl EtagSource {
    fn next(&self) -> String {
        let mut z = self.next.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) as i64).to_string()
    }
}

pub(crate) struct Store {
    shards: Vec<Mutex<HashMap<String, Value>>>,
    /// The customer ids in the order they were seeded.
    order: Vec<String>,
    forbidden: HashSet<String>,
    partner: Mutex<HashMap<PartnerProfileKind, Value>>,
    etags: EtagSource,
}

fn key(id: &str) -> String {
    id.trim().to_ascii_lowercase()
}

/// The etag of a profile (`attributes.etag`), if it has one.
pub(crate) fn etag_of(profile: &Value) -> Option<&str> {
    profile.get("attributes")?.get("etag")?.as_str()
}

fn set_etag(profile: &mut Value, etag: &str, object_type: &str) {
    let Some(fields) = profile.as_object_mut() else {
        return;
    };
    let attributes = fields.entry("attributes").or_insert_with(|| json!({}));
    if !attributes.is_object() {
        *attributes = json!({});
    }
    if let Some(attributes) = attributes.as_object_mut() {
        attributes.insert("etag".into(), etag.into());
        attributes.entry("objectType").or_insert_with(|| object_type.into());
    }
}

/// An `If-Match` value as sent: bare, in double quotes, or weak (`W/"..."`).
fn unquote(if_match: &str) -> &str {
    let value = if_match.trim();
    let value = value.strip_prefix("W/").unwrap_or(value);
    value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value)
}

impl Store {
    /// A store of `customers` (each with an `id`) and the partner profiles, in `PartnerProfileKind::ALL` order.
    pub(crate) fn new(seed: u64, customers: Vec<Value>, forbidden: &[String], partner: [Value; 4]) -> Store {
        let etags = EtagSource { next: AtomicU64::new(seed.wrapping_mul(0x2545_f491_4f6c_dd1d)) };
        let shards: Vec<_> = (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect();
        let mut order = Vec::with_capacity(customers.len());
        for mut profile in customers {
            let id = key(profile.get("id").and_then(Value::as_str).unwrap_or_default());
            set_etag(&mut profile, &etags.next(), "CustomerBillingProfile");
            if lock(&shards[shard_of(&id)]).insert(id.clone(), profile).is_none() {
                order.push(id);
            }
        }
        let partner = PartnerProfileKind::ALL
            .into_iter()
            .zip(partner)
            .map(|(kind, mut profile)| {
                if kind != PartnerProfileKind::Support {
                    set_etag(&mut profile, &etags.next(), kind.object_type());
                }
                (kind, profile)
            })
            .collect();
        let forbidden = forbidden.iter().map(|id| key(id)).collect();
        Store { shards, order, forbidden, partner: Mutex::new(partner), etags }
    }

    fn shard(&self, id: &str) -> MutexGuard<'_, HashMap<String, Value>> {
        lock(&self.shards[shard_of(id)])
    }

    /// The customer ids, in seeding order (lower-cased).
    pub(crate) fn customer_ids(&self) -> &[String] {
        &self.order
    }

    /// The customers the partner has (those with a relationship), in seeding order: the listing's stable order.
    pub(crate) fn listed_ids(&self) -> Vec<&str> {
        self.order.iter().filter(|id| !self.forbidden.contains(*id)).map(String::as_str).collect()
    }

    pub(crate) fn customer(&self, id: &str) -> Lookup {
        let id = key(id);
        if self.forbidden.contains(&id) {
            return Lookup::Forbidden;
        }
        match self.shard(&id).get(&id) {
            Some(profile) => Lookup::Found(profile.clone()),
            None => Lookup::NotFound,
        }
    }

    /// Whether a customer exists (forbidden ones included).
    pub(crate) fn has_customer(&self, id: &str) -> bool {
        let id = key(id);
        self.forbidden.contains(&id) || self.shard(&id).contains_key(&id)
    }

    /// Checks and applies a PUT of a customer's billing profile.
    pub(crate) fn put_customer(&self, id: &str, if_match: Option<&str>, body: Value) -> Result<Applied, PutRefusal> {
        let id = key(id);
        if self.forbidden.contains(&id) {
            return Err(PutRefusal::Forbidden);
        }
        let mut shard = self.shard(&id);
        let stored = shard.get(&id).ok_or(PutRefusal::NotFound)?;
        let if_match = if_match.ok_or(PutRefusal::MissingIfMatch)?;
        if etag_of(stored) != Some(unquote(if_match)) {
            return Err(PutRefusal::StaleEtag);
        }
        let mut body = profile::normalise_keys(body, Some(stored));
        let Some(fields) = body.as_object() else {
            return Err(PutRefusal::Invalid(not_an_object()));
        };
        profile::check_customer_billing(fields).map_err(PutRefusal::Invalid)?;
        let comparison = profile::compare(stored, &body);
        if let (Some(fields), Some(stored_id)) = (body.as_object_mut(), stored.get("id")) {
            fields.insert("id".into(), stored_id.clone());
        }
        set_etag(&mut body, &self.etags.next(), "CustomerBillingProfile");
        shard.insert(id, body.clone());
        Ok(Applied { profile: body, comparison })
    }

    /// Someone else sets `path` of a customer's profile (a new etag); `None` when there is no such customer,
    /// `Some(false)` when a value on the way is not an object.
    pub(crate) fn edit_customer(&self, id: &str, path: &str, value: Value) -> Option<bool> {
        self.modify_customer(id, |profile| profile::set_path(profile, path, value))
    }

    /// Someone else's edit to an unrelated field: `extensions.editsBySomeoneElse` goes up by one.
    pub(crate) fn edit_concurrently(&self, id: &str) -> bool {
        let edited = self.modify_customer(id, |profile| {
            let edits = profile::get_path(profile, EDITS_BY_SOMEONE_ELSE).and_then(Value::as_u64).unwrap_or(0);
            profile::set_path(profile, EDITS_BY_SOMEONE_ELSE, json!(edits + 1))
        });
        edited == Some(true)
    }

    /// Applies `change` to a copy of the stored profile and, when it says so, stores the copy with a new etag.
    fn modify_customer(&self, id: &str, change: impl FnOnce(&mut Value) -> bool) -> Option<bool> {
        let id = key(id);
        let mut shard = self.shard(&id);
        let profile = shard.get_mut(&id)?;
        let mut edited = profile.clone();
        if !change(&mut edited) {
            return Some(false);
        }
        set_etag(&mut edited, &self.etags.next(), "CustomerBillingProfile");
        *profile = edited;
        Some(true)
    }

    pub(crate) fn partner(&self, kind: PartnerProfileKind) -> Option<Value> {
        lock(&self.partner).get(&kind).cloned()
    }

    /// Checks and applies a PUT of a partner profile: `If-Match` enforced when sent (the support profile has no
    /// etag), the service's own fields unchangeable.
    pub(crate) fn put_partner(
        &self,
        kind: PartnerProfileKind,
        if_match: Option<&str>,
        body: Value,
    ) -> Result<Applied, PutRefusal> {
        let mut profiles = lock(&self.partner);
        let stored = profiles.get(&kind).ok_or(PutRefusal::NotFound)?;
        let stored_etag = etag_of(stored);
        if let (Some(if_match), Some(stored_etag)) = (if_match, stored_etag)
            && unquote(if_match) != stored_etag
        {
            return Err(PutRefusal::StaleEtag);
        }
        let mut body = profile::normalise_keys(body, Some(stored));
        if !body.is_object() {
            return Err(PutRefusal::Invalid(not_an_object()));
        }
        keep_service_fields(kind, stored, &mut body).map_err(PutRefusal::Invalid)?;
        let mut comparison = profile::compare(stored, &body);
        comparison.unmodeled_altered.clear();
        comparison.lost_edit = false;
        if stored_etag.is_some() {
            set_etag(&mut body, &self.etags.next(), kind.object_type());
        }
        profiles.insert(kind, body.clone());
        Ok(Applied { profile: body, comparison })
    }
}

fn shard_of(id: &str) -> usize {
    id.bytes().fold(0usize, |hash, byte| hash.wrapping_mul(31).wrapping_add(usize::from(byte))) % SHARDS
}

fn not_an_object() -> Invalid {
    Invalid {
        code: CODE_INVALID_PROPERTY,
        description: "Invalid property: the body must be a JSON object".into(),
        field: String::new(),
    }
}

/// The fields the service owns (dotted paths): sent changed → refused; left out → kept. The legal business
/// profile's legal name and the country of its legal address are the service's too (issue 15).
fn keep_service_fields(kind: PartnerProfileKind, stored: &Value, body: &mut Value) -> Result<(), Invalid> {
    let owned: &[&str] = match kind {
        PartnerProfileKind::LegalBusiness => &["vettingStatus", "vettingSubStatus", "companyName", "address.country"],
        PartnerProfileKind::Organization => &["tenantId", "id"],
        PartnerProfileKind::Billing | PartnerProfileKind::Support => &[],
    };
    for field in owned {
        let Some(stored_value) = profile::get_path(stored, field) else {
            continue;
        };
        match profile::get_path(body, field) {
            None => {
                profile::set_path(body, field, stored_value.clone());
            }
            Some(sent) if sent != stored_value => {
                return Err(Invalid {
                    code: CODE_INVALID_PROPERTY,
                    description: format!("Invalid property: {field} is set by the service and cannot be changed"),
                    field: (*field).to_string(),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::seed;

    fn store() -> (Store, String) {
        let id = "a58ceba5-60ac-48e4-a0bc-2a855811807a".to_string();
        let profile = seed::generate_profile(1, &id);
        (Store::new(1, vec![profile], &[], seed::partner_profiles(1)), id)
    }

    fn current(store: &Store, id: &str) -> Value {
        match store.customer(id) {
            Lookup::Found(profile) => profile,
            other => panic!("customer {id} not found: {other:?}"),
        }
    }

    #[test]
    fn a_put_needs_the_current_etag_and_changes_it() {
        let (store, id) = store();
        let read = current(&store, &id);
        let etag = etag_of(&read).unwrap_or_default().to_string();
        assert_eq!(store.put_customer(&id, None, read.clone()).err(), Some(PutRefusal::MissingIfMatch));
        assert_eq!(store.put_customer(&id, Some("\"nope\""), read.clone()).err(), Some(PutRefusal::StaleEtag));
        let applied = store.put_customer(&id, Some(&format!("\"{etag}\"")), read.clone());
        let new_etag = applied.map(|applied| etag_of(&applied.profile).map(str::to_string));
        assert!(matches!(&new_etag, Ok(Some(new)) if *new != etag), "{new_etag:?}");
        assert_eq!(store.put_customer(&id, Some(&etag), read).err(), Some(PutRefusal::StaleEtag));
    }

    #[test]
    fn a_concurrent_edit_changes_the_etag_and_the_counter() {
        let (store, id) = store();
        let before = current(&store, &id);
        assert!(store.edit_concurrently(&id));
        let after = current(&store, &id);
        assert_ne!(etag_of(&before), etag_of(&after));
        assert_eq!(profile::get_path(&after, EDITS_BY_SOMEONE_ELSE), Some(&json!(1)));
        assert!(!store.edit_concurrently("unknown"));
    }

    #[test]
    fn service_fields_of_partner_profiles_cannot_change() {
        let (store, _) = store();
        let mut legal = store.partner(PartnerProfileKind::LegalBusiness).unwrap_or_default();
        legal["vettingStatus"] = json!("none");
        let refused = store.put_partner(PartnerProfileKind::LegalBusiness, None, legal);
        assert!(matches!(refused, Err(PutRefusal::Invalid(Invalid { code: CODE_INVALID_PROPERTY, .. }))));
        let mut support = store.partner(PartnerProfileKind::Support).unwrap_or_default();
        support["telephone"] = json!("4255550000");
        assert!(store.put_partner(PartnerProfileKind::Support, None, support).is_ok());
    }
}
