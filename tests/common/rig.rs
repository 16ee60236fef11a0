//! The in-process rig of the integration tests: a customer id of the tests' own making, a sandbox as the API of a
//! job, and the job's configuration with the library's defaults (`ApplyConfig::new`), so a test names only what it
//! changes.

use super::WorkDir;
use pcbulk::client::ApiConfig;
use pcbulk::engine::Mode;
use pcbulk::job::{self, ApplyConfig, JobOutcome};
use pcbulk::pace::PaceConfig;
use pcbulk::progress::Silent;
use pcbulk::sandbox::{Faults, Sandbox, SandboxConfig};
use pcbulk::state::RowStatus;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A customer id of the tests' own making.
pub fn customer(index: usize) -> String {
    format!("{index:08x}-aaaa-4bbb-8ccc-{index:012x}")
}

/// A pace: requests per second, requests in flight, attempts per request.
pub fn pace(rate: u32, concurrency: usize, attempts: u32) -> PaceConfig {
    PaceConfig::new(
        NonZeroU32::new(rate).expect("a rate above 0"),
        NonZeroUsize::new(concurrency).expect("a concurrency above 0"),
        NonZeroU32::new(attempts).expect("attempts above 0"),
    )
}

/// The sandbox as the API of a job, through its own token endpoint (as `apply --sandbox` does).
pub fn api(sandbox: &Sandbox, pace: PaceConfig) -> ApiConfig {
    pcbulk::cli::sandbox::sandbox_api_config(sandbox, pace).expect("the sandbox's URL is a base URL")
}

/// An apply job over `csv` with its state file and report where the test wants them, everything else the default.
pub fn apply_config(csv: PathBuf, state: PathBuf, report: PathBuf, api: ApiConfig) -> ApplyConfig {
    ApplyConfig::new(csv, state, report, api)
}

/// Runs an apply job to its end, showing nothing, never cancelled.
pub async fn apply(config: &ApplyConfig) -> JobOutcome {
    job::apply(config, Arc::new(Silent), CancellationToken::new()).await.expect("the job runs")
}

/// How many rows of a job ended with `status`.
pub fn count(outcome: &JobOutcome, status: RowStatus) -> u64 {
    outcome.counts.get(&status).copied().unwrap_or_default()
}

/// A sandbox with `rows` customers (`customer(0..rows)`, their profiles generated from `seed`) and, in a work dir,
/// `updates.csv` moving each to `City {index}` and renaming it `Company {index}`, then `extra_lines`.
pub struct Rig {
    pub work: WorkDir,
    pub sandbox: Sandbox,
    pub csv: PathBuf,
    pub rows: usize,
}

impl Rig {
    pub async fn start(rows: usize, faults: Faults, seed: u64, extra_lines: &str) -> Rig {
        let work = WorkDir::new();
        let ids: Vec<String> = (0..rows).map(customer).collect();
        let config = SandboxConfig { customer_ids: ids.clone(), faults, seed, ..SandboxConfig::default() };
        let sandbox = Sandbox::start(config).await.expect("the sandbox starts");
        let mut text = String::from("customer_id,companyName,defaultAddress.city\n");
        for (index, id) in ids.iter().enumerate() {
            text.push_str(&format!("{id},Company {index},City {index}\n"));
        }
        text.push_str(extra_lines);
        let csv = work.write("updates.csv", text);
        Rig { work, sandbox, csv, rows }
    }

    /// The sandbox as the API, at `rate` requests per second, 8 in flight, 6 attempts.
    pub fn api(&self, rate: u32) -> ApiConfig {
        api(&self.sandbox, pace(rate, 8, 6))
    }

    /// The job over `updates.csv`: its state file where `apply` puts it by default, its report `report.csv`.
    pub fn apply_config(&self, mode: Mode, rate: u32) -> ApplyConfig {
        let (state, report) = (self.work.path("updates.csv.pcbulk.db"), self.work.path("report.csv"));
        ApplyConfig { mode, ..apply_config(self.csv.clone(), state, report, self.api(rate)) }
    }
}
