//! The command line: clap structs that only parse, and one place that resolves them into the typed
//! configurations the library runs. No other module sees a clap type.

pub mod apply;
pub mod completions;
pub mod export;
pub mod help;
pub mod inspect;
pub mod job;
pub mod login;
pub mod notify;
pub mod partner;
pub mod rollback;
pub mod sandbox;

pub use sandbox::customer_ids;

use crate::auth::{Credentials, DEFAULT_AUTHORITY, Secret};
use crate::client::{ApiConfig, ClientConfig};
use crate::input::InputConfig;
use crate::pace::PaceConfig;
use crate::validate::{self, ValidateConfig};
use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

/// How a command ended, as the process exit code says it (see the exit codes in README.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Every row went as asked.
    Clean,
    /// The job could not run or had to stop.
    Failed,
    /// The job ran to its end and some rows are failed, invalid or conflict.
    RowsFailed,
    /// Stopped by the error budget or after a canary; resumable.
    Stopped,
    /// Interrupted; resumable.
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Clean => 0,
            Exit::Failed => 1,
            Exit::RowsFailed => 2,
            Exit::Stopped => 3,
            Exit::Interrupted => 130,
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "pcbulk",
    version,
    about = "Apply a CSV of changes to Partner Center customer billing profiles, safely",
    after_help = help::top()
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a CSV offline: header, every cell, duplicates.
    #[command(after_help = help::validate())]
    Validate(ValidateArgs),
    /// The job: GET, merge, PUT with If-Match for every valid row; resumable.
    #[command(after_help = help::apply())]
    Apply(apply::ApplyArgs),
    /// Writes every customer's billing profile as a CSV that apply reads, with a snapshot for a three-way apply.
    #[command(after_help = help::export())]
    Export(export::ExportArgs),
    /// Counts per status, rows left, when the job started and last moved.
    #[command(after_help = help::status())]
    Status(inspect::StateArgs),
    /// Writes the report again from the state file.
    #[command(after_help = help::report())]
    Report(inspect::ReportArgs),
    /// Puts back the before-values of the fields a job changed, where they still hold what it wrote; resumable.
    #[command(after_help = help::rollback())]
    Rollback(rollback::RollbackArgs),
    /// Read or change the partner's own profiles: billing, legalbusiness, organization, support.
    #[command(after_help = help::partner())]
    Partner(partner::PartnerArgs),
    /// Sign in (App+User) in a browser, or with --device-code; the sign-in is kept for the commands above.
    #[command(after_help = help::login())]
    Login(login::LoginArgs),
    /// Who is signed in, where the sign-in is kept, and whether it still works.
    #[command(after_help = help::whoami())]
    Whoami(login::WhoamiArgs),
    /// Forget a kept sign-in.
    #[command(after_help = help::logout())]
    Logout(login::LogoutArgs),
    /// Serve the Partner Center sandbox on 127.0.0.1 until Ctrl-C, for rehearsals.
    #[command(after_help = help::sandbox())]
    Sandbox(sandbox::SandboxArgs),
    /// Print the completion script of a shell: bash, zsh, fish or powershell.
    #[command(after_help = help::completions())]
    Completions(completions::CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct CsvArgs {
    /// The CSV of changes, or an Excel workbook (.xlsx).
    pub csv: PathBuf,
    /// The field separator: `,` by default, `;` for spreadsheets saved in European locales, `tab` for tabs. Also
    /// the separator of a CSV report.
    #[arg(long, default_value = ",")]
    pub delimiter: String,
    /// The sheet of an .xlsx workbook to read [default: the first].
    #[arg(long, value_name = "NAME")]
    pub sheet: Option<String>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub csv: CsvArgs,
    /// Also write a report with `valid` or `invalid` per row.
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub edited: apply::EditedArgs,
}

/// The Partner Center cloud: its API root, its sign-in authority and its token audience, chosen together.
///
/// Public (also Partner Center for Microsoft Cloud for US Government): `https://api.partnercenter.microsoft.com`,
/// `https://login.microsoftonline.com`, audience the API root. Partner Center operated by 21Vianet:
/// `https://partner.partnercenterapi.microsoftonline.cn` (learn.microsoft.com/partner-center/developer/
/// partner-center-rest-urls), sign-in at `https://login.partner.microsoftonline.cn` (the Microsoft Entra endpoint
/// operated by 21Vianet in learn.microsoft.com/entra/identity-platform/authentication-national-cloud; the older
/// `https://login.chinacloudapi.cn` still answers, `--authority` takes it) and the token audience the API root
/// (microsoft/Partner-Center-PowerShell `src/PowerShell/Models/Authentication/EnvironmentConstants.cs` and
/// `PowerShellCredentials.cs`, which asks for `{PartnerCenterEndpoint}/user_impersonation`; the docs do not name
/// the China audience: unverified against the service).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Cloud {
    #[default]
    Public,
    China,
}

impl Cloud {
    pub fn base_url(self) -> &'static str {
        match self {
            Cloud::Public => crate::wire::TOKEN_RESOURCE,
            Cloud::China => "https://partner.partnercenterapi.microsoftonline.cn",
        }
    }

    pub fn authority(self) -> &'static str {
        match self {
            Cloud::Public => DEFAULT_AUTHORITY,
            Cloud::China => crate::signin::store::CHINA_AUTHORITY,
        }
    }

    /// The `resource` of the token grants (the access token's audience).
    pub fn token_resource(self) -> &'static str {
        match self {
            Cloud::Public => crate::wire::TOKEN_RESOURCE,
            Cloud::China => "https://partner.partnercenterapi.microsoftonline.cn",
        }
    }
}

/// Where the API is and who we are to it: shared by every command that talks to the API.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The Partner Center cloud: sets the API root, the sign-in authority and the token audience together.
    #[arg(long, env = "PCBULK_CLOUD", value_enum, default_value_t = Cloud::Public)]
    pub cloud: Cloud,
    /// The API root; `http://` only for loopback hosts [default: the cloud's].
    #[arg(long, env = "PCBULK_BASE_URL")]
    pub base_url: Option<String>,
    /// A file holding a ready bearer token (env PCBULK_TOKEN also works); cannot be renewed.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// The partner's Entra ID tenant, for the refresh-token and client-credentials grants.
    #[arg(long)]
    pub tenant: Option<String>,
    /// The application (client) id, for the refresh-token and client-credentials grants.
    #[arg(long)]
    pub client_id: Option<String>,
    /// The token authority [default: the cloud's, https://login.microsoftonline.com for public].
    #[arg(long)]
    pub authority: Option<String>,
    /// Seconds one request may take, answer included.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

/// How hard to drive the API.
#[derive(Debug, Args)]
pub struct PaceArgs {
    /// The most requests per second, across all workers; on 429s the job slows down and climbs back to this.
    #[arg(long, default_value_t = 10)]
    pub rate: u32,
    /// The most requests in flight at once; below it the number follows the service's latency (rate x answer time x
    /// 1.5 + 1). The default carries --rate 10 at answers of up to 4 s, --rate 20 at 2 s.
    #[arg(long, default_value_t = crate::pace::DEFAULT_MAX_CONCURRENCY)]
    pub concurrency: usize,
    /// Attempts per request before the row fails.
    #[arg(long, default_value_t = 6)]
    pub max_attempts: u32,
}

/// Secrets come from the environment only, never from arguments (which `ps` shows to everyone).
pub type Environment<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, ignoring empty values.
pub fn process_environment(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty())
}

/// The credentials, the first source given winning (cli.md, "Authentication").
pub fn resolve_credentials(args: &ApiArgs, environment: Environment) -> anyhow::Result<Credentials> {
    if let Some(token) = environment("PCBULK_TOKEN") {
        return Ok(Credentials::Static { token: Secret::new(token.trim()) });
    }
    if let Some(path) = &args.token_file {
        let token = std::fs::read_to_string(path).with_context(|| format!("--token-file {}", path.display()))?;
        anyhow::ensure!(!token.trim().is_empty(), "--token-file {}: the file is empty", path.display());
        return Ok(Credentials::Static { token: Secret::new(token.trim()) });
    }
    let authority = resolve_authority(args.authority.as_deref(), args.cloud)?;
    let app = args.tenant.clone().zip(args.client_id.clone());
    let secret = environment("PCBULK_CLIENT_SECRET").map(Secret::new);
    match (app, environment("PCBULK_REFRESH_TOKEN"), secret) {
        (Some((tenant, client_id)), Some(refresh), client_secret) => Ok(Credentials::RefreshToken {
            authority,
            tenant,
            client_id,
            client_secret,
            refresh_token: Secret::new(refresh),
        }),
        (Some((tenant, client_id)), None, Some(client_secret)) => {
            Ok(Credentials::ClientCredentials { authority, tenant, client_id, client_secret })
        }
        (Some((tenant, client_id)), None, None) => {
            stored_sign_in(args.cloud, Some(&tenant), Some(&client_id), environment).context(
                "--tenant and --client-id need env PCBULK_REFRESH_TOKEN (App+User) or PCBULK_CLIENT_SECRET (app only), \
                 or a sign-in kept by `pcbulk login`",
            )
        }
        (None, _, _) => stored_sign_in(args.cloud, args.tenant.as_deref(), None, environment),
    }
}

/// The sign-in kept by `pcbulk login`: the last source of credentials (`login::select` picks it; a sign-in of
/// another cloud than the command's is refused there, before anything is sent).
fn stored_sign_in(
    cloud: Cloud,
    tenant: Option<&str>,
    client_id: Option<&str>,
    environment: Environment,
) -> anyhow::Result<Credentials> {
    let store = crate::signin::store::Store::locate(environment).context(
        "no credentials: set env PCBULK_TOKEN (or --token-file FILE), or give --tenant and --client-id with env \
         PCBULK_REFRESH_TOKEN or PCBULK_CLIENT_SECRET, or sign in with `pcbulk login`",
    )?;
    let sign_in = login::select(&store, tenant, client_id)?;
    login::same_cloud(&sign_in, cloud)?;
    Ok(Credentials::SignedIn { store, sign_in })
}

/// The pace, checked.
pub fn resolve_pace(args: &PaceArgs) -> anyhow::Result<PaceConfig> {
    let rate = NonZeroU32::new(args.rate).context("--rate: value \"0\": give at least 1 request per second")?;
    let concurrency = NonZeroUsize::new(args.concurrency).context("--concurrency: value \"0\": give at least 1")?;
    let attempts = NonZeroU32::new(args.max_attempts).context("--max-attempts: value \"0\": give at least 1")?;
    Ok(PaceConfig::new(rate, concurrency, attempts))
}

/// Everything needed to talk to the API.
pub fn resolve_api(api: &ApiArgs, pace: &PaceArgs, environment: Environment) -> anyhow::Result<ApiConfig> {
    let base_url = api.base_url.as_deref().unwrap_or(api.cloud.base_url());
    let mut client = ClientConfig::new(base_url).with_context(|| format!("--base-url {base_url}"))?;
    client.token_resource = api.cloud.token_resource().to_string();
    anyhow::ensure!(api.timeout > 0, "--timeout: value \"0\": give at least 1 second");
    client.timeout = Duration::from_secs(api.timeout);
    if let Some(secs) = seconds_from(environment, "PCBULK_FIRST_ANSWER_SECS")? {
        client.first_answer_within = secs;
    }
    Ok(ApiConfig { client, credentials: resolve_credentials(api, environment)?, pace: resolve_pace(pace)? })
}

/// An error as one line for a person: each cause once. A cause whose words the line already holds (an error that
/// prints its source in its own message, as `cannot read X: <os error>` does) is not said again.
pub fn error_words(error: &anyhow::Error) -> String {
    let mut words = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !words.contains(&text) {
            if !words.is_empty() {
                words.push_str(": ");
            }
            words.push_str(&text);
        }
    }
    words
}

/// The sign-in authority: `--authority`, else the cloud's; checked like a base URL, without a trailing `/`.
pub(super) fn resolve_authority(given: Option<&str>, cloud: Cloud) -> anyhow::Result<String> {
    let authority = given.unwrap_or(cloud.authority());
    let url = crate::client::validate_base_url(authority).with_context(|| format!("--authority {authority}"))?;
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Reads a delimiter as given on the command line.
pub fn parse_delimiter(text: &str) -> anyhow::Result<u8> {
    match text {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        "," | ";" => Ok(text.as_bytes()[0]),
        _ => anyhow::bail!(
            "--delimiter: value \"{text}\": the CSV may be separated by , or ; or tab (give --delimiter tab)"
        ),
    }
}

pub(crate) fn resolve_input(args: &CsvArgs) -> anyhow::Result<InputConfig> {
    Ok(InputConfig { delimiter: parse_delimiter(&args.delimiter)?, sheet: args.sheet.clone() })
}

/// How progress is shown off a terminal: as the log format says, every 30 s (env `PCBULK_PROGRESS_SECS`, for
/// tests and for operators who want a denser log).
fn resolve_display(format: LogFormat, environment: Environment) -> anyhow::Result<crate::progress::Display> {
    let format = match format {
        LogFormat::Text => crate::progress::LineFormat::Plain,
        LogFormat::Json => crate::progress::LineFormat::Json,
    };
    let every = seconds_from(environment, "PCBULK_PROGRESS_SECS")?.unwrap_or(crate::progress::EVERY);
    Ok(crate::progress::Display { format, every })
}

/// A duration in seconds from the environment (the interval of the progress line, the wait for a first answer:
/// for tests, and for operators who want them shorter), when set.
fn seconds_from(environment: Environment, name: &str) -> anyhow::Result<Option<Duration>> {
    let Some(text) = environment(name) else { return Ok(None) };
    let secs = text.trim().parse::<f64>().ok().filter(|secs| secs.is_finite() && *secs > 0.0 && *secs < 1e9);
    let secs = secs.with_context(|| format!("env {name}: value \"{text}\": give a number of seconds above 0"))?;
    Ok(Some(Duration::from_secs_f64(secs)))
}

/// Runs a parsed command line to its end.
pub fn run(cli: Cli, environment: Environment) -> anyhow::Result<Exit> {
    crate::progress::configure(resolve_display(cli.log_format, environment)?);
    match cli.command {
        Command::Validate(args) => run_validate(args),
        Command::Apply(args) => apply::run(args, environment),
        Command::Export(args) => export::run(args, environment),
        Command::Status(args) => inspect::status(args),
        Command::Report(args) => inspect::report(args),
        Command::Rollback(args) => rollback::run(args, environment),
        Command::Partner(args) => partner::run(args, environment),
        Command::Completions(args) => completions::run(args),
        Command::Login(args) => login::login(args, environment),
        Command::Whoami(args) => login::whoami(args, environment),
        Command::Logout(args) => login::logout(args, environment),
        Command::Sandbox(args) => sandbox::run(args),
    }
}

/// The runtime of a client command (apply, rollback, partner): one thread. The work is waiting on the API, and
/// one thread never has to wake another to share it (on two worker threads a row cost a third more CPU, most of it
/// the kernel's futex and scheduler). Blocking work (the CSV reader) still gets its own thread.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")
}

fn run_validate(args: ValidateArgs) -> anyhow::Result<Exit> {
    let config = ValidateConfig {
        input: resolve_input(&args.csv)?,
        csv: args.csv.csv,
        report: args.report,
        base: args.edited.base.clone(),
        excel: args.edited.excel(),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let summary = validate::run(&config, &mut out)?;
    out.flush().context("cannot print")?;
    eprintln!(
        "{}: {}, {} valid, {} invalid, {}",
        config.csv.display(),
        crate::words::counted(summary.rows, "row"),
        summary.valid,
        summary.invalid,
        crate::words::counted(summary.warnings, "warning")
    );
    if summary.not_utf8 > 0 {
        let rows = match summary.not_utf8 {
            1 => "1 row holds".to_string(),
            count => format!("{count} rows hold"),
        };
        eprintln!(
            "{rows} bytes that are not UTF-8: the file looks saved as Windows-1252 (or another single-byte encoding). {}",
            crate::input::NOT_UTF8_FIX
        );
    }
    if let Some(report) = &config.report {
        eprintln!("report: {}", report.display());
    }
    Ok(if summary.clean() { Exit::Clean } else { Exit::RowsFailed })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(tenant: bool) -> ApiArgs {
        ApiArgs {
            cloud: Cloud::Public,
            base_url: Some("http://127.0.0.1:9".into()),
            token_file: None,
            tenant: tenant.then(|| "t".into()),
            client_id: tenant.then(|| "c".into()),
            authority: Some("http://127.0.0.1:9".into()),
            timeout: 60,
        }
    }

    #[test]
    fn the_first_credential_source_wins() {
        let all = |name: &str| Some(format!("value-of-{name}"));
        assert!(matches!(resolve_credentials(&api(true), &all).unwrap(), Credentials::Static { .. }));
        let no_token = |name: &str| (name != "PCBULK_TOKEN").then(|| format!("v-{name}"));
        assert!(matches!(resolve_credentials(&api(true), &no_token).unwrap(), Credentials::RefreshToken { .. }));
        let secret_only = |name: &str| (name == "PCBULK_CLIENT_SECRET").then(|| "s".to_string());
        assert!(matches!(
            resolve_credentials(&api(true), &secret_only).unwrap(),
            Credentials::ClientCredentials { .. }
        ));
        let nothing = |_: &str| None;
        assert!(resolve_credentials(&api(false), &nothing).unwrap_err().to_string().contains("no credentials"));
        assert!(resolve_credentials(&api(true), &nothing).unwrap_err().to_string().contains("PCBULK_REFRESH_TOKEN"));
    }

    #[test]
    fn plain_http_is_refused_off_loopback() {
        let mut args = api(false);
        args.base_url = Some("http://api.example.com".into());
        let pace = PaceArgs { rate: 10, concurrency: 8, max_attempts: 6 };
        let token = |name: &str| (name == "PCBULK_TOKEN").then(|| "t".to_string());
        let error = resolve_api(&args, &pace, &token).unwrap_err();
        assert!(format!("{error:#}").contains("--base-url http://api.example.com"), "{error:#}");
    }

    #[test]
    fn a_cloud_sets_the_api_root_the_authority_and_the_audience_and_each_can_be_overridden() {
        let pace = PaceArgs { rate: 10, concurrency: 8, max_attempts: 6 };
        let secret = |name: &str| (name == "PCBULK_CLIENT_SECRET").then(|| "s".to_string());
        let mut args = api(true);
        (args.cloud, args.base_url, args.authority) = (Cloud::China, None, None);
        let china = resolve_api(&args, &pace, &secret).unwrap();
        assert_eq!(china.client.base_url.as_str(), "https://partner.partnercenterapi.microsoftonline.cn/");
        assert_eq!(china.client.token_resource, "https://partner.partnercenterapi.microsoftonline.cn");
        assert!(
            matches!(&china.credentials, Credentials::ClientCredentials { authority, .. } if authority == "https://login.partner.microsoftonline.cn")
        );
        args.base_url = Some("http://127.0.0.1:9".into());
        let overridden = resolve_api(&args, &pace, &secret).unwrap();
        assert_eq!(overridden.client.base_url.as_str(), "http://127.0.0.1:9/");
        assert_eq!(overridden.client.token_resource, "https://partner.partnercenterapi.microsoftonline.cn");
        args.cloud = Cloud::Public;
        let public = resolve_api(&args, &pace, &secret).unwrap();
        assert_eq!(public.client.token_resource, "https://api.partnercenter.microsoft.com");
    }

    #[test]
    fn an_os_error_is_said_once() {
        let missing = std::fs::File::open("/no/such/file.csv").unwrap_err();
        let error = anyhow::Error::from(crate::input::FileError::Open { path: "file.csv".into(), source: missing });
        let words = error_words(&error.context("validate"));
        assert_eq!(words.matches("os error 2").count(), 1, "{words}");
        assert!(words.starts_with("validate: cannot read file.csv: "), "{words}");
    }

    #[test]
    fn delimiters() {
        assert_eq!(parse_delimiter(",").unwrap(), b',');
        assert_eq!(parse_delimiter(";").unwrap(), b';');
        assert_eq!(parse_delimiter("tab").unwrap(), b'\t');
        assert!(parse_delimiter(";;").is_err());
        assert!(parse_delimiter("\"").is_err());
        assert!(parse_delimiter("|").unwrap_err().to_string().contains(", or ; or tab"));
    }

    #[test]
    fn exit_codes_follow_the_contract() {
        let codes: Vec<u8> =
            [Exit::Clean, Exit::Failed, Exit::RowsFailed, Exit::Stopped, Exit::Interrupted].map(Exit::code).into();
        assert_eq!(codes, [0, 1, 2, 3, 130]);
    }

    /// Only the command line sees clap: a file outside `src/cli/` (and `src/main.rs`, which parses) that names it
    /// fails here, so the rule in this module's doc stays true as commands are added.
    #[test]
    fn no_module_outside_the_command_line_names_clap() {
        fn sources(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    sources(&path, found);
                } else if path.extension().is_some_and(|ext| ext == "rs") {
                    found.push(path);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&root, &mut files);
        let outside = files.iter().filter(|path| !path.starts_with(root.join("cli")) && **path != root.join("main.rs"));
        let naming: Vec<String> = outside
            .filter(|path| std::fs::read_to_string(path).unwrap_or_default().contains("clap"))
            .map(|path| path.display().to_string())
            .collect();
        assert!(files.len() > 20, "the sources were found: {files:?}");
        assert!(naming.is_empty(), "clap is named outside src/cli/ and src/main.rs:\n{}", naming.join("\n"));
    }
}
