//! Pace: how fast and how many requests go to the API, shared by every worker.
//!
//! Owns the in-flight bound (`inflight`: a semaphore whose size follows the answers' latency, up to
//! `--concurrency`), the request rate (a `governor` GCRA limiter on tokio's clock), the
//! job-wide hold after a 429 with its adaptive rate (AIMD: halve on a throttle, or go back to the rate of a recent
//! cut that the API bore; climb back step by step), the jittered
//! backoff for transient failures, and the counters the summary shows (requests sent, 429s met, the pace reached
//! and what held it back: `reached`).
//!
//! It must never sleep on anything but tokio's clock (so tests run on a paused clock), never pace by "sleep 1/rate
//! after each request" (the limiter keeps an absolute schedule), and knows nothing of HTTP, tokens or rows.
//!
//! The limiter: `governor` with a [`Clock`] whose instants are the nanoseconds since the pace was made, read from
//! `tokio::time::Instant`. Workers call `check()` and, when refused, sleep with `tokio::time::sleep` for
//! `NotUntil::wait_time_from(now)`. The quota holds one cell of slack ([`SLACK`]) and every limiter starts with it
//! taken: on a steady schedule nothing goes out early, but a worker woken a little late (the timer's millisecond,
//! a busy core) takes the slot it missed instead of losing it. Without it every request drifted up to a millisecond
//! late and a job used less of its budget than it was given (`cargo bench --bench e2e`; docs/performance.md). A governor quota is fixed, so
//! a rate change replaces the limiter; the new one has its cells taken at once, so the change neither lets a burst
//! through nor loses the schedule's place.
//!
//! From far above the limit (`docs/pace.md`): every 429 sets a **ceiling**, the lowest rate that met a 429 in the
//! last minute, lowered further when its hold ends to the rate the service accepted the requests sent before it at.
//! The rate then goes to 90% of that accepted rate, and climbs (5% of the ceiling a second) to 95% of the ceiling,
//! not past it. Stepping by 5% of `--rate` took a job started at ten times the limit past it again in one step.

pub mod inflight;
pub mod reached;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use inflight::{InFlight, Slot};
use rand::RngExt;
pub use reached::{HeldBack, Reached};
use std::collections::VecDeque;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// The longest wait a server's `Retry-After` is taken at its word for; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// `--concurrency` when none is given: the most requests in flight, the bound following the latency below it. At
/// the default `--rate` of 10, enough for answers of up to 4 s (10 × 4 × [`inflight::HEADROOM`] + 1 = 61), and at 2 s
/// for a `--rate` of 20; Partner Center answers a profile call in hundreds of milliseconds to seconds.
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;

/// Cells of the limiter's burst: one for the schedule, one of slack for a late wake-up (after an idle spell, at
/// most two requests go out back to back).
const SLACK: u32 = 2;

/// Accepted answers after the first 429 a refined cut needs (see the module doc): fewer say little about the rate
/// the service accepts.
const REFINE_SAMPLES: u64 = 3;

/// Answers a refined cut needs when too few were accepted after the first 429 to measure their spacing.
const REFINE_ANSWERS: u64 = 8;

/// A 429 after this many seconds' worth of answers at the rate in force, all accepted, came "in passing": the
/// service bore that rate, and one request reached it too close to the one before (a late wake-up on this machine or
/// on the way). It holds every worker as any 429 does, but moves neither the rate nor the ceiling: each 429 taken
/// for the limit lowered the ceiling for good, and a job started far above a strict limiter ended at two thirds of
/// it, where its hold every few seconds at nine tenths of the limit had cost less (issue 20 point 3).
const PASSING_SECONDS: u64 = 10;

/// A cut whose requests the service refused at most one in this many of is refined by their share accepted, not
/// by the spacing of the accepted ones ([`Refine::accepted_rate`]).
const PASSING_SHARE: u64 = 50;

/// After a 429 the rate goes to this share of the rate the service accepted (or of the rate that met it).
const CUT_SHARE: (u32, u32) = (9, 10);

/// The climb stops at this share of the ceiling (the lowest rate that met a 429 in the last minute).
const CAP_SHARE: (u32, u32) = (19, 20);

/// The window `settled_rate` averages over.
const SETTLE_WINDOW: Duration = Duration::from_secs(60);

/// How pacing is set: plain typed values, resolved from the command line elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaceConfig {
    /// Requests per second, across all workers; the most the adaptive rate climbs back to.
    pub rate: NonZeroU32,
    /// Requests in flight at once, at most (the bound follows the latency below it: `inflight`).
    pub concurrency: NonZeroUsize,
    /// Attempts per call before a transient failure is final (429s do not count).
    pub max_attempts: NonZeroU32,
    /// The backoff before the first retry; it doubles with each further attempt.
    pub backoff_base: Duration,
    /// The longest backoff.
    pub backoff_max: Duration,
}

impl PaceConfig {
    /// A configuration with the default backoff (0.5 s doubling up to 60 s).
    pub fn new(rate: NonZeroU32, concurrency: NonZeroUsize, max_attempts: NonZeroU32) -> PaceConfig {
        PaceConfig {
            rate,
            concurrency,
            max_attempts,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// Governor's clock, read from tokio's (pausable) clock: nanoseconds since `origin`.
#[derive(Clone, Debug)]
struct TokioClock {
    origin: Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.origin.elapsed())
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

/// The right to send one request: holds an in-flight slot until dropped.
#[derive(Debug)]
pub struct Permit {
    _slot: Slot,
    issued_at: Instant,
}

impl Permit {
    /// When the permit was granted, i.e. when its request went out (pass it to [`Pace::on_throttled`]).
    pub fn issued_at(&self) -> Instant {
        self.issued_at
    }
}

/// The adaptive part, behind one lock that is never held across an await.
struct RateState {
    /// The current rate, requests per second: `1..=config.rate`.
    rate: u32,
    limiter: Arc<Limiter>,
    /// No request goes out before this instant (in the past when there is no hold).
    hold_until: Instant,
    /// A hold was set: the first request after it starts the schedule afresh, so the slack does not let the slots
    /// the hold skipped go out in a burst.
    restart_after_hold: bool,
    /// When the rate was last cut; a 429 for a request sent before then does not cut it again.
    last_cut: Option<Instant>,
    /// The start of the current throttle-free stretch: the rate climbs one step per second since.
    climb_from: Instant,
    /// The ceiling, until when: the lowest rate that met a 429 (or that the service accepted while asked for more)
    /// since a minute before the last 429. The climb stops at [`CAP_SHARE`] of it: the limit is below it, and each
    /// climb back past it would cost a whole `Retry-After` hold.
    ceiling: Option<(Instant, u32)>,
    /// What a climb's step is 5% of: the last ceiling, or `--rate` before any.
    step_base: u32,
    /// The limiter's burst: [`SLACK`] until the first 429, then 1. A strict limiter (burst 1) answers the second of
    /// two requests sent back to back (a late wake-up using the slack cell) with a 429 and a hold.
    burst: u32,
    /// Rate changes, oldest first, pruned to the settle window (plus the one in force at its start).
    history: VecDeque<(Instant, u32)>,
    /// Requests sent and 429s met per whole second since the pace was made, pruned to the settle window.
    seconds: VecDeque<Second>,
    /// The answers to the requests sent since the rate last changed.
    running: Refine,
    /// The answers to the requests sent before the last cut and the rate they were sent at, tallied until its hold
    /// ends (then the cut is refined).
    refine: Option<(Refine, u32)>,
    /// Since when the rate has been below `--rate` (after 429s), and how long it was before.
    below_since: Option<Instant>,
    below: Duration,
}

impl RateState {
    /// An answer to a request sent at `issued_at`, `accepted` (not a 429), tallied where it was sent.
    fn tally(&mut self, issued_at: Instant, accepted: bool) {
        self.running.tally(issued_at, accepted);
        if let Some((refine, _)) = self.refine.as_mut() {
            refine.tally(issued_at, accepted);
        }
    }
}

/// The requests sent in `from..=until` (from a change of the rate to the next) and their answers: the send times of
/// the first one refused (429) and of the accepted ones after it.
#[derive(Clone, Copy, Debug)]
struct Refine {
    from: Instant,
    until: Option<Instant>,
    first_refused: Option<Instant>,
    /// Accepted after the first refused one, and the first and last of them.
    accepted: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    /// Every answer, and every accepted one.
    all: (u64, u64),
}

impl Refine {
    fn new(from: Instant) -> Refine {
        Refine { from, until: None, first_refused: None, accepted: 0, first: None, last: None, all: (0, 0) }
    }

    fn tally(&mut self, issued_at: Instant, accepted: bool) {
        if issued_at < self.from || self.until.is_some_and(|until| issued_at > until) {
            return;
        }
        self.all = (self.all.0 + 1, self.all.1 + u64::from(accepted));
        if !accepted {
            self.first_refused = Some(self.first_refused.map_or(issued_at, |first| first.min(issued_at)));
            return;
        }
        // Accepted before any refusal was answered, or sent before the first refused one: its bucket may have held
        // a saved-up burst.
        if self.first_refused.is_none_or(|refused| issued_at <= refused) {
            return;
        }
        self.accepted += 1;
        self.first = Some(self.first.map_or(issued_at, |first| first.min(issued_at)));
        self.last = Some(self.last.map_or(issued_at, |last| last.max(issued_at)));
    }

    /// One answer refused (the 429 just tallied) and at least `at_least` accepted: a 429 in passing (see
    /// [`PASSING_SECONDS`]).
    fn refused_once_after(&self, at_least: u64) -> bool {
        let (answered, accepted) = self.all;
        answered == accepted + 1 && accepted >= at_least
    }

    /// The rate the service accepted requests at once it refused one, requests a second; `None` with too few.
    ///
    /// Only the accepted requests sent after the first refused one count (and answered after it: answers come
    /// nearly in the order they were sent): by then the service's bucket is empty, so they are spaced by its rate and
    /// not by a burst it had saved up. The rate is their count less one over the time from the first to the last
    /// (missing the earliest of them changes little): with requests sent far faster than the limit, a strict
    /// limiter (burst 1) accepts one every `1/limit` seconds; with requests sent below the limit, one refused in
    /// passing (a late one), it accepts them at the rate they are sent.
    ///
    /// With fewer than [`REFINE_SAMPLES`] of those (a request refused in passing, few sent behind it before its 429
    /// came back), the share of all the answers accepted, times the rate they were sent at (`rate`), when there are
    /// [`REFINE_ANSWERS`] of them: a lone 429 in a second of accepted requests does not halve the rate.
    ///
    /// The same share when the service refused at most one answer in [`PASSING_SHARE`]: it bore the rate but for a
    /// request that reached it late, and the spacing of the few requests in flight behind that one (three or four at
    /// 40 ms) measures their wake-ups, not the limit: it read 85 for a service that had just accepted 193 of 194
    /// requests at 95 a second, and each such 429 lowered the ceiling by a tenth.
    fn accepted_rate(&self, rate: u32) -> Option<u32> {
        let (answered, accepted) = self.all;
        let passing = (answered - accepted) * PASSING_SHARE <= answered;
        let measured = self.first.zip(self.last).filter(|_| self.accepted >= REFINE_SAMPLES && !passing);
        let Some((first, last)) = measured else {
            let share = (answered >= REFINE_ANSWERS && accepted > 0).then(|| accepted as f64 / answered as f64)?;
            return Some(((f64::from(rate) * share).floor() as u32).max(1));
        };
        let span = last.duration_since(first).as_nanos();
        let rate = u128::from(self.accepted - 1) * 1_000_000_000 / span.max(1);
        (span > 0).then(|| u32::try_from(rate).unwrap_or(u32::MAX).max(1))
    }
}

/// What one second of a job sent and met.
#[derive(Clone, Copy, Debug, Default)]
struct Second {
    index: u64,
    sent: u64,
    throttled: u64,
}

/// The pace shared by all workers (`Arc<Pace>`).
pub struct Pace {
    config: PaceConfig,
    clock: TokioClock,
    slots: Arc<InFlight>,
    state: Mutex<RateState>,
    created: Instant,
    requests_sent: AtomicU64,
    throttled: AtomicU64,
}

impl std::fmt::Debug for Pace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pace")
            .field("config", &self.config)
            .field("current_rate", &self.current_rate())
            .field("requests_sent", &self.requests_sent())
            .field("throttled", &self.throttled())
            .finish()
    }
}

impl Pace {
    pub fn new(config: PaceConfig) -> Pace {
        let now = Instant::now();
        let clock = TokioClock { origin: now };
        let rate = config.rate.get();
        let state = RateState {
            rate,
            limiter: limiter(&clock, rate, SLACK, SLACK - 1),
            hold_until: now,
            restart_after_hold: false,
            last_cut: None,
            climb_from: now,
            ceiling: None,
            step_base: rate,
            burst: SLACK,
            history: VecDeque::from([(now, rate)]),
            seconds: VecDeque::new(),
            running: Refine::new(now),
            refine: None,
            below_since: None,
            below: Duration::ZERO,
        };
        Pace {
            slots: Arc::new(InFlight::new(config.concurrency.get())),
            config,
            clock,
            state: Mutex::new(state),
            created: now,
            requests_sent: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &PaceConfig {
        &self.config
    }

    /// Waits for the job-wide hold to pass, then for a concurrency slot, then for a rate token.
    ///
    /// The permit frees its slot when dropped: keep it while the request and its answer are in flight, drop it
    /// before any backoff sleep.
    pub async fn acquire(&self) -> Permit {
        self.wait_for_hold().await;
        let mut slot = self.slots.acquire().await;
        loop {
            let (hold_until, limiter) = {
                let mut state = self.lock();
                let now = Instant::now();
                self.climb(&mut state, now);
                if state.restart_after_hold && state.hold_until <= now {
                    state.restart_after_hold = false;
                    self.refine_cut(&mut state, now);
                    state.limiter = limiter(&self.clock, state.rate, state.burst, state.burst - 1);
                }
                (state.hold_until, state.limiter.clone())
            };
            if hold_until > Instant::now() {
                tokio::time::sleep_until(hold_until).await;
                continue;
            }
            match limiter.check() {
                Ok(()) => break,
                Err(not_until) => tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await,
            }
        }
        slot.sent();
        Permit { _slot: slot, issued_at: Instant::now() }
    }

    async fn wait_for_hold(&self) {
        loop {
            let hold_until = self.lock().hold_until;
            if hold_until <= Instant::now() {
                return;
            }
            tokio::time::sleep_until(hold_until).await;
        }
    }

    /// A request sent at `issued_at` met a 429: hold every worker for `retry_after` (capped at
    /// [`MAX_RETRY_AFTER`]), lower the ceiling to the rate that met it, and cut the rate (see [`cut`]) unless it was
    /// already cut after that request went out, so a burst of 429s from requests in flight together cuts it once.
    pub fn on_throttled(&self, issued_at: Instant, retry_after: Duration) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut state = self.lock();
        self.second(&mut state, now).throttled += 1;
        state.tally(issued_at, false);
        self.climb(&mut state, now);
        let hold_until = state.hold_until.max(now + retry_after.min(MAX_RETRY_AFTER));
        state.hold_until = hold_until;
        state.restart_after_hold = true;
        let cut_since = state.last_cut.is_some_and(|cut| issued_at <= cut);
        if !cut_since {
            state.burst = 1;
            if state.running.refused_once_after(u64::from(state.rate) * PASSING_SECONDS) {
                state.running = Refine::new(now);
                tracing::info!(rate = state.rate, "throttled in passing: holding at the same rate");
            } else {
                let met = state.rate;
                let near = active(state.ceiling, now).is_some();
                lower_ceiling(&mut state, now, met);
                let rate = cut(met, near);
                state.running.until = Some(now);
                state.refine = Some((state.running, met));
                self.set_rate(&mut state, now, rate);
                tracing::info!(
                    rate,
                    retry_after_secs = retry_after.as_secs_f64(),
                    "throttled: holding and slowing down"
                );
            }
            state.last_cut = Some(now);
        }
        state.climb_from = state.hold_until;
    }

    /// The hold after a cut has ended: the requests sent before it have all been answered. When the service
    /// accepted them at a measurable rate (see [`Refine::accepted_rate`]), the ceiling goes down to that rate and the
    /// rate to [`CUT_SHARE`] of it (up or down from the cut: the measure knows better than halving); the climb goes
    /// on from there.
    fn refine_cut(&self, state: &mut RateState, now: Instant) {
        let Some((refine, met)) = state.refine.take() else { return };
        let Some(accepted) = refine.accepted_rate(met) else { return };
        let accepted = accepted.min(met);
        lower_ceiling(state, now, accepted);
        let rate = share(accepted, CUT_SHARE);
        if rate != state.rate {
            tracing::info!(rate, accepted, "throttled: going to the rate the service accepted");
            self.set_rate(state, now, rate);
        }
    }

    /// An answer (any status, a 429 too) to a request sent at `issued_at`: its time moves the in-flight bound, and a
    /// cut waiting for its hold to end tallies it.
    pub fn on_answer(&self, issued_at: Instant, throttled: bool) {
        let now = Instant::now();
        let rate = {
            let mut state = self.lock();
            if !throttled {
                state.tally(issued_at, true);
            }
            state.rate
        };
        self.slots.on_answer(now.saturating_duration_since(issued_at), rate);
    }

    /// The rate now, requests per second.
    pub fn current_rate(&self) -> u32 {
        let mut state = self.lock();
        self.climb(&mut state, Instant::now());
        state.rate
    }

    /// The pace the job settled at, for the summary: the time-weighted mean of the rate over the last minute (or
    /// since the pace was made, when that is shorter). After a steady run it is the configured rate. After 429s it
    /// tells what the API bore, so the next job can start there: the requests it answered without a 429, per
    /// second of the same window, when that is lower than the rate allowed (a job cut from 2000/s toward a limiter
    /// of 1/s was still allowed hundreds a second on average, and said so).
    pub fn settled_rate(&self) -> f64 {
        let now = Instant::now();
        let mut state = self.lock();
        self.climb(&mut state, now);
        prune_history(&mut state.history, now);
        let start = self.created.max(now.checked_sub(SETTLE_WINDOW).unwrap_or(self.created));
        let span = now.saturating_duration_since(start).as_secs_f64();
        if span <= 0.0 {
            return f64::from(state.rate);
        }
        let allowed = weighted_rate(&state.history, start, now, span);
        let first = self.second_index(start);
        let window = state.seconds.iter().filter(|second| second.index >= first);
        let (sent, throttled) =
            window.fold((0, 0), |(sent, throttled), second| (sent + second.sent, throttled + second.throttled));
        if throttled == 0 || sent == 0 {
            return allowed;
        }
        // Over at least a second: a burst of answers in the first milliseconds is no rate.
        allowed.min(sent.saturating_sub(throttled) as f64 / span.max(1.0))
    }

    /// Counts a request that left this machine (the caller knows: a permit whose request could not connect, or
    /// that this machine could not make, sent nothing).
    pub fn count_sent(&self) {
        self.requests_sent.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut state = self.lock();
        self.second(&mut state, now).sent += 1;
    }

    fn second_index(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.created).as_secs()
    }

    /// The count of the second `now` falls in, the window pruned.
    fn second<'a>(&self, state: &'a mut RateState, now: Instant) -> &'a mut Second {
        let index = self.second_index(now);
        let oldest = index.saturating_sub(SETTLE_WINDOW.as_secs() + 1);
        while state.seconds.front().is_some_and(|second| second.index < oldest) {
            state.seconds.pop_front();
        }
        if state.seconds.back().is_none_or(|second| second.index != index) {
            state.seconds.push_back(Second { index, ..Second::default() });
        }
        // Invariant: pushed just above when the back was another second.
        state.seconds.back_mut().expect("the second was just pushed")
    }

    /// Requests sent so far ([`Pace::count_sent`]).
    pub fn requests_sent(&self) -> u64 {
        self.requests_sent.load(Ordering::Relaxed)
    }

    /// 429s met so far.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// The backoff before retry number `attempt` (1 for the first retry): "equal jitter", a random duration between
    /// half and all of `min(backoff_max, backoff_base * 2^(attempt-1))`, so it is never zero and never above the cap.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let jitter = rand::rng().random_range(0.0..=1.0);
        backoff_delay(self.config.backoff_base, self.config.backoff_max, attempt, jitter)
    }

    /// The wait before retry number `attempt` after a transient failure: the server's `Retry-After` when it sent
    /// one (capped at [`MAX_RETRY_AFTER`]), else [`Pace::backoff`].
    pub fn retry_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(wait) => wait.min(MAX_RETRY_AFTER),
            None => self.backoff(attempt),
        }
    }

    /// The answers' latency as measured now (a moving measure; `None` before the first answer).
    pub fn latency(&self) -> Option<Duration> {
        self.slots.latency()
    }

    /// Requests in flight now (slots taken).
    pub fn in_flight(&self) -> usize {
        self.slots.in_flight()
    }

    /// The in-flight bound now (`--concurrency` until the first answer, then following the latency).
    pub fn in_flight_limit(&self) -> usize {
        self.slots.limit()
    }

    /// The pace this job reached so far and what held it back ([`Reached`]); `outage` is the time the service was
    /// down (the client's outage detector knows it).
    pub fn reached(&self, outage: Duration) -> Reached {
        let now = Instant::now();
        let mut state = self.lock();
        let seconds = now.saturating_duration_since(self.created).as_secs_f64();
        let first = self.second_index(now).saturating_sub(SETTLE_WINDOW.as_secs() - 1);
        let last_minute: u64 =
            state.seconds.iter().filter(|second| second.index >= first).map(|second| second.sent).sum();
        self.climb(&mut state, now);
        let below =
            state.below + state.below_since.map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        Reached {
            rate: self.config.rate.get(),
            seconds,
            requests: self.requests_sent(),
            last_minute_rate: last_minute as f64 / seconds.clamp(f64::MIN_POSITIVE, SETTLE_WINDOW.as_secs_f64()),
            throttled_secs: below.as_secs_f64(),
            latency_secs: self.slots.seconds_at_max() as f64,
            outage_secs: outage.as_secs_f64(),
            concurrency: self.slots.max() as u64,
            peak_in_flight: self.slots.peak() as u64,
        }
    }

    fn lock(&self) -> MutexGuard<'_, RateState> {
        // A panic while holding the lock leaves consistent numbers behind: keep going with them.
        crate::sync::lock(&self.state)
    }

    /// Additive increase: one step (5% of the last ceiling, or of `--rate` before any 429; at least 1/s) per whole
    /// second without a 429, up to [`CAP_SHARE`] of the ceiling while there is one (see [`Pace::cap`]), else
    /// `--rate`.
    fn climb(&self, state: &mut RateState, now: Instant) {
        let rate = self.config.rate.get();
        if let Some((until, ceiling)) = state.ceiling {
            let cap = rate.min(self.cap(state, now, ceiling));
            if now < until {
                self.climb_until(state, now, cap);
                return;
            }
            // The capped stretch first (nothing may have asked for the rate during it), then the climb starts
            // again when the cap ends, one step a second: not all the steps of the capped stretch at once.
            self.climb_until(state, until, cap);
            state.ceiling = None;
            state.climb_from = state.climb_from.max(until);
        }
        self.climb_until(state, now, rate);
    }

    /// The top of the climb under `ceiling`: [`CAP_SHARE`] of it as requests actually sent. After a 429 the limiter
    /// allows no burst, so a request woken late (tokio's timer wakes on whole milliseconds; a busy machine later
    /// still) pushes the schedule back and the requests go out slower than the rate asked for: 78 a second at 95
    /// asked on a loaded machine. When the last whole second sent at least half the rate but less than it, the
    /// rate asked for is raised by that shortfall, never above the ceiling itself (the schedule never spaces two
    /// requests by less than `1/rate`, so the service never sees them faster than the ceiling).
    fn cap(&self, state: &RateState, now: Instant, ceiling: u32) -> u32 {
        let cap = share(ceiling, CAP_SHARE);
        let last = self.second_index(now).checked_sub(1);
        let sent = state.seconds.iter().rev().find(|second| Some(second.index) == last).map_or(0, |second| second.sent);
        let rate = u64::from(state.rate);
        if sent * 2 < rate || sent >= rate {
            return cap;
        }
        let raised = u64::from(cap) * rate / sent.max(1);
        u32::try_from(raised).unwrap_or(u32::MAX).clamp(cap, ceiling)
    }

    /// The steps of the whole seconds from `climb_from` to `now`, up to `top`.
    fn climb_until(&self, state: &mut RateState, now: Instant, top: u32) {
        if state.rate >= top || now <= state.climb_from {
            return;
        }
        let step = (state.step_base / 20).max(1);
        let seconds = now.duration_since(state.climb_from).as_secs();
        let mut rate = state.rate;
        let mut at = state.climb_from;
        for _ in 0..seconds {
            at += Duration::from_secs(1);
            rate = (rate + step).min(top);
            state.history.push_back((at, rate));
            if rate == top {
                break;
            }
        }
        state.climb_from = at;
        if rate != state.rate {
            self.note_below(state, at, rate);
            state.rate = rate;
            state.running = Refine::new(at);
            self.slots.on_rate(rate);
            state.limiter = fresh_limiter(&self.clock, rate, state.burst);
        }
    }

    fn set_rate(&self, state: &mut RateState, now: Instant, rate: u32) {
        self.note_below(state, now, rate);
        state.rate = rate;
        state.running = Refine::new(now);
        self.slots.on_rate(rate);
        state.limiter = fresh_limiter(&self.clock, rate, state.burst);
        state.history.push_back((now, rate));
        prune_history(&mut state.history, now);
    }

    /// The rate goes to `rate` at `at`: the time below `--rate` starts or ends.
    fn note_below(&self, state: &mut RateState, at: Instant, rate: u32) {
        let below = rate < self.config.rate.get();
        match state.below_since {
            None if below => state.below_since = Some(at),
            Some(since) if !below => {
                state.below += at.saturating_duration_since(since);
                state.below_since = None;
            }
            _ => {}
        }
    }
}

/// A limiter at `rate` with `burst` cells, all taken, so that swapping it in lets no extra request through.
fn fresh_limiter(clock: &TokioClock, rate: u32, burst: u32) -> Arc<Limiter> {
    limiter(clock, rate, burst, burst)
}

/// The time-weighted mean of the rate from `start` to `now` (`span` seconds), from its history of changes.
fn weighted_rate(history: &VecDeque<(Instant, u32)>, start: Instant, now: Instant, span: f64) -> f64 {
    let mut total = 0.0;
    for (index, (since, rate)) in history.iter().enumerate() {
        let until = history.get(index + 1).map_or(now, |next| next.0);
        let from = (*since).max(start);
        total += f64::from(*rate) * until.saturating_duration_since(from).as_secs_f64();
    }
    total / span
}

/// A limiter at `rate` with `burst` cells, `taken` of them already taken (the first request after it goes at once
/// when fewer than `burst` are).
fn limiter(clock: &TokioClock, rate: u32, burst: u32, taken: u32) -> Arc<Limiter> {
    let limiter = Limiter::direct_with_clock(quota(rate, burst), clock.clone());
    for _ in 0..taken {
        // A fresh limiter has all its cells: each of these is known to be Ok.
        let _ = limiter.check();
    }
    Arc::new(limiter)
}

/// One request every `1/rate` seconds with `burst` cells of burst ([`SLACK`], or 1 after a 429): a smooth schedule,
/// as the docs ask ("avoid bursts"), that a late wake-up does not push back.
fn quota(rate: u32, burst: u32) -> Quota {
    let period = Duration::from_secs(1) / rate.max(1);
    // Invariant: 1 s / rate with rate <= u32::MAX is at least 1 ns, so the period is never zero.
    let quota = Quota::with_period(period).expect("a rate's period is never zero");
    quota.allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

/// The rate after a 429 met at `rate`, until its hold ends (when the rate the service accepted refines it): with a
/// ceiling in force (`near`: a 429 in the last minute, the limit is close), [`CUT_SHARE`] of it; else half (floor
/// 1/s), as nothing says yet how far above the limit the rate was.
fn cut(rate: u32, near: bool) -> u32 {
    if near { share(rate, CUT_SHARE) } else { (rate / 2).max(1) }
}

/// `rate` times `numerator / denominator`, rounded down, at least 1.
fn share(rate: u32, (numerator, denominator): (u32, u32)) -> u32 {
    let scaled = u64::from(rate) * u64::from(numerator) / u64::from(denominator);
    u32::try_from(scaled).unwrap_or(u32::MAX).max(1)
}

/// The ceiling in force at `now`, if any.
fn active(ceiling: Option<(Instant, u32)>, now: Instant) -> Option<u32> {
    ceiling.filter(|(until, _)| now < *until).map(|(_, rate)| rate)
}

/// `rate` met a 429 (or was all the service accepted): the ceiling goes down to it, if it is not lower already, and
/// holds for the settle window from now; the climb's steps are 5% of it.
fn lower_ceiling(state: &mut RateState, now: Instant, rate: u32) {
    let ceiling = active(state.ceiling, now).map_or(rate, |ceiling| ceiling.min(rate));
    state.ceiling = Some((now + SETTLE_WINDOW, ceiling));
    state.step_base = ceiling;
}

/// Drops the changes that ended before the settle window, keeping the one in force at its start.
fn prune_history(history: &mut VecDeque<(Instant, u32)>, now: Instant) {
    let Some(start) = now.checked_sub(SETTLE_WINDOW) else {
        return;
    };
    while history.len() > 1 && history[1].0 <= start {
        history.pop_front();
    }
}

/// `min(max, base * 2^(attempt-1))` scaled into `[half, all]` of itself by `jitter` in `0.0..=1.0`.
pub(crate) fn backoff_delay(base: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    let cap = base.saturating_mul(1u32 << doublings).min(max);
    cap / 2 + (cap / 2).mul_f64(jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests;
