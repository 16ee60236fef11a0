//! `pcbulk partner`: the partner's own four profiles (billing, legal business, organization, support), read and
//! changed with the same care as a customer's billing profile.
//!
//! It reuses the stages of the bulk job rather than copying them: [`crate::fields`] (the `Field` and `Rule` of every
//! catalog entry), [`crate::merge`] (every other field untouched), `crate::write` (the one protocol of a write:
//! GET → merge → intent → PUT with `If-Match` → re-read on a stale etag or a lost answer), [`crate::client`]
//! (headers, retries, the stale-etag class), [`crate::state`] (the audit trail, in `state::audit`).
//!
//! Code map: `catalog` (the field catalog of each kind, the fields the service owns), `assignments` (`--set
//! PATH=VALUE` checked against a catalog), `access` (which credentials each kind takes), `update` (GET; `set` and
//! `undo` as `crate::write` plans, the audit trail as its journal), `undo` (the last audited change), `error`. The
//! command line is `cli::partner`'s.
//!
//! Invariants: every `--set` is checked before any network call; a field the service owns is never sent changed; the
//! legal business profile is never PUT without `--yes`; every PUT is in the audit trail before it is sent.

mod access;
mod assignments;
mod catalog;
mod error;
mod undo;
mod update;

pub use access::check_credentials;
pub use assignments::{AssignmentError, parse_assignment, parse_assignments};
pub use catalog::{BILLING, LEGAL_BUSINESS, ORGANIZATION, SUPPORT, catalog, owned_in, service_owned};
pub use error::PartnerError;
pub use undo::{UndoError, last_change, undo};
pub use update::{RE_MERGES, SetMode, SetOutcome, SetRequest, Trail, fetch, set};
