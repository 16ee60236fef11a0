//! The live fault settings and the decisions drawn from them: delays, the token bucket, and the dice for random
//! errors, dropped connections, concurrent edits and the stale-etag answer.
//!
//! Randomness comes from one RNG seeded by the configuration, so a run is reproducible (given the same order of
//! requests). With every fault off, a request costs one uncontended read lock here and draws nothing.

use super::config::{Faults, StaleEtag};
use super::lock;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::sync::{Mutex, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// A token bucket: `rate` tokens a second, holding at most `capacity` (the burst asked for, else the rate; at least 1).
#[derive(Debug)]
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64, burst: Option<f64>, now: Instant) -> Bucket {
        let capacity = burst.unwrap_or(rate).max(1.0);
        Bucket { rate, capacity, tokens: capacity, last: now }
    }

    /// Takes a token, or says in how many whole seconds (at least 1) one will be there.
    fn take(&mut self, now: Instant) -> Result<(), u64> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - self.tokens) / self.rate;
        Err((wait.ceil() as u64).max(1))
    }
}

/// How a stale `If-Match` is answered this time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StaleAnswer {
    PreconditionFailed,
    Code2055,
}

pub(crate) struct FaultState {
    settings: RwLock<Faults>,
    bucket: Mutex<Option<Bucket>>,
    rng: Mutex<StdRng>,
}

impl FaultState {
    pub(crate) fn new(faults: Faults, seed: u64) -> FaultState {
        let bucket = faults.rate_limit.map(|rate| Bucket::new(rate, faults.rate_burst, Instant::now()));
        FaultState {
            settings: RwLock::new(faults),
            bucket: Mutex::new(bucket),
            rng: Mutex::new(StdRng::seed_from_u64(seed.wrapping_add(0x0fa0_1757))),
        }
    }

    /// A copy of the settings in force.
    pub(crate) fn current(&self) -> Faults {
        self.read(Faults::clone)
    }

    /// Reads one thing from the settings in force.
    pub(crate) fn read<T>(&self, pick: impl FnOnce(&Faults) -> T) -> T {
        // Settings are replaced whole: a poisoned lock still holds a complete value.
        pick(&self.settings.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Replaces the settings; the token bucket starts full at the new rate.
    pub(crate) fn replace(&self, faults: Faults) {
        *lock(&self.bucket) = faults.rate_limit.map(|rate| Bucket::new(rate, faults.rate_burst, Instant::now()));
        *self.settings.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = faults;
    }

    /// Changes the latency alone (the token bucket keeps its tokens).
    pub(crate) fn set_latency(&self, latency_ms: u64) {
        self.settings.write().unwrap_or_else(|poisoned| poisoned.into_inner()).latency_ms = latency_ms;
    }

    /// The delay to add to a request (latency plus a random jitter), if any.
    pub(crate) fn delay(&self) -> Option<Duration> {
        let (latency, jitter) = self.read(|faults| (faults.latency_ms, faults.jitter_ms));
        if latency == 0 && jitter == 0 {
            return None;
        }
        let jitter = if jitter > 0 { lock(&self.rng).random_range(0..=jitter) } else { 0 };
        Some(Duration::from_millis(latency + jitter))
    }

    /// Lets a request through the token bucket, or says after how many seconds to retry.
    pub(crate) fn admit(&self) -> Result<(), u64> {
        if self.read(|faults| faults.rate_limit.is_none()) {
            return Ok(());
        }
        match lock(&self.bucket).as_mut() {
            Some(bucket) => bucket.take(Instant::now()),
            None => Ok(()),
        }
    }

    /// True with probability `probability` (never draws for 0).
    pub(crate) fn roll(&self, probability: f64) -> bool {
        if probability <= 0.0 {
            return false;
        }
        if probability >= 1.0 {
            return true;
        }
        lock(&self.rng).random_bool(probability)
    }

    /// The status of a random server error (500 or 503, half and half), when the error rate says so.
    pub(crate) fn injected_error(&self) -> Option<u16> {
        let rate = self.read(|faults| faults.error_rate);
        if !self.roll(rate) {
            return None;
        }
        Some(if self.roll(0.5) { 500 } else { 503 })
    }

    pub(crate) fn stale_answer(&self) -> StaleAnswer {
        match self.read(|faults| faults.stale_etag) {
            StaleEtag::PreconditionFailed => StaleAnswer::PreconditionFailed,
            StaleEtag::Code2055 => StaleAnswer::Code2055,
            StaleEtag::Mixed if self.roll(0.5) => StaleAnswer::Code2055,
            StaleEtag::Mixed => StaleAnswer::PreconditionFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_says_when_to_retry() {
        let start = Instant::now();
        let mut bucket = Bucket::new(2.0, None, start);
        assert_eq!(bucket.take(start), Ok(()));
        assert_eq!(bucket.take(start), Ok(()));
        assert_eq!(bucket.take(start), Err(1));
        assert_eq!(bucket.take(start + Duration::from_millis(500)), Ok(()));
    }

    #[test]
    fn a_strict_bucket_lets_through_only_its_burst() {
        let start = Instant::now();
        let mut bucket = Bucket::new(100.0, Some(2.0), start);
        assert_eq!((bucket.take(start), bucket.take(start), bucket.take(start)), (Ok(()), Ok(()), Err(1)));
        // A token every 10 ms, and never more than two saved up.
        assert_eq!(bucket.take(start + Duration::from_millis(10)), Ok(()));
        let later = start + Duration::from_secs(5);
        assert_eq!((bucket.take(later), bucket.take(later), bucket.take(later)), (Ok(()), Ok(()), Err(1)));
    }

    #[test]
    fn a_slow_bucket_asks_for_whole_seconds() {
        let start = Instant::now();
        let mut bucket = Bucket::new(0.25, None, start);
        assert_eq!(bucket.take(start), Ok(()));
        assert_eq!(bucket.take(start), Err(4));
    }

    #[test]
    fn the_same_seed_rolls_the_same_dice() {
        let faults = Faults { error_rate: 0.5, ..Faults::default() };
        let first = FaultState::new(faults.clone(), 9);
        let second = FaultState::new(faults, 9);
        let rolls = |state: &FaultState| (0..50).map(|_| state.injected_error()).collect::<Vec<_>>();
        let rolled = rolls(&first);
        assert_eq!(rolled, rolls(&second));
        assert!(rolled.iter().any(Option::is_some) && rolled.iter().any(Option::is_none));
    }

    #[test]
    fn a_mixed_stale_answer_gives_both() {
        let state = FaultState::new(Faults { stale_etag: StaleEtag::Mixed, ..Faults::default() }, 5);
        let answers: Vec<StaleAnswer> = (0..40).map(|_| state.stale_answer()).collect();
        assert!(answers.contains(&StaleAnswer::PreconditionFailed) && answers.contains(&StaleAnswer::Code2055));
    }

    #[test]
    fn everything_is_off_by_default() {
        let state = FaultState::new(Faults::default(), 1);
        assert_eq!(state.delay(), None);
        assert_eq!(state.admit(), Ok(()));
        assert_eq!(state.injected_error(), None);
        assert_eq!(state.stale_answer(), StaleAnswer::PreconditionFailed);
    }
}
