//! End-to-end figures of `apply`, printed as ratios: `cargo bench --bench e2e`.
//!
//! In-process sandbox: the request budget (a rate-limited, 40 ms sandbox) and requests per row. A sandbox in a
//! separate process (this build's `pcbulk sandbox`): CPU per row, peak RSS, resume time, and validate of 1M rows,
//! each measured on a `pcbulk` child under `/usr/bin/time`. Set `PCBULK_E2E_MILLION=1` to add the 1M-row apply.
//! Issue 20's pace figures (`pace_figures`): the share of `--rate` used at 100 ms, 1 s and 2 s latency, and a start
//! at ten times a strict limiter's rate; `PCBULK_E2E_LONG=1` makes the latency jobs 300 s long instead of 30 s.
//! Run by `cargo test` (no `--bench` argument) it does a tiny in-process smoke run only.

use pcbulk::engine::Ending;
use pcbulk::job::{self, ApplyConfig};
use pcbulk::pace::PaceConfig;
use pcbulk::progress::Silent;
use pcbulk::sandbox::{Faults, Sandbox, SandboxConfig};
use std::io::{BufRead, BufReader, Write};
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const PCBULK: &str = env!("CARGO_BIN_EXE_pcbulk");

fn customer(index: usize) -> String {
    format!("{index:08x}-aaaa-4bbb-8ccc-{index:012x}")
}

/// A CSV moving `rows` customers to a new city and renaming their company.
fn write_csv(path: &Path, rows: usize) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("a writable temp dir"));
    writeln!(file, "customer_id,companyName,defaultAddress.city").expect("write");
    for index in 0..rows {
        writeln!(file, "{},Company {index},City {index}", customer(index)).expect("write");
    }
    file.flush().expect("write");
}

fn line(figure: &str, value: String, target: &str) {
    println!("{figure}: {value} ({target})");
}

/// Customer billing requests the sandbox saw, and how many it answered 429.
fn seen(sandbox: &Sandbox) -> (u64, u64) {
    let counters = sandbox.counters();
    (counters.requests_by_route.get("customer_billing").copied().unwrap_or_default(), counters.throttled)
}

struct InProcess {
    dir: tempfile::TempDir,
    sandbox: Sandbox,
    csv: PathBuf,
}

impl InProcess {
    async fn start(rows: usize, faults: Faults) -> InProcess {
        let dir = tempfile::tempdir().expect("a temp dir");
        let config = SandboxConfig { customer_ids: (0..rows).map(customer).collect(), faults, ..Default::default() };
        let sandbox = Sandbox::start(config).await.expect("the sandbox starts");
        let csv = dir.path().join("updates.csv");
        write_csv(&csv, rows);
        InProcess { dir, sandbox, csv }
    }

    fn config(&self, rate: u32, concurrency: usize) -> ApplyConfig {
        let _credentials = self.sandbox.credentials();
        let api = pcbulk::cli::sandbox::sandbox_api_config(
            &self.sandbox,
            PaceConfig::new(
                NonZeroU32::new(rate).expect("a rate"),
                NonZeroUsize::new(concurrency).expect("a concurrency"),
                NonZeroU32::new(6).expect("attempts"),
            ),
        )
        .unwrap();
        let (state, report) = (self.dir.path().join("updates.csv.pcbulk.db"), self.dir.path().join("report.csv"));
        ApplyConfig { restart: true, yes: true, ..ApplyConfig::new(self.csv.clone(), state, report, api) }
    }

    /// Runs the job; the sandbox's (requests, 429s) it cost, and its wall time.
    async fn apply(&self, config: &ApplyConfig) -> (u64, u64, Duration) {
        let (requests, throttled) = seen(&self.sandbox);
        let started = Instant::now();
        let outcome = job::apply(config, Arc::new(Silent), CancellationToken::new()).await.expect("the job runs");
        let elapsed = started.elapsed();
        assert_eq!(outcome.ending, Ending::Complete);
        let (after, after_throttled) = seen(&self.sandbox);
        (after - requests, after_throttled - throttled, elapsed)
    }
}

/// (a) The budget: a 600-row job against a sandbox limited to `limit`/s with 40 ms latency, at `--rate rate`. The
/// sandbox's token bucket holds one second's worth, or `burst` (2: a strict limiter, another server's shape).
async fn budget(rows: usize, limit: u32, rate: u32, latency_ms: u64, burst: Option<f64>) {
    let faults = Faults { rate_limit: Some(f64::from(limit)), rate_burst: burst, latency_ms, ..Faults::default() };
    let rig = InProcess::start(rows, faults).await;
    let (requests, throttled, elapsed) = rig.apply(&rig.config(rate, 8)).await;
    let useful = requests - throttled;
    let used = (useful as f64 / f64::from(limit)) / elapsed.as_secs_f64();
    let shape = burst.map_or(String::new(), |burst| format!(", burst {burst}"));
    let label = format!("budget, {rows} rows, limit {limit}/s{shape}, {latency_ms} ms, --rate {rate}");
    line(&format!("{label}: share of budget used"), format!("{used:.3}"), "target >= 0.98, done >= 0.90");
    line(
        &format!("{label}: 429s per request"),
        format!(
            "{:.2}% ({throttled} of {requests}, {:.2} s)",
            100.0 * throttled as f64 / requests as f64,
            elapsed.as_secs_f64()
        ),
        "target <= 1%, done < 2%",
    );
}

/// (b) Requests per changed row, then per unchanged row (the same CSV again, from scratch).
async fn requests_per_row(rows: usize) {
    let rig = InProcess::start(rows, Faults::default()).await;
    let config = rig.config(100_000, 8);
    let (changed, _, _) = rig.apply(&config).await;
    let (unchanged, _, _) = rig.apply(&config).await;
    line("requests per changed row", format!("{:.2}", changed as f64 / rows as f64), "target 2.00");
    line("requests per unchanged row", format!("{:.2}", unchanged as f64 / rows as f64), "target 1.00");
}

/// A `pcbulk sandbox` child seeded from a CSV: the process, its base URL and a ready token.
struct Separate {
    child: Child,
    url: String,
    token: String,
}

impl Separate {
    fn start(csv: &Path) -> Separate {
        let mut child = Command::new(PCBULK)
            .args(["sandbox", "--port", "0", "--seed-from"])
            .arg(csv)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("pcbulk sandbox starts");
        let stdout = child.stdout.take().expect("a piped stdout");
        let (mut url, mut token) = (None, None);
        let mut lines = BufReader::new(stdout).lines();
        for text in lines.by_ref().map_while(Result::ok) {
            if let Some(rest) = text.strip_prefix("export PCBULK_TOKEN=") {
                token = Some(rest.to_string());
            } else if let Some(rest) = text.strip_prefix("--base-url ") {
                url = Some(rest.to_string());
            }
            if url.is_some() && token.is_some() {
                break;
            }
        }
        // Read the rest: a sandbox whose stdout is closed fails its next write and stops.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        let (Some(url), Some(token)) = (url, token) else { panic!("pcbulk sandbox printed no url and token") };
        Separate { child, url, token }
    }
}

impl Drop for Separate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `/usr/bin/time` says of a `pcbulk` child: user + system CPU seconds, peak RSS in KiB, wall seconds.
struct Measured {
    user: f64,
    system: f64,
    cpu: f64,
    rss_kib: u64,
    wall: f64,
}

fn measure(args: &[&str], env: &[(&str, &str)]) -> Measured {
    let output = Command::new("/usr/bin/time")
        .args(["-f", "PCBULK-E2E %U %S %M %e", PCBULK])
        .args(args)
        .env_remove("PCBULK_TOKEN")
        .env_remove("PCBULK_BASE_URL")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .output()
        .expect("/usr/bin/time runs pcbulk");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let Some(figures) = stderr.lines().rev().find_map(|text| text.strip_prefix("PCBULK-E2E ")) else {
        panic!("no figures from /usr/bin/time: {stderr}")
    };
    let value: Vec<f64> = figures.split_whitespace().map(|field| field.parse().unwrap_or(f64::NAN)).collect();
    assert!(output.status.success(), "pcbulk {args:?} failed: {stderr}");
    Measured { user: value[0], system: value[1], cpu: value[0] + value[1], rss_kib: value[2] as u64, wall: value[3] }
}

/// (c), (d), (e): apply `rows` against a separate sandbox (`--concurrency 8`, the default), then resume the
/// finished job.
fn separate_apply(dir: &Path, rows: usize) -> Measured {
    separate_apply_with(dir, rows, 8)
}

fn separate_apply_with(dir: &Path, rows: usize, concurrency: usize) -> Measured {
    let csv = dir.join(format!("apply-{rows}-{concurrency}.csv"));
    write_csv(&csv, rows);
    let sandbox = Separate::start(&csv);
    let csv_text = csv.display().to_string();
    let concurrency_text = concurrency.to_string();
    let args = ["apply", &csv_text, "--rate", "1000000", "--concurrency", &concurrency_text];
    let env = [("PCBULK_TOKEN", sandbox.token.as_str()), ("PCBULK_BASE_URL", sandbox.url.as_str())];
    let applied = measure(&args, &env);
    let per_row = applied.cpu / rows as f64 * 1e6;
    let split = format!("{:.2} s user + {:.2} s system, {:.2} s wall", applied.user, applied.system, applied.wall);
    let figure = format!("cpu per row, {rows} rows, --concurrency {concurrency}");
    line(&figure, format!("{per_row:.1} µs ({split})"), "target < 50 µs");
    line(
        &format!("peak rss, apply {rows} rows, --concurrency {concurrency}"),
        format!("{:.1} MiB", applied.rss_kib as f64 / 1024.0),
        "target < 64 MiB",
    );
    let resumed = measure(&args, &env);
    line(
        &format!("resume of a finished job, {rows} rows, --concurrency {concurrency}"),
        format!("{:.2} s ({:.1} MiB)", resumed.wall, resumed.rss_kib as f64 / 1024.0),
        "target < 3 s at 1M",
    );
    applied
}

fn separate(full_million: bool) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let small = separate_apply(dir.path(), 10_000);
    let mut sizes = vec![100_000];
    if full_million {
        sizes.push(1_000_000);
    }
    for rows in sizes {
        let large = separate_apply(dir.path(), rows);
        line(
            &format!("peak rss ratio, {rows} / 10k rows"),
            format!("{:.2}", large.rss_kib as f64 / small.rss_kib as f64),
            "target <= 1.2 at 1M",
        );
    }
    // More requests in flight: the client sleeps and wakes less often per row.
    separate_apply_with(dir.path(), 100_000, 32);
    let csv = dir.path().join("validate-1m.csv");
    write_csv(&csv, 1_000_000);
    let validated = measure(&["validate", &csv.display().to_string()], &[]);
    line(
        "validate, 1M rows",
        format!("{:.2} s, {:.1} MiB peak rss", validated.wall, validated.rss_kib as f64 / 1024.0),
        "target < 2 s",
    );
}

/// The sandbox's customer-billing requests and 429s, sampled every 100 ms while a job runs: (seconds since the start,
/// requests, 429s).
struct Samples(Vec<(f64, u64, u64)>);

impl Samples {
    /// Samples `sandbox` until `stop` is cancelled.
    async fn collect(sandbox: &Sandbox, stop: &CancellationToken) -> Samples {
        let started = Instant::now();
        let mut samples = Vec::new();
        loop {
            let (requests, throttled) = seen(sandbox);
            samples.push((started.elapsed().as_secs_f64(), requests, throttled));
            if stop.is_cancelled() {
                return Samples(samples);
            }
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// The rate of requests between the moments 5% and 95% of them had arrived: the steady pace, without the job's
    /// start (planning) and end (the last rows' PUTs wait for their GETs' answers).
    fn steady_rate(&self) -> f64 {
        let total = self.0.last().map_or(0, |sample| sample.1) as f64;
        let at = |share: f64| {
            self.0.iter().find(|sample| sample.1 as f64 >= share * total).map(|sample| (sample.0, sample.1))
        };
        match (at(0.05), at(0.95)) {
            (Some((from, low)), Some((to, high))) if to > from => (high - low) as f64 / (to - from),
            _ => 0.0,
        }
    }

    /// The first moment the rate of answered (not 429) requests over the second before reached `rate`.
    fn reached(&self, rate: f64) -> Option<f64> {
        self.0.iter().enumerate().find_map(|(index, &(at, requests, throttled))| {
            let before = self.0[..index].iter().rev().find(|sample| at - sample.0 >= 1.0)?;
            let useful = (requests - throttled) - (before.1 - before.2);
            (useful as f64 / (at - before.0) >= rate).then_some(at)
        })
    }
}

/// Runs `config` on `rig` while sampling the sandbox.
async fn apply_sampled(rig: &InProcess, config: &ApplyConfig) -> ((u64, u64, Duration), Samples) {
    let stop = CancellationToken::new();
    let applying = async {
        let figures = rig.apply(config).await;
        stop.cancel();
        figures
    };
    tokio::join!(applying, Samples::collect(&rig.sandbox, &stop))
}

/// Issue 20: the share of `--rate` a job with the default options uses against a service answering in
/// `latency_ms`, with no limit below the rate. `PCBULK_E2E_LONG=1` runs each for 300 s instead of 30 s.
async fn budget_at_latency(latency_ms: u64, rate: u32, seconds: u64) {
    let rows = (u64::from(rate) * seconds / 2) as usize;
    let rig = InProcess::start(rows, Faults { latency_ms, ..Faults::default() }).await;
    let config = rig.config(rate, pcbulk::pace::DEFAULT_MAX_CONCURRENCY);
    let ((requests, _, elapsed), samples) = apply_sampled(&rig, &config).await;
    let label = format!("budget at latency, {rows} rows, {latency_ms} ms, --rate {rate}, default options");
    let steady = samples.steady_rate() / f64::from(rate);
    let whole = requests as f64 / f64::from(rate) / elapsed.as_secs_f64();
    line(&format!("{label}: share of --rate, steady"), format!("{steady:.3}"), "target >= 0.97");
    line(
        &format!("{label}: share of --rate, whole job"),
        format!("{whole:.3} ({requests} requests, {:.1} s)", elapsed.as_secs_f64()),
        "the last rows' answers and planning included",
    );
    line(&format!("{label}: most requests in flight"), rig.sandbox.counters().max_in_flight.to_string(), "");
}

/// Issue 20: a job started at ten times what a strict limiter (burst 1) allows, for about `seconds` at the limit.
async fn far_above_the_limit(limit: u32, seconds: u64) {
    let faults =
        Faults { rate_limit: Some(f64::from(limit)), rate_burst: Some(1.0), latency_ms: 40, ..Faults::default() };
    let rows = (u64::from(limit) * seconds / 2) as usize;
    let rig = InProcess::start(rows, faults).await;
    let rate = limit * 10;
    let config = rig.config(rate, pcbulk::pace::DEFAULT_MAX_CONCURRENCY);
    let ((requests, throttled, elapsed), samples) = apply_sampled(&rig, &config).await;
    let used = ((requests - throttled) as f64 / f64::from(limit)) / elapsed.as_secs_f64();
    let label = format!("from far above, {rows} rows, strict limit {limit}/s (burst 1), 40 ms, --rate {rate}");
    line(
        &format!("{label}: share of budget used"),
        format!("{used:.3} ({:.1} s)", elapsed.as_secs_f64()),
        "target >= 0.90",
    );
    line(
        &format!("{label}: 429s per request"),
        format!("{:.2}% ({throttled} of {requests})", 100.0 * throttled as f64 / requests as f64),
        "target <= 2%",
    );
    let reached = samples.reached(0.95 * f64::from(limit)).map_or("never".to_string(), |at| format!("{at:.1} s"));
    line(&format!("{label}: 0.95 of the limit reached after"), reached, "target <= 20 s");
}

/// Issue 20's pace figures (in their own function: other figures share this file).
async fn pace_figures() {
    let seconds = if std::env::var("PCBULK_E2E_LONG").is_ok_and(|value| value == "1") { 300 } else { 30 };
    for latency_ms in [100, 1000, 2000] {
        budget_at_latency(latency_ms, 20, seconds).await;
    }
    far_above_the_limit(100, 60).await;
}

fn main() {
    let bench = std::env::args().any(|arg| arg == "--bench");
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime");
    if !bench {
        runtime.block_on(async {
            budget(20, 1000, 1000, 0, None).await;
            requests_per_row(10).await;
        });
        return;
    }
    if std::env::var("PCBULK_E2E_ONLY").is_ok_and(|value| value == "limit") {
        // Only the figures against a limiter (issue 20 point 3 and the budget at the limit): a quick re-measure.
        runtime.block_on(async {
            budget(600, 100, 100, 40, None).await;
            budget(600, 100, 200, 40, None).await;
            budget(600, 100, 100, 40, Some(2.0)).await;
            budget(600, 100, 200, 40, Some(2.0)).await;
            far_above_the_limit(100, 60).await;
        });
        return;
    }
    runtime.block_on(async {
        budget(600, 100, 100, 40, None).await;
        budget(600, 100, 200, 40, None).await;
        budget(600, 100, 100, 40, Some(2.0)).await;
        budget(600, 100, 200, 40, Some(2.0)).await;
        requests_per_row(1000).await;
        pace_figures().await;
    });
    drop(runtime);
    separate(std::env::var("PCBULK_E2E_MILLION").is_ok_and(|value| value == "1"));
}
