//! The in-flight bound: how many requests may be on the wire at once, following the answers' latency.
//!
//! The rate is the pace's; this bound only makes it reachable. A rate of R requests a second answered in L seconds
//! keeps R × L requests in flight (Little's law), so the bound is that need with headroom ([`HEADROOM`], plus one,
//! at least [`MIN_SLOTS`]),
//! from a moving measure of recent answer times (an EWMA that rises fast and falls slowly: a service that slows
//! down gets more requests in flight within a few answers), clamped to [1, `--concurrency`]. Until the first answer
//! nothing is known and the bound is `--concurrency`, as it always was; the limiter spaces every request anyway, so a
//! higher bound never means a burst.
//!
//! Built on one semaphore: lowering the bound forgets free permits and notes a debt for the ones in use, paid as they
//! come back; raising it pays the debt first, then adds permits. Waiting requests keep their place in line.
//!
//! It also notes the seconds in which the rate times the latency was at least `--concurrency` with every slot taken
//! (Little's law: the rate cannot be reached with that many in flight; the latency, not the rate, set the pace), and the most requests
//! on the wire at once (a slot is taken before the rate's turn: a slot waiting for its turn is not on the wire).

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Slots above the measured need (R × L): answer times vary, and a request late by its jitter must not hold up the
/// schedule.
pub const HEADROOM: f64 = 1.5;

/// The fewest slots the bound goes down to (or `--concurrency`, when lower). A slot is taken before the rate's turn,
/// so a request waiting for its turn holds one: with one or two slots, a fast service's answers and the limiter's
/// schedule took turns and the rate was missed (a job at 400/s against 1–4 ms answers on a busy machine).
pub const MIN_SLOTS: usize = 4;

/// The weight of a new answer time that is longer than the measure (rising fast) and of one that is shorter.
const RISE: f64 = 0.5;
const FALL: f64 = 0.1;

/// The bound for `rate` requests a second answered in `latency`: R × L × [`HEADROOM`] + 1, within
/// `MIN_SLOTS..=max` (`max` when it is lower).
pub fn bound(rate: u32, latency: Duration, max: usize) -> usize {
    let need = f64::from(rate) * latency.as_secs_f64() * HEADROOM;
    // Saturating: a huge rate times a long latency is simply the maximum.
    let slots = need.ceil().min(max as f64) as usize + 1;
    slots.max(MIN_SLOTS).min(max).max(1)
}

/// The next value of the moving measure after an answer that took `sample`.
pub fn smoothed(measure: Option<Duration>, sample: Duration) -> Duration {
    match measure {
        None => sample,
        Some(measure) => {
            let weight = if sample > measure { RISE } else { FALL };
            measure.mul_f64(1.0 - weight) + sample.mul_f64(weight)
        }
    }
}

/// The bound and the measure, behind one lock never held across an await.
#[derive(Debug)]
struct Bound {
    limit: usize,
    /// Permits in use that are not given back when their request ends (the bound was lowered under them).
    debt: usize,
    latency: Option<Duration>,
    /// The second (since `origin`) last counted in `seconds_at_max`.
    last_second_at_max: Option<u64>,
    seconds_at_max: u64,
    /// Requests on the wire now ([`Slot::sent`]), and the most at once.
    on_wire: usize,
    peak: usize,
}

/// The adaptive in-flight bound of a pace.
#[derive(Debug)]
pub struct InFlight {
    slots: Arc<Semaphore>,
    max: usize,
    origin: Instant,
    bound: Mutex<Bound>,
}

/// A slot on the wire; given back (or forgotten, to pay a lowered bound's debt) when dropped.
#[derive(Debug)]
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    owner: Arc<InFlight>,
    on_wire: bool,
}

impl Slot {
    /// Its request had its turn and goes on the wire.
    pub fn sent(&mut self) {
        let mut bound = self.owner.lock();
        bound.on_wire += 1;
        bound.peak = bound.peak.max(bound.on_wire);
        self.on_wire = true;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else { return };
        let mut bound = self.owner.lock();
        if self.on_wire {
            bound.on_wire -= 1;
        }
        if bound.debt > 0 {
            bound.debt -= 1;
            permit.forget();
        }
    }
}

impl InFlight {
    pub fn new(max: usize) -> InFlight {
        let bound = Bound {
            limit: max,
            debt: 0,
            latency: None,
            last_second_at_max: None,
            seconds_at_max: 0,
            on_wire: 0,
            peak: 0,
        };
        InFlight { slots: Arc::new(Semaphore::new(max)), max, origin: Instant::now(), bound: Mutex::new(bound) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bound> {
        // The numbers are consistent after any panic (each change is a few assignments).
        crate::sync::lock(&self.bound)
    }

    /// Waits for a slot.
    pub async fn acquire(self: &Arc<Self>) -> Slot {
        // Invariant: the semaphore is owned here and never closed.
        let permit = self.slots.clone().acquire_owned().await.expect("the in-flight semaphore is never closed");
        Slot { permit: Some(permit), owner: self.clone(), on_wire: false }
    }

    /// An answer came after `latency`: the measure moves, and the bound follows it at `rate`. When the rate times
    /// the measure is `--concurrency` or more, this second's pace was set by the latency.
    pub fn on_answer(&self, latency: Duration, rate: u32) {
        let mut bound = self.lock();
        let measure = smoothed(bound.latency, latency);
        bound.latency = Some(measure);
        let second = self.origin.elapsed().as_secs();
        let out_of_reach = f64::from(rate) * measure.as_secs_f64() >= self.max as f64;
        // Every slot taken: the bound, not the rate, is what requests wait for.
        let full = bound.limit == self.max && self.slots.available_permits() == 0;
        if out_of_reach && full && bound.last_second_at_max != Some(second) {
            bound.last_second_at_max = Some(second);
            bound.seconds_at_max += 1;
        }
        self.follow(&mut bound, rate);
    }

    /// The rate changed: the bound follows it (nothing moves before the first answer).
    pub fn on_rate(&self, rate: u32) {
        let mut bound = self.lock();
        self.follow(&mut bound, rate);
    }

    fn follow(&self, bound: &mut Bound, rate: u32) {
        let Some(latency) = bound.latency else { return };
        let target = self::bound(rate, latency, self.max);
        if target < bound.limit {
            let lower = bound.limit - target;
            let forgotten = self.slots.forget_permits(lower);
            bound.debt += lower - forgotten;
        } else if target > bound.limit {
            let raise = target - bound.limit;
            let paid = raise.min(bound.debt);
            bound.debt -= paid;
            self.slots.add_permits(raise - paid);
        }
        bound.limit = target;
    }

    /// The bound now.
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    /// The moving measure of answer times, once there is one.
    pub fn latency(&self) -> Option<Duration> {
        self.lock().latency
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        let bound = self.lock();
        (bound.limit + bound.debt).saturating_sub(self.slots.available_permits())
    }

    /// The most requests on the wire at once so far.
    pub fn peak(&self) -> usize {
        self.lock().peak
    }

    /// Seconds in which the rate times the latency was `--concurrency` or more.
    pub fn seconds_at_max(&self) -> u64 {
        self.lock().seconds_at_max
    }

    /// `--concurrency`: the most the bound goes to.
    pub fn max(&self) -> usize {
        self.max
    }
}

#[cfg(test)]
mod tests;
