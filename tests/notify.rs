//! Issue 19, point 5: `--notify URL` posts the job's end to an incoming webhook, here a tiny axum receiver on
//! 127.0.0.1, as the real binary does it: the json, teams and slack bodies, the URL never shown whole, no cell value
//! in the body, and a failed post (an error answer, a refused connection, no answer) only a warning.

use crate::common;

use common::WorkDir;
use common::rig::customer;
use pcbulk::sandbox::{Sandbox, SandboxConfig};
use serde_json::Value;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};

/// The secret parts of the webhook URL: neither may ever be printed.
const SECRET_PATH: &str = "hook/T0P-SECRET-PATH";
const SECRET_QUERY: &str = "sig=S1GNATURE-SECRET";
/// A cell value (personal data) that must not leave the machine.
const EMAIL: &str = "jane.private@contoso.example";

/// What the receiver was sent: the path and query, the content type, the body.
type Posts = Arc<Mutex<Vec<(String, String, Value)>>>;

/// How the receiver answers.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    Never,
}

struct Receiver {
    url: String,
    posts: Posts,
}

async fn receiver(answer: Answer) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let posts: Posts = Arc::default();
    let seen = posts.clone();
    let handler = move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
        let seen = seen.clone();
        async move {
            let kind = headers.get("content-type").and_then(|value| value.to_str().ok()).unwrap_or("").to_string();
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            seen.lock().unwrap().push((uri.to_string(), kind, body));
            match answer {
                Answer::Status(status) => axum::http::StatusCode::from_u16(status).unwrap(),
                Answer::Never => std::future::pending().await,
            }
        }
    };
    let app = axum::Router::new().fallback(handler);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url: format!("http://{address}/{SECRET_PATH}?{SECRET_QUERY}"), posts }
}

impl Receiver {
    fn posts(&self) -> Vec<(String, String, Value)> {
        self.posts.lock().unwrap().clone()
    }
}

struct Job {
    work: WorkDir,
    sandbox: Sandbox,
}

/// Three customers renamed, and a fourth line whose e-mail cell is refused (`invalid`).
async fn job() -> Job {
    let ids: Vec<String> = (0..4).map(customer).collect();
    let config = SandboxConfig { customer_ids: ids.clone(), ..SandboxConfig::default() };
    let sandbox = Sandbox::start(config).await.unwrap();
    let work = WorkDir::new();
    let mut text = String::from("customer_id,companyName,email\n");
    for (index, id) in ids.iter().take(3).enumerate() {
        text.push_str(&format!("{id},Company {index},\n"));
    }
    text.push_str(&format!("{},,{EMAIL}@@\n", ids[3]));
    work.write("updates.csv", text);
    Job { work, sandbox }
}

impl Job {
    /// The real binary with these arguments against the sandbox (arguments copied: the future borrows nothing).
    fn run(&self, args: &[&str], env: &[(&'static str, String)]) -> impl Future<Output = Output> + use<> {
        let mut all: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        all.extend(["--base-url".to_string(), self.sandbox.url().to_string()]);
        let mut env = env.to_vec();
        env.push(("PCBULK_TOKEN", self.sandbox.mint_token()));
        let run = tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (*name, value.as_str())).collect();
            common::pcbulk_with(&all, &env)
        });
        async move { run.await.unwrap() }
    }

    fn csv(&self) -> String {
        self.work.path("updates.csv").display().to_string()
    }
}

/// Neither the URL's secret parts nor the cell's value appear in what the binary printed.
fn assert_nothing_secret_shown(output: &Output) {
    let shown = format!("{}{}", common::stdout(output), common::stderr(output));
    for secret in ["T0P-SECRET", "S1GNATURE"] {
        assert!(!shown.contains(secret), "the webhook URL was printed:\n{shown}");
    }
}

fn assert_summary_schema(summary: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/report-v1.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let document = serde_json::json!({"schema": "pcbulk-report-v1", "summary": summary, "rows": []});
    let errors: Vec<String> = validator.iter_errors(&document).map(|error| error.to_string()).collect();
    assert!(errors.is_empty(), "the posted summary breaks report-v1: {errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_a_job_is_posted_as_json_teams_or_slack_and_the_url_is_never_shown() {
    let job = job().await;
    let hook = receiver(Answer::Status(200)).await;
    let csv = job.csv();
    let output = job.run(&["apply", &csv, "--notify", &hook.url], &[]).await;
    assert_eq!(output.status.code(), Some(2), "an invalid row: {}", common::stderr(&output));
    let (address, _) = hook.url.split_once("/hook").unwrap();
    assert!(common::stderr(&output).contains(&format!("notified {address}\n")), "{}", common::stderr(&output));
    assert_nothing_secret_shown(&output);

    let posts = hook.posts();
    assert_eq!(posts.len(), 1, "one post per job end");
    let (target, kind, body) = &posts[0];
    assert_eq!(target, &format!("/{SECRET_PATH}?{SECRET_QUERY}"), "posted to the URL given, query and all");
    assert_eq!(kind, "application/json");
    assert_eq!(body["verdict"], "1 of 4 rows needs attention: 1 invalid", "{body}");
    assert_eq!(body["needs_attention"], true);
    assert_eq!(body["summary"]["counts"]["updated"], 3);
    assert_eq!(body["summary"]["job"], "apply");
    assert_summary_schema(&body["summary"]);
    let report = body["report"].as_str().unwrap();
    assert!(Path::new(report).is_absolute() && Path::new(report).exists(), "where the report is: {report}");
    assert!(!body.to_string().contains("jane.private"), "a cell's value left the machine: {body}");

    // The same end as a Teams card, the URL from the environment this time.
    let teams = receiver(Answer::Status(200)).await;
    let env = [("PCBULK_NOTIFY_URL", teams.url.clone())];
    let output = job.run(&["apply", &csv, "--notify-format", "teams"], &env).await;
    assert_eq!(output.status.code(), Some(2));
    assert_nothing_secret_shown(&output);
    let card = &teams.posts()[0].2;
    assert_eq!(card["type"], "message");
    let attachment = &card["attachments"][0];
    assert_eq!(attachment["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(attachment["content"]["type"], "AdaptiveCard");
    let blocks = attachment["content"]["body"].as_array().unwrap();
    assert_eq!(blocks[0]["text"], "pcbulk apply: 1 of 4 rows needs attention: 1 invalid");
    assert_eq!(blocks[0]["color"], "Attention");
    let facts: Vec<&str> =
        blocks[1]["facts"].as_array().unwrap().iter().map(|f| f["title"].as_str().unwrap()).collect();
    assert!(facts.contains(&"duration") && facts.contains(&"report") && facts.contains(&"rows"), "{facts:?}");
    assert!(!card.to_string().contains("jane.private"), "{card}");

    // A rollback tells its own end, as Slack takes it.
    let slack = receiver(Answer::Status(200)).await;
    let output = job.run(&["rollback", &csv, "--notify", &slack.url, "--notify-format", "slack"], &[]).await;
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert_nothing_secret_shown(&output);
    let message = &slack.posts()[0].2;
    assert_eq!(message["text"], "pcbulk rollback: All 3 rows restored", "{message}");
    assert!(message["blocks"].as_array().is_some_and(|blocks| blocks.len() == 2), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_post_is_a_warning_and_the_exit_code_stands() {
    let job = job().await;
    let csv = job.csv();
    let quiet = job.run(&["apply", &csv], &[]).await;
    let expected = quiet.status.code();
    assert_eq!(expected, Some(2), "{}", common::stderr(&quiet));

    let refusing = receiver(Answer::Status(500)).await;
    let silent = receiver(Answer::Never).await;
    let closed = {
        // A port that was just free: nothing listens there.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/{SECRET_PATH}?{SECRET_QUERY}", listener.local_addr().unwrap())
    };
    let runs = [
        (refusing.url.clone(), "the webhook answered HTTP 500"),
        (closed, "cannot connect to 127.0.0.1:"),
        (silent.url.clone(), "timed out"),
    ];
    // Each its own job (state file and report), so the three run side by side.
    let outputs = futures::future::join_all(runs.iter().enumerate().map(|(index, (url, _))| {
        let (state, report) = (job.work.path(&format!("{index}.db")), job.work.path(&format!("{index}.csv")));
        let (state, report) = (state.to_str().unwrap(), report.to_str().unwrap());
        job.run(&["apply", &csv, "--notify", url, "--state", state, "--report", report], &[])
    }));
    for (output, (_, words)) in outputs.await.iter().zip(&runs) {
        let errors = common::stderr(output);
        assert_eq!(output.status.code(), expected, "the post's failure changes no exit code: {errors}");
        assert!(errors.contains("warning: --notify http://127.0.0.1:") && errors.contains(words), "{words}:\n{errors}");
        assert!(errors.contains("(the job's outcome stands)"), "{errors}");
        assert_nothing_secret_shown(output);
    }
    assert_eq!(refusing.posts().len(), 1, "one attempt, no retry storm");
    assert_eq!(silent.posts().len(), 1, "the silent receiver got the post and never answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_url_pcbulk_will_not_post_to_is_refused_before_the_job() {
    let job = job().await;
    let csv = job.csv();
    let output = job.run(&["apply", &csv, "--notify", "http://hooks.example.com/T0P-SECRET?S1GNATURE=1"], &[]).await;
    assert_eq!(output.status.code(), Some(1), "{}", common::stderr(&output));
    assert!(common::stderr(&output).contains("--notify: http:// is not allowed"), "{}", common::stderr(&output));
    assert_nothing_secret_shown(&output);
    assert_eq!(job.sandbox.counters().requests.values().sum::<u64>(), 0, "refused before anything was sent");
    let output = job.run(&["apply", &csv, "--notify-format", "discord"], &[]).await;
    assert_eq!(output.status.code(), Some(1), "an unknown format is refused");
}
