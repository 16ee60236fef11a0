//! Reading and writing one partner profile: GET; and GET, merge, PUT with `If-Match`, read and merge again when
//! the profile changed in between (bounded), with every PUT in the audit trail before it is sent.
//!
//! Orchestration only: the calls are [`crate::client`]'s, the merge [`crate::merge`]'s, the trail [`crate::state`]'s.
//! It never sends a PUT that would change nothing, never resends a PUT that may have landed (it reads again), never
//! PUTs the legal business profile unconfirmed, and writes only to the `notes` it is given (the diff, the outcome).

use super::error::PartnerError;
use crate::client::{CallError, CallIds, Client, ErrorClass, Fetched};
use crate::input::Change;
use crate::merge::{self, FieldChange, Merged};
use crate::state::StateFile;
use crate::state::audit::{self, PartnerAnswer, PartnerOutcome};
use crate::wire::{self, PartnerProfileKind};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

/// How many times a profile that changed between its GET and its PUT is read and merged again.
pub const RE_MERGES: u32 = 5;

/// Whether `set` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Read, merge, show the diff; no PUT, no audit row.
    DryRun,
    /// Read, merge, show the diff, PUT. `confirmed` (`--yes`) is needed for the legal business profile.
    Apply { confirmed: bool },
}

/// What `partner set` is asked to do, resolved from the command line.
#[derive(Clone, Debug)]
pub struct SetRequest {
    pub kind: PartnerProfileKind,
    pub changes: Vec<Change>,
    pub mode: Mode,
}

/// Where the PUTs are recorded: the state file and the API root they went to.
pub struct Trail<'a> {
    pub state: &'a StateFile,
    pub base_url: &'a str,
}

/// How a `set` ended well.
#[derive(Clone, Debug, PartialEq)]
pub enum SetOutcome {
    /// The profile already held every value given: nothing sent.
    Unchanged,
    /// A dry run: these fields would change.
    WouldUpdate(Vec<FieldChange>),
    /// Written: these fields changed; the ids of the PUT.
    Updated { changes: Vec<FieldChange>, ids: CallIds },
}

/// Reads a partner profile as the service sends it (the legal business profile with `?vettingVersion=Current`, as
/// the docs' example and the .NET SDK send it: [`wire::LEGAL_BUSINESS_QUERY`]).
pub async fn fetch(client: &Client, kind: PartnerProfileKind) -> Result<Value, PartnerError> {
    let fetched = match kind {
        PartnerProfileKind::LegalBusiness => client.get_with_query(kind.get_path(), wire::LEGAL_BUSINESS_QUERY).await,
        _ => client.get(kind.get_path()).await,
    };
    Ok(fetched.map_err(|error| call_failed("GET", kind.get_path(), error))?.body)
}

/// The support profile's PUT path that worked, per API root, for the rest of the process.
static SUPPORT_PUT_PATH: Mutex<BTreeMap<String, &'static str>> = Mutex::new(BTreeMap::new());

/// The path to PUT a kind to, and the one to try when it answers 404 or 405: for the support profile, the one that
/// worked before in this process, else the SDKs' `/v1/profiles/support` and then the documented
/// `/v1/profiles/supportprofile`.
fn put_paths(client: &Client, kind: PartnerProfileKind) -> (&'static str, Option<&'static str>) {
    if kind != PartnerProfileKind::Support {
        return (kind.put_path(), None);
    }
    let known = SUPPORT_PUT_PATH.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    match known.get(client.base_url().as_str()) {
        Some(path) => (*path, None),
        None => (kind.put_path(), Some(wire::SUPPORT_PUT_PATH_DOCUMENTED)),
    }
}

fn remember_support_put_path(client: &Client, path: &'static str) {
    let mut known = SUPPORT_PUT_PATH.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    known.insert(client.base_url().as_str().to_string(), path);
}

/// Whether the path itself was refused (404 or 405): nothing was applied, another path may be tried.
fn path_refused(answer: &Result<Fetched, CallError>) -> bool {
    matches!(answer, Err(error) if matches!(error.status(), Some(404 | 405)))
}

/// PUTs to the kind's path, and once to the fallback path when the first is refused; the support profile's path
/// that answered anything but 404 or 405 is remembered. Answers the path of the last PUT and its answer.
async fn put_to(
    client: &Client,
    kind: PartnerProfileKind,
    profile: &Value,
    etag: Option<&str>,
) -> (&'static str, Result<Fetched, CallError>) {
    let (first, fallback) = put_paths(client, kind);
    let mut path = first;
    let mut answer = client.put(path, profile, etag).await;
    if let (true, Some(other)) = (path_refused(&answer), fallback) {
        path = other;
        answer = client.put(path, profile, etag).await;
    }
    if kind == PartnerProfileKind::Support && !path_refused(&answer) {
        remember_support_put_path(client, path);
    }
    (path, answer)
}

/// Reads, merges, shows the diff on `notes` and (unless a dry run) PUTs, recording each PUT in `trail` first
/// (the command line always gives one; a library caller may do without).
pub async fn set(
    client: &Client,
    request: &SetRequest,
    trail: Option<&Trail<'_>>,
    notes: &mut dyn Write,
) -> Result<SetOutcome, PartnerError> {
    let kind = request.kind;
    // A PUT whose answer was lost: the next read says whether it landed.
    let mut unconfirmed: Option<Unconfirmed> = None;
    for read in 0..=RE_MERGES {
        let read_profile = fetch(client, kind).await?;
        if read == 0 {
            settle_earlier(kind, trail, &read_profile, notes)?;
        }
        let merged = merge::merge(&read_profile, &request.changes)
            .map_err(|error| PartnerError::Merge { kind: kind.name(), error })?;
        let (written, changes) = match merged {
            Merged::Unchanged => return settle_unchanged(kind, trail, unconfirmed, notes),
            Merged::Changed { profile, changes } => (profile, changes),
        };
        if let Some(lost) = unconfirmed.take() {
            let error = "the put did not land: the profile read again does not hold its values";
            record(trail, lost.id, lost.answer(PartnerOutcome::Failed, Some(error.to_string())))?;
        }
        show_diff(notes, kind, &changes, read);
        if request.mode == Mode::DryRun {
            note(notes, "dry run: nothing was sent");
            return Ok(SetOutcome::WouldUpdate(changes));
        }
        if kind == PartnerProfileKind::LegalBusiness && request.mode != (Mode::Apply { confirmed: true }) {
            return Err(PartnerError::NeedsConfirmation);
        }
        let etag = merge::etag(&read_profile);
        match put(client, kind, &written, etag, &changes, trail).await? {
            Put::Done(ids) => {
                let (request_id, correlation_id) = (ids.request_id, ids.correlation_id);
                note(
                    notes,
                    &format!(
                        "{} profile updated (request id {request_id}, correlation id {correlation_id})",
                        kind.name()
                    ),
                );
                return Ok(SetOutcome::Updated { changes, ids });
            }
            Put::Stale => {
                note(notes, &format!("the {} profile changed since it was read: reading it again", kind.name()))
            }
            Put::Unknown(id, ids) => {
                note(
                    notes,
                    &format!("the answer to the put was lost: reading the {} profile again to settle it", kind.name()),
                );
                unconfirmed = Some(Unconfirmed { id, changes, ids });
            }
        }
    }
    Err(PartnerError::KeptChanging { kind: kind.name(), reads: RE_MERGES + 1 })
}

/// The profile holds every value given: done, either by a PUT of ours whose answer was lost, or already.
fn settle_unchanged(
    kind: PartnerProfileKind,
    trail: Option<&Trail<'_>>,
    unconfirmed: Option<Unconfirmed>,
    notes: &mut dyn Write,
) -> Result<SetOutcome, PartnerError> {
    match unconfirmed {
        Some(lost) => {
            record(trail, lost.id, lost.answer(PartnerOutcome::Updated, None))?;
            note(
                notes,
                &format!(
                    "{} profile updated (its answer was lost; the profile read again holds the values given)",
                    kind.name()
                ),
            );
            Ok(SetOutcome::Updated { changes: lost.changes, ids: lost.ids })
        }
        None => {
            note(notes, &format!("{} profile: no change: it already holds every value given", kind.name()));
            Ok(SetOutcome::Unchanged)
        }
    }
}

/// Settles the PUTs of an earlier run whose answer was never recorded (killed in flight, or killed while reading
/// again after a lost answer): the profile as read now says whether each landed. An `undo` refuses until they are.
fn settle_earlier(
    kind: PartnerProfileKind,
    trail: Option<&Trail<'_>>,
    profile: &Value,
    notes: &mut dyn Write,
) -> Result<(), PartnerError> {
    let Some(trail) = trail else { return Ok(()) };
    for change in audit::unsettled_partner_changes(trail.state, kind, trail.base_url)? {
        let written = crate::state::decode_changes(super::catalog::catalog(kind), &change.before, &change.after);
        let landed = holds_written(kind, profile, &written);
        let (outcome, error, words) = match landed {
            true => (PartnerOutcome::Updated, None, "it landed: the profile holds its values"),
            false => (
                PartnerOutcome::Failed,
                Some("settled by reading again: the profile does not hold its values".to_string()),
                "it did not land (or was overwritten since): the profile does not hold its values",
            ),
        };
        let answer = PartnerAnswer {
            outcome,
            http_status: None,
            error_code: None,
            error,
            request_id: change.request_id.clone(),
            correlation_id: change.correlation_id.clone(),
        };
        audit::record_partner_answer(trail.state, change.id, &answer)?;
        note(
            notes,
            &format!("change {} of the {} profile, left unsettled by an earlier run: {words}", change.id, kind.name()),
        );
    }
    Ok(())
}

/// Whether every field a PUT wrote holds the value it wrote.
fn holds_written(kind: PartnerProfileKind, profile: &Value, written: &[FieldChange]) -> bool {
    written.iter().all(|change| {
        let Some(field) = crate::fields::lookup(super::catalog::catalog(kind), change.field) else { return false };
        merge::slot_at(profile, field.path) == change.after
    })
}

/// What a PUT came to, short of an error.
enum Put {
    Done(CallIds),
    /// The profile changed since it was read: read and merge again.
    Stale,
    /// The answer was lost (the PUT may have landed): read again to settle the intent with this id.
    Unknown(Option<i64>, CallIds),
}

/// A PUT whose answer was lost, waiting for the next read to say whether it landed.
struct Unconfirmed {
    /// Its row in the trail.
    id: Option<i64>,
    changes: Vec<FieldChange>,
    ids: CallIds,
}

impl Unconfirmed {
    fn answer(&self, outcome: PartnerOutcome, error: Option<String>) -> PartnerAnswer {
        PartnerAnswer {
            outcome,
            http_status: None,
            error_code: None,
            error,
            request_id: Some(self.ids.request_id.to_string()),
            correlation_id: Some(self.ids.correlation_id.to_string()),
        }
    }
}

/// Records the intent, PUTs the whole profile with `If-Match` (when an etag was read), records the answer.
async fn put(
    client: &Client,
    kind: PartnerProfileKind,
    profile: &Value,
    etag: Option<&str>,
    changes: &[FieldChange],
    trail: Option<&Trail<'_>>,
) -> Result<Put, PartnerError> {
    let id = match trail {
        Some(trail) => Some(audit::record_partner_intent(trail.state, kind, trail.base_url, changes)?),
        None => None,
    };
    let (path, answer) = put_to(client, kind, profile, etag).await;
    let error = match answer {
        Ok(fetched) => {
            let done = PartnerAnswer {
                outcome: PartnerOutcome::Updated,
                http_status: Some(fetched.status),
                error_code: None,
                error: None,
                request_id: Some(fetched.ids.request_id.to_string()),
                correlation_id: Some(fetched.ids.correlation_id.to_string()),
            };
            record(trail, id, done)?;
            return Ok(Put::Done(fetched.ids));
        }
        Err(error) => error,
    };
    let outcome = match error.class() {
        ErrorClass::Stale => PartnerOutcome::Conflict,
        ErrorClass::OutcomeUnknown => PartnerOutcome::Unknown,
        _ => PartnerOutcome::Failed,
    };
    record(trail, id, failed_answer(outcome, &error))?;
    match outcome {
        PartnerOutcome::Conflict => Ok(Put::Stale),
        PartnerOutcome::Unknown => Ok(Put::Unknown(id, error.ids())),
        _ => Err(call_failed("PUT", path, error)),
    }
}

fn record(trail: Option<&Trail<'_>>, id: Option<i64>, answer: PartnerAnswer) -> Result<(), PartnerError> {
    match (trail, id) {
        (Some(trail), Some(id)) => Ok(audit::record_partner_answer(trail.state, id, &answer)?),
        _ => Ok(()),
    }
}

fn failed_answer(outcome: PartnerOutcome, error: &CallError) -> PartnerAnswer {
    let ids = error.ids();
    let sent = error.attempts() > 0;
    PartnerAnswer {
        outcome,
        http_status: error.status(),
        error_code: error.code().map(ToString::to_string),
        error: Some(error.to_string()),
        request_id: sent.then(|| ids.request_id.to_string()),
        correlation_id: sent.then(|| ids.correlation_id.to_string()),
    }
}

fn call_failed(method: &'static str, path: &'static str, error: CallError) -> PartnerError {
    PartnerError::Call { method, path, error: Box::new(error) }
}

/// The diff, one line per field: `  field: before → after`, values as JSON.
fn show_diff(notes: &mut dyn Write, kind: PartnerProfileKind, changes: &[FieldChange], read: u32) {
    let again = if read > 0 { " (read again)" } else { "" };
    let count = changes.len();
    let fields = if count == 1 { "field" } else { "fields" };
    note(notes, &format!("{} profile{again}: {count} {fields} to change", kind.name()));
    for change in changes {
        note(notes, &format!("  {}: {} → {}", change.field, merge::shown(&change.before), merge::shown(&change.after)));
    }
    if kind == PartnerProfileKind::LegalBusiness {
        note(
            notes,
            "warning: Partner Center may verify the partner again after a change to the legal business profile",
        );
    }
}

fn note(notes: &mut dyn Write, line: &str) {
    // The notes are for a person watching; failing to show one is no reason to leave a change half made.
    let _ = writeln!(notes, "{line}");
}
