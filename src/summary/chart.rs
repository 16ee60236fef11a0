//! The summary page's pace chart: requests and 429s over the job's time, in buckets that suit its length
//! ([`crate::buckets`]): from the state file's seconds for a job of up to 50 minutes, else from its minutes (a job
//! recorded before seconds were kept draws in minutes, whatever its length). A bucket with no sample is a gap in
//! the lines, shaded: no run of the job was going (or, in a chart of minutes, none sent a request). The time axis
//! is labelled in its unit (s, min or h) from the first bucket, with the first and last times below it.

use super::Summary;
use super::html::escape;
use crate::buckets::{self, Bucket, MINUTE};
use std::fmt::Write as _;

/// The chart's points: buckets of `width` seconds, in time order, absent where nothing was recorded.
pub(super) struct Chart {
    pub width: u64,
    pub points: Vec<Bucket>,
}

/// The job's samples summed into the buckets that suit its length.
pub(super) fn points(summary: &Summary) -> Chart {
    let (samples, finest) = match &summary.seconds {
        Some(seconds) => (seconds.buckets.clone(), seconds.width),
        None => (minutes(summary), MINUTE),
    };
    let span = match (samples.first(), samples.last()) {
        (Some(first), Some(last)) => u64::try_from(last.start - first.start).unwrap_or(0),
        _ => 0,
    };
    let width = buckets::width(span).max(finest);
    Chart { width, points: buckets::sum(samples, width) }
}

/// The summary's minutes as buckets starting at their minute.
fn minutes(summary: &Summary) -> Vec<Bucket> {
    let start = |text: &str| {
        let at = humantime::parse_rfc3339(text).ok()?;
        i64::try_from(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs()).ok()
    };
    let minutes = summary.minutes.iter();
    minutes
        .filter_map(|minute| {
            Some(Bucket { start: start(&minute.minute)?, requests: minute.requests, throttled: minute.throttled })
        })
        .collect()
}

/// The time axis's unit for a chart spanning `span` seconds in buckets of `width`: its symbol, its word and its
/// length in seconds (seconds up to 10 minutes, minutes up to 10 hours, hours beyond; never finer than a bucket).
fn unit(span: u64, width: u64) -> (&'static str, &'static str, u64) {
    if span > 36_000 || width >= 3_600 {
        ("h", "hours", 3_600)
    } else if span > 600 || width >= MINUTE {
        ("min", "minutes", MINUTE)
    } else {
        ("s", "seconds", 1)
    }
}

/// The distance between two labelled ticks: a round step in the axis's unit, six ticks at most.
fn tick_step(span: u64, unit: u64) -> u64 {
    const STEPS: [u64; 19] =
        [1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1_200, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200];
    let mut round = STEPS.iter().copied().filter(|step| step.is_multiple_of(unit));
    round.find(|step| span / step <= 5).unwrap_or_else(|| span.div_ceil(5 * 86_400).max(1) * 86_400)
}

/// The bucket's start, RFC 3339 UTC.
fn utc(start: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(start).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// The chart's frame: where the plot sits and how times and counts map to it.
struct Frame {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    first: i64,
    span: u64,
    most: u64,
}

impl Frame {
    fn x(&self, start: i64) -> f64 {
        let offset = (start - self.first) as f64;
        self.left + (self.right - self.left) * offset / self.span.max(1) as f64
    }

    fn y(&self, count: u64) -> f64 {
        self.bottom - (self.bottom - self.top) * count as f64 / self.most as f64
    }
}

/// Writes the chart's title and the chart.
pub(super) fn write(page: &mut String, summary: &Summary) {
    let chart = points(summary);
    let words = buckets::words(chart.width);
    let _ = writeln!(page, "<h2>Requests and 429s per {words}</h2>");
    let points = &chart.points;
    let first = points.first().map_or(0, |point| point.start);
    let frame = Frame {
        left: 60.0,
        right: 700.0,
        top: 12.0,
        bottom: 190.0,
        first,
        span: points.last().map_or(0, |point| u64::try_from(point.start - first).unwrap_or(0)),
        most: points.iter().map(|point| point.requests.max(point.throttled)).max().unwrap_or(1).max(1),
    };
    let (symbol, _, _) = unit(frame.span, chart.width);
    let _ = writeln!(
        page,
        "<svg id=\"minutes\" xmlns=\"http://www.w3.org/2000/svg\" width=\"880\" height=\"250\" role=\"img\" \
         aria-label=\"requests and 429s per {words}\" data-points=\"{}\" data-bucket-seconds=\"{}\" data-unit=\"{symbol}\">",
        points.len(),
        chart.width,
    );
    gaps(page, &frame, &chart);
    axes(page, &frame, &chart);
    for (class, colour) in [("requests", "#1565c0"), ("throttled", "#c62828")] {
        lines(page, &frame, &chart, class, colour);
    }
    let legend = frame.right + 20.0;
    let _ = writeln!(
        page,
        "<rect x=\"{legend}\" y=\"14\" width=\"12\" height=\"4\" fill=\"#1565c0\"/><text x=\"{lx}\" y=\"20\">requests</text>\
         <rect x=\"{legend}\" y=\"32\" width=\"12\" height=\"4\" fill=\"#c62828\"/><text x=\"{lx}\" y=\"38\">429s</text>\
         <rect x=\"{legend}\" y=\"46\" width=\"12\" height=\"12\" fill=\"#eee\"/><text x=\"{lx}\" y=\"56\">nothing recorded</text></svg>",
        lx = legend + 18.0
    );
}

/// The runs of consecutive buckets: a line breaks where a bucket is absent.
fn segments(chart: &Chart) -> Vec<&[Bucket]> {
    let width = i64::try_from(chart.width).unwrap_or(i64::MAX);
    chart.points.chunk_by(|before, after| after.start - before.start <= width).collect()
}

/// A shaded band over each stretch with no bucket.
fn gaps(page: &mut String, frame: &Frame, chart: &Chart) {
    let width = i64::try_from(chart.width).unwrap_or(i64::MAX);
    for pair in segments(chart).windows(2) {
        let (Some(before), Some(after)) = (pair[0].last(), pair[1].first()) else { continue };
        let (from, to) = (frame.x(before.start.saturating_add(width)), frame.x(after.start));
        let _ = write!(
            page,
            "<rect class=\"gap\" x=\"{from:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#eee\">\
             <title>nothing recorded from {} to {}: no run of the job was going, or it sent no request</title></rect>",
            (to - from).max(1.0),
            frame.bottom - frame.top,
            utc(before.start.saturating_add(width)),
            utc(after.start),
            top = frame.top,
        );
    }
}

/// One count's lines (one per run of consecutive buckets) and its points, each with its bucket in words.
fn lines(page: &mut String, frame: &Frame, chart: &Chart, class: &str, colour: &str) {
    let count = |point: &Bucket| if class == "requests" { point.requests } else { point.throttled };
    for segment in segments(chart) {
        let coordinates: Vec<String> =
            segment.iter().map(|point| format!("{:.1},{:.1}", frame.x(point.start), frame.y(count(point)))).collect();
        let _ = writeln!(
            page,
            "<polyline class=\"{class}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            coordinates.join(" ")
        );
    }
    let radius = if chart.points.len() > 60 { 2 } else { 3 };
    for point in &chart.points {
        let _ = write!(
            page,
            "<circle class=\"{class}\" data-count=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{radius}\" fill=\"{colour}\">\
             <title>{} (+{}): {} requests, {} answered 429</title></circle>",
            count(point),
            frame.x(point.start),
            frame.y(count(point)),
            escape(&utc(point.start)),
            buckets::words(chart.width),
            point.requests,
            point.throttled
        );
    }
}

/// The axes: counts up the left, the time since the first bucket along the bottom in the axis's unit, and the first
/// and last buckets' times under it (the page's script turns them into the viewer's local time).
fn axes(page: &mut String, frame: &Frame, chart: &Chart) {
    let (x0, x1, y0, top) = (frame.left, frame.right, frame.bottom, frame.top);
    let (symbol, unit_words, unit_length) = unit(frame.span, chart.width);
    let _ = write!(
        page,
        "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#999\"/>\
         <line x1=\"{x0}\" y1=\"{top}\" x2=\"{x0}\" y2=\"{y0}\" stroke=\"#999\"/>\
         <line x1=\"{x0}\" y1=\"{top}\" x2=\"{x1}\" y2=\"{top}\" stroke=\"#eee\"/>\
         <text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{most}</text><text x=\"{lx}\" y=\"{y0}\" text-anchor=\"end\">0</text>\
         <text class=\"axis-title\" transform=\"translate(14 {my}) rotate(-90)\" text-anchor=\"middle\">requests per {per}</text>",
        lx = x0 - 6.0,
        ty = top + 4.0,
        most = frame.most,
        my = (top + y0) / 2.0,
        per = buckets::words(chart.width),
    );
    let Some(last) = chart.points.last() else {
        let _ = writeln!(page, "<text x=\"{x0}\" y=\"{}\">no requests recorded</text>", y0 + 16.0);
        return;
    };
    let step = tick_step(frame.span, unit_length);
    for offset in (0..=frame.span).step_by(usize::try_from(step).unwrap_or(usize::MAX)) {
        let x = frame.x(frame.first.saturating_add(i64::try_from(offset).unwrap_or(0)));
        let _ = write!(
            page,
            "<line x1=\"{x:.1}\" y1=\"{y0}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#999\"/>\
             <text class=\"tick\" x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{} {symbol}</text>",
            y0 + 4.0,
            y0 + 16.0,
            offset / unit_length,
        );
    }
    let (first, last) = (utc(frame.first), utc(last.start));
    let below = y0 + 36.0;
    let _ = writeln!(
        page,
        "<text class=\"axis-title\" x=\"{mid}\" y=\"{below}\" text-anchor=\"middle\">{unit_words} since the start</text>\
         <text x=\"{x0}\" y=\"{end}\" data-utc=\"{first}\">{first}</text>\
         <text x=\"{x1}\" y=\"{end}\" text-anchor=\"end\" data-utc=\"{last}\">{last}</text>",
        mid = (x0 + x1) / 2.0,
        end = below + 16.0,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Seconds;

    fn summary(minutes: Vec<super::super::MinuteCount>, seconds: Option<Seconds>) -> Summary {
        Summary { minutes, seconds, ..super::super::html::tests::empty() }
    }

    fn minute(at: u64, requests: u64) -> super::super::MinuteCount {
        super::super::MinuteCount { minute: utc(at as i64 * 60), requests, throttled: at % 2 }
    }

    #[test]
    fn a_night_recorded_in_minutes_is_drawn_in_5_minute_buckets() {
        let night = summary((0..600).map(|at| minute(1_000_000 + at, 10)).collect(), None);
        let chart = points(&night);
        assert_eq!((chart.width, chart.points.len()), (300, 120), "ten hours in 5-minute buckets");
        assert!(chart.points.iter().all(|point| point.requests == 50), "each bucket sums its minutes");
        assert_eq!(chart.points.iter().map(|point| point.throttled).sum::<u64>(), 300);
    }

    #[test]
    fn a_short_job_without_seconds_is_drawn_in_minutes() {
        let chart = points(&summary((0..3).map(|at| minute(1_000_000 + at, 7)).collect(), None));
        assert_eq!((chart.width, chart.points.len()), (60, 3), "a state file from before seconds were kept");
    }

    #[test]
    fn a_short_job_with_seconds_is_drawn_in_seconds_and_a_gap_stays_a_gap() {
        let run = |from: i64, to: i64| (from..to).map(|start| Bucket { start, requests: 2, throttled: 0 });
        let buckets: Vec<Bucket> = run(60_000, 60_040).chain(run(60_070, 60_100)).collect();
        let job = summary(vec![minute(1_000, 140)], Some(Seconds { width: 1, buckets }));
        let chart = points(&job);
        assert_eq!((chart.width, chart.points.len()), (1, 70));
        assert_eq!(segments(&chart).iter().map(|segment| segment.len()).collect::<Vec<_>>(), [40, 30]);
        let mut page = String::new();
        write(&mut page, &job);
        assert!(page.contains("<h2>Requests and 429s per 1 s</h2>"), "{page}");
        assert_eq!(page.matches("<polyline class=\"requests\"").count(), 2, "the line breaks at the gap");
        assert_eq!(page.matches("<rect class=\"gap\"").count(), 1);
        let ticks: Vec<&str> =
            page.split("<text class=\"tick\"").skip(1).filter_map(|tick| tick.split(['>', '<']).nth(1)).collect();
        assert_eq!(ticks, ["0 s", "20 s", "40 s", "60 s", "80 s"]);
        assert!(page.contains("seconds since the start"));
    }

    #[test]
    fn ticks_are_round_in_the_axis_unit() {
        assert_eq!((unit(120, 1).0, tick_step(120, 1)), ("s", 30));
        assert_eq!((unit(120, 60).0, tick_step(120, 60)), ("min", 60), "a short job drawn in minutes");
        assert_eq!((unit(36_000, 300).0, tick_step(36_000, 60)), ("min", 7_200));
        assert_eq!((unit(90_000, 900).0, tick_step(90_000, 3_600)), ("h", 21_600));
        assert_eq!(tick_step(2_000_000, 3_600), 432_000, "three weeks in steps of 5 days");
        assert_eq!(tick_step(0, 1), 1);
    }
}
