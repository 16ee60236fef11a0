//! The field catalogs of the partner's own profiles: which paths `--set` may change in each, and the rule of each.
//!
//! Pure, like [`crate::fields`], whose `Field` and `Rule` these tables use. Addresses and contacts take the customer
//! catalog's rules and lengths (a unit test holds them equal). Fields the service owns (`vettingStatus`, `tenantId`,
//! `id`, `attributes.*`, `links.*`, ...) are never in a catalog: [`service_owned`] names them so they are refused by
//! name rather than as unknown.

use crate::fields::{Field, Rule, STATE_CODE_MAX, UNDOCUMENTED_MAX};
use crate::wire::PartnerProfileKind;

const fn text(min: usize, max: usize) -> Rule {
    Rule::Text { min, max }
}

/// The rules of an address's fields: those of `defaultAddress.*` in [`crate::fields::CUSTOMER_BILLING`].
mod address {
    use super::{Rule, STATE_CODE_MAX, UNDOCUMENTED_MAX, text};
    pub const COUNTRY: Rule = Rule::Country;
    pub const REGION: Rule = text(0, UNDOCUMENTED_MAX);
    pub const CITY: Rule = text(0, UNDOCUMENTED_MAX);
    pub const STATE: Rule = text(0, STATE_CODE_MAX);
    pub const LINE1: Rule = text(1, 200);
    pub const LINE2: Rule = text(0, 200);
    pub const LINE3: Rule = text(0, 200);
    pub const POSTAL_CODE: Rule = text(0, UNDOCUMENTED_MAX);
    pub const NAME: Rule = text(1, 50);
    pub const PHONE: Rule = text(0, 50);
}

/// The rules of a contact's fields: the customer's `firstName`, `lastName`, `email` and address phone number.
mod contact {
    use super::{Rule, text};
    pub const NAME: Rule = text(1, 50);
    pub const EMAIL: Rule = Rule::Email;
    pub const PHONE: Rule = text(0, 50);
}

/// A catalog: the profile's own fields, then every field of each address and of each contact it holds.
macro_rules! catalog {
    (
        own: [$($own:expr),* $(,)?],
        addresses: [$($address:literal),* $(,)?],
        contacts: [$($contact:literal),* $(,)?] $(,)?
    ) => {
        &[
            $($own,)*
            $(
                Field { name: concat!($address, ".country"), path: &[$address, "country"], rule: address::COUNTRY },
                Field { name: concat!($address, ".region"), path: &[$address, "region"], rule: address::REGION },
                Field { name: concat!($address, ".city"), path: &[$address, "city"], rule: address::CITY },
                Field { name: concat!($address, ".state"), path: &[$address, "state"], rule: address::STATE },
                Field {
                    name: concat!($address, ".addressLine1"),
                    path: &[$address, "addressLine1"],
                    rule: address::LINE1,
                },
                Field {
                    name: concat!($address, ".addressLine2"),
                    path: &[$address, "addressLine2"],
                    rule: address::LINE2,
                },
                Field {
                    name: concat!($address, ".addressLine3"),
                    path: &[$address, "addressLine3"],
                    rule: address::LINE3,
                },
                Field {
                    name: concat!($address, ".postalCode"),
                    path: &[$address, "postalCode"],
                    rule: address::POSTAL_CODE,
                },
                Field { name: concat!($address, ".firstName"), path: &[$address, "firstName"], rule: address::NAME },
                Field { name: concat!($address, ".lastName"), path: &[$address, "lastName"], rule: address::NAME },
                Field {
                    name: concat!($address, ".phoneNumber"),
                    path: &[$address, "phoneNumber"],
                    rule: address::PHONE,
                },
            )*
            $(
                Field { name: concat!($contact, ".firstName"), path: &[$contact, "firstName"], rule: contact::NAME },
                Field { name: concat!($contact, ".lastName"), path: &[$contact, "lastName"], rule: contact::NAME },
                Field { name: concat!($contact, ".email"), path: &[$contact, "email"], rule: contact::EMAIL },
                Field {
                    name: concat!($contact, ".phoneNumber"),
                    path: &[$contact, "phoneNumber"],
                    rule: contact::PHONE,
                },
            )*
        ]
    };
}

/// `BillingProfile`: where Microsoft sends the partner's invoices.
pub static BILLING: &[Field] = catalog! {
    own: [
        Field { name: "companyName", path: &["companyName"], rule: text(1, UNDOCUMENTED_MAX) },
        Field { name: "purchaseOrderNumber", path: &["purchaseOrderNumber"], rule: text(0, UNDOCUMENTED_MAX) },
        Field { name: "taxId", path: &["taxId"], rule: text(0, UNDOCUMENTED_MAX) },
        Field { name: "billingCurrency", path: &["billingCurrency"], rule: Rule::Currency },
    ],
    addresses: ["address"],
    contacts: ["primaryContact"],
};

/// `LegalBusinessProfile`: the partner's legal identity (a change may make Partner Center verify the partner again).
pub static LEGAL_BUSINESS: &[Field] = catalog! {
    own: [
        Field { name: "companyName", path: &["companyName"], rule: text(1, UNDOCUMENTED_MAX) },
        Field { name: "companyApproverEmail", path: &["companyApproverEmail"], rule: Rule::Email },
    ],
    addresses: ["address", "companyApproverAddress"],
    contacts: ["primaryContact"],
};

/// `OrganizationProfile`: the partner's organization (its `id` and `tenantId` are the service's).
pub static ORGANIZATION: &[Field] = catalog! {
    own: [
        Field { name: "companyName", path: &["companyName"], rule: text(1, UNDOCUMENTED_MAX) },
        Field { name: "domain", path: &["domain"], rule: Rule::Domain },
        Field { name: "email", path: &["email"], rule: Rule::Email },
        Field { name: "language", path: &["language"], rule: Rule::Language },
        Field { name: "culture", path: &["culture"], rule: Rule::Culture },
    ],
    addresses: ["defaultAddress"],
    contacts: [],
};

/// `PartnerSupportProfile`: where Microsoft sends the partner's customers for support.
pub static SUPPORT: &[Field] = catalog! {
    own: [
        Field { name: "email", path: &["email"], rule: Rule::Email },
        Field { name: "telephone", path: &["telephone"], rule: Rule::Phone },
        Field { name: "website", path: &["website"], rule: Rule::Url },
    ],
    addresses: [],
    contacts: [],
};

/// The catalog of a kind of partner profile.
pub fn catalog(kind: PartnerProfileKind) -> &'static [Field] {
    match kind {
        PartnerProfileKind::Billing => BILLING,
        PartnerProfileKind::LegalBusiness => LEGAL_BUSINESS,
        PartnerProfileKind::Organization => ORGANIZATION,
        PartnerProfileKind::Support => SUPPORT,
    }
}

/// Top-level fields the service sets and owns, in every partner profile.
const OWNED_FIELDS: [&str; 5] = ["id", "tenantId", "vettingStatus", "vettingSubStatus", "profileType"];
/// Objects the service owns with everything in them.
const OWNED_OBJECTS: [&str; 2] = ["attributes", "links"];

/// Fields of one kind of profile that Partner Center keeps to itself, with the reason `partner set` gives.
///
/// The legal business profile: a partner cannot move its legal address to another country through Partner Center
/// (a company in another country is another Partner Center account), and an authorized (vetted) partner's legal name
/// changes only through a request to Partner Center support with the documents that prove it. Source: the issue's
/// audit (issue 15); the REST pages (learn.microsoft.com/partner-center/developer/update-legal-business-profile)
/// show the PUT without naming these limits: unverified against the service.
const OWNED_IN_KIND: &[(PartnerProfileKind, &str, &str)] = &[
    (
        PartnerProfileKind::LegalBusiness,
        "address.country",
        "Partner Center does not let a partner change the country of its legal address (a company in another \
         country needs its own Partner Center account)",
    ),
    (
        PartnerProfileKind::LegalBusiness,
        "companyName",
        "an authorized partner's legal name changes only through a request to Partner Center support with proof of \
         the change, not through the API",
    ),
];

/// Why `path` of a kind's profile is the service's to set, when it is (matched without regard to case).
pub fn owned_in(kind: PartnerProfileKind, path: &str) -> Option<&'static str> {
    OWNED_IN_KIND
        .iter()
        .find(|(owner, owned, _)| *owner == kind && owned.eq_ignore_ascii_case(path))
        .map(|(_, _, reason)| *reason)
}

/// Whether `path` (matched without regard to case) names a field Partner Center owns: never set by pcbulk.
pub fn service_owned(path: &str) -> bool {
    let top = path.split('.').next().unwrap_or(path);
    OWNED_FIELDS.iter().any(|owned| owned.eq_ignore_ascii_case(path))
        || OWNED_OBJECTS.iter().any(|owned| owned.eq_ignore_ascii_case(top))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{self, CUSTOMER_BILLING};

    #[test]
    fn names_are_their_paths_and_unique() {
        for kind in PartnerProfileKind::ALL {
            let fields = catalog(kind);
            for (index, field) in fields.iter().enumerate() {
                assert_eq!(field.path.join("."), field.name);
                assert!(!service_owned(field.name), "{}", field.name);
                let twins = fields[index + 1..].iter().filter(|other| other.name.eq_ignore_ascii_case(field.name));
                assert_eq!(twins.count(), 0, "{} twice in {}", field.name, kind.name());
            }
        }
        assert_eq!(BILLING.len(), 4 + 11 + 4);
        assert_eq!(LEGAL_BUSINESS.len(), 2 + 22 + 4);
        assert_eq!(ORGANIZATION.len(), 5 + 11);
        assert_eq!(SUPPORT.len(), 3);
    }

    #[test]
    fn addresses_and_contacts_follow_the_customer_catalog() {
        let customer = |name: &str| fields::lookup(CUSTOMER_BILLING, name).map(|field| field.rule);
        for kind in PartnerProfileKind::ALL {
            for field in catalog(kind) {
                let expected = match field.path {
                    [parent, leaf] if parent.ends_with("ddress") => customer(&format!("defaultAddress.{leaf}")),
                    [_, "phoneNumber"] => customer("defaultAddress.phoneNumber"),
                    [_, leaf] => customer(leaf),
                    _ => continue,
                };
                assert_eq!(Some(field.rule), expected, "{} of {}", field.name, kind.name());
            }
        }
    }

    #[test]
    fn the_seeds_paths_are_there() {
        let has = |kind, name| fields::lookup(catalog(kind), name).is_some();
        assert!(has(PartnerProfileKind::Billing, "PURCHASEORDERNUMBER"));
        assert!(has(PartnerProfileKind::Billing, "address.city"));
        assert!(has(PartnerProfileKind::Billing, "primaryContact.email"));
        assert!(has(PartnerProfileKind::LegalBusiness, "companyApproverAddress.postalCode"));
        assert!(has(PartnerProfileKind::LegalBusiness, "companyApproverEmail"));
        assert!(has(PartnerProfileKind::Organization, "defaultAddress.phoneNumber"));
        assert!(has(PartnerProfileKind::Support, "website"));
        assert!(!has(PartnerProfileKind::Support, "address.city"));
    }

    #[test]
    fn legal_business_fields_the_service_owns_have_a_reason_and_are_in_the_catalog() {
        for (kind, path, reason) in OWNED_IN_KIND {
            assert!(fields::lookup(catalog(*kind), path).is_some(), "{path}");
            assert!(!reason.is_empty());
        }
        assert!(owned_in(PartnerProfileKind::LegalBusiness, "ADDRESS.COUNTRY").is_some());
        assert!(owned_in(PartnerProfileKind::Billing, "address.country").is_none());
        assert!(owned_in(PartnerProfileKind::LegalBusiness, "companyApproverAddress.country").is_none());
    }

    #[test]
    fn service_fields_are_owned_at_any_case() {
        for owned in
            ["vettingStatus", "VETTINGSUBSTATUS", "tenantId", "id", "attributes.etag", "Links.self.uri", "links"]
        {
            assert!(service_owned(owned), "{owned}");
        }
        for free in ["taxId", "address.id", "domain", "linksCount"] {
            assert!(!service_owned(free), "{free}");
        }
    }
}
