//! Which credentials each kind of partner profile takes, checked before anything is sent.

use super::error::PartnerError;
use crate::auth::Credentials;
use crate::client::ApiConfig;
use crate::wire::PartnerProfileKind;

/// Whether reading (`writing` false) or changing a kind of partner profile takes App+User credentials only. The docs'
/// Prerequisites of each page: "App+User credentials only" for the billing profile's GET
/// (learn.microsoft.com/partner-center/developer/get-partner-billing-profile), the support profile's GET and PUT
/// (get-support-profile, update-support-profile), the organization profile's PUT (update-an-organization-profile)
/// and the legal business profile's PUT (update-legal-business-profile); the legal business profile's GET takes
/// "both standalone App and App+User" (get-legal-business-profile). The organization profile's GET is taken as
/// App+User only (issue 15; its page was not checked).
fn needs_app_user(kind: PartnerProfileKind, writing: bool) -> bool {
    writing || kind != PartnerProfileKind::LegalBusiness
}

/// Refuses app-only credentials (the client-credentials grant) where the service takes App+User only, before
/// anything is sent. A static token cannot be told apart: it goes, and the service answers.
pub fn check_credentials(api: &ApiConfig, kind: PartnerProfileKind, writing: bool) -> Result<(), PartnerError> {
    let app_only = matches!(api.credentials, Credentials::ClientCredentials { .. });
    match app_only && needs_app_user(kind, writing) {
        true => Err(PartnerError::NeedsAppUser {
            operation: if writing { "changing" } else { "reading" },
            kind: kind.name(),
        }),
        false => Ok(()),
    }
}
