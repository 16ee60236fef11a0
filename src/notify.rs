//! `--notify URL`: a job's end posted to a chat's incoming webhook (issue 19, point 5), so an overnight job tells the
//! team where they already look: the verdict, the counts, the duration, where the report is.
//!
//! What leaves the machine is the job's summary (`schemas/report-v1.json`'s `summary`), whose error messages are
//! shapes (no cell value, see `summary::shape`); never a token, a secret or a row. A webhook URL is itself a secret
//! (whoever has it can post): it is never printed whole, only its scheme and host ([`Notify::shown`]). A post that
//! fails (refused, unreachable, an error answer, no answer within [`TIMEOUT`]) is a warning: the job's outcome and
//! exit code stand.

use crate::state::JobKind;
use crate::summary::{self, Summary, Verdict};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use url::Url;

/// The longest a post may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The body's shape, as the webhook expects it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// `{"schema", "verdict", "report", "page", "summary"}`: the report's summary object and where the files are.
    #[default]
    Json,
    /// A Teams message carrying an Adaptive Card (what Teams incoming webhooks and Workflows accept).
    Teams,
    /// `{"text", "blocks"}`, as a Slack incoming webhook takes it.
    Slack,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Format, String> {
        match text {
            "json" => Ok(Format::Json),
            "teams" => Ok(Format::Teams),
            "slack" => Ok(Format::Slack),
            _ => Err(format!("{text:?}: give teams, slack or json")),
        }
    }
}

/// Where to post, and how.
#[derive(Clone)]
pub struct Notify {
    url: Url,
    pub format: Format,
}

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Notify({}, {:?})", self.shown(), self.format)
    }
}

impl Notify {
    /// Checks a webhook URL: `https://`, or `http://` on a loopback host only; no user name or password. The
    /// error never repeats the URL (it may hold the webhook's secret).
    pub fn new(raw: &str, format: Format) -> Result<Notify, String> {
        let url = Url::parse(raw.trim()).map_err(|error| format!("not a URL ({error})"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err("the URL must not carry a user name or password".into());
        }
        let loopback = match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(address)) => address.is_loopback(),
            Some(url::Host::Ipv6(address)) => address.is_loopback(),
            None => return Err("the URL has no host".into()),
        };
        match url.scheme() {
            "https" => Ok(Notify { url, format }),
            "http" if loopback => Ok(Notify { url, format }),
            scheme => Err(format!("{scheme}:// is not allowed: use https:// (http:// only for a loopback host)")),
        }
    }

    /// The URL as it may be shown: scheme and host (and port), never the path or query that hold the secret.
    pub fn shown(&self) -> String {
        let host = self.url.host_str().unwrap_or("?");
        match self.url.port() {
            Some(port) => format!("{}://{host}:{port}", self.url.scheme()),
            None => format!("{}://{host}", self.url.scheme()),
        }
    }
}

/// What is told about a job's end.
#[derive(Clone, Debug)]
pub struct JobEnd {
    pub summary: Summary,
    pub verdict: Verdict,
    /// The report's path, absolute.
    pub report: String,
    /// The summary page's path (`--html`), absolute.
    pub page: Option<String>,
}

impl JobEnd {
    /// The end of the job of this kind, read from its state file.
    pub fn read(state: &Path, kind: JobKind, report: &Path, page: Option<&Path>) -> anyhow::Result<JobEnd> {
        let file = crate::state::StateFile::open_existing(state)?;
        let job = summary::find(&file, kind)?;
        let summary = Summary::read(&file, &job, |_| {})?;
        let absolute =
            |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string();
        Ok(JobEnd { verdict: summary.verdict(), summary, report: absolute(report), page: page.map(absolute) })
    }

    fn headline(&self) -> String {
        format!("pcbulk {}: {}", self.summary.job, self.verdict.words)
    }

    fn duration(&self) -> String {
        let seconds = self.summary.duration_seconds.unwrap_or_default();
        humantime::format_duration(Duration::from_secs(seconds)).to_string()
    }

    /// The statuses with rows, as `updated 290, failed 10`.
    fn counts(&self) -> String {
        let counted = self.summary.counts.iter().filter(|(_, n)| **n > 0);
        counted.map(|(status, n)| format!("{status} {n}")).collect::<Vec<_>>().join(", ")
    }

    /// The facts of a card: label and value.
    fn facts(&self) -> Vec<(&'static str, String)> {
        let mut facts = vec![
            ("rows", self.counts()),
            ("input", self.summary.csv.clone()),
            ("target", self.summary.target.clone()),
            ("duration", self.duration()),
            ("requests", format!("{} ({} answered 429)", self.summary.requests, self.summary.throttled)),
            ("report", self.report.clone()),
        ];
        facts.extend(self.page.clone().map(|page| ("page", page)));
        facts
    }
}

/// The body to post.
pub fn payload(format: Format, end: &JobEnd) -> Value {
    match format {
        Format::Json => json!({
            "schema": summary::SCHEMA,
            "verdict": end.verdict.words,
            "needs_attention": !end.verdict.good,
            "report": end.report,
            "page": end.page,
            "summary": end.summary,
        }),
        Format::Teams => teams(end),
        Format::Slack => slack(end),
    }
}

/// A Teams message with one Adaptive Card: the verdict (green when good, red when not), then the facts.
fn teams(end: &JobEnd) -> Value {
    let facts: Vec<Value> =
        end.facts().into_iter().map(|(title, value)| json!({"title": title, "value": value})).collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.2",
                "body": [
                    {"type": "TextBlock", "text": end.headline(), "weight": "Bolder", "size": "Medium", "wrap": true,
                     "color": if end.verdict.good { "Good" } else { "Attention" }},
                    {"type": "FactSet", "facts": facts},
                ],
            },
        }],
    })
}

/// Slack: the headline as `text` (what notifications show), the facts in a block.
fn slack(end: &JobEnd) -> Value {
    // Slack's mrkdwn reads `&`, `<` and `>` as markup.
    let escape = |text: &str| text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mark = if end.verdict.good { ":white_check_mark:" } else { ":warning:" };
    let facts: Vec<String> =
        end.facts().into_iter().map(|(label, value)| format!("*{label}:* {}", escape(&value))).collect();
    json!({
        "text": end.headline(),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("{mark} *{}*", escape(&end.headline()))}},
            {"type": "section", "text": {"type": "mrkdwn", "text": facts.join("\n")}},
        ],
    })
}

/// Posts the body; the failure in words (never the URL's path or query).
pub async fn post(notify: &Notify, body: &Value) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| error.without_url().to_string())?;
    let answer = client.post(notify.url.clone()).json(body).send().await;
    let answer = answer.map_err(|error| crate::http::describe_transport(&error))?;
    match answer.status() {
        status if status.is_success() => Ok(()),
        status => Err(format!("the webhook answered HTTP {}", status.as_u16())),
    }
}

/// Tells the webhook of the job's end; a failure is a warning on stderr, never an error of the job.
pub async fn send(notify: &Notify, end: &JobEnd) {
    match post(notify, &payload(notify.format, end)).await {
        Ok(()) => eprintln!("notified {}", notify.shown()),
        Err(reason) => eprintln!("warning: --notify {}: {reason} (the job's outcome stands)", notify.shown()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_url_is_shown_by_scheme_and_host_only() {
        let notify = Notify::new("https://example.webhook.office.com/webhookb2/SECRET?sig=KEY", Format::Teams).unwrap();
        assert_eq!(notify.shown(), "https://example.webhook.office.com");
        assert!(!format!("{notify:?}").contains("SECRET"));
        let local = Notify::new("http://127.0.0.1:9/hook/SECRET", Format::Json).unwrap();
        assert_eq!(local.shown(), "http://127.0.0.1:9");
    }

    #[test]
    fn plain_http_off_loopback_and_credentials_in_the_url_are_refused_without_repeating_it() {
        for (url, words) in [
            ("http://hooks.example.com/SECRET", "use https://"),
            ("https://user:SECRET@hooks.example.com/x", "user name or password"),
            ("ftp://127.0.0.1/SECRET", "not allowed"),
            ("SECRET", "not a URL"),
        ] {
            let error = Notify::new(url, Format::Json).unwrap_err();
            assert!(error.contains(words) && !error.contains("SECRET"), "{url}: {error}");
        }
    }

    #[test]
    fn formats_are_read_by_name() {
        assert_eq!("teams".parse::<Format>(), Ok(Format::Teams));
        assert_eq!("slack".parse::<Format>(), Ok(Format::Slack));
        assert_eq!("json".parse::<Format>(), Ok(Format::Json));
        assert!("discord".parse::<Format>().is_err());
    }
}
