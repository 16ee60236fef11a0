//! Writing one profile safely: the protocol every PUT of pcbulk goes through, written once. A bulk row and a
//! rollback row (`engine::row`, journal: the job's recorder) and `partner set` and `partner undo`
//! (`partner::update`, journal: the audit trail) all call [`write`]: `write(resource, plan, journal) -> Write`, the
//! resource holding the client it is reached through.
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
//! its `step` then merges the edits onto the profile as read, or finds the conflict, as a rollback's does. Its
//! first step needs no read at all: [`Plan::assumed`] hands the snapshot in place of the first GET.

use crate::client::{CallError, CallIds, ErrorClass, Fetched};
use crate::merge::{self, FieldChange, MergeError};
use crate::state::CallRecord;
use serde_json::Value;

/// Re-reads after a stale etag before a write gives up (the profile keeps changing under it).
pub const MAX_REMERGES: u32 = 5;

/// Re-reads after a PUT whose answer was lost, before the write fails.
pub const MAX_SETTLES: u32 = 6;

/// Where a profile is read and written, and the client it is reached through.
pub(crate) trait Resource {
    /// GETs the profile; `settling`: the read settles a PUT of ours that may have landed: `Client::get_to_settle`,
    /// which goes out after a stop.
    async fn get(&self, settling: bool) -> Result<Fetched, CallError>;
    /// PUTs the whole profile with `If-Match` (when there is an etag).
    async fn put(&self, profile: &Value, etag: Option<&str>) -> Result<Fetched, CallError>;
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
    /// The profile to write, given the profile as read (which it may change in place and give back). Pure.
    fn step(&self, read: Value) -> Result<Step, MergeError>;
    /// The profile about to be written, after its `reads`-th read (0 first): go on, or hold.
    async fn review(&mut self, profile: &Value, changes: &[FieldChange], reads: u32) -> Review<Self::Hold>;
    /// The etag the PUT carries: the profile's as read.
    fn etag<'a>(&'a self, read: &'a Value) -> Option<&'a str> {
        merge::etag(read)
    }
    /// A profile to start from in place of the first read, with its etag in it (an edited export's snapshot): the
    /// first PUT goes out without a GET; a stale etag then reads as usual.
    fn assumed(&self) -> Option<Value> {
        None
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

    /// The record of these calls: the attempts, and the status and ids of the call a result is quoted by.
    pub fn record(&self) -> CallRecord {
        let last = self.last();
        CallRecord {
            http_status: last.and_then(|call| call.status),
            attempts: Some(self.attempts),
            request_id: last.map(|call| call.ids.request_id.to_string()),
            correlation_id: last.map(|call| call.ids.correlation_id.to_string()),
            ..CallRecord::default()
        }
    }
}

/// The record of a failed call: its status, error code, words and ids (its attempts are the caller's to count).
pub(crate) fn failure(error: &CallError) -> CallRecord {
    let ids = error.ids();
    CallRecord {
        http_status: error.status(),
        error_code: error.code().map(ToString::to_string),
        error: Some(error.to_string()),
        attempts: None,
        request_id: Some(ids.request_id.to_string()),
        correlation_id: Some(ids.correlation_id.to_string()),
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
pub(crate) async fn read(resource: &impl Resource, calls: &mut Calls, settling: bool) -> Result<Fetched, CallError> {
    match resource.get(settling).await {
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
    // A PUT in doubt is settled by reading first, never by a profile in hand.
    let mut assumed = if sent.is_none() { plan.assumed() } else { None };
    loop {
        let body = match assumed.take() {
            Some(body) => body,
            None => match read(resource, &mut calls, sent.is_some()).await {
                Ok(fetched) => fetched.body,
                Err(error) if error.is_stopped() => return Err(Interrupted::Stopped),
                Err(error) => return end(Written::Failed { method: Method::Get, error }, calls),
            },
        };
        journal.read(&body, reads).map_err(Interrupted::Journal)?;
        // The PUT carries the etag read; the step takes the profile read and gives it back changed (no copy).
        let etag = plan.etag(&body).map(str::to_string);
        let step = match plan.step(body) {
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
        let answer = resource.put(&profile, etag.as_deref()).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;

    /// What the fake service answers next.
    enum Answer {
        Profile(&'static str),
        Landed,
        Stale,
        Lost,
        Stopped,
    }

    type Log = Rc<RefCell<Vec<String>>>;

    /// A service that answers from a script and logs every call.
    struct Service {
        answers: RefCell<VecDeque<Answer>>,
        log: Log,
    }

    impl Service {
        fn next(&self, call: &str) -> Result<Fetched, CallError> {
            self.log.borrow_mut().push(call.to_string());
            let ids = CallIds::fresh();
            let fetched = |body| Ok(Fetched { status: 200, body, ids, attempts: 1, throttled: 0 });
            match self.answers.borrow_mut().pop_front().expect("the script has an answer for every call") {
                Answer::Profile(value) => fetched(json!({ "v": value, "attributes": { "etag": value } })),
                Answer::Landed => fetched(Value::Null),
                Answer::Stale => {
                    let description = "changed".to_string();
                    Err(CallError::Stale { status: 412, code: None, description, ids, attempts: 1 })
                }
                Answer::Lost => {
                    Err(CallError::OutcomeUnknown { status: None, detail: "dropped".into(), ids, attempts: 1 })
                }
                Answer::Stopped => Err(CallError::Stopped { ids, attempts: 0 }),
            }
        }
    }

    impl Resource for Service {
        async fn get(&self, settling: bool) -> Result<Fetched, CallError> {
            self.next(if settling { "settling get" } else { "get" })
        }

        async fn put(&self, _profile: &Value, etag: Option<&str>) -> Result<Fetched, CallError> {
            self.next(&format!("put if-match {}", etag.unwrap_or("none")))
        }
    }

    /// Sets `v` to "new"; holds every write when `hold`.
    struct SetV {
        hold: bool,
    }

    impl Plan for SetV {
        type Hold = ();

        fn step(&self, read: Value) -> Result<Step, MergeError> {
            if read["v"] == "new" {
                return Ok(Step::InPlace);
            }
            let changes = vec![FieldChange { field: "v", before: Some(read["v"].clone()), after: Some(json!("new")) }];
            Ok(Step::Write { profile: json!({ "v": "new" }), changes })
        }

        async fn review(&mut self, _profile: &Value, _changes: &[FieldChange], _reads: u32) -> Review<()> {
            if self.hold { Review::Hold(()) } else { Review::Proceed }
        }
    }

    struct Notebook {
        log: Log,
        in_doubt: Option<Vec<FieldChange>>,
    }

    impl Journal for Notebook {
        type Error = ();

        fn in_doubt(&mut self) -> Option<Vec<FieldChange>> {
            self.in_doubt.take()
        }

        async fn intend(&mut self, _changes: &[FieldChange]) -> Result<(), ()> {
            self.log.borrow_mut().push("intend".into());
            Ok(())
        }

        fn withdraw(&mut self) -> Result<(), ()> {
            self.log.borrow_mut().push("withdraw".into());
            Ok(())
        }

        fn answered(&mut self, answer: Result<&Fetched, &CallError>) -> Result<(), ()> {
            self.log.borrow_mut().push(format!("answered {}", if answer.is_ok() { "ok" } else { "error" }));
            Ok(())
        }

        fn settled(&mut self, landed: bool) -> Result<(), ()> {
            self.log.borrow_mut().push(format!("settled {landed}"));
            Ok(())
        }
    }

    /// Runs a write against the script; its end and every call and journal entry, in order.
    async fn run(
        answers: Vec<Answer>,
        hold: bool,
        in_doubt: Option<Vec<FieldChange>>,
    ) -> (Result<Write<()>, Interrupted<()>>, Vec<String>) {
        let log = Log::default();
        let service = Service { answers: RefCell::new(answers.into()), log: log.clone() };
        let mut journal = Notebook { log: log.clone(), in_doubt };
        let ended = write(&service, &mut SetV { hold }, &mut journal).await;
        assert!(service.answers.borrow().is_empty(), "every scripted answer was asked for");
        let log = log.borrow().clone();
        (ended, log)
    }

    fn landed(ended: &Result<Write<()>, Interrupted<()>>) -> Option<bool> {
        match ended {
            Ok(Write { written: Written::Landed { answered, .. }, .. }) => Some(*answered),
            _ => None,
        }
    }

    #[tokio::test]
    async fn the_intent_is_durable_before_the_put_which_carries_the_etag_read() {
        let (ended, log) = run(vec![Answer::Profile("old"), Answer::Landed], false, None).await;
        assert_eq!(log, ["get", "intend", "put if-match old", "answered ok"]);
        assert_eq!(landed(&ended), Some(true));
        assert_eq!(ended.ok().map(|write| write.calls.attempts), Some(2));
    }

    #[tokio::test]
    async fn a_lost_answer_is_settled_by_reading_never_by_sending_again() {
        let (ended, log) = run(vec![Answer::Profile("old"), Answer::Lost, Answer::Profile("new")], false, None).await;
        assert_eq!(log, ["get", "intend", "put if-match old", "answered error", "settling get", "settled true"]);
        assert_eq!(landed(&ended), Some(false));
    }

    #[tokio::test]
    async fn a_lost_put_that_did_not_land_is_written_again_after_its_read() {
        let answers = vec![Answer::Profile("old"), Answer::Lost, Answer::Profile("other"), Answer::Landed];
        let (ended, log) = run(answers, false, None).await;
        let expected = ["get", "intend", "put if-match old", "answered error", "settling get", "settled false"];
        assert_eq!(log[..6], expected);
        assert_eq!(log[6..], ["intend", "put if-match other", "answered ok"]);
        assert_eq!(landed(&ended), Some(true));
    }

    #[tokio::test]
    async fn a_stale_etag_is_read_again_until_the_limit() {
        let answers = (0..=MAX_REMERGES).flat_map(|_| [Answer::Profile("old"), Answer::Stale]).collect();
        let (ended, log) = run(answers, false, None).await;
        let puts = log.iter().filter(|entry| entry.starts_with("put")).count();
        assert_eq!(puts as u32, MAX_REMERGES + 1);
        assert!(matches!(ended, Ok(Write { written: Written::KeptChanging(_), .. })));
    }

    #[tokio::test]
    async fn a_stop_before_the_put_withdraws_its_intent() {
        let (ended, log) = run(vec![Answer::Profile("old"), Answer::Stopped], false, None).await;
        assert_eq!(log, ["get", "intend", "put if-match old", "withdraw"]);
        assert!(matches!(ended, Err(Interrupted::Stopped)));
    }

    #[tokio::test]
    async fn a_stop_after_a_lost_answer_keeps_the_intent_in_doubt() {
        let answers = vec![Answer::Profile("old"), Answer::Lost, Answer::Profile("other"), Answer::Stopped];
        let (ended, log) = run(answers, false, None).await;
        assert!(!log.contains(&"withdraw".to_string()), "{log:?}");
        assert!(matches!(ended, Err(Interrupted::Stopped)));
    }

    #[tokio::test]
    async fn a_stopped_read_ends_the_write_with_nothing_more_sent() {
        let (ended, log) = run(vec![Answer::Stopped], false, None).await;
        assert_eq!(log, ["get"]);
        assert!(matches!(ended, Err(Interrupted::Stopped)));
    }

    #[tokio::test]
    async fn a_held_write_records_and_sends_nothing() {
        let (ended, log) = run(vec![Answer::Profile("old")], true, None).await;
        assert_eq!(log, ["get"]);
        assert!(matches!(ended, Ok(Write { written: Written::Held { .. }, .. })));
    }

    #[tokio::test]
    async fn a_put_in_doubt_from_an_earlier_run_is_settled_by_the_first_read() {
        let earlier = vec![FieldChange { field: "v", before: Some(json!("old")), after: Some(json!("new")) }];
        let (ended, log) = run(vec![Answer::Profile("new")], false, Some(earlier)).await;
        assert_eq!(log, ["settling get"]);
        assert_eq!(landed(&ended), Some(false));
    }

    /// Sets `v` to "new" from a snapshot in hand (an edited export's row).
    struct FromSnapshot;

    impl Plan for FromSnapshot {
        type Hold = ();

        fn step(&self, read: Value) -> Result<Step, MergeError> {
            SetV { hold: false }.step(read)
        }

        async fn review(&mut self, _profile: &Value, _changes: &[FieldChange], _reads: u32) -> Review<()> {
            Review::Proceed
        }

        fn assumed(&self) -> Option<Value> {
            Some(json!({ "v": "old", "attributes": { "etag": "snapshot" } }))
        }
    }

    async fn run_from_snapshot(answers: Vec<Answer>, in_doubt: Option<Vec<FieldChange>>) -> Vec<String> {
        let log = Log::default();
        let service = Service { answers: RefCell::new(answers.into()), log: log.clone() };
        let mut journal = Notebook { log: log.clone(), in_doubt };
        let ended = write(&service, &mut FromSnapshot, &mut journal).await;
        assert!(service.answers.borrow().is_empty(), "every scripted answer was asked for");
        assert!(landed(&ended).is_some());
        log.borrow().clone()
    }

    #[tokio::test]
    async fn a_profile_in_hand_is_written_without_a_read_with_its_own_etag() {
        let log = run_from_snapshot(vec![Answer::Landed], None).await;
        assert_eq!(log, ["intend", "put if-match snapshot", "answered ok"]);
    }

    #[tokio::test]
    async fn a_profile_in_hand_that_went_stale_is_read_and_written_again() {
        let log = run_from_snapshot(vec![Answer::Stale, Answer::Profile("other"), Answer::Landed], None).await;
        let expected = ["intend", "put if-match snapshot", "answered error", "get", "intend", "put if-match other"];
        assert_eq!(log[..6], expected);
    }

    #[tokio::test]
    async fn a_put_in_doubt_is_settled_by_reading_even_with_a_profile_in_hand() {
        let earlier = vec![FieldChange { field: "v", before: Some(json!("old")), after: Some(json!("new")) }];
        let log = run_from_snapshot(vec![Answer::Profile("new")], Some(earlier)).await;
        assert_eq!(log, ["settling get"]);
    }
}
