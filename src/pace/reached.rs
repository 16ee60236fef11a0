//! The pace a job reached, measured (requests sent per second, over the job and over its last minute), and when it
//! ran below `--rate`, what held it back: 429 holds, the latency with the in-flight bound at `--concurrency`, or an
//! outage. Plain numbers, kept in the state file (`state::pace`) and said by the end-of-job line, `status`, the
//! summary JSON and its page. Pure: no clock, no I/O.

use serde::{Deserialize, Serialize};

/// Below this share of `--rate`, a job says what held it back.
pub const BELOW: f64 = 0.9;

/// What one job (every run of it, added up) reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Reached {
    /// `--rate` (of the last run).
    pub rate: u32,
    /// The runs' time, from the first request's turn to the end, in seconds.
    pub seconds: f64,
    /// Requests sent.
    pub requests: u64,
    /// Requests sent per second over the last minute of the last run (or its whole time, when shorter).
    pub last_minute_rate: f64,
    /// Seconds the pace was below `--rate` after 429s (their holds included).
    pub throttled_secs: f64,
    /// Seconds in which the rate times the answers' latency was `--concurrency` or more (the rate out of reach).
    pub latency_secs: f64,
    /// Seconds the service was down (the outage probe's pace).
    pub outage_secs: f64,
    /// `--concurrency` (of the last run).
    pub concurrency: u64,
    /// The most requests in flight at once.
    pub peak_in_flight: u64,
}

/// What held a job below its `--rate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldBack {
    /// The service answered slowly and `--concurrency` requests were in flight: raise `--concurrency`.
    Latency,
    /// 429s: the service allows less than `--rate`.
    Throttling,
    /// The service was down for a while.
    Outage,
}

impl HeldBack {
    /// The cause in a few words, for the end-of-job line, `status` and the page.
    pub fn words(self, reached: &Reached) -> String {
        match self {
            HeldBack::Latency => format!(
                "latency: {} requests in flight, the most --concurrency allows, too few for the rate for {:.0} s",
                reached.concurrency, reached.latency_secs
            ),
            HeldBack::Throttling => format!("429s: the pace below --rate for {:.0} s", reached.throttled_secs),
            HeldBack::Outage => format!("an outage: the service was down for {:.0} s", reached.outage_secs),
        }
    }
}

impl Reached {
    /// Requests sent per second over the job.
    pub fn job_rate(&self) -> f64 {
        if self.seconds <= 0.0 { 0.0 } else { self.requests as f64 / self.seconds }
    }

    /// When the job ran below [`BELOW`] of `--rate`, the cause that took the most of its time (none when none
    /// took a second: a short job's start and end alone).
    pub fn held_back(&self) -> Option<HeldBack> {
        if self.requests == 0 || self.job_rate() >= BELOW * f64::from(self.rate) {
            return None;
        }
        let causes = [
            (HeldBack::Throttling, self.throttled_secs),
            (HeldBack::Latency, self.latency_secs),
            (HeldBack::Outage, self.outage_secs),
        ];
        let (cause, seconds) = causes
            .into_iter()
            .fold((HeldBack::Throttling, 0.0), |most, cause| if cause.1 > most.1 { cause } else { most });
        (seconds >= 1.0).then_some(cause)
    }

    /// This run's figures added to an earlier run's of the same job (`earlier`): times and requests add up; the
    /// settings and the last minute are this run's.
    pub fn after(&self, earlier: &Reached) -> Reached {
        Reached {
            seconds: self.seconds + earlier.seconds,
            requests: self.requests + earlier.requests,
            throttled_secs: self.throttled_secs + earlier.throttled_secs,
            latency_secs: self.latency_secs + earlier.latency_secs,
            outage_secs: self.outage_secs + earlier.outage_secs,
            peak_in_flight: self.peak_in_flight.max(earlier.peak_in_flight),
            ..*self
        }
    }

    /// The one line that says it: "reached 9.8 requests/s (last minute 10.0) of --rate 10", and what held it back.
    pub fn line(&self) -> String {
        let mut line = format!(
            "reached {:.1} requests/s (last minute {:.1}) of --rate {}",
            self.job_rate(),
            self.last_minute_rate,
            self.rate
        );
        if let Some(cause) = self.held_back() {
            line.push_str(&format!(", held back by {}", cause.words(self)));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(requests: u64, seconds: f64) -> Reached {
        Reached { rate: 20, seconds, requests, last_minute_rate: 20.0, concurrency: 8, ..Reached::default() }
    }

    #[test]
    fn at_the_rate_nothing_held_it_back() {
        let reached = Reached { latency_secs: 30.0, ..job(600, 30.5) };
        assert_eq!(reached.held_back(), None);
        assert_eq!(reached.line(), "reached 19.7 requests/s (last minute 20.0) of --rate 20");
    }

    #[test]
    fn below_the_rate_the_cause_that_took_the_most_time_is_named() {
        let slow = Reached { latency_secs: 25.0, throttled_secs: 2.0, ..job(240, 30.0) };
        assert_eq!(slow.held_back(), Some(HeldBack::Latency));
        assert!(slow.line().ends_with(
            "held back by latency: 8 requests in flight, the most --concurrency allows, too few for the rate for 25 s"
        ));
        let throttled = Reached { latency_secs: 2.0, throttled_secs: 12.0, ..job(240, 30.0) };
        assert_eq!(throttled.held_back(), Some(HeldBack::Throttling));
        let down = Reached { outage_secs: 20.0, throttled_secs: 1.0, ..job(240, 30.0) };
        assert_eq!(down.held_back(), Some(HeldBack::Outage));
    }

    #[test]
    fn a_short_job_below_the_rate_with_no_cause_names_none() {
        assert_eq!(job(10, 2.0).held_back(), None);
        assert_eq!(Reached::default().held_back(), None);
        assert_eq!(Reached::default().job_rate(), 0.0);
    }

    #[test]
    fn runs_of_one_job_add_up() {
        let first = Reached { throttled_secs: 3.0, peak_in_flight: 9, ..job(100, 10.0) };
        let second = Reached { last_minute_rate: 5.0, peak_in_flight: 4, ..job(50, 10.0) };
        let both = second.after(&first);
        assert_eq!((both.requests, both.seconds, both.throttled_secs), (150, 20.0, 3.0));
        assert_eq!((both.peak_in_flight, both.last_minute_rate), (9, 5.0));
    }
}
