//! End-to-end figures of `apply`, printed as ratios: `cargo bench --bench e2e`.
//!
//! In-process sandbox: the request budget (a rate-limited, 40 ms sandbox) and requests per row. A sandbox in a
//! separate process (this build's `pcbulk sandbox`): CPU per row, peak RSS, resume time, and validate of 1M rows,
//! each measured on a `pcbulk` child under `/usr/bin/time`. Set `PCBULK_E2E_MILLION=1` to add the 1M-row apply.
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
        Separate::start_with(csv, &[])
    }

    /// With more of `pcbulk sandbox`'s flags (a latency, say).
    fn start_with(csv: &Path, flags: &[&str]) -> Separate {
        let mut child = Command::new(PCBULK)
            .args(["sandbox", "--port", "0", "--seed-from"])
            .arg(csv)
            .args(flags)
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

/// Issue 20 point 4: client CPU per changed row against `pcbulk sandbox` answering each request after
/// `latency_ms` (`--rate 100000 --concurrency 16`: the pace never waits, the latency alone spaces the answers).
fn cpu_at_latency(dir: &Path, rows: usize, latency_ms: u64) -> f64 {
    let csv = dir.join(format!("latency-{latency_ms}-{rows}.csv"));
    write_csv(&csv, rows);
    let latency = latency_ms.to_string();
    let sandbox = Separate::start_with(&csv, &["--latency-ms", &latency]);
    let csv_text = csv.display().to_string();
    let args = ["apply", &csv_text, "--rate", "100000", "--concurrency", "16"];
    let env = [("PCBULK_TOKEN", sandbox.token.as_str()), ("PCBULK_BASE_URL", sandbox.url.as_str())];
    let applied = measure(&args, &env);
    let per_row = applied.cpu / rows as f64 * 1e6;
    let split = format!("{:.2} s user + {:.2} s system, {:.2} s wall", applied.user, applied.system, applied.wall);
    line(
        &format!("cpu per row at {latency_ms} ms latency, {rows} rows, --concurrency 16"),
        format!("{per_row:.1} µs ({split})"),
        "target: at 40 ms within 2x of 0 ms",
    );
    per_row
}

/// CPU per row at 0, 3 and 40 ms of latency, and the ratio of the slowest service's to the fastest's.
fn cpu_at_latencies() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let fastest = cpu_at_latency(dir.path(), 20_000, 0);
    cpu_at_latency(dir.path(), 20_000, 3);
    let slowest = cpu_at_latency(dir.path(), 4_000, 40);
    line("cpu per row, 40 ms / 0 ms latency", format!("{:.2}", slowest / fastest), "target <= 2");
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
    // `PCBULK_E2E_ONLY=latency`: the CPU-per-row-at-latency figures alone.
    if std::env::var("PCBULK_E2E_ONLY").is_ok_and(|value| value == "latency") {
        drop(runtime);
        cpu_at_latencies();
        return;
    }
    runtime.block_on(async {
        budget(600, 100, 100, 40, None).await;
        budget(600, 100, 200, 40, None).await;
        budget(600, 100, 100, 40, Some(2.0)).await;
        budget(600, 100, 200, 40, Some(2.0)).await;
        requests_per_row(1000).await;
    });
    drop(runtime);
    separate(std::env::var("PCBULK_E2E_MILLION").is_ok_and(|value| value == "1"));
    cpu_at_latencies();
}
