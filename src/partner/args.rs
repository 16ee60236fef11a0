//! `pcbulk partner get KIND` and `pcbulk partner set KIND --set PATH=VALUE ...`: the clap structs, which only parse,
//! the one function that resolves them, and `run`.
//!
//! Everything is checked before any network call or file: the kind, every `--set`, the API options. Any failure is
//! exit 1 (an `Err`, which the binary prints as `error: ...`).

use super::assignments::parse_assignments;
use super::error::PartnerError;
use super::update::{self, Mode, SetOutcome, SetRequest, Trail};
use crate::auth::Credentials;
use crate::cli::{ApiArgs, Environment, Exit, PaceArgs, resolve_api};
use crate::client::{ApiConfig, connect};
use crate::state::StateFile;
use crate::wire::PartnerProfileKind;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;

/// The state file of `partner set` when `--state` is not given: in the working directory.
pub const DEFAULT_STATE: &str = "pcbulk-partner.db";

/// The partner's own profiles: billing, legalbusiness, organization, support.
#[derive(Debug, Args)]
pub struct PartnerArgs {
    #[command(subcommand)]
    pub command: PartnerCommand,
}

#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    /// Print a partner profile as JSON, exactly as Partner Center sends it.
    Get(GetArgs),
    /// Change fields of a partner profile: read, merge, show the diff, PUT with If-Match.
    Set(SetArgs),
    /// Put back the before-values of the last change recorded for a profile, where they still hold what it wrote.
    Undo(UndoArgs),
}

#[derive(Debug, Args)]
pub struct UndoArgs {
    /// billing, legalbusiness, organization or support.
    pub kind: String,
    #[command(flatten)]
    pub write: WriteArgs,
}

/// What `set` and `undo` share: how they write, where the audit trail is, and the API.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Read and show what would be written (the diff, or what would be put back); send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm a write to the legal business profile (Partner Center may verify the partner again).
    #[arg(long)]
    pub yes: bool,
    /// The SQLite file that keeps the audit trail of partner profile changes.
    #[arg(long, default_value = DEFAULT_STATE)]
    pub state: PathBuf,
    #[command(flatten)]
    pub api: ApiArgs,
}

impl WriteArgs {
    fn mode(&self) -> Mode {
        if self.dry_run { Mode::DryRun } else { Mode::Apply { confirmed: self.yes } }
    }
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// billing, legalbusiness, organization or support.
    pub kind: String,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// billing, legalbusiness, organization or support.
    pub kind: String,
    /// A field and its new value, like `telephone=4255550100` or `address.city=Seattle`; `<clear>` empties a field.
    #[arg(long = "set", value_name = "PATH=VALUE", required = true)]
    pub set: Vec<String>,
    #[command(flatten)]
    pub write: WriteArgs,
}

/// The pace of `partner`: a handful of calls, one at a time.
fn pace() -> PaceArgs {
    PaceArgs { rate: 10, concurrency: 1, max_attempts: 6 }
}

/// Whether reading (`writing` false) or changing a kind of partner profile takes App+User credentials only. The docs'
/// Prerequisites of each page: "App+User credentials only" for the billing profile's GET
/// (learn.microsoft.com/partner-center/developer/get-partner-billing-profile), the support profile's GET and PUT
/// (get-support-profile, update-support-profile), the organization profile's PUT (update-an-organization-profile)
/// and the legal business profile's PUT (update-legal-business-profile); the legal business profile's GET takes
/// "both standalone App and App+User" (get-legal-business-profile). The organization profile's GET is taken as
/// App+User only (issue 15; its page was not checked).
fn needs_app_user(kind: PartnerProfileKind, writing: bool) -> bool {
    writing || kind != PartnerProfileKind::LegalBusiness
}

/// Refuses app-only credentials (the client-credentials grant) where the service takes App+User only, before
/// anything is sent. A static token cannot be told apart: it goes, and the service answers.
fn check_credentials(api: &ApiConfig, kind: PartnerProfileKind, writing: bool) -> Result<(), PartnerError> {
    let app_only = matches!(api.credentials, Credentials::ClientCredentials { .. });
    match app_only && needs_app_user(kind, writing) {
        true => Err(PartnerError::NeedsAppUser {
            operation: if writing { "changing" } else { "reading" },
            kind: kind.name(),
        }),
        false => Ok(()),
    }
}

fn resolve_kind(name: &str) -> Result<PartnerProfileKind, PartnerError> {
    PartnerProfileKind::from_name(name.trim()).ok_or_else(|| PartnerError::Kind(name.to_string()))
}

/// `partner set`, resolved.
struct SetJob {
    request: SetRequest,
    state: PathBuf,
    api: ApiConfig,
}

fn resolve_set(args: SetArgs, environment: Environment) -> anyhow::Result<SetJob> {
    let kind = resolve_kind(&args.kind)?;
    let changes = parse_assignments(kind, &args.set)?;
    let mode = args.write.mode();
    let api = resolve_api(&args.write.api, &pace(), environment)?;
    check_credentials(&api, kind, true)?;
    Ok(SetJob { request: SetRequest { kind, changes, mode }, state: args.write.state, api })
}

/// Runs `pcbulk partner ...` with the process's stdout and stderr (it builds its own async runtime).
pub fn run(args: PartnerArgs, environment: Environment) -> anyhow::Result<Exit> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_with_output(args, environment, &mut out, &mut std::io::stderr())
}

/// Runs `pcbulk partner ...`: the profile (for `get`) goes to `out`, the diff and the outcome to `notes`.
pub fn run_with_output(
    args: PartnerArgs,
    environment: Environment,
    out: &mut dyn Write,
    notes: &mut dyn Write,
) -> anyhow::Result<Exit> {
    match args.command {
        PartnerCommand::Get(args) => {
            let kind = resolve_kind(&args.kind)?;
            let api = resolve_api(&args.api, &pace(), environment)?;
            check_credentials(&api, kind, false)?;
            let profile = runtime()?.block_on(async {
                let client = connect(&api)?;
                anyhow::Ok(update::fetch(&client, kind).await?)
            })?;
            let text = serde_json::to_string_pretty(&profile).context("cannot write the profile as json")?;
            writeln!(out, "{text}").context("cannot print the profile")?;
            Ok(Exit::Clean)
        }
        PartnerCommand::Set(args) => {
            let job = resolve_set(args, environment)?;
            run_set(job, notes)
        }
        PartnerCommand::Undo(args) => run_undo(args, environment, notes),
    }
}

fn run_undo(args: UndoArgs, environment: Environment, notes: &mut dyn Write) -> anyhow::Result<Exit> {
    let kind = resolve_kind(&args.kind)?;
    let api = resolve_api(&args.write.api, &pace(), environment)?;
    check_credentials(&api, kind, true)?;
    let mode = args.write.mode();
    let base_url = api.client.base_url.as_str().trim_end_matches('/').to_string();
    let state = match mode {
        Mode::DryRun => StateFile::open_existing(&args.write.state).map_err(PartnerError::State)?,
        Mode::Apply { .. } => StateFile::open_for_job(&args.write.state).map_err(PartnerError::State)?,
    };
    let last = super::undo::last_change(&state, kind, &base_url)?;
    let trail = Trail { state: &state, base_url: &base_url };
    runtime()?.block_on(async {
        let client = connect(&api)?;
        super::undo::undo(&client, kind, last, mode, Some(&trail), notes).await
    })?;
    Ok(Exit::Clean)
}

fn run_set(job: SetJob, notes: &mut dyn Write) -> anyhow::Result<Exit> {
    // A dry run writes nothing, so it neither makes nor locks the state file.
    let state = match job.request.mode {
        Mode::DryRun => None,
        Mode::Apply { .. } => Some(StateFile::open_for_job(&job.state).map_err(PartnerError::State)?),
    };
    let base_url = job.api.client.base_url.as_str().trim_end_matches('/').to_string();
    let trail = state.as_ref().map(|state| Trail { state, base_url: &base_url });
    let outcome = runtime()?.block_on(async {
        let client = connect(&job.api)?;
        anyhow::Ok(update::set(&client, &job.request, trail.as_ref(), notes).await?)
    })?;
    if let (SetOutcome::Updated { .. }, Some(state)) = (&outcome, &state) {
        let _ = writeln!(notes, "audit trail: {}", state.path().display());
    }
    Ok(Exit::Clean)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")
}
