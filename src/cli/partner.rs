//! `pcbulk partner get|set|undo KIND`: the clap structs, which only parse, their resolution into the partner
//! module's plain requests, and `run`.
//!
//! Everything is checked before any network call or file: the kind, every `--set`, the API options. Any failure is
//! exit 1 (an `Err`, which the binary prints as `error: ...`).

use super::{ApiArgs, Environment, Exit, PaceArgs, resolve_api, runtime};
use crate::client::{ApiConfig, connect};
use crate::partner::{
    self, PartnerError, SetMode, SetOutcome, SetRequest, Trail, check_credentials, parse_assignments,
};
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
    #[command(after_help = super::help::partner_get())]
    Get(GetArgs),
    /// Change fields of a partner profile: read, merge, show the diff, PUT with If-Match.
    #[command(after_help = super::help::partner_set())]
    Set(SetArgs),
    /// Put back the before-values of the last change recorded for a profile, where they still hold what it wrote.
    #[command(after_help = super::help::partner_undo())]
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
    fn mode(&self) -> SetMode {
        if self.dry_run { SetMode::DryRun } else { SetMode::Apply { confirmed: self.yes } }
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
                anyhow::Ok(partner::fetch(&client, kind).await?)
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
        SetMode::DryRun => StateFile::open_existing(&args.write.state).map_err(PartnerError::State)?,
        SetMode::Apply { .. } => StateFile::open_for_job(&args.write.state).map_err(PartnerError::State)?,
    };
    let last = partner::last_change(&state, kind, &base_url)?;
    let trail = Trail { state: &state, base_url: &base_url };
    runtime()?.block_on(async {
        let client = connect(&api)?;
        partner::undo(&client, kind, last, mode, Some(&trail), notes).await
    })?;
    Ok(Exit::Clean)
}

fn run_set(job: SetJob, notes: &mut dyn Write) -> anyhow::Result<Exit> {
    // A dry run writes nothing, so it neither makes nor locks the state file.
    let state = match job.request.mode {
        SetMode::DryRun => None,
        SetMode::Apply { .. } => Some(StateFile::open_for_job(&job.state).map_err(PartnerError::State)?),
    };
    let base_url = job.api.client.base_url.as_str().trim_end_matches('/').to_string();
    let trail = state.as_ref().map(|state| Trail { state, base_url: &base_url });
    let outcome = runtime()?.block_on(async {
        let client = connect(&job.api)?;
        anyhow::Ok(partner::set(&client, &job.request, trail.as_ref(), notes).await?)
    })?;
    if let (SetOutcome::Updated { .. }, Some(state)) = (&outcome, &state) {
        let _ = writeln!(notes, "audit trail: {}", state.path().display());
    }
    Ok(Exit::Clean)
}
