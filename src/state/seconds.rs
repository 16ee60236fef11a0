//! The `seconds` table: a job's requests and 429s finer than a minute, for the pace chart of a short job (seconds
//! for a two-minute job, 10 s buckets for twenty minutes). It stays small whatever the job's length: the samples are
//! kept at the width the job's span calls for ([`crate::buckets::width`]), coarsened as a resumed job's span grows,
//! and dropped once the span passes [`FINE_SPAN`] (50 min), where the `minutes` table draws the chart: at most 151
//! rows a job. Written once per run with its minutes, in one transaction, after the recorder has handed the state
//! file back (no commit of its own while rows are recorded).

use super::{Minute, StateError, StateFile};
use crate::buckets::{self, Bucket, FINE_SPAN, MINUTE};
use rusqlite::{Connection, params};

/// What one run of a job saw, for the pace chart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunTimeline {
    /// The minutes that saw a request.
    pub minutes: Vec<Minute>,
    /// Every second from the run's first sample to its last, zero or not (so a gap on the chart is time no run was
    /// going), in time order; `None` when the run alone was longer than [`FINE_SPAN`].
    pub seconds: Option<Vec<Bucket>>,
}

/// A job's samples finer than a minute: buckets of `width` seconds, in time order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seconds {
    pub width: u64,
    pub buckets: Vec<Bucket>,
}

impl StateFile {
    /// Adds a run's samples to the job's: its minutes, and its seconds merged with the earlier runs' at the width
    /// the job's span now calls for (or dropped, past [`FINE_SPAN`]).
    pub fn add_timeline(&mut self, job: i64, run: &RunTimeline) -> Result<(), StateError> {
        let transaction = self.connection.transaction()?;
        let earlier = read(&transaction, job)?;
        let had_minutes: bool =
            transaction
                .query_row("SELECT EXISTS (SELECT 1 FROM minutes WHERE job_id = ?1)", params![job], |row| row.get(0))?;
        let kept = keep(earlier, had_minutes, run.seconds.as_deref());
        transaction.execute("DELETE FROM seconds WHERE job_id = ?1", params![job])?;
        if let Some(kept) = kept {
            let mut insert = transaction.prepare_cached(
                "INSERT INTO seconds (job_id, second, width, requests, throttled) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for bucket in &kept.buckets {
                insert.execute(params![job, bucket.start, kept.width, bucket.requests, bucket.throttled])?;
            }
        }
        super::minutes::add(&transaction, job, &run.minutes)?;
        transaction.commit()?;
        Ok(())
    }

    /// The job's samples finer than a minute, if it keeps any (a job longer than [`FINE_SPAN`], or one recorded
    /// before they were kept, has only its minutes).
    pub fn seconds(&self, job: i64) -> Result<Option<Seconds>, StateError> {
        read(&self.connection, job)
    }
}

/// The samples to keep after a run: none when the run has none, when the job had minutes but no seconds (a job
/// already past [`FINE_SPAN`], or one recorded by a pcbulk that kept none: seconds of the new run alone would draw
/// half a job), or when the job's span passes [`FINE_SPAN`]; else the earlier buckets and the run's seconds summed
/// at the width the span calls for (never finer than the earlier width, which the span only widens).
fn keep(earlier: Option<Seconds>, had_minutes: bool, run: Option<&[Bucket]>) -> Option<Seconds> {
    let run = run?;
    let (mut samples, earlier_width) = match earlier {
        Some(earlier) => (earlier.buckets, earlier.width),
        None if had_minutes => return None,
        None => (Vec::new(), 1),
    };
    samples.extend_from_slice(run);
    samples.sort_by_key(|sample| sample.start);
    let span = match (samples.first(), samples.last()) {
        (Some(first), Some(last)) => u64::try_from(last.start - first.start).unwrap_or(u64::MAX),
        _ => return None,
    };
    if span > FINE_SPAN {
        return None;
    }
    let width = buckets::width(span).max(earlier_width);
    (width < MINUTE).then(|| Seconds { width, buckets: buckets::sum(samples, width) })
}

/// The job's seconds; none from a file whose `seconds` table was never made (a reader does not make tables).
fn read(connection: &Connection, job: i64) -> Result<Option<Seconds>, StateError> {
    let made: bool = connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'seconds')",
        [],
        |row| row.get(0),
    )?;
    if !made {
        return Ok(None);
    }
    let mut statement = connection
        .prepare_cached("SELECT second, width, requests, throttled FROM seconds WHERE job_id = ?1 ORDER BY second")?;
    let mut width = 1;
    let rows = statement.query_map(params![job], |row| {
        width = row.get::<_, u64>(1)?;
        Ok(Bucket { start: row.get(0)?, requests: row.get(2)?, throttled: row.get(3)? })
    })?;
    let buckets: Vec<Bucket> = rows.collect::<Result<_, _>>()?;
    Ok((!buckets.is_empty()).then_some(Seconds { width, buckets }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::JobKind;

    fn job(state: &mut StateFile) -> i64 {
        let job = state.create_job(JobKind::Apply, "a.csv", "h", "http://127.0.0.1:1", std::iter::empty()).unwrap();
        job.unwrap().id
    }

    /// A run of `seconds` seconds from `start`, 3 requests a second, one 429 every fourth second.
    fn run(start: i64, seconds: i64) -> RunTimeline {
        let buckets: Vec<Bucket> = (start..start + seconds)
            .map(|at| Bucket { start: at, requests: 3, throttled: u64::from(at % 4 == 0) })
            .collect();
        let minutes = buckets::sum(buckets.clone(), 60)
            .into_iter()
            .map(|bucket| Minute { minute: bucket.start / 60, requests: bucket.requests, throttled: bucket.throttled })
            .collect();
        RunTimeline { minutes, seconds: Some(buckets) }
    }

    #[test]
    fn a_short_job_keeps_its_seconds_one_by_one() {
        let mut state = StateFile::open_in_memory().unwrap();
        let job = job(&mut state);
        state.add_timeline(job, &run(6_000, 90)).unwrap();
        let seconds = state.seconds(job).unwrap().unwrap();
        assert_eq!((seconds.width, seconds.buckets.len()), (1, 90));
        assert_eq!(seconds.buckets.iter().map(|bucket| bucket.requests).sum::<u64>(), 270);
        assert_eq!(state.minutes(job).unwrap().iter().map(|minute| minute.requests).sum::<u64>(), 270);
    }

    #[test]
    fn a_resumed_job_coarsens_its_seconds_as_its_span_grows_and_keeps_the_gap() {
        let mut state = StateFile::open_in_memory().unwrap();
        let job = job(&mut state);
        state.add_timeline(job, &run(6_000, 90)).unwrap();
        // Resumed 5 minutes later for 10 minutes: the job spans 989 s, drawn in 10 s buckets.
        state.add_timeline(job, &run(6_390, 600)).unwrap();
        let seconds = state.seconds(job).unwrap().unwrap();
        assert_eq!(seconds.width, 10);
        assert_eq!(seconds.buckets.len(), 9 + 60, "the two runs' buckets, none for the gap between them");
        assert_eq!(seconds.buckets[8].start, 6_080);
        assert_eq!(seconds.buckets[9].start, 6_390);
        assert_eq!(seconds.buckets.iter().map(|bucket| bucket.requests).sum::<u64>(), 3 * 690);
        assert_eq!(seconds.buckets.iter().map(|bucket| bucket.throttled).sum::<u64>(), 23 + 150);
    }

    #[test]
    fn past_the_fine_span_only_minutes_are_kept() {
        let mut state = StateFile::open_in_memory().unwrap();
        let job = job(&mut state);
        state.add_timeline(job, &run(6_000, 600)).unwrap();
        state.add_timeline(job, &run(9_000, 60)).unwrap();
        assert_eq!(state.seconds(job).unwrap(), None, "3,060 s of span: the minutes draw the chart");
        state.add_timeline(job, &run(9_100, 5)).unwrap();
        assert_eq!(state.seconds(job).unwrap(), None, "a job past the fine span never keeps seconds again");
        let long = RunTimeline { seconds: None, ..run(20_000, 60) };
        state.add_timeline(job, &long).unwrap();
        assert_eq!(state.minutes(job).unwrap().iter().map(|minute| minute.requests).sum::<u64>(), 3 * 725);
    }

    #[test]
    fn a_job_recorded_before_seconds_were_kept_keeps_none() {
        let mut state = StateFile::open_in_memory().unwrap();
        let job = job(&mut state);
        state.add_minutes(job, &[Minute { minute: 100, requests: 40, throttled: 0 }]).unwrap();
        state.add_timeline(job, &run(6_010, 30)).unwrap();
        assert_eq!(state.seconds(job).unwrap(), None, "the seconds of the resumed run alone would draw half a job");
    }

    #[test]
    fn a_night_keeps_no_more_rows_than_a_short_job() {
        let mut state = StateFile::open_in_memory().unwrap();
        let job = job(&mut state);
        for start in (0..10).map(|hour| 108_000 + hour * 3_600) {
            let mut hour = run(start, 3_600);
            hour.seconds = None;
            state.add_timeline(job, &hour).unwrap();
        }
        let rows: i64 = state.connection.query_row("SELECT COUNT(*) FROM seconds", [], |row| row.get(0)).unwrap();
        assert_eq!((rows, state.minutes(job).unwrap().len()), (0, 600));
    }

    /// The state file's size once closed (its WAL checkpointed into it), after `fill` on a fresh job.
    fn size_after(fill: impl FnOnce(&mut StateFile, i64)) -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("night.pcbulk.db");
        let mut state = StateFile::open_for_job(&path).unwrap();
        let id = job(&mut state);
        fill(&mut state, id);
        drop(state);
        std::fs::metadata(&path).unwrap().len()
    }

    /// `cargo test --lib state::seconds -- --nocapture` prints the figures.
    #[test]
    fn a_ten_hour_job_adds_kilobytes_to_the_state_file() {
        let empty = size_after(|_, _| {});
        let night = size_after(|state, id| {
            for start in (0..10).map(|hour| 108_000 + hour * 3_600) {
                state.add_timeline(id, &RunTimeline { seconds: None, ..run(start, 3_600) }).unwrap();
            }
        });
        let every_second = size_after(|state, id| {
            let seconds = run(108_000, 36_000).seconds.unwrap();
            let transaction = state.connection.transaction().unwrap();
            for bucket in &seconds {
                let row = params![id, bucket.start, 1, bucket.requests, bucket.throttled];
                transaction.execute("INSERT INTO seconds VALUES (?1, ?2, ?3, ?4, ?5)", row).unwrap();
            }
            transaction.commit().unwrap();
        });
        eprintln!(
            "state file: {empty} bytes with an empty job; a 10-hour timeline adds {} bytes (600 minutes, no seconds); \
             keeping its 36,000 seconds would add {} bytes",
            night - empty,
            every_second - empty
        );
        assert!(night - empty < 64 * 1024, "a night's timeline: {} bytes", night - empty);
    }
}
