//! Requests and 429s per minute of a job's time, for the summary page's chart (a short job's finer samples are
//! [`super::seconds`]). Written once per run, after the recorder has handed the state file back (so the one-owner
//! rule holds); a run killed before its end loses only its own minutes, never a row.

use super::{StateError, StateFile};
use rusqlite::{Connection, params};

/// What one wall-clock minute of a job saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Minute {
    /// Minutes since the Unix epoch (UTC).
    pub minute: i64,
    pub requests: u64,
    pub throttled: u64,
}

impl StateFile {
    /// Adds these minutes to the job's (a minute a resumed run shares with the run before adds up).
    pub fn add_minutes(&mut self, job: i64, minutes: &[Minute]) -> Result<(), StateError> {
        let transaction = self.connection.transaction()?;
        add(&transaction, job, minutes)?;
        transaction.commit()?;
        Ok(())
    }

    /// The job's minutes, in time order.
    pub fn minutes(&self, job: i64) -> Result<Vec<Minute>, StateError> {
        let mut statement = self
            .connection
            .prepare("SELECT minute, requests, throttled FROM minutes WHERE job_id = ?1 ORDER BY minute")?;
        let rows = statement.query_map(params![job], |row| {
            Ok(Minute { minute: row.get(0)?, requests: row.get(1)?, throttled: row.get(2)? })
        })?;
        rows.collect::<Result<_, _>>().map_err(StateError::from)
    }
}

/// Adds these minutes to the job's, inside the caller's transaction.
pub(super) fn add(connection: &Connection, job: i64, minutes: &[Minute]) -> Result<(), StateError> {
    let mut add = connection.prepare_cached(
        "INSERT INTO minutes (job_id, minute, requests, throttled) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (job_id, minute)
         DO UPDATE SET requests = requests + excluded.requests, throttled = throttled + excluded.throttled",
    )?;
    for minute in minutes {
        add.execute(params![job, minute.minute, minute.requests, minute.throttled])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::JobKind;

    #[test]
    fn minutes_of_two_runs_add_up() {
        let mut state = StateFile::open_in_memory().unwrap();
        let job = state.create_job(JobKind::Apply, "a.csv", "h", "http://127.0.0.1:1", std::iter::empty()).unwrap();
        let job = job.unwrap().id;
        state.add_minutes(job, &[Minute { minute: 10, requests: 5, throttled: 1 }]).unwrap();
        let second =
            [Minute { minute: 10, requests: 2, throttled: 0 }, Minute { minute: 11, requests: 3, throttled: 2 }];
        state.add_minutes(job, &second).unwrap();
        let expected =
            vec![Minute { minute: 10, requests: 7, throttled: 1 }, Minute { minute: 11, requests: 3, throttled: 2 }];
        assert_eq!(state.minutes(job).unwrap(), expected);
    }
}
