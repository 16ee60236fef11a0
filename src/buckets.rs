//! The pace chart's buckets, pure (a leaf: `state` decides by it what to keep, `summary` how to draw): the width
//! that suits a job's length, so a job of two minutes to a day and a half shows its shape in 30 to 151 points (a
//! shorter one in a point a second, a longer one in a point an hour), and the sum of samples into buckets of that
//! width.
//!
//! | the job's span (first to last sample) | bucket |
//! | --- | --- |
//! | up to 150 s | 1 s |
//! | up to 5 min | 2 s |
//! | up to 25 min | 10 s |
//! | up to 50 min | 20 s |
//! | up to 2 h 30 | 1 min |
//! | up to 12 h 30 | 5 min |
//! | up to 37 h 30 | 15 min |
//! | beyond | 1 h |
//!
//! Each width divides the next, so buckets of one width sum exactly into buckets of any wider one: the state file
//! keeps a job's samples at the finest width its span still needs and coarsens them as the span grows.

/// `(longest span in seconds, bucket width in seconds)`, in order; beyond the last, [`WIDEST`].
const WIDTHS: [(u64, u64); 7] =
    [(150, 1), (300, 2), (1_500, 10), (3_000, 20), (9_000, 60), (45_000, 300), (135_000, 900)];

/// The width of a job whose span is longer than every row of [`WIDTHS`]: an hour.
const WIDEST: u64 = 3_600;

/// Widths below a minute come from the per-second samples; from a minute up, the per-minute ones suffice.
pub const MINUTE: u64 = 60;

/// The longest span whose chart needs samples finer than a minute: past it, per-second samples are dropped.
pub const FINE_SPAN: u64 = 3_000;

/// The bucket width, in seconds, for a job whose samples span `span` seconds (from the first's start to the last's).
pub fn width(span: u64) -> u64 {
    WIDTHS.iter().find(|(longest, _)| span <= *longest).map_or(WIDEST, |(_, width)| *width)
}

/// A width in words, for the chart's title: "1 s", "10 s", "minute", "5 minutes", "hour".
pub fn words(width: u64) -> String {
    match width {
        MINUTE => "minute".to_string(),
        WIDEST => "hour".to_string(),
        _ if width < MINUTE => format!("{width} s"),
        _ if width.is_multiple_of(WIDEST) => format!("{} hours", width / WIDEST),
        _ => format!("{} minutes", width / MINUTE),
    }
}

/// One bucket: its start (seconds since the Unix epoch, a multiple of its width) and its two counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    pub start: i64,
    pub requests: u64,
    pub throttled: u64,
}

/// Sums samples in time order (`start` in seconds since the epoch) into buckets of `width` seconds aligned on the
/// epoch. A bucket no sample falls in is absent: the chart shows it as a gap, not as a zero.
pub fn sum(samples: impl IntoIterator<Item = Bucket>, width: u64) -> Vec<Bucket> {
    let width = i64::try_from(width.max(1)).unwrap_or(i64::MAX);
    let mut buckets: Vec<Bucket> = Vec::new();
    for sample in samples {
        let start = sample.start.div_euclid(width) * width;
        match buckets.last_mut() {
            Some(bucket) if bucket.start == start => {
                bucket.requests += sample.requests;
                bucket.throttled += sample.throttled;
            }
            _ => buckets.push(Bucket { start, ..sample }),
        }
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_width_suits_the_span_and_gives_30_to_151_points() {
        let cases = [
            (0, 1),
            (150, 1),
            (151, 2),
            (300, 2),
            (301, 10),
            (1_500, 10),
            (1_501, 20),
            (3_000, 20),
            (3_001, 60),
            (9_000, 60),
            (9_001, 300),
            (36_000, 300),
            (45_001, 900),
            (135_001, 3_600),
        ];
        for (span, expected) in cases {
            assert_eq!(width(span), expected, "span {span} s");
        }
        for span in 60..200_000 {
            let points = span / width(span) + 1;
            assert!(points <= 151, "{span} s: {points} points");
            assert!(span <= 120 || points >= 30, "{span} s: {points} points");
        }
        assert_eq!(width(FINE_SPAN) < MINUTE, width(FINE_SPAN + 1) >= MINUTE, "the fine span ends at the minute");
    }

    #[test]
    fn each_width_divides_the_next_so_coarsening_is_exact() {
        let widths: Vec<u64> = WIDTHS.iter().map(|(_, width)| *width).chain([WIDEST]).collect();
        assert!(widths.windows(2).all(|pair| pair[1].is_multiple_of(pair[0])), "{widths:?}");
        let samples: Vec<Bucket> =
            (1_000..1_400).map(|start| Bucket { start, requests: (start % 7) as u64, throttled: 1 }).collect();
        let twice = sum(sum(samples.clone(), 2), 10);
        assert_eq!(twice, sum(samples, 10), "2 s buckets summed into 10 s ones equal the seconds summed at once");
    }

    #[test]
    fn samples_sum_into_epoch_aligned_buckets_and_gaps_stay_gaps() {
        let at = |start, requests| Bucket { start, requests, throttled: requests / 2 };
        let buckets = sum([at(1_001, 4), at(1_009, 2), at(1_010, 1), at(1_100, 6)], 10);
        assert_eq!(buckets, [at(1_000, 6), Bucket { start: 1_010, requests: 1, throttled: 0 }, at(1_100, 6)]);
    }

    #[test]
    fn widths_in_words() {
        assert_eq!(
            [1, 10, 60, 300, 3_600, 7_200].map(words),
            ["1 s", "10 s", "minute", "5 minutes", "hour", "2 hours"]
        );
    }
}
