//! Pace on tokio's paused clock: the schedule, the concurrency bound, the hold, the cut and the climb.

use super::*;
use std::sync::atomic::AtomicUsize;

/// One request that meets a 429 asking to wait `retry_after`.
async fn meet_a_429(pace: &Pace, retry_after: Duration) {
    let permit = pace.acquire().await;
    pace.on_throttled(permit.issued_at(), retry_after);
}

fn config(rate: u32, concurrency: usize) -> PaceConfig {
    PaceConfig::new(
        NonZeroU32::new(rate).unwrap(),
        NonZeroUsize::new(concurrency).unwrap(),
        NonZeroU32::new(6).unwrap(),
    )
}

#[tokio::test(start_paused = true)]
async fn requests_follow_the_rate_from_an_absolute_schedule() {
    let pace = Pace::new(config(10, 4));
    let start = Instant::now();
    for _ in 0..50 {
        drop(pace.acquire().await);
    }
    // The first goes at once, then one every 100 ms.
    assert_eq!(Instant::now() - start, Duration::from_millis(4900));
    assert_eq!(pace.requests_sent(), 0, "a permit is not a request sent: the client counts those");
}

#[tokio::test(start_paused = true)]
async fn workers_share_one_rate() {
    let pace = Arc::new(Pace::new(config(5, 8)));
    let start = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let pace = pace.clone();
            tokio::spawn(async move {
                for _ in 0..5 {
                    drop(pace.acquire().await);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    // 20 requests at 5/s across all workers: 19 gaps of 200 ms.
    assert_eq!(Instant::now() - start, Duration::from_millis(3800));
}

#[tokio::test(start_paused = true)]
async fn never_more_than_concurrency_in_flight() {
    let pace = Arc::new(Pace::new(config(1000, 3)));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..10)
        .map(|_| {
            let (pace, in_flight, most) = (pace.clone(), in_flight.clone(), most.clone());
            tokio::spawn(async move {
                let permit = pace.acquire().await;
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                drop(permit);
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 3);
    assert_eq!(pace.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_429_holds_every_worker_until_retry_after() {
    let pace = Arc::new(Pace::new(config(10, 8)));
    let permit = pace.acquire().await;
    let told_at = Instant::now();
    pace.on_throttled(permit.issued_at(), Duration::from_secs(30));
    drop(permit);
    let workers: Vec<_> = (0..5)
        .map(|_| {
            let pace = pace.clone();
            tokio::spawn(async move { pace.acquire().await.issued_at() })
        })
        .collect();
    for worker in workers {
        let sent = worker.await.unwrap();
        assert!(sent >= told_at + Duration::from_secs(30), "a worker went out during the hold");
    }
    assert_eq!(pace.throttled(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_429s_from_requests_in_flight_cuts_the_rate_once() {
    let pace = Pace::new(config(16, 8));
    let mut permits = Vec::new();
    for _ in 0..8 {
        permits.push(pace.acquire().await);
    }
    for permit in &permits {
        pace.on_throttled(permit.issued_at(), Duration::from_secs(2));
    }
    assert_eq!(pace.current_rate(), 8, "eight 429s for requests sent together are one signal");
    assert_eq!(pace.throttled(), 8);
    drop(permits);

    // A request sent after the cut that meets a 429 again is a new signal (near the ceiling of 16: to 90% of 8).
    meet_a_429(&pace, Duration::from_secs(2)).await;
    assert_eq!(pace.current_rate(), 7);
}

#[tokio::test(start_paused = true)]
async fn the_rate_never_falls_below_one() {
    let pace = Pace::new(config(2, 1));
    for _ in 0..5 {
        meet_a_429(&pace, Duration::from_secs(1)).await;
    }
    assert_eq!(pace.current_rate(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_rate_climbs_back_after_the_hold_to_just_under_the_ceiling_for_a_minute() {
    let pace = Pace::new(config(10, 8));
    meet_a_429(&pace, Duration::from_secs(5)).await;
    assert_eq!(pace.current_rate(), 5);
    // No climbing during the hold.
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(pace.current_rate(), 5);
    // Then +1/s (5% of the ceiling of 10 rounds to less than 1: the step is 1).
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(pace.current_rate(), 7);
    // Up to 95% of the rate that met the 429, for a minute after it.
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(pace.current_rate(), 9);
    tokio::time::advance(Duration::from_secs(22)).await;
    assert_eq!(pace.current_rate(), 9);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(pace.current_rate(), 10);
}

/// Permits granted at once, without the clock moving.
async fn at_once(pace: &Pace) -> usize {
    let mut count = 0;
    let start = Instant::now();
    while count < 5 {
        let permit = pace.acquire().await;
        if Instant::now() != start {
            break;
        }
        drop(permit);
        count += 1;
    }
    count
}

#[tokio::test(start_paused = true)]
async fn after_a_429_a_late_wake_up_sends_one_request_not_two_back_to_back() {
    let pace = Pace::new(config(10, 8));
    drop(pace.acquire().await);
    // A worker that woke 300 ms late: the slack cell lets the missed slot go at once, with the one due now.
    tokio::time::advance(Duration::from_millis(300)).await;
    assert_eq!(at_once(&pace).await, 2);
    meet_a_429(&pace, Duration::from_secs(1)).await;
    tokio::time::advance(Duration::from_secs(1)).await;
    drop(pace.acquire().await);
    // The same late wake-up after a 429 (a strict limiter answers the second of two back to back with another).
    tokio::time::advance(Duration::from_millis(700)).await;
    assert_eq!(at_once(&pace).await, 1);
}

#[tokio::test(start_paused = true)]
async fn requests_after_a_cut_go_at_the_lower_rate() {
    let pace = Pace::new(config(10, 8));
    meet_a_429(&pace, Duration::from_secs(1)).await;
    let hold_end = Instant::now() + Duration::from_secs(1);
    for _ in 0..5 {
        drop(pace.acquire().await);
    }
    // At 5/s: the first at the end of the hold, then four gaps of 200 ms (within the first second, before any climb).
    assert_eq!(Instant::now() - hold_end, Duration::from_millis(800));
}

#[tokio::test(start_paused = true)]
async fn settled_rate_is_the_mean_of_the_last_minute() {
    let pace = Pace::new(config(10, 8));
    tokio::time::advance(Duration::from_secs(120)).await;
    assert_eq!(pace.settled_rate(), 10.0);
    meet_a_429(&pace, MAX_RETRY_AFTER).await;
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(pace.settled_rate(), 5.0, "held at 5 for the whole last minute");
    tokio::time::advance(Duration::from_secs(30)).await;
    // 30 s at 5, then 30 s at 5 with no climbing yet (the hold is 300 s).
    assert_eq!(pace.settled_rate(), 5.0);
}

#[tokio::test(start_paused = true)]
async fn settled_rate_weighs_each_rate_by_its_time() {
    let pace = Pace::new(config(10, 8));
    tokio::time::advance(Duration::from_secs(30)).await;
    meet_a_429(&pace, MAX_RETRY_AFTER).await;
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(pace.settled_rate(), 7.5);
}

#[tokio::test(start_paused = true)]
async fn after_429s_the_settled_rate_is_what_the_api_answered_not_what_was_allowed() {
    let pace = Pace::new(config(2000, 8));
    // A limiter of 1 request a second: each second one request goes through and one meets a 429.
    for _ in 0..30 {
        pace.count_sent();
        pace.count_sent();
        pace.on_throttled(Instant::now(), Duration::from_millis(10));
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    let settled = pace.settled_rate();
    assert!((settled - 1.0).abs() < 0.01, "settled at {settled}, the api bore 1 a second");
    let steady = Pace::new(config(10, 8));
    steady.count_sent();
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(steady.settled_rate(), 10.0, "no 429: the rate allowed");
}

#[test]
fn backoff_doubles_within_its_jitter_and_is_capped() {
    let base = Duration::from_millis(500);
    let max = Duration::from_secs(60);
    for attempt in 1..40 {
        let cap = base.saturating_mul(1 << (attempt - 1).min(30)).min(max);
        let low = backoff_delay(base, max, attempt, 0.0);
        let high = backoff_delay(base, max, attempt, 1.0);
        assert_eq!(low, cap / 2);
        assert_eq!(high, cap);
        assert!(high <= max);
    }
    assert_eq!(backoff_delay(base, max, 1, 1.0), base);
    assert_eq!(backoff_delay(base, max, 3, 1.0), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_and_capped() {
    let pace = Pace::new(config(10, 1));
    assert_eq!(pace.retry_delay(1, Some(Duration::from_secs(7))), Duration::from_secs(7));
    assert_eq!(pace.retry_delay(1, Some(Duration::from_secs(9999))), MAX_RETRY_AFTER);
    let delay = pace.retry_delay(2, None);
    assert!(delay >= Duration::from_millis(500) && delay <= Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_request_woken_late_takes_the_slot_it_missed_and_the_schedule_keeps_its_place() {
    let pace = Pace::new(config(10, 4));
    let start = Instant::now();
    drop(pace.acquire().await);
    // Its slot was at 100 ms; it comes at 150 ms and goes at once, and the next slot is still at 200 ms.
    tokio::time::sleep(Duration::from_millis(150)).await;
    drop(pace.acquire().await);
    assert_eq!(Instant::now() - start, Duration::from_millis(150));
    drop(pace.acquire().await);
    assert_eq!(Instant::now() - start, Duration::from_millis(200));
}

#[tokio::test(start_paused = true)]
async fn a_429_within_a_minute_of_another_cuts_to_90_percent_not_half() {
    let pace = Pace::new(config(100, 8));
    meet_a_429(&pace, Duration::from_secs(1)).await;
    assert_eq!(pace.current_rate(), 50, "the first 429 says nothing of how far above the limit 100 was: half");
    // After the hold, +5/s (5% of the ceiling of 100) for 5 s.
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(pace.current_rate(), 75);
    meet_a_429(&pace, Duration::from_secs(1)).await;
    assert_eq!(pace.current_rate(), 67, "the limit is near: 90% of 75, not half");
    meet_a_429(&pace, Duration::from_secs(1)).await;
    assert_eq!(pace.current_rate(), 60);
}

#[tokio::test(start_paused = true)]
async fn the_climb_stops_at_95_percent_of_the_ceiling_for_a_minute_then_climbs_a_step_a_second() {
    let pace = Pace::new(config(200, 8));
    meet_a_429(&pace, Duration::from_secs(1)).await;
    assert_eq!(pace.current_rate(), 100);
    // The ceiling is 200: climb back (+10/s after the hold).
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(pace.current_rate(), 110);
    meet_a_429(&pace, Duration::from_secs(1)).await;
    assert_eq!(pace.current_rate(), 99, "90% of the rate that met it");
    // The ceiling is 110 now: a step of 5/s up to 104 (95% of it), and no further for the minute after the 429.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(pace.current_rate(), 104);
    tokio::time::advance(SETTLE_WINDOW - Duration::from_secs(3)).await;
    assert_eq!(pace.current_rate(), 104);
    // Then a step a second (5% of the last ceiling) from the minute's end, not every step of the minute at once.
    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(pace.current_rate(), 114);
}

#[tokio::test(start_paused = true)]
async fn a_429_below_the_ceiling_lowers_it_and_the_climb_steps_by_5_percent_of_it() {
    let pace = Pace::new(config(1000, 8));
    meet_a_429(&pace, Duration::from_secs(1)).await;
    assert_eq!(pace.current_rate(), 500);
    // 500 met a 429 as well: the ceiling is 500, the rate 450, the climb +25/s up to 475 (not +50/s to 1000).
    meet_a_429(&pace, Duration::from_secs(1)).await;
    assert_eq!(pace.current_rate(), 450);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(pace.current_rate(), 475);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(pace.current_rate(), 475);
}

/// `count` requests at the pace's rate, answered as `accepted(index)` says (429s asking for `hold`).
async fn answered(pace: &Pace, count: usize, accepted: impl Fn(usize) -> bool, hold: Duration) {
    let mut permits = Vec::new();
    for _ in 0..count {
        permits.push(pace.acquire().await);
    }
    answer(pace, &permits, accepted, hold);
}

/// Answers `permits` in order as `accepted(index)` says (429s asking for `hold`).
fn answer(pace: &Pace, permits: &[Permit], accepted: impl Fn(usize) -> bool, hold: Duration) {
    for (index, permit) in permits.iter().enumerate() {
        let throttled = !accepted(index);
        pace.on_answer(permit.issued_at(), throttled);
        if throttled {
            pace.on_throttled(permit.issued_at(), hold);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_cut_from_far_above_goes_to_90_percent_of_the_rate_the_service_accepted_when_its_hold_ends() {
    let pace = Pace::new(config(1000, 64));
    // 40 requests at 1000/s against a limiter of 125/s with a burst of 5 saved up: the first 5 accepted, then one
    // in eight (the 8th, 16th, 24th and 32nd ms).
    answered(&pace, 40, |index| index < 5 || index % 8 == 0, Duration::from_secs(1)).await;
    assert_eq!(pace.current_rate(), 500, "halved at the 429, until the hold ends");
    drop(pace.acquire().await);
    // Accepted after the first refused one: 3 intervals in 24 ms, 125/s (the burst before it is no rate); 90% of it.
    assert_eq!(pace.current_rate(), 112);
    // The ceiling is 125: the climb (+6/s) stops at 118.
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(pace.current_rate(), 118);
}

#[tokio::test(start_paused = true)]
async fn when_requests_go_out_slower_than_asked_the_climb_asks_for_more_but_never_above_the_ceiling() {
    let pace = Pace::new(config(1000, 64));
    answered(&pace, 40, |index| index < 5 || index % 8 == 0, Duration::from_secs(1)).await;
    drop(pace.acquire().await);
    assert_eq!(pace.current_rate(), 112, "the ceiling is 125, the cap 118");
    // Each second, 100 requests sent of the 112 asked for (late wake-ups): the cap is raised by that shortfall,
    // 118 × 112 / 100 = 132, to the ceiling at most.
    for _ in 0..4 {
        for _ in 0..100 {
            pace.count_sent();
        }
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    assert_eq!(pace.current_rate(), 125);
}

#[tokio::test(start_paused = true)]
async fn a_lone_429_goes_to_90_percent_of_the_share_accepted_and_too_few_answers_leave_the_halving() {
    // All accepted but the last, nothing accepted after it: 39 of 40 at 200/s is 195/s accepted; 90% of it.
    let pace = Pace::new(config(200, 64));
    answered(&pace, 40, |index| index < 39, Duration::from_secs(1)).await;
    drop(pace.acquire().await);
    assert_eq!(pace.current_rate(), 175);
    // Three answers say too little: the halving stands.
    let few = Pace::new(config(1000, 64));
    answered(&few, 3, |index| index == 0, Duration::from_secs(1)).await;
    drop(few.acquire().await);
    assert_eq!(few.current_rate(), 500);
}

#[tokio::test(start_paused = true)]
async fn a_refused_request_among_accepted_ones_below_the_limit_goes_to_90_percent_of_their_rate() {
    // 100/s, a late request refused in passing and the rest accepted: the service bore 100/s; 90, not 50.
    let pace = Pace::new(config(100, 64));
    answered(&pace, 20, |index| index != 3, Duration::from_secs(1)).await;
    drop(pace.acquire().await);
    assert_eq!(pace.current_rate(), 90);
}

#[tokio::test(start_paused = true)]
async fn a_lone_429_after_ten_seconds_all_accepted_holds_every_worker_and_keeps_the_rate() {
    // Room for all of them in flight at once (`answered` answers them after the last is sent).
    let pace = Pace::new(config(100, 2000));
    // Ten seconds at 100/s all accepted, then one refused: a request that reached the service late.
    answered(&pace, 1001, |index| index < 1000, Duration::from_secs(1)).await;
    let held_from = Instant::now();
    drop(pace.acquire().await);
    assert!(held_from.elapsed() >= Duration::from_secs(1), "the hold is served as for any 429");
    assert_eq!(pace.current_rate(), 100);
    // Another one within seconds is no 429 in passing: halved as before.
    meet_a_429(&pace, Duration::from_secs(1)).await;
    assert_eq!(pace.current_rate(), 50);
}

#[tokio::test(start_paused = true)]
async fn a_429_among_fifty_accepted_is_refined_by_their_share_not_by_the_late_ones_behind_it() {
    let pace = Pace::new(config(100, 2000));
    let mut permits = Vec::new();
    for index in 0..100 {
        // The three sent after the refused one wake 30 ms late each: 40 ms apart, they would read as 25/s.
        if index > 96 {
            tokio::time::advance(Duration::from_millis(30)).await;
        }
        permits.push(pace.acquire().await);
    }
    answer(&pace, &permits, |index| index != 96, Duration::from_secs(1));
    drop(permits);
    drop(pace.acquire().await);
    // 99 of 100 accepted at 100/s: 99/s, and 90% of it.
    assert_eq!(pace.current_rate(), 89);
}

/// A strict limiter (a token bucket of one) at `limit`/s answering in 40 ms, driven by `workers` for `seconds`:
/// (answers accepted each second, 429s).
async fn against_a_strict_limiter(pace: Arc<Pace>, limit: f64, workers: usize, seconds: u64) -> (Vec<u64>, u64) {
    let start = Instant::now();
    let bucket = Arc::new(Mutex::new((1.0_f64, start)));
    let accepted = Arc::new(Mutex::new(vec![0_u64; seconds as usize]));
    let throttled = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (pace, bucket, accepted, throttled) =
                (pace.clone(), bucket.clone(), accepted.clone(), throttled.clone());
            tokio::spawn(async move {
                while start.elapsed() < Duration::from_secs(seconds) {
                    let permit = pace.acquire().await;
                    let now = Instant::now();
                    let admitted = {
                        let mut bucket = bucket.lock().unwrap();
                        bucket.0 = (bucket.0 + now.duration_since(bucket.1).as_secs_f64() * limit).min(1.0);
                        bucket.1 = now;
                        // A token every 1/limit s: 0.1 + ... + 0.1 ten times is a hair under 1.0 in floating point.
                        let admitted = bucket.0 >= 1.0 - 1e-9;
                        if admitted {
                            bucket.0 -= 1.0;
                        }
                        admitted
                    };
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    let issued_at = permit.issued_at();
                    drop(permit);
                    pace.on_answer(issued_at, !admitted);
                    if admitted {
                        let second = start.elapsed().as_secs() as usize;
                        if let Some(count) = accepted.lock().unwrap().get_mut(second) {
                            *count += 1;
                        }
                    } else {
                        throttled.fetch_add(1, Ordering::SeqCst);
                        pace.on_throttled(issued_at, Duration::from_secs(1));
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    (accepted, throttled.load(Ordering::SeqCst) as u64)
}

#[tokio::test(start_paused = true)]
async fn from_ten_times_a_strict_limit_the_pace_is_at_the_limit_within_seconds_with_few_429s() {
    let pace = Arc::new(Pace::new(config(1000, 64)));
    let (accepted, throttled) = against_a_strict_limiter(pace.clone(), 100.0, 128, 60).await;
    let total: u64 = accepted.iter().sum();
    let context = format!("{total} accepted, {throttled} 429s, rate {}: {accepted:?}", pace.current_rate());
    // One hold (the 429s of the first 40 ms), then 95/s asked for: a request every 10.5 ms, which tokio's timer
    // (whole milliseconds, and no burst after a 429 to catch up with) sends every 11 ms, 90.9/s.
    assert!(total as f64 >= 0.88 * 100.0 * 60.0, "{context}");
    assert!(throttled as f64 <= 0.02 * (total + throttled) as f64, "{context}");
    assert_eq!(pace.current_rate(), 95, "95% of the rate the service accepted: {context}");
    // Within the first 7 s, a five-second stretch at 0.9 of the limit or more.
    let reached = accepted.windows(5).position(|window| window.iter().sum::<u64>() as f64 >= 0.9 * 500.0);
    assert!(reached.is_some_and(|second| second + 5 <= 7), "reached at {reached:?}: {context}");
}

#[tokio::test(start_paused = true)]
async fn the_time_below_the_rate_after_429s_is_reached_s_throttled_time() {
    let pace = Pace::new(config(10, 8));
    tokio::time::advance(Duration::from_secs(10)).await;
    meet_a_429(&pace, Duration::from_secs(5)).await;
    // Cut to 5, held 5 s, then +1/s to 9 (95% of the ceiling) until the ceiling ends a minute after the 429, then 10.
    tokio::time::advance(Duration::from_secs(70)).await;
    let reached = pace.reached(Duration::from_secs(3));
    assert_eq!(reached.throttled_secs, 61.0);
    assert_eq!((reached.rate, reached.outage_secs, reached.concurrency), (10, 3.0, 8));
    assert_eq!(reached.seconds, 80.0);
}
