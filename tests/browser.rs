//! Issue 19, point 4: the summary page in a real browser (headless Chromium, Debian's `chromium` package). The page
//! of a job with every status an apply can end with, later rolled back, is written by the real binary
//! (`pcbulk report --format html`), then rendered: the DOM after the page's own script ran (`--dump-dom` with a
//! virtual time budget) holds the verdict first, the rollback at the top, the charts, times in the viewer's zone
//! with UTC beside, the labelled ids, and the status filter a fragment (`#show=failed`) drives; the screenshot is
//! kept in `docs/operator-page.png` with `PCBULK_KEEP_SCREENSHOT=1` (a different picture is no failure; a page that
//! does not render is).
//!
//! Without Chromium the test fails and says how to install it, unless `PCBULK_SKIP_BROWSER=1`.

use crate::common;

use common::WorkDir;
use common::rig::{self, Rig};
use pcbulk::engine::Mode;
use pcbulk::sandbox::Faults;
use pcbulk::state::{CallRecord, JobKind, Minute, PlannedRow, Recorder, RowOutcome, RowStatus, StateFile};
use scraper::{Html, Selector};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The browser, or why the test cannot run.
fn chromium() -> Option<PathBuf> {
    let candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];
    if let Some(found) = candidates.iter().map(PathBuf::from).find(|path| path.exists()) {
        return Some(found);
    }
    if std::env::var("PCBULK_SKIP_BROWSER").is_ok_and(|value| value == "1") {
        eprintln!("PCBULK_SKIP_BROWSER=1: the summary page is not checked in a browser");
        return None;
    }
    panic!(
        "this test renders the summary page in headless Chromium, which is not installed: \
         `sudo apt-get install -y chromium` (Debian/Ubuntu), or set PCBULK_SKIP_BROWSER=1 to skip it"
    );
}

/// Lines 2-3 updated, 4 unchanged, 5-7 failed (404, the same message but for the id), 8 invalid, 9 conflict,
/// 10-11 pending; 240 minutes of requests; then a rollback: 1 restored, 1 conflict.
fn every_status(path: &Path) {
    let mut state = StateFile::open_for_job(path).unwrap();
    let planned = |line: u64, status: RowStatus, error: &str| {
        let (customer_id, error, warnings) =
            (format!("{line:08x}-aaaa-4bbb-8ccc-{line:012x}"), error.into(), "".into());
        Ok(PlannedRow { line, customer_id, status, error, warnings, plan: None })
    };
    let rows = (2..=11).map(|line| match line {
        4 => planned(line, RowStatus::Unchanged, ""),
        8 => planned(line, RowStatus::Invalid, "column email: value \"x@\": not an email address"),
        10 | 11 => planned(line, RowStatus::Pending, ""),
        _ => planned(line, RowStatus::Pending, ""),
    });
    let apply = state.create_job(JobKind::Apply, "updates.csv", "hash", "http://127.0.0.1:1", rows).unwrap().unwrap();
    let recorder = Recorder::start(state, apply.id);
    let handle = recorder.handle();
    let call = |line: u64| CallRecord {
        attempts: Some(2),
        request_id: Some(format!("req-{line}")),
        correlation_id: Some(format!("corr-{line}")),
        ..CallRecord::default()
    };
    let outcome = |line: u64, status: RowStatus| RowOutcome::new(line, status).with_call(call(line));
    for line in 2..=3 {
        handle.record(outcome(line, RowStatus::Updated)).unwrap();
    }
    for line in 5..=7 {
        let error = format!("http 404: 600002: Customer {line:08x}-aaaa-4bbb-8ccc-{line:012x} was not found");
        let failed =
            CallRecord { http_status: Some(404), error_code: Some("600002".into()), error: Some(error), ..call(line) };
        handle.record(RowOutcome::new(line, RowStatus::Failed).with_call(failed)).unwrap();
    }
    let conflicted = CallRecord { error: Some("changed by someone else".into()), ..call(9) };
    let conflict = RowOutcome::new(9, RowStatus::Conflict).with_call(conflicted);
    handle.record(conflict).unwrap();
    let mut state = recorder.finish().unwrap();
    // On a 5-minute boundary: the chart's buckets are aligned on the clock, so 240 minutes make 48 of them.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 / 300 * 5;
    let minutes: Vec<Minute> = (0..240)
        .map(|at| Minute { minute: now - 240 + at, requests: 20 + (at as u64 % 7), throttled: at as u64 % 3 })
        .collect();
    state.add_minutes(apply.id, &minutes).unwrap();
    let (requests, throttled) =
        minutes.iter().fold((0, 0), |(r, t), minute| (r + minute.requests, t + minute.throttled));
    let figures = pcbulk::state::JobFigures { requests, throttled, settled_rate: Some(0.4) };
    state.finish_job(apply.id, &figures, false).unwrap();
    let apply = state.find_job(JobKind::Apply).unwrap().unwrap();
    let marker = pcbulk::state::rollback_marker(&apply);
    let back = [(2, RowStatus::Restored), (3, RowStatus::Conflict)].map(|(line, status)| planned(line, status, ""));
    let rollback = state.create_job(JobKind::Rollback, "updates.csv", &marker, "http://127.0.0.1:1", back.into_iter());
    let rollback = rollback.unwrap().unwrap();
    state.mark_finished(rollback.id).unwrap();
}

/// Runs the browser on the page and returns its stdout (`--dump-dom`) or nothing (`--screenshot`).
fn browse(browser: &Path, work: &WorkDir, what: &str, url: &str) -> String {
    let mut command = Command::new(browser);
    command
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars", "--mute-audio"])
        .arg(format!("--user-data-dir={}", work.path("chromium-profile").display()))
        .args(["--window-size=1200,1500", "--virtual-time-budget=3000", what, url])
        // The viewer is in India: local time is UTC+05:30, so local and UTC differ.
        .env("TZ", "Asia/Kolkata");
    let output = command.output().expect("chromium runs");
    assert!(output.status.success(), "chromium failed: {}", common::stderr(&output));
    common::stdout(&output)
}

fn select<'a>(page: &'a Html, selector: &str) -> Vec<scraper::ElementRef<'a>> {
    page.select(&Selector::parse(selector).unwrap()).collect()
}

fn text(element: &scraper::ElementRef) -> String {
    element.text().collect::<String>()
}

/// The pace chart's tick labels along its time axis.
fn ticks(dom: &Html) -> Vec<String> {
    select(dom, "svg#minutes text.tick").iter().map(text).collect()
}

/// The requests the pace chart's points add up to.
fn charted_requests(dom: &Html) -> u64 {
    select(dom, "svg#minutes circle.requests")
        .iter()
        .map(|point| point.value().attr("data-count").unwrap().parse::<u64>().unwrap())
        .sum()
}

/// Writes the page of the job in `state` with the real binary.
fn report_page(state: &Path, page: &Path) {
    let (state, page) = (state.to_str().unwrap(), page.to_str().unwrap());
    let output = common::pcbulk(&["report", "--state", state, "--format", "html", "--out", page]);
    assert!(output.status.success(), "{}", common::stderr(&output));
}

#[test]
fn the_page_renders_in_a_browser_with_the_verdict_first_and_a_working_filter() {
    let Some(browser) = chromium() else { return };
    let work = WorkDir::new();
    let state = work.path("updates.csv.pcbulk.db");
    every_status(&state);
    let page = work.path("page.html");
    let output = common::pcbulk(&[
        "report",
        "--state",
        state.to_str().unwrap(),
        "--format",
        "html",
        "--out",
        page.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    let url = format!("file://{}", page.display());

    let dom = Html::parse_document(&browse(&browser, &work, "--dump-dom", &url));
    let body: Vec<_> = select(&dom, "body > *");
    assert_eq!(body[0].value().attr("id"), Some("verdict"), "the verdict is the first thing on the page");
    assert_eq!(text(&body[0]), "7 of 10 rows need attention: 3 failed, 1 invalid, 1 conflict, 2 pending");
    assert!(body[0].value().classes().any(|class| class == "attention"), "in the colour of a job to look at");
    assert_eq!(body[1].value().attr("id"), Some("rolled-back"), "the rollback right under the verdict");
    assert!(text(&body[1]).contains("rolled back") && text(&body[1]).contains("1 restored, 1 conflict, 0 left"));

    // Times: the viewer's local time (the browser's TZ), UTC beside it.
    let started = select(&dom, "dd[data-field=started] time")[0];
    let utc = started.value().attr("datetime").unwrap();
    let local = humantime::parse_rfc3339(utc).unwrap() + Duration::from_secs(5 * 3600 + 30 * 60);
    let local = humantime::format_rfc3339_seconds(local).to_string().replace('T', " ").replace('Z', " (UTC+05:30)");
    let utc_words = utc.replace('T', " ").replace('Z', " UTC");
    assert_eq!(text(&started), format!("{local} \u{b7} {utc_words}"), "local time first, UTC beside it");

    // The charts: a bar per status with the state file's counts; the pace in buckets that suit four hours.
    let bars: Vec<(String, String)> = select(&dom, "svg#counts g.bar")
        .iter()
        .map(|bar| (bar.value().attr("data-status").unwrap().into(), bar.value().attr("data-count").unwrap().into()))
        .collect();
    let expected =
        [("updated", "2"), ("unchanged", "1"), ("failed", "3"), ("invalid", "1"), ("conflict", "1"), ("pending", "2")];
    assert_eq!(bars, expected.map(|(status, count)| (status.to_string(), count.to_string())));
    let pace = select(&dom, "svg#minutes")[0];
    assert_eq!(pace.value().attr("data-bucket-seconds"), Some("300"), "four hours in 5-minute buckets");
    assert_eq!(pace.value().attr("data-points"), Some("48"));
    let line = select(&dom, "svg#minutes polyline.requests")[0].value().attr("points").unwrap();
    assert_eq!(line.split_whitespace().count(), 48, "one point per bucket");
    assert!(select(&dom, "h2").iter().any(|h2| text(h2) == "Requests and 429s per 5 minutes"));
    assert_eq!(pace.value().attr("data-unit"), Some("min"), "the time axis in minutes");
    assert_eq!(ticks(&dom), ["0 min", "60 min", "120 min", "180 min"], "labelled in the axis's unit");

    // Top errors by message shape; the ids labelled.
    let errors: Vec<Vec<String>> = select(&dom, "table#errors tbody tr")
        .iter()
        .map(|row| row.child_elements().map(|cell| text(&cell)).collect())
        .collect();
    assert_eq!(errors[0], ["600002", "Customer <id> was not found", "3"], "{errors:?}");
    let heads: Vec<String> = select(&dom, "table#problems thead th").iter().map(text).collect();
    assert!(heads.iter().any(|head| head.starts_with("request id")), "{heads:?}");
    assert!(heads.iter().any(|head| head == "correlation id"), "{heads:?}");
    assert_eq!(text(&select(&dom, "tr[data-status=failed] td.request-id")[0]), "req-5");
    assert_eq!(text(&select(&dom, "tr[data-status=failed] td.correlation-id")[0]), "corr-5");
    assert!(select(&dom, "table#problems tbody tr[hidden]").is_empty(), "no filter asked: every row shown");

    // The filter, driven by the address's fragment through the page's script.
    let filtered = Html::parse_document(&browse(&browser, &work, "--dump-dom", &format!("{url}#show=failed")));
    assert_eq!(select(&filtered, "table#problems[data-show=failed]").len(), 1, "the script read the fragment");
    let rows = select(&filtered, "table#problems tbody tr");
    let shown: Vec<&str> = rows
        .iter()
        .filter(|row| row.value().attr("hidden").is_none())
        .map(|row| row.value().attr("data-status").unwrap())
        .collect();
    assert_eq!(shown, ["failed"; 3], "only the failed rows are shown");
    assert_eq!(rows.len(), 7, "the others are hidden, not gone");

    // The picture for docs/: a PNG of the page (a different picture from the one kept is no failure).
    let shot = work.path("page.png");
    browse(&browser, &work, &format!("--screenshot={}", shot.display()), &url);
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a picture of the page: {} bytes", png.len());
    // Kept in docs/ on request only, so a test run leaves the work tree as it found it:
    // `PCBULK_KEEP_SCREENSHOT=1 cargo test --test all browser::` refreshes the picture README shows.
    if std::env::var_os("PCBULK_KEEP_SCREENSHOT").is_some_and(|value| value == "1") {
        let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operator-page.png");
        std::fs::write(kept, png).expect("docs/operator-page.png is writable");
    }
}

/// A short job stopped by its canary, resumed 3 s later and run to its end: its pace chart is drawn in 1 s buckets,
/// both runs with the gap between them, and its points add up to the job's requests. The same state file without its
/// seconds (as a pcbulk from before they were kept wrote it) is drawn in minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_resumed_job_is_charted_in_seconds_with_the_gap_and_an_older_state_file_in_minutes() {
    let Some(browser) = chromium() else { return };
    let rig = Rig::start(12, Faults::default(), 3, "").await;
    let mut config = rig.apply_config(Mode::Apply, 20);
    config.guard.canary = Some(4);
    rig::apply(&config).await;
    // The gap under test is wall-clock time with no run going; nothing waits on it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    config.guard.canary = None;
    let outcome = rig::apply(&config).await;
    assert_eq!(rig::count(&outcome, RowStatus::Updated), 12, "the canary's 4 rows, then the other 8");
    let requests = {
        let state = StateFile::open_existing(&config.state).unwrap();
        state.find_job(JobKind::Apply).unwrap().unwrap().requests
    };
    let page = rig.work.path("page.html");
    report_page(&config.state, &page);
    let dom = Html::parse_document(&browse(&browser, &rig.work, "--dump-dom", &format!("file://{}", page.display())));
    let pace = select(&dom, "svg#minutes")[0];
    assert_eq!(pace.value().attr("data-bucket-seconds"), Some("1"), "a job of seconds in 1 s buckets");
    assert!(select(&dom, "h2").iter().any(|h2| text(h2) == "Requests and 429s per 1 s"));
    assert_eq!(pace.value().attr("data-unit"), Some("s"));
    let ticks = ticks(&dom);
    assert_eq!(ticks.first().map(String::as_str), Some("0 s"), "{ticks:?}");
    assert!(ticks.len() >= 2 && ticks.iter().all(|tick| tick.ends_with(" s")), "{ticks:?}");
    assert_eq!(select(&dom, "svg#minutes polyline.requests").len(), 2, "a line for each run");
    assert_eq!(select(&dom, "svg#minutes rect.gap").len(), 1, "the gap between the runs, shaded");
    let charted = charted_requests(&dom);
    assert_eq!(charted, requests, "the chart's points add up to the job's requests");

    // The same job as a pcbulk from before the seconds were kept left it: the table absent.
    let connection = rusqlite::Connection::open(&config.state).unwrap();
    connection.execute_batch("DROP TABLE seconds").unwrap();
    drop(connection);
    let older = rig.work.path("older.html");
    report_page(&config.state, &older);
    let dom = Html::parse_document(&browse(&browser, &rig.work, "--dump-dom", &format!("file://{}", older.display())));
    let pace = select(&dom, "svg#minutes")[0];
    assert_eq!(pace.value().attr("data-bucket-seconds"), Some("60"), "an older state file in minute buckets");
    assert!(select(&dom, "h2").iter().any(|h2| text(h2) == "Requests and 429s per minute"));
    assert_eq!(pace.value().attr("data-unit"), Some("min"));
    let charted = charted_requests(&dom);
    assert_eq!(charted, requests, "its minutes add up to the job's requests too");
}
