//! `pcbulk sandbox`: the flags, their resolution into the sandbox's plain `SandboxConfig` (the sandbox itself sees
//! no clap type and nothing of the crate but `wire`), and serving until Ctrl-C. Also the sandbox as the API of a job
//! (`apply --sandbox`, the tests, the benches), which only the command line may build: it joins the sandbox to the
//! client's configuration.

use super::{Exit, parse_delimiter};
use crate::auth::{Credentials, Secret};
use crate::client::{ApiConfig, ClientConfig};
use crate::input::InputConfig;
use crate::pace::PaceConfig;
use crate::sandbox::{
    AcceptedCredentials, Faults, Sandbox, SandboxConfig, SandboxError, StaleEtag, SupportPutPath, read_profiles,
};
use anyhow::Context;
use clap::Args;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Runs `pcbulk sandbox`: seeds the `--seed-from` CSV's customers too, and serves on all cores until Ctrl-C.
pub fn run(args: SandboxArgs) -> anyhow::Result<Exit> {
    let ids = match &args.seed_from {
        Some(path) => {
            let input = InputConfig { delimiter: parse_delimiter(&args.delimiter)?, sheet: None };
            customer_ids(path, &input).with_context(|| format!("--seed-from {}", path.display()))?
        }
        None => Vec::new(),
    };
    let runtime = server_runtime()?;
    runtime.block_on(serve(args, ids, async {
        // An error here means no Ctrl-C handler could be installed: serve until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }))?;
    Ok(Exit::Clean)
}

/// The runtime of `pcbulk sandbox`: a server answering many connections at once uses every core.
fn server_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// The distinct customer ids of a CSV, in order, read by `input` as `apply` reads them (to seed a sandbox): every
/// record's id cell that is a GUID, valid row or not, lower-cased.
pub fn customer_ids(path: &Path, input: &InputConfig) -> anyhow::Result<Vec<String>> {
    let reader = crate::input::open_ids(path, input)?.without_duplicate_check();
    let mut seen = std::collections::HashSet::new();
    let mut ids = Vec::new();
    for record in reader {
        let Some(id) = crate::input::CustomerId::parse(&record?.customer_cell) else { continue };
        if seen.insert(id) {
            ids.push(id.to_string());
        }
    }
    Ok(ids)
}

/// The API settings of an in-process sandbox (`apply --sandbox`, the tests, the benches): its URL, and app
/// credentials through its own token endpoint, so even a rehearsal runs a real token flow.
pub fn sandbox_api_config(sandbox: &Sandbox, pace: PaceConfig) -> Result<ApiConfig, crate::client::ClientError> {
    let credentials = sandbox.credentials();
    Ok(ApiConfig {
        client: ClientConfig::new(sandbox.url())?,
        credentials: Credentials::ClientCredentials {
            authority: sandbox.url().to_string(),
            tenant: "sandbox-tenant".to_string(),
            client_id: credentials.client_id.clone(),
            client_secret: Secret::new(credentials.client_secret.clone()),
        },
        pace,
    })
}

/// Serve a Partner Center stand-in on 127.0.0.1 until Ctrl-C.
#[derive(Clone, Debug, Args)]
pub struct SandboxArgs {
    /// The port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// How many customers to generate.
    #[arg(long, default_value_t = 10)]
    pub customers: usize,
    /// Seeds generation and every random fault (the same seed gives the same customers).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also seed the customer ids of this CSV (column customer_id, customerId or customer-tenant-id), read as
    /// `apply` reads it.
    #[arg(long, value_name = "CSV")]
    pub seed_from: Option<PathBuf>,
    /// The field separator of the --seed-from CSV: `,` by default, `;` or `tab`.
    #[arg(long, default_value = ",")]
    pub delimiter: String,
    /// Also seed the customer billing profiles of this JSON file (an array of profiles, each with an id).
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Limit /v1 requests to N a second (token bucket; 429 with Retry-After beyond).
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<f64>,
    /// The token bucket's burst: the most requests it lets through at once (default: one second's worth).
    #[arg(long, value_name = "N", requires = "rate_limit")]
    pub rate_burst: Option<f64>,
    /// Add this latency to every /v1 request.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Add a random extra latency of up to this much.
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Answer this share of /v1 requests (0 to 1) with a 500 or 503.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub error_rate: f64,
    /// Apply this share of PUTs (0 to 1), then drop the connection instead of answering.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub drop_after_commit: f64,
    /// After this share of GETs (0 to 1), someone else edits the profile (the next PUT meets a stale etag).
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub concurrent_edit: f64,
    /// How a stale If-Match is answered: 412, 2055 (400 with code 2055) or mixed.
    #[arg(long, default_value = "412", value_parser = ["412", "2055", "mixed"])]
    pub stale_etag: String,
    /// The lifetime of issued access tokens, in seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    pub token_lifetime: u64,
    /// Send error codes as JSON strings rather than numbers.
    #[arg(long)]
    pub codes_as_strings: bool,
    /// Where the support profile takes a PUT: `sdk` (/v1/profiles/support, as the SDKs send it) or `documented`
    /// (/v1/profiles/supportprofile, as the docs page says).
    #[arg(long, default_value = "sdk", value_parser = ["sdk", "documented"])]
    pub support_put_path: String,
}

impl SandboxArgs {
    /// The configuration these flags describe, with the customer ids of the `--seed-from` CSV as the command line
    /// read them (the sandbox reads no CSV itself: `input` is the program's one CSV reader, and the sandbox shares
    /// nothing but `wire` with the engine); reads the `--data` file.
    pub fn resolve(&self, customer_ids: Vec<String>) -> Result<SandboxConfig, SandboxError> {
        let stale_etag = match self.stale_etag.as_str() {
            "2055" => StaleEtag::Code2055,
            "mixed" => StaleEtag::Mixed,
            _ => StaleEtag::PreconditionFailed,
        };
        let faults = Faults {
            latency_ms: self.latency_ms,
            jitter_ms: self.jitter_ms,
            rate_limit: self.rate_limit,
            rate_burst: self.rate_burst,
            error_rate: self.error_rate,
            drop_after_commit: self.drop_after_commit,
            concurrent_edit: self.concurrent_edit,
            stale_etag,
            outage: false,
            consent_withdrawn: false,
            mfa_required: false,
            token_lifetime_secs: self.token_lifetime,
            ..Faults::default()
        };
        faults.check().map_err(SandboxError::Faults)?;
        let profiles = match &self.data {
            Some(path) => read_profiles(path)?,
            None => Vec::new(),
        };
        Ok(SandboxConfig {
            port: self.port,
            seed: self.seed,
            customers: self.customers,
            customer_ids,
            profiles,
            codes_as_strings: self.codes_as_strings,
            support_put_path: match self.support_put_path.as_str() {
                "documented" => SupportPutPath::Documented,
                _ => SupportPutPath::Sdk,
            },
            faults,
            ..SandboxConfig::default()
        })
    }
}

/// Starts the sandbox with these customer ids too (those of `--seed-from`), prints how to use it, and serves until
/// `shutdown` resolves.
pub async fn serve(
    args: SandboxArgs,
    customer_ids: Vec<String>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    run_printing_to(args, customer_ids, shutdown, std::io::stdout()).await
}

async fn run_printing_to(
    args: SandboxArgs,
    customer_ids: Vec<String>,
    shutdown: impl Future<Output = ()>,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let config = args.resolve(customer_ids)?;
    let sandbox = Sandbox::start(config).await?;
    writeln!(out, "{}", usage(&sandbox))?;
    out.flush()?;
    shutdown.await;
    sandbox.shutdown().await;
    Ok(())
}

/// The lines to paste: base URL, a token, app credentials, side endpoints.
fn usage(sandbox: &Sandbox) -> String {
    let url = sandbox.url();
    let credentials = sandbox.credentials();
    let ids = sandbox.customer_ids();
    let example = ids.first().map(String::as_str).unwrap_or("<customer-id>");
    [
        format!(
            "pcbulk sandbox listening on {url} with {} (Ctrl-C to stop)",
            crate::words::counted(ids.len() as u64, "customer")
        ),
        String::new(),
        "# a ready bearer token (valid for the token lifetime):".into(),
        format!("export PCBULK_TOKEN={}", sandbox.mint_token()),
        "# point pcbulk at it:".into(),
        format!("--base-url {url}"),
        "# or app credentials (the token endpoint is {authority}/{tenant}/oauth2/token):".into(),
        format!(
            "--authority {url} --tenant {} --client-id {}",
            AcceptedCredentials::DEFAULT_TENANT,
            credentials.client_id
        ),
        format!("export PCBULK_CLIENT_SECRET={}", credentials.client_secret),
        format!("export PCBULK_REFRESH_TOKEN={}", credentials.refresh_token),
        "# the server's own truth (no token needed):".into(),
        format!("curl {url}/_sandbox/counters"),
        format!("curl {url}/_sandbox/customers/{example}"),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: SandboxArgs,
    }

    fn parse(flags: &[&str]) -> Result<SandboxConfig, String> {
        let command = Command::try_parse_from(std::iter::once("sandbox").chain(flags.iter().copied()))
            .map_err(|error| error.to_string())?;
        command.args.resolve(Vec::new()).map_err(|error| error.to_string())
    }

    #[test]
    fn flags_resolve_into_a_config() {
        let config = parse(&["--customers", "3", "--rate-limit", "5", "--stale-etag", "mixed", "--codes-as-strings"]);
        let config = config.unwrap_or_default();
        assert_eq!(config.customers, 3);
        assert_eq!(config.faults.rate_limit, Some(5.0));
        assert_eq!(config.faults.stale_etag, StaleEtag::Mixed);
        assert!(config.codes_as_strings);
    }

    #[tokio::test]
    async fn run_prints_lines_to_paste_and_stops_on_shutdown() {
        let command = Command::try_parse_from(["sandbox", "--customers", "2"]);
        let args = command.map(|command| command.args).map_err(|error| error.to_string());
        let mut printed = Vec::new();
        let ran = match args {
            Ok(args) => {
                run_printing_to(args, Vec::new(), std::future::ready(()), &mut printed).await.map_err(|e| e.to_string())
            }
            Err(error) => Err(error),
        };
        assert_eq!(ran, Ok(()));
        let printed = String::from_utf8_lossy(&printed);
        assert!(printed.contains("export PCBULK_TOKEN=sbx-access."), "{printed}");
        assert!(printed.contains("--base-url http://127.0.0.1:"), "{printed}");
        assert!(printed.contains("--client-id sandbox-client"), "{printed}");
        assert!(printed.contains("/_sandbox/counters"), "{printed}");
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(parse(&["--error-rate", "2"]).is_err());
        assert!(parse(&["--stale-etag", "409"]).is_err());
    }
}
