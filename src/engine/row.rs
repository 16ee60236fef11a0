//! One row's work: GET, merge, PUT with If-Match, settle. Written once; every worker runs it, for an apply (the
//! CSV's changes) and for a rollback (the before-values, where the job's values still hold) alike.
//!
//! Never sends a PUT without first committing its intent (so a crash can tell `updated` from `unchanged`), never
//! resends a PUT whose answer was lost (it reads again instead: If-Match makes a blind resend pointless and the
//! re-read settles it), and never overwrites a profile that changed since it was read (412 / 2055 → read again,
//! merge again, at most [`MAX_REMERGES`] times).

use super::preflight::Preflight;
use super::{Halt, Mode, Plan, Task};
use crate::auth::AuthError;
use crate::client::{CallError, CallIds, Client, ErrorClass};
use crate::merge::{self, FieldChange, MergeError, Merged};
use crate::state::recorder::RecorderHandle;
use crate::state::{RowOutcome, RowStatus};
use crate::undo::{self, Undone};
use crate::wire;
use serde_json::Value;
use std::ops::ControlFlow;

/// Re-reads after a stale etag before the row is a `conflict`.
pub const MAX_REMERGES: u32 = 5;

/// Re-reads after a PUT whose answer was lost, before the row fails.
const MAX_SETTLES: u32 = 6;

/// What a worker needs to do a row.
pub struct RowContext<'a> {
    pub client: &'a Client,
    pub recorder: &'a RecorderHandle,
    pub mode: Mode,
    /// Pre-flight, when it runs: a merged profile that breaks its country's rules is not written.
    pub preflight: Option<&'a Preflight>,
}

/// The calls made for a row so far.
#[derive(Default)]
struct Calls {
    attempts: u32,
    last_get: Option<(Option<u16>, CallIds)>,
    last_put: Option<(Option<u16>, CallIds)>,
}

impl Calls {
    /// The outcome, carrying the ids of the row's last call: its PUT when it had one, else its GET.
    fn outcome(&self, row: &Task, status: RowStatus, changes: Vec<FieldChange>) -> RowOutcome {
        let last = self.last_put.or(self.last_get);
        RowOutcome {
            line: row.line,
            status: Some(status),
            changes,
            http_status: last.and_then(|(status, _)| status),
            attempts: self.attempts,
            request_id: last.map(|(_, ids)| ids.request_id.to_string()),
            correlation_id: last.map(|(_, ids)| ids.correlation_id.to_string()),
            ..RowOutcome::default()
        }
    }

    /// What the plan made of the profile read: the profile to write and its changes, or the row's outcome when
    /// there is nothing to write. `sent`: the changes of a PUT of this job for the row that may have landed.
    fn to_write(
        &self,
        row: &Task,
        step: Result<Step, MergeError>,
        sent: &Option<Vec<FieldChange>>,
    ) -> ControlFlow<RowOutcome, (Value, Vec<FieldChange>)> {
        let (status, changes, error) = match step {
            Ok(Step::Write { profile, changes }) => return ControlFlow::Continue((profile, changes)),
            // The values are in place: ours if this job sent a PUT for the row, else they already were.
            Ok(Step::InPlace) => match sent {
                Some(changes) => (row.plan.done(), changes.clone(), None),
                None => (row.plan.found_in_place(), Vec::new(), None),
            },
            Ok(Step::Conflict(message)) => (RowStatus::Conflict, Vec::new(), Some(message)),
            Err(error) => (RowStatus::Failed, Vec::new(), Some(error.to_string())),
        };
        let mut outcome = self.outcome(row, status, changes);
        outcome.error = error;
        ControlFlow::Break(outcome)
    }

    fn failed(&mut self, row: &Task, error: &CallError) -> Result<RowOutcome, Halt> {
        if error.is_fatal() {
            return Err(match error {
                CallError::NoService { .. } => Halt::NoService(error.to_string()),
                CallError::Local { .. } | CallError::Auth { source: AuthError::OutOfDescriptors, .. } => {
                    Halt::Local(error.to_string())
                }
                _ => Halt::Credentials(error.to_string()),
            });
        }
        let mut outcome = self.outcome(row, RowStatus::Failed, Vec::new());
        outcome.http_status = error.status();
        outcome.request_id = Some(error.ids().request_id.to_string());
        outcome.correlation_id = Some(error.ids().correlation_id.to_string());
        outcome.error_code = error.code().map(ToString::to_string);
        outcome.error = Some(error.to_string());
        Ok(outcome)
    }
}

/// What a row's plan makes of the profile as read.
enum Step {
    /// Write this profile; these fields change.
    Write { profile: Value, changes: Vec<FieldChange> },
    /// Every field already holds what the plan asks.
    InPlace,
    /// Rollback only: someone changed a field since the job wrote it; left as found.
    Conflict(String),
}

impl Plan {
    fn step(&self, read: &Value) -> Result<Step, MergeError> {
        let merged = match self {
            Plan::Apply(changes) => merge::merge(read, changes)?,
            Plan::Restore(written) => match undo::restore(read, written)? {
                Undone::Merged(merged) => merged,
                Undone::Conflict(message) => return Ok(Step::Conflict(message)),
            },
        };
        Ok(match merged {
            Merged::Changed { profile, changes } => Step::Write { profile, changes },
            Merged::Unchanged => Step::InPlace,
        })
    }

    /// The status of a row whose PUT landed, or whose values this job put in place.
    fn done(&self) -> RowStatus {
        match self {
            Plan::Apply(_) => RowStatus::Updated,
            Plan::Restore(_) => RowStatus::Restored,
        }
    }

    /// The status of a row found in place without a PUT of this job: a rollback's aim is met either way.
    fn found_in_place(&self) -> RowStatus {
        match self {
            Plan::Apply(_) => RowStatus::Unchanged,
            Plan::Restore(_) => RowStatus::Restored,
        }
    }
}

/// Why a row has no outcome: it stays as the state file holds it, for the next run.
#[derive(Debug)]
pub enum NoOutcome {
    /// The job must stop.
    Halt(Halt),
    /// The job stopped (Ctrl-C, an edited CSV) before the row's next request went out.
    Stopped,
}

impl From<Halt> for NoOutcome {
    fn from(halt: Halt) -> NoOutcome {
        NoOutcome::Halt(halt)
    }
}

/// Does one row to its outcome. `sent_before`: the changes of a PUT an earlier run sent for this row without
/// recording its answer. `Err` means the row has none: the job must stop, or has stopped.
pub async fn process(
    context: &RowContext<'_>,
    row: &Task,
    sent_before: Option<Vec<FieldChange>>,
) -> Result<RowOutcome, NoOutcome> {
    let path = wire::customer_billing_profile_path(&row.customer_id.to_string());
    let mut calls = Calls::default();
    // The changes of a PUT of ours that may have landed: one whose answer was lost, here or in an earlier run.
    let mut sent = sent_before;
    let (mut stale, mut settles) = (0, 0);
    loop {
        // A read that settles a PUT of ours that may have landed goes out even after a stop.
        let read = match sent {
            Some(_) => context.client.get_to_settle(&path).await,
            None => context.client.get(&path).await,
        };
        let fetched = match read {
            Ok(fetched) => fetched,
            Err(error) if error.is_stopped() => return Err(NoOutcome::Stopped),
            Err(error) => {
                calls.attempts += error.attempts();
                return Ok(calls.failed(row, &error)?);
            }
        };
        calls.attempts += fetched.attempts;
        calls.last_get = Some((Some(fetched.status), fetched.ids));
        let (profile, changes) = match calls.to_write(row, row.plan.step(&fetched.body), &sent) {
            ControlFlow::Continue(write) => write,
            ControlFlow::Break(outcome) => return Ok(outcome),
        };
        let mut checked = None;
        if let Some(preflight) = context.preflight {
            let verdict = preflight.check(context.client, &profile, &changes).await;
            if !verdict.broken.is_empty() {
                // Partner Center would refuse it: report the rule, send nothing.
                let mut outcome = calls.outcome(row, RowStatus::Invalid, changes);
                outcome.error = Some(format!("pre-flight: {}", verdict.broken.join("; ")));
                outcome.preflight = Some(verdict.cell());
                outcome.suggested_address = verdict.suggestion;
                return Ok(outcome);
            }
            checked = Some(verdict);
        }
        let noted = |mut outcome: RowOutcome| {
            if let Some(verdict) = &checked {
                outcome.preflight = Some(verdict.cell());
                outcome.suggested_address = verdict.suggestion.clone();
            }
            outcome
        };
        if context.mode == Mode::DryRun {
            return Ok(noted(calls.outcome(row, RowStatus::WouldUpdate, changes)));
        }
        let etag = merge::etag(&fetched.body).map(str::to_string);
        context.recorder.intend_put(row.line, &changes).await.map_err(|error| Halt::State(error.to_string()))?;
        match context.client.put(&path, &profile, etag.as_deref()).await {
            Ok(put) => {
                calls.attempts += put.attempts;
                calls.last_put = Some((Some(put.status), put.ids));
                let mut outcome = calls.outcome(row, row.plan.done(), changes);
                outcome.changes_in_intent = true;
                return Ok(noted(outcome));
            }
            Err(error) if error.is_stopped() => {
                // Not sent: the intent is withdrawn, unless a PUT of ours for the row may have landed before.
                if sent.is_none() {
                    context.recorder.withdraw_intent(row.line).map_err(|error| Halt::State(error.to_string()))?;
                }
                return Err(NoOutcome::Stopped);
            }
            Err(error) => {
                calls.attempts += error.attempts();
                calls.last_put = Some((error.status(), error.ids()));
                match error.class() {
                    // Refused by If-Match: nothing of ours landed.
                    ErrorClass::Stale => stale += 1,
                    ErrorClass::OutcomeUnknown => {
                        settles += 1;
                        sent = Some(changes);
                    }
                    _ => return Ok(calls.failed(row, &error)?),
                }
                if stale > MAX_REMERGES {
                    let mut outcome = calls.outcome(row, RowStatus::Conflict, Vec::new());
                    outcome.error = Some(format!(
                        "the profile changed under the job through {MAX_REMERGES} re-reads: left as found ({error})"
                    ));
                    outcome.error_code = error.code().map(ToString::to_string);
                    return Ok(outcome);
                }
                if settles > MAX_SETTLES {
                    return Ok(calls.failed(row, &error)?);
                }
            }
        }
    }
}
