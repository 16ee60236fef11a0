//! Writing one profile safely: the protocol every PUT of pcbulk goes through, written once. A bulk row and a
//! rollback row (`engine::row`, journal: the job's recorder) and `partner set` and `partner undo`
//! (`partner::update`, journal: the audit trail) all call [`write`].
//!
//! The protocol: GET → the [`Plan`]'s step (a merge, a restore) → its review (pre-flight, a dry run, a missing
//! confirmation may hold the write) → the [`Journal`] makes the PUT's intent durable → PUT with `If-Match` → on a
//! stale etag (412, 409, 400 with 2055) read and step again, at most [`MAX_REMERGES`] times; on a lost answer read
//! again to settle it, at most [`MAX_SETTLES`] times.
//!
//! It never sends a PUT before its journal has made the intent durable; never resends a PUT whose answer was lost
//! (the next read says whether it landed: `Client::get_to_settle`, which goes out even after a stop); sends no other
//! request after a stop (`CallError::Stopped`), and withdraws the intent of a PUT the stop kept from being sent. It
//! decides nothing about a row or a command: what a result means (a status, an exit, a note) is its caller's.
//!
//! What comes next fits without a third copy. An export only reads: it calls [`read`] with the same [`Resource`]
//! and [`Calls`] record, never [`write`]. A three-way write (a PUT with an export's etag) is a [`Plan`]: its
//! `etag` is the export's, so a profile changed since the export is refused by `If-Match` as stale and read again;
//! its `step` then merges the edits onto the profile as read, or finds the conflict, as a rollback's does.

use crate::client::{CallError, CallIds, Client, ErrorClass, Fetched};
use crate::merge::{self, FieldChange, MergeError};
use serde_json::Value;

/// Re-reads after a stale etag before a write gives up (the profile keeps changing under it).
pub const MAX_REMERGES: u32 = 5;

/// Re-reads after a PUT whose answer was lost, before the write fails.
pub const MAX_SETTLES: u32 = 6;

/// Where a profile is read and written.
pub(crate) trait Resource {
    /// GETs the profile; `settling`: the read settles a PUT of ours that may have landed (it goes out after a stop).
    async fn get(&self, client: &Client, settling: bool) -> Result<Fetched, CallError>;
    /// PUTs the whole profile with `If-Match` (when there is an etag).
    async fn put(&self, client: &Client, profile: &Value, etag: Option<&str>) -> Result<Fetched, CallError>;
}

/// What a plan makes of the profile as read.
pub(crate) enum Step {
    /// Write this profile; these fields change.
    Write { profile: Value, changes: Vec<FieldChange> },
    /// Every field already holds what the plan asks.
    InPlace,
    /// Someone changed a field the plan depends on (a rollback's): left as found.
    Conflict(String),
}

/// Whether a write goes on to its PUT once its review has seen the profile to write.
pub(crate) enum Review<H> {
    Proceed,
    /// Held before the intent: nothing is recorded or sent.
    Hold(H),
}

/// What a write asks of the profile.
pub(crate) trait Plan {
    /// Why a review may hold a write (a dry run, pre-flight, a missing confirmation).
    type Hold;
    /// The profile to write, given the profile as read. Pure.
    fn step(&self, read: &Value) -> Result<Step, MergeError>;
    /// The profile about to be written, after its `reads`-th read (0 first): go on, or hold.
    async fn review(&mut self, profile: &Value, changes: &[FieldChange], reads: u32) -> Review<Self::Hold>;
    /// The etag the PUT carries: the profile's as read.
    fn etag<'a>(&'a self, read: &'a Value) -> Option<&'a str> {
        merge::etag(read)
    }
}

/// The record of the writes: the PUT's intent made durable before it is sent, and what became of it.
pub(crate) trait Journal {
    type Error;
    /// The changes of a PUT of ours for this profile that may have landed, sent by an earlier run whose answer was
    /// never recorded: the first read settles it. Asked once, at the start.
    fn in_doubt(&mut self) -> Option<Vec<FieldChange>> {
        None
    }
    /// Each profile as read, `reads` counting from 0.
    fn read(&mut self, _profile: &Value, _reads: u32) -> Result<(), Self::Error> {
        Ok(())
    }
    /// Makes durable that a PUT with these changes is about to be sent; the PUT waits for it.
    async fn intend(&mut self, changes: &[FieldChange]) -> Result<(), Self::Error>;
    /// The PUT last intended was not sent (the job stopped first).
    fn withdraw(&mut self) -> Result<(), Self::Error>;
    /// The answer to the PUT last intended.
    fn answered(&mut self, _answer: Result<&Fetched, &CallError>) -> Result<(), Self::Error> {
        Ok(())
    }
    /// What the read after a lost answer says of that PUT: it landed (the profile holds its values) or not.
    fn settled(&mut self, _landed: bool) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// The status and ids of one call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Call {
    pub status: Option<u16>,
    pub ids: CallIds,
}

/// The calls a write made: attempts (429s not counted), the last GET and the last PUT.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Calls {
    pub attempts: u32,
    pub last_get: Option<Call>,
    pub last_put: Option<Call>,
}

impl Calls {
    /// The call a result is quoted by: the last PUT when there was one, else the last GET.
    pub fn last(&self) -> Option<Call> {
        self.last_put.or(self.last_get)
    }
}

/// Which call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Put,
}

/// How a write ended.
pub(crate) enum Written<H> {
    /// A PUT of ours landed: `answered`, or found landed by reading again after its answer was lost (here or in an
    /// earlier run). `changes`: those of that PUT.
    Landed { changes: Vec<FieldChange>, answered: bool },
    /// The profile already held what the plan asks, with no PUT of ours.
    InPlace,
    /// The plan found a conflict in the profile as read: left as found.
    Conflict(String),
    /// The profile as read cannot take the plan.
    Unmergeable(MergeError),
    /// The review held the write: nothing was recorded or sent.
    Held { hold: H, changes: Vec<FieldChange> },
    /// Stale through [`MAX_REMERGES`] re-reads: the last PUT's refusal.
    KeptChanging(CallError),
    /// A call failed: refused, transient through its attempts, fatal, or lost through [`MAX_SETTLES`] re-reads.
    Failed { method: Method, error: CallError },
}

/// A write's end, with the calls it made.
pub(crate) struct Write<H> {
    pub written: Written<H>,
    pub calls: Calls,
}

/// Why a write has no end: the profile is left as the journal holds it.
#[derive(Debug)]
pub(crate) enum Interrupted<E> {
    /// Stopped before the next request went out.
    Stopped,
    /// The journal could not record: no PUT may go out.
    Journal(E),
}

/// Reads the profile, counting the call into `calls`.
pub(crate) async fn read(
    client: &Client,
    resource: &impl Resource,
    calls: &mut Calls,
    settling: bool,
) -> Result<Fetched, CallError> {
    match resource.get(client, settling).await {
        Ok(fetched) => {
            calls.attempts += fetched.attempts;
            calls.last_get = Some(Call { status: Some(fetched.status), ids: fetched.ids });
            Ok(fetched)
        }
        Err(error) => {
            calls.attempts += error.attempts();
            Err(error)
        }
    }
}

/// Writes one profile by the protocol above.
pub(crate) async fn write<P: Plan, J: Journal>(
    client: &Client,
    resource: &impl Resource,
    plan: &mut P,
    journal: &mut J,
) -> Result<Write<P::Hold>, Interrupted<J::Error>> {
    let mut calls = Calls::default();
    let end = |written, calls| Ok(Write { written, calls });
    // The changes of a PUT of ours that may have landed: one whose answer was lost, here or in an earlier run.
    let mut sent = journal.in_doubt();
    // Whether the journal still waits to hear what became of a PUT whose answer was lost here.
    let mut awaiting = false;
    let (mut stale, mut settles, mut reads) = (0, 0, 0);
    loop {
        let fetched = match read(client, resource, &mut calls, sent.is_some()).await {
            Ok(fetched) => fetched,
            Err(error) if error.is_stopped() => return Err(Interrupted::Stopped),
            Err(error) => return end(Written::Failed { method: Method::Get, error }, calls),
        };
        journal.read(&fetched.body, reads).map_err(Interrupted::Journal)?;
        let step = match plan.step(&fetched.body) {
            Ok(step) => step,
            Err(error) => return end(Written::Unmergeable(error), calls),
        };
        if awaiting && !matches!(step, Step::Conflict(_)) {
            journal.settled(matches!(step, Step::InPlace)).map_err(Interrupted::Journal)?;
            awaiting = false;
        }
        let (profile, changes) = match step {
            Step::Write { profile, changes } => (profile, changes),
            // The values are in place: ours if a PUT of ours may have landed, else they already were.
            Step::InPlace => match sent {
                Some(changes) => return end(Written::Landed { changes, answered: false }, calls),
                None => return end(Written::InPlace, calls),
            },
            Step::Conflict(message) => return end(Written::Conflict(message), calls),
        };
        if let Review::Hold(hold) = plan.review(&profile, &changes, reads).await {
            return end(Written::Held { hold, changes }, calls);
        }
        // Any read from here on is a read again.
        reads += 1;
        journal.intend(&changes).await.map_err(Interrupted::Journal)?;
        let answer = resource.put(client, &profile, plan.etag(&fetched.body)).await;
        if matches!(&answer, Err(error) if error.is_stopped()) {
            // Not sent: the intent is withdrawn, unless a PUT of ours may have landed before.
            if sent.is_none() {
                journal.withdraw().map_err(Interrupted::Journal)?;
            }
            return Err(Interrupted::Stopped);
        }
        journal.answered(answer.as_ref()).map_err(Interrupted::Journal)?;
        let error = match answer {
            Ok(put) => {
                calls.attempts += put.attempts;
                calls.last_put = Some(Call { status: Some(put.status), ids: put.ids });
                return end(Written::Landed { changes, answered: true }, calls);
            }
            Err(error) => error,
        };
        calls.attempts += error.attempts();
        calls.last_put = Some(Call { status: error.status(), ids: error.ids() });
        match error.class() {
            // Refused by If-Match: nothing of ours landed.
            ErrorClass::Stale => stale += 1,
            ErrorClass::OutcomeUnknown => {
                settles += 1;
                awaiting = true;
                sent = Some(changes);
            }
            _ => return end(Written::Failed { method: Method::Put, error }, calls),
        }
        if stale > MAX_REMERGES {
            return end(Written::KeptChanging(error), calls);
        }
        if settles > MAX_SETTLES {
            return end(Written::Failed { method: Method::Put, error }, calls);
        }
    }
}
