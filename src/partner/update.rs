//! Reading and writing one partner profile: GET; and `set` and `undo` through `crate::write` (GET, merge or
//! restore, PUT with `If-Match`, read and merge again when the profile changed in between, settle a lost answer by
//! reading), with the audit trail as its journal: every PUT in the trail before it is sent.
//!
//! Orchestration only: the protocol is `crate::write`'s, the calls [`crate::client`]'s, the merge
//! [`crate::merge`]'s, the trail [`crate::state`]'s. It never sends a PUT that would change nothing, never PUTs the
//! legal business profile unconfirmed, and writes only to the `notes` it is given (the diff, the outcome).

use super::catalog::catalog;
use super::error::PartnerError;
use crate::client::{CallError, CallIds, Client, ErrorClass, Fetched};
use crate::input::Change;
use crate::merge::{self, FieldChange, MergeError, Merged};
use crate::state::audit::{self, PartnerAnswer, PartnerOutcome};
use crate::state::{CallRecord, StateFile};
use crate::undo::{self, Undone};
use crate::wire::{self, PartnerProfileKind};
use crate::write::{self, Interrupted, Journal, Method, Resource, Review, Step, Written};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

/// How many times a profile that changed between its GET and its PUT is read and merged again.
pub const RE_MERGES: u32 = write::MAX_REMERGES;

/// Whether `set` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetMode {
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
    pub mode: SetMode,
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
    let resource = PartnerProfile::new(client, kind);
    let fetched = write::read(&resource, &mut write::Calls::default(), false).await;
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
    let known = crate::sync::lock(&SUPPORT_PUT_PATH);
    match known.get(client.base_url().as_str()) {
        Some(path) => (*path, None),
        None => (kind.put_path(), Some(wire::SUPPORT_PUT_PATH_DOCUMENTED)),
    }
}

fn remember_support_put_path(client: &Client, path: &'static str) {
    let mut known = crate::sync::lock(&SUPPORT_PUT_PATH);
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

/// A partner profile of one kind: read as the service sends it, PUT to its path (and the support profile's fallback).
struct PartnerProfile<'a> {
    client: &'a Client,
    kind: PartnerProfileKind,
    /// The path of the last PUT, to name in its error.
    put_path: Cell<&'static str>,
}

impl PartnerProfile<'_> {
    fn new(client: &Client, kind: PartnerProfileKind) -> PartnerProfile<'_> {
        PartnerProfile { client, kind, put_path: Cell::new(kind.put_path()) }
    }
}

impl Resource for PartnerProfile<'_> {
    async fn get(&self, settling: bool) -> Result<Fetched, CallError> {
        let (client, path) = (self.client, self.kind.get_path());
        match (self.kind, settling) {
            (PartnerProfileKind::LegalBusiness, false) => client.get_with_query(path, wire::LEGAL_BUSINESS_QUERY).await,
            (PartnerProfileKind::LegalBusiness, true) => {
                client.get_with_query_to_settle(path, wire::LEGAL_BUSINESS_QUERY).await
            }
            (_, false) => client.get(path).await,
            (_, true) => client.get_to_settle(path).await,
        }
    }

    async fn put(&self, profile: &Value, etag: Option<&str>) -> Result<Fetched, CallError> {
        let (path, answer) = put_to(self.client, self.kind, profile, etag).await;
        self.put_path.set(path);
        answer
    }
}

/// What a write of a partner profile asks: `set`'s changes, or `undo`'s before-values of a recorded change.
#[derive(Clone, Copy)]
enum Edits<'a> {
    Set(&'a [Change]),
    /// Put back the before-values of change `id`, which wrote `written`, where its values still hold.
    Undo {
        id: i64,
        written: &'a [FieldChange],
    },
}

/// A partner write's plan: the edits, and the diff shown and the confirmation asked before a PUT.
struct PartnerPlan<'a, 'n> {
    kind: PartnerProfileKind,
    edits: Edits<'a>,
    mode: SetMode,
    notes: &'a RefCell<&'n mut dyn Write>,
}

/// Why a partner write is held before its PUT.
enum Hold {
    DryRun,
    NeedsConfirmation,
}

impl write::Plan for PartnerPlan<'_, '_> {
    type Hold = Hold;

    fn step(&self, read: Value) -> Result<Step, MergeError> {
        let merged = match self.edits {
            Edits::Set(changes) => merge::merge(read, changes)?,
            Edits::Undo { written, .. } => match undo::restore_in(catalog(self.kind), read, written)? {
                Undone::Merged(merged) => merged,
                Undone::Conflict(message) => return Ok(Step::Conflict(message)),
            },
        };
        Ok(match merged {
            Merged::Unchanged => Step::InPlace,
            Merged::Changed { profile, changes } => Step::Write { profile, changes },
        })
    }

    async fn review(&mut self, _profile: &Value, changes: &[FieldChange], reads: u32) -> Review<Hold> {
        let notes = &mut **self.notes.borrow_mut();
        if let (Edits::Undo { id, .. }, 0) = (self.edits, reads) {
            note(notes, &format!("undoing change {id} of the {} profile", self.kind.name()));
        }
        show_diff(notes, self.kind, changes, reads);
        match self.mode {
            SetMode::DryRun => Review::Hold(Hold::DryRun),
            SetMode::Apply { confirmed: false } if self.kind == PartnerProfileKind::LegalBusiness => {
                Review::Hold(Hold::NeedsConfirmation)
            }
            SetMode::Apply { .. } => Review::Proceed,
        }
    }
}

/// The audit trail (when there is one) and the notes a person reads: every PUT in the trail before it is sent.
struct Audit<'a, 'n> {
    kind: PartnerProfileKind,
    trail: Option<&'a Trail<'a>>,
    notes: &'a RefCell<&'n mut dyn Write>,
    /// The trail's row of the PUT last intended.
    intended: Option<i64>,
    /// A PUT whose answer was lost: its row and ids, until the next read settles it.
    lost: Option<(Option<i64>, CallIds)>,
}

impl Audit<'_, '_> {
    fn record(&self, id: Option<i64>, answer: &PartnerAnswer) -> Result<(), PartnerError> {
        match (self.trail, id) {
            (Some(trail), Some(id)) => Ok(audit::record_partner_answer(trail.state, id, answer)?),
            _ => Ok(()),
        }
    }

    fn note(&self, line: &str) {
        note(&mut **self.notes.borrow_mut(), line);
    }
}

/// An answer known without the service's words: settled by reading, or never sent.
fn quiet_answer(outcome: PartnerOutcome, error: Option<String>, ids: Option<CallIds>) -> PartnerAnswer {
    let call = CallRecord {
        error,
        request_id: ids.map(|ids| ids.request_id.to_string()),
        correlation_id: ids.map(|ids| ids.correlation_id.to_string()),
        ..CallRecord::default()
    };
    PartnerAnswer { outcome, call }
}

impl Journal for Audit<'_, '_> {
    type Error = PartnerError;

    fn read(&mut self, profile: &Value, reads: u32) -> Result<(), PartnerError> {
        match (reads, self.trail) {
            (0, Some(trail)) => settle_earlier(self.kind, trail, profile, &mut **self.notes.borrow_mut()),
            _ => Ok(()),
        }
    }

    async fn intend(&mut self, changes: &[FieldChange]) -> Result<(), PartnerError> {
        self.intended = match self.trail {
            Some(trail) => Some(audit::record_partner_intent(trail.state, self.kind, trail.base_url, changes)?),
            None => None,
        };
        Ok(())
    }

    fn withdraw(&mut self) -> Result<(), PartnerError> {
        let error = "not sent: stopped before the put went out".to_string();
        self.record(self.intended, &quiet_answer(PartnerOutcome::Failed, Some(error), None))
    }

    fn answered(&mut self, answer: Result<&Fetched, &CallError>) -> Result<(), PartnerError> {
        let name = self.kind.name();
        let error = match answer {
            Ok(fetched) => {
                let call = CallRecord {
                    http_status: Some(fetched.status),
                    request_id: Some(fetched.ids.request_id.to_string()),
                    correlation_id: Some(fetched.ids.correlation_id.to_string()),
                    ..CallRecord::default()
                };
                let done = PartnerAnswer { outcome: PartnerOutcome::Updated, call };
                self.record(self.intended, &done)?;
                let (request_id, correlation_id) = (fetched.ids.request_id, fetched.ids.correlation_id);
                let words =
                    format!("{name} profile updated (request id {request_id}, correlation id {correlation_id})");
                self.note(&words);
                return Ok(());
            }
            Err(error) => error,
        };
        let outcome = match error.class() {
            ErrorClass::Stale => PartnerOutcome::Conflict,
            ErrorClass::OutcomeUnknown => PartnerOutcome::Unknown,
            _ => PartnerOutcome::Failed,
        };
        self.record(self.intended, &failed_answer(outcome, error))?;
        match outcome {
            PartnerOutcome::Conflict => {
                self.note(&format!("the {name} profile changed since it was read: reading it again"))
            }
            PartnerOutcome::Unknown => {
                self.note(&format!("the answer to the put was lost: reading the {name} profile again to settle it"));
                self.lost = Some((self.intended, error.ids()));
            }
            _ => {}
        }
        Ok(())
    }

    fn settled(&mut self, landed: bool) -> Result<(), PartnerError> {
        let Some((id, ids)) = self.lost.take() else { return Ok(()) };
        let error = (!landed).then(|| "the put did not land: the profile read again does not hold its values".into());
        let outcome = if landed { PartnerOutcome::Updated } else { PartnerOutcome::Failed };
        self.record(id, &quiet_answer(outcome, error, Some(ids)))?;
        if landed {
            let words = "profile updated (its answer was lost; the profile read again holds the values given)";
            self.note(&format!("{} {words}", self.kind.name()));
        }
        Ok(())
    }
}

/// Reads, merges, shows the diff on `notes` and (unless a dry run) PUTs through `crate::write`, recording each
/// PUT in `trail` first (the command line always gives one; a library caller may do without).
pub async fn set(
    client: &Client,
    request: &SetRequest,
    trail: Option<&Trail<'_>>,
    notes: &mut dyn Write,
) -> Result<SetOutcome, PartnerError> {
    let kind = request.kind;
    let ended = write_profile(client, kind, Edits::Set(&request.changes), request.mode, trail, notes).await?;
    match ended {
        Ended::Written(outcome) => Ok(outcome),
        Ended::InPlace => {
            note(notes, &format!("{} profile: no change: it already holds every value given", kind.name()));
            Ok(SetOutcome::Unchanged)
        }
        // Only a restore finds a conflict; a merge never does.
        Ended::Conflict(message) => unreachable!("a set found a conflict: {message}"),
    }
}

/// Puts back the before-values of change `id`, which wrote `written`, where its values still hold: read, check,
/// merge, diff and PUT through `crate::write` like a `set`, so the undo is in the trail and can be undone too.
pub(super) async fn restore(
    client: &Client,
    kind: PartnerProfileKind,
    (id, written): (i64, &[FieldChange]),
    mode: SetMode,
    trail: Option<&Trail<'_>>,
    notes: &mut dyn Write,
) -> Result<Ended, PartnerError> {
    write_profile(client, kind, Edits::Undo { id, written }, mode, trail, notes).await
}

/// How a partner write ended short of an error, before its caller names it.
pub(super) enum Ended {
    Written(SetOutcome),
    /// The profile already held what was asked: nothing sent.
    InPlace,
    /// A restore found a field changed since the change it undoes: nothing sent.
    Conflict(String),
}

async fn write_profile(
    client: &Client,
    kind: PartnerProfileKind,
    edits: Edits<'_>,
    mode: SetMode,
    trail: Option<&Trail<'_>>,
    notes: &mut dyn Write,
) -> Result<Ended, PartnerError> {
    let resource = PartnerProfile::new(client, kind);
    // The plan shows the diff and the journal the answers, in the order they come.
    let notes = RefCell::new(notes);
    let mut plan = PartnerPlan { kind, edits, mode, notes: &notes };
    let mut journal = Audit { kind, trail, notes: &notes, intended: None, lost: None };
    let write = match write::write(&resource, &mut plan, &mut journal).await {
        Ok(write) => write,
        Err(Interrupted::Journal(error)) => return Err(error),
        Err(Interrupted::Stopped) => return Err(PartnerError::Stopped),
    };
    let notes = &mut **notes.borrow_mut();
    match write.written {
        Written::Landed { changes, .. } => {
            let ids = write.calls.last().expect("a write ends after a read").ids;
            Ok(Ended::Written(SetOutcome::Updated { changes, ids }))
        }
        Written::InPlace => Ok(Ended::InPlace),
        Written::Conflict(message) => Ok(Ended::Conflict(message)),
        Written::Held { hold: Hold::DryRun, changes } => {
            note(notes, "dry run: nothing was sent");
            Ok(Ended::Written(SetOutcome::WouldUpdate(changes)))
        }
        Written::Held { hold: Hold::NeedsConfirmation, .. } => Err(PartnerError::NeedsConfirmation),
        Written::Unmergeable(error) => Err(PartnerError::Merge { kind: kind.name(), error }),
        Written::KeptChanging(_) => Err(PartnerError::KeptChanging { kind: kind.name(), reads: RE_MERGES + 1 }),
        Written::Failed { method: Method::Get, error } => Err(call_failed("GET", kind.get_path(), error)),
        Written::Failed { method: Method::Put, error } => Err(call_failed("PUT", resource.put_path.get(), error)),
    }
}

/// Settles the PUTs of an earlier run whose answer was never recorded (killed in flight, or killed while reading
/// again after a lost answer): the profile as read now says whether each landed. An `undo` refuses until they are.
fn settle_earlier(
    kind: PartnerProfileKind,
    trail: &Trail<'_>,
    profile: &Value,
    notes: &mut dyn Write,
) -> Result<(), PartnerError> {
    for change in audit::unsettled_partner_changes(trail.state, kind, trail.base_url)? {
        let written = crate::state::decode_changes(catalog(kind), &change.before, &change.after);
        let landed = holds_written(kind, profile, &written);
        let (outcome, error, words) = match landed {
            true => (PartnerOutcome::Updated, None, "it landed: the profile holds its values"),
            false => (
                PartnerOutcome::Failed,
                Some("settled by reading again: the profile does not hold its values".to_string()),
                "it did not land (or was overwritten since): the profile does not hold its values",
            ),
        };
        let mut answer = quiet_answer(outcome, error, None);
        (answer.call.request_id, answer.call.correlation_id) = (change.call.request_id, change.call.correlation_id);
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
        let Some(field) = crate::fields::lookup(catalog(kind), change.field) else { return false };
        merge::slot_at(profile, field.path) == change.after
    })
}

fn failed_answer(outcome: PartnerOutcome, error: &CallError) -> PartnerAnswer {
    let mut call = write::failure(error);
    if error.attempts() == 0 {
        // Never sent: no ids to look up.
        (call.request_id, call.correlation_id) = (None, None);
    }
    PartnerAnswer { outcome, call }
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
