//! The errors of `pcbulk partner`: each names the argument, the value or the call it is about, in lowercase.
//!
//! A call's error carries the service's code and description and the ids of the call (never a token or a body).

use super::assignments::AssignmentError;
use crate::client::CallError;
use crate::merge::MergeError;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum PartnerError {
    #[error("KIND: value \"{0}\": not a partner profile: use billing, legalbusiness, organization or support")]
    Kind(String),
    #[error(transparent)]
    Assignment(#[from] AssignmentError),
    /// A call failed; `error` is not a `source` so that the chain does not print it twice.
    #[error("{method} {path}: {error}{}", ids(.error))]
    Call { method: &'static str, path: &'static str, error: Box<CallError> },
    #[error("the {kind} profile as read cannot take the changes: {error}")]
    Merge { kind: &'static str, error: MergeError },
    #[error(
        "the legal business profile was not changed: Partner Center may verify the partner again after a change \
         to it; add --yes to apply the change (or --dry-run to only see it)"
    )]
    NeedsConfirmation,
    #[error("the {kind} profile kept changing while it was being written ({reads} reads): nothing more was sent")]
    KeptChanging { kind: &'static str, reads: u32 },
    #[error(
        "{operation} the {kind} profile needs App+User credentials: Partner Center refuses app-only tokens for it. \
         Give env PCBULK_REFRESH_TOKEN (a refresh token from a partner admin's consent, signed in with MFA) with \
         --tenant and --client-id, or a user's token in PCBULK_TOKEN; nothing was sent"
    )]
    NeedsAppUser { operation: &'static str, kind: &'static str },
    #[error(transparent)]
    State(#[from] StateError),
    /// The client was stopped before the next request went out (a library caller's; the command never stops it).
    #[error("stopped before the next request went out: nothing more was sent")]
    Stopped,
}

/// The ids of a call that was sent, to quote in a support ticket.
fn ids(error: &CallError) -> String {
    if error.attempts() == 0 {
        return String::new();
    }
    let ids = error.ids();
    format!(" (request id {}, correlation id {})", ids.request_id, ids.correlation_id)
}
