//! Job control: when a job must stop, decided from each settled row's outcome. Pure (no tokio, no I/O), so every
//! rule is a plain unit test; the engine asks [`Control::settle`] after recording each row and acts on the answer.
//!
//! The rules: `--canary N` gathers the rows it did for a person to look at; `--max-failures` stops the run once
//! more rows failed than the budget allows; [`FORBIDDEN_STREAK`] rows in a row refused with 403 (and no code that
//! names the customer) stop the job as credentials gone.

use crate::budget::MaxFailures;
use crate::state::{RowOutcome, RowStatus};

/// Why the job had to stop before its end.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Halt {
    #[error("credentials refused or revoked: {0}")]
    Credentials(String),
    #[error("the state file cannot be written, so no PUT may go out: {0}")]
    State(String),
    #[error("cannot read the CSV: {0}")]
    Input(String),
    /// The service never answered (a base URL where nothing listens): given up after a bounded wait.
    #[error("{0}")]
    NoService(String),
    /// This machine cannot make requests (out of file descriptors): no fault of the service.
    #[error("{0}")]
    Local(String),
    #[error("{0}")]
    InputChanged(String),
}

/// A row a canary did, for the summary a person reads before letting the rest run.
#[derive(Clone, Debug, PartialEq)]
pub struct CanaryRow {
    pub customer_id: String,
    pub outcome: RowOutcome,
}

/// Guard rails of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Guard {
    /// Do only the first N rows of those the run would do, then stop.
    pub canary: Option<u64>,
    /// Stop taking rows once more rows than this have failed in the run.
    pub max_failures: Option<MaxFailures>,
}

/// Rows in a row that fail with 403 before the job stops as if its credentials had died: a partner whose consent
/// was withdrawn gets 403 on every customer, and failing all of them helps nobody. A 403 whose code names the
/// customer ([`crate::wire::CUSTOMER_SPECIFIC_CODES`]) does not count.
pub const FORBIDDEN_STREAK: u64 = 20;

/// What the job does after a row settles.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    Continue,
    /// Stop taking rows: the job must halt (exit 1).
    Halt(Halt),
    /// Stop taking rows: the error budget is spent (exit 3, resumable).
    BudgetSpent,
}

/// The rows of a run so far, as job control counts them.
#[derive(Debug, Default)]
pub struct Control {
    guard: Guard,
    finished: u64,
    failed: u64,
    /// Rows in a row that failed with a 403 of the credentials.
    forbidden: u64,
    budget_spent: bool,
    canary: Vec<CanaryRow>,
}

/// What the run came to, for its ending.
#[derive(Debug, Default, PartialEq)]
pub struct Tally {
    pub failed: u64,
    pub budget_spent: bool,
    /// The canary's rows, in input order.
    pub canary: Vec<CanaryRow>,
}

impl Control {
    pub fn new(guard: Guard) -> Control {
        Control { guard, ..Control::default() }
    }

    /// Counts a recorded row of `customer_id`; says whether the job goes on.
    pub fn settle(&mut self, customer_id: &str, outcome: &RowOutcome) -> Next {
        self.finished += 1;
        let failed = outcome.status == RowStatus::Failed;
        self.failed += u64::from(failed);
        // A 403 that names the customer (20002, no relationship) is that row's alone (issue 15).
        let of_the_credentials = !outcome.call.error_code.as_deref().is_some_and(crate::wire::is_customer_specific);
        let forbidden = failed && outcome.call.http_status == Some(403) && of_the_credentials;
        self.forbidden = if forbidden { self.forbidden + 1 } else { 0 };
        if self.guard.canary.is_some() {
            self.canary.push(CanaryRow { customer_id: customer_id.to_string(), outcome: outcome.clone() });
        }
        if self.forbidden >= FORBIDDEN_STREAK {
            let words = format!("403 on {FORBIDDEN_STREAK} rows in a row: the partner's access or consent is gone");
            return Next::Halt(Halt::Credentials(words));
        }
        let spent = self.guard.max_failures.is_some_and(|budget| budget.exceeded(self.finished, self.failed));
        self.budget_spent |= spent;
        if spent { Next::BudgetSpent } else { Next::Continue }
    }

    /// The budget that was spent: the one given (or, should there be none, the failures counted).
    pub fn budget(&self) -> MaxFailures {
        self.guard.max_failures.unwrap_or(MaxFailures::Count(self.failed))
    }

    /// What the run came to.
    pub fn finish(self) -> Tally {
        let mut canary = self.canary;
        canary.sort_by_key(|row| row.outcome.line);
        Tally { failed: self.failed, budget_spent: self.budget_spent, canary }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::CallRecord;

    fn outcome(line: u64, status: RowStatus, http_status: Option<u16>, code: Option<&str>) -> RowOutcome {
        let call = CallRecord { http_status, error_code: code.map(str::to_string), ..CallRecord::default() };
        RowOutcome::new(line, status).with_call(call)
    }

    #[test]
    fn twenty_refusals_of_the_credentials_in_a_row_halt_the_job_and_one_success_resets_the_streak() {
        let mut control = Control::new(Guard::default());
        for line in 0..FORBIDDEN_STREAK - 1 {
            assert_eq!(control.settle("c", &outcome(line, RowStatus::Failed, Some(403), None)), Next::Continue);
        }
        assert_eq!(control.settle("c", &outcome(99, RowStatus::Updated, Some(200), None)), Next::Continue);
        for line in 0..FORBIDDEN_STREAK - 1 {
            assert_eq!(control.settle("c", &outcome(line, RowStatus::Failed, Some(403), None)), Next::Continue);
        }
        assert!(matches!(control.settle("c", &outcome(0, RowStatus::Failed, Some(403), None)), Next::Halt(_)));
    }

    #[test]
    fn refusals_that_name_the_customer_never_count_towards_the_streak() {
        let mut control = Control::new(Guard::default());
        for line in 0..FORBIDDEN_STREAK * 3 {
            let next = control.settle("c", &outcome(line, RowStatus::Failed, Some(403), Some("20002")));
            assert_eq!(next, Next::Continue);
        }
    }

    #[test]
    fn the_budget_is_spent_past_its_count_and_the_canary_keeps_its_rows_in_input_order() {
        let guard = Guard { canary: Some(3), max_failures: Some(MaxFailures::Count(1)) };
        let mut control = Control::new(guard);
        assert_eq!(control.settle("b", &outcome(3, RowStatus::Updated, Some(200), None)), Next::Continue);
        assert_eq!(control.settle("a", &outcome(2, RowStatus::Failed, Some(500), None)), Next::Continue);
        assert_eq!(control.settle("c", &outcome(4, RowStatus::Failed, Some(404), None)), Next::BudgetSpent);
        let tally = control.finish();
        assert!(tally.budget_spent);
        assert_eq!(tally.failed, 2);
        assert_eq!(tally.canary.iter().map(|row| row.outcome.line).collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(tally.canary[1].customer_id, "b");
    }
}
