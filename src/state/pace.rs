//! The `pace` table: the pace a job reached and what held it back ([`Reached`]), one row a job, the runs of a
//! resumed job added up. Written once per run, after the recorder has handed the state file back, like `minutes`.

use super::{StateError, StateFile};
use crate::pace::Reached;
use rusqlite::{OptionalExtension, params};

impl StateFile {
    /// Adds this run's pace to the job's (see [`Reached::after`]).
    pub fn add_pace(&mut self, job: i64, run: &Reached) -> Result<(), StateError> {
        let reached = match self.pace(job)? {
            Some(earlier) => run.after(&earlier),
            None => *run,
        };
        self.connection.execute(
            "INSERT OR REPLACE INTO pace (job_id, rate, seconds, requests, last_minute_rate, throttled_secs,
                                          latency_secs, outage_secs, concurrency, peak_in_flight)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                job,
                reached.rate,
                reached.seconds,
                reached.requests,
                reached.last_minute_rate,
                reached.throttled_secs,
                reached.latency_secs,
                reached.outage_secs,
                reached.concurrency,
                reached.peak_in_flight
            ],
        )?;
        Ok(())
    }

    /// The pace the job reached, once a run of it has sent a request.
    pub fn pace(&self, job: i64) -> Result<Option<Reached>, StateError> {
        let reached = self
            .connection
            .query_row(
                "SELECT rate, seconds, requests, last_minute_rate, throttled_secs, latency_secs, outage_secs,
                        concurrency, peak_in_flight
                 FROM pace WHERE job_id = ?1",
                params![job],
                |row| {
                    Ok(Reached {
                        rate: row.get(0)?,
                        seconds: row.get(1)?,
                        requests: row.get(2)?,
                        last_minute_rate: row.get(3)?,
                        throttled_secs: row.get(4)?,
                        latency_secs: row.get(5)?,
                        outage_secs: row.get(6)?,
                        concurrency: row.get(7)?,
                        peak_in_flight: row.get(8)?,
                    })
                },
            )
            .optional()?;
        Ok(reached)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::JobKind;

    #[test]
    fn the_pace_of_two_runs_adds_up() {
        let mut state = StateFile::open_in_memory().unwrap();
        let job = state.create_job(JobKind::Apply, "a.csv", "h", "http://127.0.0.1:1", std::iter::empty()).unwrap();
        let job = job.unwrap().id;
        assert_eq!(state.pace(job).unwrap(), None);
        let first = Reached {
            rate: 10,
            seconds: 10.0,
            requests: 90,
            last_minute_rate: 9.0,
            concurrency: 64,
            ..Reached::default()
        };
        state.add_pace(job, &first).unwrap();
        assert_eq!(state.pace(job).unwrap(), Some(first));
        let second = Reached { seconds: 5.0, requests: 50, last_minute_rate: 10.0, throttled_secs: 1.0, ..first };
        state.add_pace(job, &second).unwrap();
        let both = state.pace(job).unwrap().unwrap();
        assert_eq!((both.seconds, both.requests, both.last_minute_rate, both.throttled_secs), (15.0, 140, 10.0, 1.0));
    }
}
