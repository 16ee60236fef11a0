//! The in-flight bound as pure logic, and on tokio's paused clock.

use super::*;

#[test]
fn the_bound_is_the_rate_times_the_latency_with_headroom_within_one_and_the_maximum() {
    // 20/s answered in 1 s: 20 in flight, 30 with headroom, and one more.
    assert_eq!(bound(20, Duration::from_secs(1), 64), 31);
    assert_eq!(bound(20, Duration::from_secs(2), 64), 61);
    assert_eq!(bound(20, Duration::from_secs(4), 64), 64, "never above --concurrency");
    assert_eq!(bound(10, Duration::from_millis(1), 64), MIN_SLOTS, "a few slots at the least");
    assert_eq!(bound(1, Duration::ZERO, 64), MIN_SLOTS);
    assert_eq!(bound(1, Duration::ZERO, 2), 2, "--concurrency below the floor stays");
    assert_eq!(bound(u32::MAX, Duration::from_secs(300), 64), 64);
    assert_eq!(bound(10, Duration::from_secs(1), 1), 1, "--concurrency 1 stays 1");
}

#[test]
fn the_measure_rises_fast_and_falls_slowly() {
    let first = smoothed(None, Duration::from_millis(100));
    assert_eq!(first, Duration::from_millis(100));
    let risen = smoothed(Some(first), Duration::from_millis(1100));
    assert_eq!(risen, Duration::from_millis(600), "half of the way up at once");
    let fallen = smoothed(Some(risen), Duration::from_millis(100));
    assert_eq!(fallen, Duration::from_millis(550), "a tenth of the way down");
}

#[tokio::test(start_paused = true)]
async fn the_bound_follows_the_latency_up_and_down_and_in_flight_requests_pay_a_lowered_bound() {
    let slots = Arc::new(InFlight::new(64));
    assert_eq!(slots.limit(), 64, "nothing known before the first answer: the maximum");
    slots.on_answer(Duration::from_millis(10), 20);
    assert_eq!(slots.limit(), MIN_SLOTS);
    let held: Vec<Slot> = vec![slots.acquire().await, slots.acquire().await];
    assert_eq!(slots.in_flight(), 2);
    // Slower answers: more in flight is allowed at once.
    slots.on_answer(Duration::from_secs(2), 20);
    assert_eq!(slots.limit(), bound(20, Duration::from_millis(1005), 64));
    let mut more = Vec::new();
    for _ in 0..slots.limit() - held.len() {
        more.push(slots.acquire().await);
    }
    assert_eq!(slots.in_flight(), slots.limit());
    // Fast answers again, the bound drops below what is in flight: the slots coming back are not given out again.
    for _ in 0..60 {
        slots.on_answer(Duration::from_millis(10), 20);
    }
    let low = slots.limit();
    assert_eq!(low, MIN_SLOTS);
    drop(more);
    drop(held);
    assert_eq!(slots.in_flight(), 0);
    let again: Vec<Slot> = futures_take(&slots, low).await;
    assert_eq!(again.len(), low);
    let waiting = tokio::time::timeout(Duration::from_secs(1), slots.acquire()).await;
    assert!(waiting.is_err(), "no slot above the lowered bound");
}

/// Takes `count` slots.
async fn futures_take(slots: &Arc<InFlight>, count: usize) -> Vec<Slot> {
    let mut taken = Vec::new();
    for _ in 0..count {
        taken.push(slots.acquire().await);
    }
    taken
}

#[tokio::test(start_paused = true)]
async fn seconds_with_the_rate_out_of_reach_are_counted_once_a_second_and_the_peak_is_on_the_wire() {
    let slots = Arc::new(InFlight::new(8));
    let mut taken = Vec::new();
    for _ in 0..8 {
        taken.push(slots.acquire().await);
    }
    // 20/s answered in 1 s needs 20 in flight: out of reach with 8, every slot taken.
    for _ in 0..3 {
        slots.on_answer(Duration::from_secs(1), 20);
        tokio::time::advance(Duration::from_millis(400)).await;
    }
    // Answers at 0, 0.4 and 0.8 s, then at 1.2 s: two seconds.
    slots.on_answer(Duration::from_secs(1), 20);
    assert_eq!(slots.seconds_at_max(), 2);
    drop(taken);
    slots.on_answer(Duration::from_secs(1), 20);
    assert_eq!(slots.seconds_at_max(), 2, "a free slot: nothing waited for the bound");
    // 20/s answered in 100 ms needs 2: within reach.
    let fast = InFlight::new(8);
    fast.on_answer(Duration::from_millis(100), 20);
    assert_eq!(fast.seconds_at_max(), 0);
    // A slot waiting for its turn is not on the wire.
    let mut first = slots.acquire().await;
    let _waiting = slots.acquire().await;
    first.sent();
    assert_eq!((slots.in_flight(), slots.peak()), (2, 1));
    drop(first);
    assert_eq!(slots.in_flight(), 1);
}
