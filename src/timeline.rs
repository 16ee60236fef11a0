//! Requests and 429s per minute over a job's time. A sampler task reads the pace's cumulative counters every few
//! seconds and keeps the deltas per wall-clock minute in memory; the job writes them to the state file when the
//! recorder has handed it back (the state file keeps one owner). Each sample also goes to the recorder as the run's
//! figures so far, so `status` shows a running job's requests. It never touches SQLite or the network.

use crate::pace::Pace;
use crate::state::Minute;
use crate::state::recorder::RecorderHandle;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the counters are read.
const EVERY: Duration = Duration::from_secs(5);

/// The running sampler of one run of a job.
pub struct Timeline {
    samples: Arc<Mutex<Samples>>,
    pace: Arc<Pace>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Samples {
    /// The counters as last read: (requests, throttled).
    last: (u64, u64),
    /// Minute since the epoch → (requests, throttled) in it.
    minutes: BTreeMap<i64, (u64, u64)>,
}

impl Samples {
    fn take(&mut self, pace: &Pace, at: SystemTime) {
        let now = (pace.requests_sent(), pace.throttled());
        let delta = (now.0.saturating_sub(self.last.0), now.1.saturating_sub(self.last.1));
        self.last = now;
        if delta != (0, 0) {
            let entry = self.minutes.entry(minute_of(at)).or_default();
            entry.0 += delta.0;
            entry.1 += delta.1;
        }
    }
}

/// Minutes since the Unix epoch.
fn minute_of(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| (since.as_secs() / 60) as i64)
}

impl Timeline {
    /// Starts sampling `pace` (whose counters start at zero for this run), noting its figures to `recorder`.
    pub fn start(pace: Arc<Pace>, recorder: RecorderHandle) -> Timeline {
        let samples = Arc::new(Mutex::new(Samples::default()));
        let stop = CancellationToken::new();
        let task = tokio::spawn(sample_until(pace.clone(), samples.clone(), recorder, stop.clone()));
        Timeline { samples, pace, stop, task }
    }

    /// Stops sampling, takes a last sample, and gives the minutes of the run.
    pub async fn finish(self) -> Vec<Minute> {
        self.stop.cancel();
        // The task only sleeps and samples; an error here means it panicked, and the last sample below still counts.
        let _ = self.task.await;
        let mut samples = lock(&self.samples);
        samples.take(&self.pace, SystemTime::now());
        samples.minutes.iter().map(|(&minute, &(requests, throttled))| Minute { minute, requests, throttled }).collect()
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
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {
                lock(&samples).take(&pace, SystemTime::now());
                // A recorder already gone has nothing left to show; the job's end writes the figures anyway.
                let _ = recorder.note_figures(pace.requests_sent(), pace.throttled());
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
}
