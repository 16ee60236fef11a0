//! Requests and 429s over a job's time. A sampler task reads the pace's cumulative counters every second and keeps
//! the deltas per wall-clock minute, and per second while the run is no longer than [`FINE_SPAN`] (the chart of a
//! longer job needs no finer bucket than a minute, so a night holds no more in memory than 50 minutes do); the job
//! writes them to the state file when the recorder has handed it back (the state file keeps one owner, and the
//! samples cost the recorder nothing). Every fifth sample also goes to the recorder as the run's figures so far, so
//! `status` shows a running job's requests. It never touches SQLite or the network.

use crate::buckets::{Bucket, FINE_SPAN};
use crate::pace::Pace;
use crate::state::recorder::RecorderHandle;
use crate::state::{Minute, RunTimeline};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the counters are read.
const EVERY: Duration = Duration::from_secs(1);

/// Every how many samples the figures go to the recorder (every 5 s).
const FIGURES_EVERY: u32 = 5;

/// The running sampler of one run of a job.
pub struct Timeline {
    samples: Arc<Mutex<Samples>>,
    pace: Arc<Pace>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

struct Samples {
    /// The counters as last read: (requests, throttled).
    last: (u64, u64),
    /// Minute since the epoch → (requests, throttled) in it.
    minutes: BTreeMap<i64, (u64, u64)>,
    /// Every second since the run's first sample, zero or not; `None` once the run is longer than [`FINE_SPAN`].
    seconds: Option<Vec<Bucket>>,
}

impl Default for Samples {
    fn default() -> Samples {
        Samples { last: (0, 0), minutes: BTreeMap::new(), seconds: Some(Vec::new()) }
    }
}

impl Samples {
    fn take(&mut self, pace: &Pace, at: SystemTime) {
        let now = (pace.requests_sent(), pace.throttled());
        let delta = (now.0.saturating_sub(self.last.0), now.1.saturating_sub(self.last.1));
        self.last = now;
        let second = second_of(at);
        if delta != (0, 0) {
            let entry = self.minutes.entry(second.div_euclid(60)).or_default();
            entry.0 += delta.0;
            entry.1 += delta.1;
        }
        self.note_second(second, delta);
    }

    /// Adds a sample to its second; the seconds a late sample skipped are zeros (the run was going), and a clock
    /// set back adds to the last second.
    fn note_second(&mut self, second: i64, (requests, throttled): (u64, u64)) {
        let Some(seconds) = &mut self.seconds else { return };
        let first = seconds.first().map_or(second, |bucket| bucket.start);
        if second.saturating_sub(first) > FINE_SPAN as i64 {
            self.seconds = None;
            return;
        }
        let next = seconds.last().map_or(second, |bucket| bucket.start + 1);
        seconds.extend((next..second).map(|start| Bucket { start, ..Bucket::default() }));
        match seconds.last_mut() {
            Some(last) if last.start >= second => {
                last.requests += requests;
                last.throttled += throttled;
            }
            _ => seconds.push(Bucket { start: second, requests, throttled }),
        }
    }

    fn run(&self) -> RunTimeline {
        let minutes = self.minutes.iter();
        RunTimeline {
            minutes: minutes.map(|(&minute, &(requests, throttled))| Minute { minute, requests, throttled }).collect(),
            seconds: self.seconds.clone(),
        }
    }
}

/// Seconds since the Unix epoch.
fn second_of(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
}

impl Timeline {
    /// Starts sampling `pace` (whose counters start at zero for this run), noting its figures to `recorder`.
    pub fn start(pace: Arc<Pace>, recorder: RecorderHandle) -> Timeline {
        let samples = Arc::new(Mutex::new(Samples::default()));
        let stop = CancellationToken::new();
        let task = tokio::spawn(sample_until(pace.clone(), samples.clone(), recorder, stop.clone()));
        Timeline { samples, pace, stop, task }
    }

    /// Stops sampling, takes a last sample, and gives the run's minutes and seconds.
    pub async fn finish(self) -> RunTimeline {
        self.stop.cancel();
        // The task only sleeps and samples; an error here means it panicked, and the last sample below still counts.
        let _ = self.task.await;
        let mut samples = lock(&self.samples);
        samples.take(&self.pace, SystemTime::now());
        samples.run()
    }
}

/// The lock is never held across a panic point that could leave the counts half-made.
fn lock(samples: &Mutex<Samples>) -> std::sync::MutexGuard<'_, Samples> {
    crate::sync::lock(samples)
}

async fn sample_until(
    pace: Arc<Pace>,
    samples: Arc<Mutex<Samples>>,
    recorder: RecorderHandle,
    stop: CancellationToken,
) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick: u32 = 0;
    loop {
        tick = tick.wrapping_add(1);
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {
                lock(&samples).take(&pace, SystemTime::now());
                if tick % FIGURES_EVERY == 1 {
                    // A recorder already gone has nothing left to show; the job's end writes the figures anyway.
                    let _ = recorder.note_figures(pace.requests_sent(), pace.throttled());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pace::PaceConfig;
    use std::num::{NonZeroU32, NonZeroUsize};

    #[tokio::test]
    async fn deltas_land_in_their_minute() {
        let config = PaceConfig::new(NonZeroU32::new(100).unwrap(), NonZeroUsize::new(4).unwrap(), NonZeroU32::MIN);
        let pace = Pace::new(config);
        let minute = |m: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(m * 60 + 5);
        let mut samples = Samples::default();
        samples.take(&pace, minute(10));
        assert!(samples.minutes.is_empty(), "nothing sent, nothing kept");
        pace.count_sent();
        pace.count_sent();
        samples.take(&pace, minute(10));
        let permit = pace.acquire().await;
        pace.count_sent();
        pace.on_throttled(permit.issued_at(), Duration::ZERO);
        drop(permit);
        samples.take(&pace, minute(12));
        assert_eq!(samples.minutes, BTreeMap::from([(10, (2, 0)), (12, (1, 1))]));
    }

    #[test]
    fn every_second_of_a_run_is_kept_zero_or_not_until_the_fine_span() {
        let config = PaceConfig::new(NonZeroU32::new(100).unwrap(), NonZeroUsize::new(4).unwrap(), NonZeroU32::MIN);
        let pace = Pace::new(config);
        let second = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(s * 1_000 + 300);
        let mut samples = Samples::default();
        samples.take(&pace, second(1_000));
        pace.count_sent();
        samples.take(&pace, second(1_001));
        pace.count_sent();
        pace.count_sent();
        // A late sample: the seconds it skipped were part of the run, with no request.
        samples.take(&pace, second(1_004));
        let seconds = samples.run().seconds.unwrap();
        let counts: Vec<(i64, u64)> = seconds.iter().map(|bucket| (bucket.start, bucket.requests)).collect();
        assert_eq!(counts, [(1_000, 0), (1_001, 1), (1_002, 0), (1_003, 0), (1_004, 2)]);
        samples.take(&pace, second(1_000 + FINE_SPAN));
        assert_eq!(samples.run().seconds.map(|seconds| seconds.len()), Some(FINE_SPAN as usize + 1));
        samples.take(&pace, second(1_001 + FINE_SPAN));
        assert_eq!(samples.run().seconds, None, "a run past the fine span keeps only its minutes");
        let run = samples.run();
        assert_eq!(run.minutes.iter().map(|minute| minute.requests).sum::<u64>(), 3);
    }
}
