//! `--notify URL` and `--notify-format` of `apply` and `rollback`: resolved before the job starts (a bad URL is
//! refused before anything is sent), posted after it ends (`crate::notify`).

use super::Environment;
use crate::notify::{Format, JobEnd, Notify};
use crate::state::JobKind;
use clap::Args;
use std::path::Path;

/// The environment variable that gives the webhook URL when `--notify` does not (`ps` shows arguments to everyone;
/// a webhook URL is a secret).
pub const NOTIFY_URL_ENV: &str = "PCBULK_NOTIFY_URL";

#[derive(Args)]
pub struct NotifyArgs {
    /// At the end, post the verdict, counts, duration and where the report is to this incoming webhook (a Teams or
    /// Slack channel's). The URL is a secret: prefer env PCBULK_NOTIFY_URL, which `ps` does not show.
    #[arg(long, value_name = "URL")]
    pub notify: Option<String>,
    /// The body of the post: teams (an Adaptive Card), slack, or json (the report's summary object).
    #[arg(long, value_name = "teams|slack|json", default_value = "json")]
    pub notify_format: Format,
}

impl std::fmt::Debug for NotifyArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.notify.as_ref().map(|_| "<redacted>");
        f.debug_struct("NotifyArgs").field("notify", &url).field("notify_format", &self.notify_format).finish()
    }
}

/// The webhook to tell, if any: `--notify`, else env `PCBULK_NOTIFY_URL`.
pub fn resolve(args: &NotifyArgs, environment: Environment) -> anyhow::Result<Option<Notify>> {
    let (url, source) = match &args.notify {
        Some(url) => (url.clone(), "--notify"),
        None => match environment(NOTIFY_URL_ENV).filter(|url| !url.trim().is_empty()) {
            Some(url) => (url, NOTIFY_URL_ENV),
            None => return Ok(None),
        },
    };
    let notify = Notify::new(&url, args.notify_format).map_err(|reason| anyhow::anyhow!("{source}: {reason}"))?;
    Ok(Some(notify))
}

/// Tells the webhook of the job's end (a failure is a warning: the job's outcome stands).
pub async fn after_job(notify: Option<&Notify>, state: &Path, kind: JobKind, report: &Path, page: Option<&Path>) {
    let Some(notify) = notify else { return };
    match JobEnd::read(state, kind, report, page) {
        Ok(end) => crate::notify::send(notify, &end).await,
        Err(error) => eprintln!("warning: --notify {}: cannot read the job's end: {error:#}", notify.shown()),
    }
}
