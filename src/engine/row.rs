//! One row's work, for an apply (the CSV's changes) and for a rollback (the before-values, where the job's values
//! still hold) alike: the row's [`Plan`] and pre-flight given to `crate::write`, which owns the protocol (GET,
//! merge, intent, PUT with If-Match, settle), with the job's recorder as its journal; then the result as the row's
//! outcome. Every worker runs it.
//!
//! Never sends a PUT without first committing its intent (so a crash can tell `updated` from `unchanged`), never
//! resends a PUT whose answer was lost, never overwrites a profile that changed since it was read: `write`'s rules.

use super::preflight::{Preflight, PreflightFindings};
use super::{Halt, Mode, Plan, Task};
use crate::auth::AuthError;
use crate::client::{CallError, Client, Fetched};
use crate::merge::{self, FieldChange, MergeError, Merged};
use crate::state::StateError;
use crate::state::export::Snapshot;
use crate::state::recorder::RecorderHandle;
use crate::state::{CallRecord, RowOutcome, RowStatus};
use crate::threeway::{self, Resolved};
use crate::undo::{self, Undone};
use crate::wire;
use crate::write::{self, Interrupted, Journal, Resource, Review, Step, Written};
use serde_json::Value;

use crate::write::MAX_REMERGES;

/// What a worker needs to do a row.
pub struct RowContext<'a> {
    pub client: &'a Client,
    pub recorder: &'a RecorderHandle,
    pub options: &'a super::RunOptions,
    /// Pre-flight, when it runs: a merged profile that breaks its country's rules is not written.
    pub preflight: Option<&'a Preflight>,
}

impl Plan {
    fn step(&self, read: Value) -> Result<Step, MergeError> {
        let merged = match self {
            Plan::Apply(changes) => merge::merge(read, changes)?,
            Plan::Restore(written) => match undo::restore(read, written)? {
                Undone::Merged(merged) => merged,
                Undone::Conflict(message) => return Ok(Step::Conflict(message)),
            },
            // A read writes nothing (`process` never gives it to `write`).
            Plan::Read => Merged::Unchanged,
            Plan::ThreeWay(edited) => match threeway::resolve(read, &edited.snapshot, &edited.changes)? {
                Resolved::Merged(merged) => merged,
                Resolved::Conflict(conflicts) => return Ok(Step::Conflict(threeway::describe(&conflicts))),
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
            Plan::Apply(_) | Plan::Read | Plan::ThreeWay(_) => RowStatus::Updated,
            Plan::Restore(_) => RowStatus::Restored,
        }
    }

    /// The status of a row found in place without a PUT of this job: a rollback's aim is met either way.
    fn found_in_place(&self) -> RowStatus {
        match self {
            Plan::Apply(_) | Plan::Read | Plan::ThreeWay(_) => RowStatus::Unchanged,
            Plan::Restore(_) => RowStatus::Restored,
        }
    }
}

/// A customer's billing profile.
struct CustomerBilling<'a> {
    client: &'a Client,
    path: String,
}

impl Resource for CustomerBilling<'_> {
    async fn get(&self, settling: bool) -> Result<Fetched, CallError> {
        match settling {
            true => self.client.get_to_settle(&self.path).await,
            false => self.client.get(&self.path).await,
        }
    }

    async fn put(&self, profile: &Value, etag: Option<&str>) -> Result<Fetched, CallError> {
        self.client.put(&self.path, profile, etag).await
    }
}

/// Why a row's write is held before its PUT.
enum Hold {
    /// Pre-flight: Partner Center would refuse the profile.
    Invalid,
    /// A dry run: nothing is sent.
    DryRun,
}

/// A row's plan with the job's pre-flight and mode; keeps the last pre-flight verdict for the outcome.
struct RowPlan<'a> {
    plan: &'a Plan,
    context: &'a RowContext<'a>,
    checked: Option<PreflightFindings>,
}

impl write::Plan for RowPlan<'_> {
    type Hold = Hold;

    fn step(&self, read: Value) -> Result<Step, MergeError> {
        self.plan.step(read)
    }

    /// An edited export's row is written onto its snapshot with the snapshot's etag, without a read (one request
    /// when nobody changed the profile since the export); a dry run reads, to show what the apply would meet.
    fn assumed(&self) -> Option<Value> {
        match (self.plan, self.context.options.mode) {
            (Plan::ThreeWay(edited), Mode::Apply) => Some(edited.snapshot.clone()),
            _ => None,
        }
    }

    async fn review(&mut self, profile: &Value, changes: &[FieldChange], _reads: u32) -> Review<Hold> {
        self.checked = None;
        if let Some(preflight) = self.context.preflight {
            let verdict = preflight.check(self.context.client, profile, changes).await;
            let broken = !verdict.broken.is_empty();
            self.checked = Some(verdict);
            if broken {
                // Partner Center would refuse it: report the rule, send nothing.
                return Review::Hold(Hold::Invalid);
            }
        }
        match self.context.options.mode {
            Mode::DryRun => Review::Hold(Hold::DryRun),
            Mode::Apply => Review::Proceed,
        }
    }
}

/// The job's recorder, for one row.
struct RowJournal<'a> {
    recorder: &'a RecorderHandle,
    line: u64,
    /// The changes of a PUT an earlier run sent for this row without recording its answer.
    sent_before: Option<Vec<FieldChange>>,
}

impl Journal for RowJournal<'_> {
    type Error = StateError;

    fn in_doubt(&mut self) -> Option<Vec<FieldChange>> {
        self.sent_before.take()
    }

    async fn intend(&mut self, changes: &[FieldChange]) -> Result<(), StateError> {
        self.recorder.intend_put(self.line, changes).await
    }

    fn withdraw(&mut self) -> Result<(), StateError> {
        self.recorder.withdraw_intent(self.line)
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
    let resource = CustomerBilling { client: context.client, path };
    if row.plan == Plan::Read {
        return read_row(&resource, row).await;
    }
    let mut plan = RowPlan { plan: &row.plan, context, checked: None };
    let mut journal = RowJournal { recorder: context.recorder, line: row.line, sent_before };
    let write = match write::write(&resource, &mut plan, &mut journal).await {
        Ok(write) => write,
        Err(Interrupted::Stopped) => return Err(NoOutcome::Stopped),
        Err(Interrupted::Journal(error)) => return Err(Halt::State(error.to_string()).into()),
    };
    let call = write.calls.record();
    let outcome = |status, changes| RowOutcome::new(row.line, status).with_call(call).with_changes(changes);
    let noted = |mut outcome: RowOutcome| {
        if let Some(verdict) = &plan.checked {
            outcome.preflight = Some(verdict.cell());
            outcome.suggested_address = verdict.suggestion.clone();
        }
        outcome
    };
    Ok(match write.written {
        Written::Landed { changes, answered: true } => {
            let mut landed = outcome(row.plan.done(), changes);
            landed.changes_in_intent = true;
            noted(landed)
        }
        Written::Landed { changes, answered: false } => outcome(row.plan.done(), changes),
        Written::InPlace => outcome(row.plan.found_in_place(), Vec::new()),
        Written::Conflict(message) => with_error(outcome(RowStatus::Conflict, Vec::new()), message),
        Written::Unmergeable(error) => with_error(outcome(RowStatus::Failed, Vec::new()), error.to_string()),
        Written::Held { hold: Hold::Invalid, changes } => {
            let broken = plan.checked.as_ref().map(|verdict| verdict.broken.join("; ")).unwrap_or_default();
            let invalid = with_error(outcome(RowStatus::Invalid, changes), format!("pre-flight: {broken}"));
            noted(invalid)
        }
        Written::Held { hold: Hold::DryRun, changes } => noted(outcome(RowStatus::WouldUpdate, changes)),
        Written::KeptChanging(error) => {
            let words =
                format!("the profile changed under the job through {MAX_REMERGES} re-reads: left as found ({error})");
            let mut conflict = with_error(outcome(RowStatus::Conflict, Vec::new()), words);
            conflict.call.error_code = error.code().map(ToString::to_string);
            conflict
        }
        Written::Failed { error, .. } => failed(outcome(RowStatus::Failed, Vec::new()), &error)?,
    })
}

/// An export's row: one read, kept as the snapshot; the row is `unchanged` (read, nothing written).
async fn read_row(resource: &CustomerBilling<'_>, row: &Task) -> Result<RowOutcome, NoOutcome> {
    let mut calls = write::Calls::default();
    match write::read(resource, &mut calls, false).await {
        Ok(fetched) => {
            let mut read = RowOutcome::new(row.line, RowStatus::Unchanged).with_call(calls.record());
            read.snapshot = Some(Snapshot {
                customer_id: row.customer_id.to_string(),
                etag: merge::etag(&fetched.body).map(str::to_string),
                profile: fetched.body.to_string(),
            });
            Ok(read)
        }
        Err(error) if error.is_stopped() => Err(NoOutcome::Stopped),
        Err(error) => Ok(failed(RowOutcome::new(row.line, RowStatus::Failed).with_call(calls.record()), &error)?),
    }
}

fn with_error(mut outcome: RowOutcome, error: String) -> RowOutcome {
    outcome.call.error = Some(error);
    outcome
}

/// A failed call as the row's outcome, or the halt of the job when the call says it cannot go on.
fn failed(mut outcome: RowOutcome, error: &CallError) -> Result<RowOutcome, Halt> {
    if error.is_fatal() {
        return Err(match error {
            CallError::NoService { .. } => Halt::NoService(error.to_string()),
            CallError::Local { .. } | CallError::Auth { source: AuthError::OutOfDescriptors, .. } => {
                Halt::Local(error.to_string())
            }
            _ => Halt::Credentials(error.to_string()),
        });
    }
    outcome.call = CallRecord { attempts: outcome.call.attempts, ..write::failure(error) };
    Ok(outcome)
}
