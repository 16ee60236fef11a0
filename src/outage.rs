//! A service-wide outage: when every request fails transiently for a stretch, the job stops burning each row's
//! attempts and sends one slow probe at a time instead, at a growing interval, until the service answers again.
//! Rows do not fail because the service was down for ten minutes.
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
    next_probe: Instant,
    interval: Duration,
}

/// The outage detector of a run.
#[derive(Debug)]
pub struct Outage {
    state: Mutex<State>,
}

impl Default for Outage {
    fn default() -> Self {
        let state = State {
            streak: 0,
            streak_since: None,
            first_path: None,
            several_paths: false,
            down_since: None,
            next_probe: Instant::now(),
            interval: FIRST_PROBE_INTERVAL,
        };
        Outage { state: Mutex::new(state) }
    }
}

impl Outage {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A transient failure (5xx, 408, timeout, dropped connection). Returns whether the service is now judged
    /// down: then the failure does not count against the call's attempts.
    pub fn on_transient(&self, path: &str) -> bool {
        let mut state = self.lock();
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
            tracing::warn!(failures = state.streak, "the service fails every request: probing slowly until it answers");
        }
        // Past the longest outage worth waiting for, attempts count again and rows fail.
        state.down_since.is_some_and(|since| since.elapsed() < MAX_OUTAGE)
    }

    /// Any answer that is not a transient failure, to a request sent at `sent`: the service is up, unless the request
    /// left before the failures began (a slow answer from before an outage proves nothing about it).
    pub fn on_answer(&self, sent: Instant) {
        let mut state = self.lock();
        if state.streak_since.is_some_and(|since| sent < since) {
            return;
        }
        state.streak = 0;
        state.streak_since = None;
        state.first_path = None;
        state.several_paths = false;
        if let Some(since) = state.down_since.take() {
            tracing::warn!(down_secs = since.elapsed().as_secs(), "the service answers again: back to the normal pace");
        }
    }

    /// Waits for this call's turn: at once while the service is up; during an outage, one probe at a time at a
    /// growing interval.
    pub async fn wait_turn(&self) {
        loop {
            let wait = {
                let mut state = self.lock();
                if state.down_since.is_none() {
                    return;
                }
                let now = Instant::now();
                if now >= state.next_probe {
                    state.next_probe = now + state.interval;
                    state.interval = (state.interval * 2).min(MAX_PROBE_INTERVAL);
                    return;
                }
                state.next_probe - now
            };
            tokio::time::sleep(wait).await;
        }
    }

    pub fn is_down(&self) -> bool {
        self.lock().down_since.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_streak_of_failures_starts_slow_probes_and_an_answer_ends_them() {
        let outage = Outage::default();
        assert!(!outage.on_transient("/a") && !outage.on_transient("/b"));
        assert!(outage.on_transient("/c"));
        let start = Instant::now();
        outage.wait_turn().await;
        assert_eq!(start.elapsed(), FIRST_PROBE_INTERVAL);
        outage.wait_turn().await;
        assert_eq!(start.elapsed(), FIRST_PROBE_INTERVAL * 2);
        outage.wait_turn().await;
        assert_eq!(start.elapsed(), FIRST_PROBE_INTERVAL * 4, "the interval doubles");
        outage.on_answer(Instant::now());
        assert!(!outage.is_down());
        let now = Instant::now();
        outage.wait_turn().await;
        assert_eq!(now.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_in_between_resets_the_streak() {
        let outage = Outage::default();
        let before = Instant::now();
        tokio::time::advance(Duration::from_millis(10)).await;
        outage.on_transient("/a");
        outage.on_transient("/b");
        outage.on_answer(before);
        assert!(outage.on_transient("/c"), "an answer to a request sent before the failures does not end them");
        let fresh = Outage::default();
        fresh.on_transient("/a");
        fresh.on_transient("/b");
        fresh.on_answer(Instant::now());
        assert!(!fresh.on_transient("/c"));
    }

    #[tokio::test(start_paused = true)]
    async fn one_resource_failing_is_no_outage_and_an_outage_has_an_end() {
        let outage = Outage::default();
        for _ in 0..20 {
            assert!(!outage.on_transient("/customers/one"), "one customer failing is that row's failure");
        }
        assert!(outage.on_transient("/customers/two"));
        tokio::time::advance(MAX_OUTAGE).await;
        assert!(!outage.on_transient("/customers/three"), "past the longest outage, failures count again");
    }
}
