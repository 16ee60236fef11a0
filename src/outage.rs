//! A service-wide outage: when every request fails transiently for a stretch, the job stops burning each row's
//! attempts and sends one slow probe at a time instead, at a growing interval, until the service answers again.
//! Rows do not fail because the service was down for ten minutes.
//!
//! A job that has never had one answer from the service, not even a 5xx (a base URL where nothing listens, a wrong
//! host, a firewall), gives up after [`FIRST_ANSWER_WITHIN`] instead: it is far likelier a mistake than an outage
//! that began with the job.
//!
//! Shared by every call of a run (held by the client). Times on tokio's clock, so tests can pause it.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Transient failures in a row, across all calls, that mean the service is down rather than a row unlucky: three,
/// about more than one resource (one customer whose every request fails is that row's failure, not an outage).
/// Short on purpose: a call about to use up its attempts must see the outage first. A false alarm costs one probe
/// interval, the first success ends it.
pub const STREAK: u32 = 3;
/// How long an outage may last before rows fail after all: waiting for ever on a service that never comes back
/// (or on one customer whose every request fails) helps nobody. Rows do not fail for an outage of ten minutes.
pub const MAX_OUTAGE: Duration = Duration::from_secs(20 * 60);
/// How long a job that has never had an answer from the service keeps trying before it gives up.
pub const FIRST_ANSWER_WITHIN: Duration = Duration::from_secs(120);
/// The first interval between probes; it doubles up to [`MAX_PROBE_INTERVAL`].
pub const FIRST_PROBE_INTERVAL: Duration = Duration::from_secs(1);
pub const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct State {
    streak: u32,
    /// When the streak's first failure came: an answer to a request sent before it says nothing of the service now.
    streak_since: Option<Instant>,
    /// The resource of the streak's first failure, and whether another resource failed since.
    first_path: Option<String>,
    several_paths: bool,
    /// When the service was judged down; `None` while it answers.
    down_since: Option<Instant>,
    /// The time of the outages that have ended.
    down_before: Duration,
    next_probe: Instant,
    interval: Duration,
    /// Whether the service ever answered in this run.
    answered: bool,
    /// When the first failure came, while the service has never answered.
    failing_since: Option<Instant>,
    /// Why the run gave up on a service that never answered; every later call fails at once with it.
    gave_up: Option<String>,
}

/// What a transient failure means for the call that met it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judged {
    /// The row's own bad luck: the attempt counts.
    Row,
    /// The service is down: the attempt does not count, the slow probe paces the retries.
    Down,
    /// The service has never answered for longer than the run waits: stop, with these words.
    GiveUp(String),
}

/// The outage detector of a run.
#[derive(Debug)]
pub struct Outage {
    state: Mutex<State>,
    first_answer_within: Duration,
    /// Wakes the calls waiting for a probe's turn once the run gives up, so the job stops at once.
    given_up: tokio::sync::Notify,
}

impl Default for Outage {
    fn default() -> Self {
        Outage::new(FIRST_ANSWER_WITHIN)
    }
}

impl Outage {
    /// A detector that gives up on a service that has not answered once within `first_answer_within`.
    pub fn new(first_answer_within: Duration) -> Outage {
        let state = State {
            streak: 0,
            streak_since: None,
            first_path: None,
            several_paths: false,
            down_since: None,
            down_before: Duration::ZERO,
            next_probe: Instant::now(),
            interval: FIRST_PROBE_INTERVAL,
            answered: false,
            failing_since: None,
            gave_up: None,
        };
        Outage { state: Mutex::new(state), first_answer_within, given_up: tokio::sync::Notify::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    /// A transient failure (5xx, 408, timeout, dropped connection, no connection), described by `detail`. Says
    /// whether the service is now judged down (then the failure does not count against the call's attempts), or
    /// has never answered for too long.
    pub fn on_transient(&self, path: &str, detail: &str) -> Judged {
        let mut state = self.lock();
        if let Some(words) = &state.gave_up {
            return Judged::GiveUp(words.clone());
        }
        if !state.answered {
            if state.failing_since.is_none() {
                // The first word of a job that cannot reach the service names why, before any outage is judged.
                tracing::warn!("no answer from the service yet: {detail}");
            }
            let since = *state.failing_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= self.first_answer_within {
                let words = format!(
                    "no answer from the service in {}s since the job began (last: {detail}): check --base-url",
                    since.elapsed().as_secs()
                );
                tracing::warn!("{words}");
                state.gave_up = Some(words.clone());
                self.given_up.notify_waiters();
                return Judged::GiveUp(words);
            }
        }
        state.streak += 1;
        state.streak_since.get_or_insert_with(Instant::now);
        match &state.first_path {
            None => state.first_path = Some(path.to_string()),
            Some(first) if first != path => state.several_paths = true,
            Some(_) => {}
        }
        if state.down_since.is_none() && state.streak >= STREAK && state.several_paths {
            let now = Instant::now();
            state.down_since = Some(now);
            state.next_probe = now + FIRST_PROBE_INTERVAL;
            state.interval = FIRST_PROBE_INTERVAL;
            tracing::warn!(
                failures = state.streak,
                "the service fails every request (last: {detail}): probing slowly until it answers"
            );
        }
        // Past the longest outage worth waiting for, attempts count again and rows fail.
        match state.down_since.is_some_and(|since| since.elapsed() < MAX_OUTAGE) {
            true => Judged::Down,
            false => Judged::Row,
        }
    }

    /// Any HTTP answer at all, a 5xx included: the service (or something in front of it) is there, so a failure to
    /// come is an outage, not a base URL where nothing listens.
    pub fn on_response(&self) {
        let mut state = self.lock();
        state.answered = true;
        state.failing_since = None;
    }

    /// Any answer that is not a transient failure, to a request sent at `sent`: the service is up, unless the request
    /// left before the failures began (a slow answer from before an outage proves nothing about it).
    pub fn on_answer(&self, sent: Instant) {
        let mut state = self.lock();
        state.answered = true;
        state.failing_since = None;
        if state.streak_since.is_some_and(|since| sent < since) {
            return;
        }
        state.streak = 0;
        state.streak_since = None;
        state.first_path = None;
        state.several_paths = false;
        if let Some(since) = state.down_since.take() {
            state.down_before += since.elapsed();
            tracing::warn!(down_secs = since.elapsed().as_secs(), "the service answers again: back to the normal pace");
        }
    }

    /// Waits for this call's turn: at once while the service is up; during an outage, one probe at a time at a
    /// growing interval. `Err` with the words once the run gave up on a service that never answered.
    pub async fn wait_turn(&self) -> Result<(), String> {
        loop {
            // Registered before the state is read, so a give-up in between still wakes this call.
            let given_up = self.given_up.notified();
            tokio::pin!(given_up);
            given_up.as_mut().enable();
            let wait = {
                let mut state = self.lock();
                if let Some(words) = &state.gave_up {
                    return Err(words.clone());
                }
                if state.down_since.is_none() {
                    return Ok(());
                }
                let now = Instant::now();
                if now >= state.next_probe {
                    state.next_probe = now + state.interval;
                    state.interval = (state.interval * 2).min(MAX_PROBE_INTERVAL);
                    return Ok(());
                }
                state.next_probe - now
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut given_up => {}
            }
        }
    }

    pub fn is_down(&self) -> bool {
        self.lock().down_since.is_some()
    }

    /// How long the service has been down in this run, all outages together (the one going on included).
    pub fn time_down(&self) -> Duration {
        let state = self.lock();
        state.down_before + state.down_since.map_or(Duration::ZERO, |since| since.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_streak_of_failures_starts_slow_probes_and_an_answer_ends_them() {
        let outage = Outage::default();
        assert!(outage.on_transient("/a", "x") == Judged::Row && outage.on_transient("/b", "x") == Judged::Row);
        assert_eq!(outage.on_transient("/c", "x"), Judged::Down);
        let start = Instant::now();
        outage.wait_turn().await.unwrap();
        assert_eq!(start.elapsed(), FIRST_PROBE_INTERVAL);
        outage.wait_turn().await.unwrap();
        assert_eq!(start.elapsed(), FIRST_PROBE_INTERVAL * 2);
        outage.wait_turn().await.unwrap();
        assert_eq!(start.elapsed(), FIRST_PROBE_INTERVAL * 4, "the interval doubles");
        assert_eq!(outage.time_down(), FIRST_PROBE_INTERVAL * 4, "the outage going on counts");
        outage.on_answer(Instant::now());
        assert!(!outage.is_down());
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(outage.time_down(), FIRST_PROBE_INTERVAL * 4, "an ended outage counts once");
        let now = Instant::now();
        outage.wait_turn().await.unwrap();
        assert_eq!(now.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_in_between_resets_the_streak() {
        let outage = Outage::default();
        let before = Instant::now();
        tokio::time::advance(Duration::from_millis(10)).await;
        outage.on_transient("/a", "x");
        outage.on_transient("/b", "x");
        outage.on_answer(before);
        let judged = outage.on_transient("/c", "x");
        assert_eq!(judged, Judged::Down, "an answer to a request sent before the failures does not end them");
        let fresh = Outage::default();
        fresh.on_transient("/a", "x");
        fresh.on_transient("/b", "x");
        fresh.on_answer(Instant::now());
        assert_eq!(fresh.on_transient("/c", "x"), Judged::Row);
    }

    #[tokio::test(start_paused = true)]
    async fn one_resource_failing_is_no_outage_and_an_outage_has_an_end() {
        let outage = Outage::default();
        outage.on_answer(Instant::now());
        for _ in 0..20 {
            let judged = outage.on_transient("/customers/one", "x");
            assert_eq!(judged, Judged::Row, "one customer failing is that row's failure");
        }
        assert_eq!(outage.on_transient("/customers/two", "x"), Judged::Down);
        tokio::time::advance(MAX_OUTAGE).await;
        let judged = outage.on_transient("/customers/three", "x");
        assert_eq!(judged, Judged::Row, "past the longest outage, failures count again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_service_that_never_answered_is_given_up_on_and_one_that_did_is_not() {
        let outage = Outage::new(Duration::from_secs(10));
        assert_eq!(outage.on_transient("/a", "refused"), Judged::Row);
        tokio::time::advance(Duration::from_secs(10)).await;
        let Judged::GiveUp(words) = outage.on_transient("/b", "refused") else { panic!("not given up") };
        assert!(words.contains("no answer from the service") && words.contains("refused"), "{words}");
        assert_eq!(outage.wait_turn().await, Err(words), "every later call stops at once");
        let answered = Outage::new(Duration::from_secs(10));
        answered.on_answer(Instant::now());
        answered.on_transient("/a", "refused");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(!matches!(answered.on_transient("/b", "refused"), Judged::GiveUp(_)));
        assert!(answered.wait_turn().await.is_ok());
        let only_5xx = Outage::new(Duration::from_secs(10));
        only_5xx.on_response();
        tokio::time::advance(Duration::from_secs(60)).await;
        let judged = only_5xx.on_transient("/a", "http 503");
        assert!(!matches!(judged, Judged::GiveUp(_)), "a 503 is an answer: an outage, not a wrong base url");
    }
}
