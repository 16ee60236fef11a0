//! Issue 18: `pcbulk login` (browser with PKCE, device code), the kept sign-in that every API command falls back to,
//! its rotation written back (also when two processes renew at once), `whoami`, `logout`, and a revoked sign-in's
//! message: as the real binary, against the sandbox on 127.0.0.1. The test plays the browser and the user.

use crate::common;

use common::{WorkDir, report_rows, stderr, stdout};
use pcbulk::sandbox::{AcceptedCredentials, Faults, SANDBOX_USER, Sandbox, SandboxConfig};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

const TENANT: &str = "sandbox-tenant";

fn customer(index: usize) -> String {
    format!("{index:08x}-bbbb-4ccc-8ddd-{index:012x}")
}

struct Rig {
    sandbox: Sandbox,
    work: WorkDir,
}

impl Rig {
    async fn new(rows: usize, faults: Faults) -> Rig {
        Rig::with(SandboxConfig { faults, ..SandboxConfig::default() }, rows).await
    }

    /// A sandbox of `rows` customers configured as given.
    async fn with(config: SandboxConfig, rows: usize) -> Rig {
        let config = SandboxConfig { customer_ids: (0..rows).map(customer).collect(), ..config };
        Rig { sandbox: Sandbox::start(config).await.expect("the sandbox starts"), work: WorkDir::new() }
    }

    fn url(&self) -> String {
        self.sandbox.url().to_string()
    }

    fn config_dir(&self) -> PathBuf {
        self.work.path("config")
    }

    fn kept_file(&self) -> PathBuf {
        self.config_dir().join("sign-ins").join(format!("{TENANT}.json"))
    }

    fn kept(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.kept_file()).expect("a kept sign-in")).expect("json")
    }

    fn kept_refresh_token(&self) -> String {
        self.kept()["refresh_token"].as_str().expect("a refresh token").to_string()
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![("PCBULK_CONFIG_DIR".into(), self.config_dir().display().to_string())]
    }

    fn login_args(&self, extra: &[&str]) -> Vec<String> {
        let url = self.url();
        let mut args: Vec<String> =
            ["login", "--tenant", TENANT, "--client-id", AcceptedCredentials::DEFAULT_CLIENT_ID]
                .iter()
                .map(|arg| arg.to_string())
                .collect();
        args.extend(["--authority".to_string(), url, "--no-browser".into()]);
        args.extend(extra.iter().map(|arg| arg.to_string()));
        args
    }

    /// Runs the binary to its end (off the runtime, which serves the sandbox).
    async fn run(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        let mut env = self.env();
        env.extend(extra_env.iter().map(|(name, value)| (name.to_string(), value.to_string())));
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
            common::pcbulk_with(&args, &env)
        })
        .await
        .expect("the binary ran")
    }

    fn csv(&self, rows: usize) -> String {
        let mut text = String::from("customer_id,companyName\n");
        for index in 0..rows {
            text.push_str(&format!("{},Renamed {index}\n", customer(index)));
        }
        self.work.write("jobs.csv", text).display().to_string()
    }

    /// `pcbulk apply` with no credential but the kept sign-in.
    async fn apply(&self, csv: &str, extra_env: &[(&str, &str)]) -> Output {
        self.run(&["apply", csv, "--base-url", &self.url(), "--rate", "20"], extra_env).await
    }

    /// Starts `pcbulk login ...`, waits for the line that starts with `prefix` on its stderr, hands it to `act`
    /// (the test acting as the browser or the user), and answers the exit code and everything it printed.
    async fn login_acting<F, Fut>(&self, extra: &[&str], extra_env: &[(&str, &str)], prefix: &str, act: F) -> Output
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let args = self.login_args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut env = self.env();
        env.extend(extra_env.iter().map(|(name, value)| (name.to_string(), value.to_string())));
        let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        let mut child = common::spawn_pcbulk(&args, &env, Stdio::piped());
        let stream = child.stderr.take().expect("a piped stderr");
        let (line_tx, line_rx) = tokio::sync::oneshot::channel();
        let prefix = prefix.to_string();
        let reader = tokio::task::spawn_blocking(move || {
            let mut all = String::new();
            let mut wanted = Some(line_tx);
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if line.starts_with(&prefix)
                    && let Some(sender) = wanted.take()
                {
                    let _ = sender.send(line.clone());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        if let Ok(line) = line_rx.await {
            act(line).await;
        }
        let printed = reader.await.expect("the reader ends");
        let status = tokio::task::spawn_blocking(move || common::wait_at_most(&mut child, Duration::from_secs(60)))
            .await
            .expect("the binary exits");
        Output { status, stdout: Vec::new(), stderr: printed.into_bytes() }
    }

    /// Signs in through the "browser": follows the sign-in page's redirect to the loopback listener, on 127.0.0.1.
    async fn login_in_browser(&self, extra_env: &[(&str, &str)]) -> Output {
        self.login_acting(&[], extra_env, "http", |url| async move { follow_as_browser(&url).await }).await
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a client")
}

/// What a browser does: open the sign-in page, follow its redirect back to `http://localhost:PORT` (reached here on
/// 127.0.0.1, where pcbulk listens).
async fn follow_as_browser(url: &str) {
    let page = http().get(url).send().await.expect("the sign-in page answers");
    assert_eq!(page.status().as_u16(), 302, "the sandbox approves at once");
    let location = page.headers()["location"].to_str().expect("a location").to_string();
    assert!(location.starts_with("http://localhost:"), "{location}");
    let back = location.replacen("http://localhost:", "http://127.0.0.1:", 1);
    let answer = http().get(back).send().await.expect("pcbulk's listener answers");
    assert_eq!(answer.status().as_u16(), 200);
}

async fn refresh_at_v2(rig: &Rig, refresh_token: &str) -> (u16, String) {
    let url = format!("{}/{TENANT}/oauth2/v2.0/token", rig.url());
    let scope = format!("{}/.default offline_access", pcbulk::wire::TOKEN_RESOURCE);
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", AcceptedCredentials::DEFAULT_CLIENT_ID),
        ("refresh_token", refresh_token),
        ("scope", scope.as_str()),
    ];
    let answer = http().post(url).form(&form).send().await.expect("the token endpoint answers");
    (answer.status().as_u16(), answer.text().await.unwrap_or_default())
}

fn sign_in_renewals(rig: &Rig) -> u64 {
    rig.sandbox.counters().tokens_issued.get("sign_in_refresh").copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_in_the_browser_keeps_a_private_sign_in_that_a_job_then_runs_on() {
    let rig = Rig::new(10, Faults::default()).await;
    let login = rig.login_in_browser(&[]).await;
    assert_eq!(login.status.code(), Some(0), "{}", stderr(&login));
    let printed = stderr(&login);
    assert!(printed.contains(&format!("signed in to tenant {TENANT} as {SANDBOX_USER}")), "{printed}");
    let kept_line = format!(
        "the sign-in is kept in a file, {} (mode 0600), as PCBULK_CREDENTIAL_STORE=file asks",
        rig.kept_file().display()
    );
    assert!(printed.contains(&kept_line), "{printed}");
    assert!(printed.contains("code_challenge_method=S256"), "the page asks for PKCE: {printed}");

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(rig.kept_file()).expect("the kept file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let kept = rig.kept();
    let mut keys: Vec<&str> = kept.as_object().expect("an object").keys().map(String::as_str).collect();
    keys.sort();
    let expected =
        ["authority", "client_id", "cloud", "refresh_token", "resource", "tenant", "user", "user_name", "version"];
    assert_eq!(keys, expected, "nothing but what renewing and whoami need");
    let text = std::fs::read_to_string(rig.kept_file()).expect("readable");
    let issued = rig.sandbox.issued_secrets();
    let held: Vec<&String> = issued.iter().filter(|secret| text.contains(secret.as_str())).collect();
    assert_eq!(held, [&rig.kept_refresh_token()], "the refresh token alone: no access token, no code");

    let whoami = rig.run(&["whoami"], &[]).await;
    assert_eq!(whoami.status.code(), Some(0), "{}", stderr(&whoami));
    let shown = stdout(&whoami);
    let kept_in = format!("kept in:   a file, {} (mode 0600)", rig.kept_file().display());
    for expected in [TENANT, AcceptedCredentials::DEFAULT_CLIENT_ID, SANDBOX_USER, "public", "works:     yes", &kept_in]
    {
        assert!(shown.contains(expected), "whoami names {expected}: {shown}");
    }

    let csv = rig.csv(10);
    let job = rig.apply(&csv, &[]).await;
    assert_eq!(job.status.code(), Some(0), "{}", stderr(&job));
    let report = rig.work.read("jobs.csv.report.csv");
    assert!(report_rows(&report).iter().all(|(_, status, _)| status == "updated"), "{report}");
    assert_eq!(rig.sandbox.counters().total_puts_succeeded(), 10);
    assert!(sign_in_renewals(&rig) >= 2, "whoami and the job each renewed the kept sign-in");

    // A credential given for the run wins over the kept sign-in.
    let before = sign_in_renewals(&rig);
    let token = rig.sandbox.mint_token();
    let again = rig.run(&["partner", "get", "billing", "--base-url", &rig.url()], &[("PCBULK_TOKEN", &token)]).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(sign_in_renewals(&rig), before, "the static token was used, not the kept sign-in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_refused_in_the_browser_or_with_a_wrong_verifier_keeps_nothing() {
    let rig = Rig::new(1, Faults { sign_in_refused: true, ..Faults::default() }).await;
    let refused = rig.login_in_browser(&[]).await;
    assert_eq!(refused.status.code(), Some(1));
    let printed = stderr(&refused);
    assert!(printed.contains("the sign-in was refused (access_denied: AADSTS65004"), "{printed}");
    assert!(printed.contains("run `pcbulk login --tenant sandbox-tenant --client-id sandbox-client --authority"));
    assert!(!rig.kept_file().exists());

    // PKCE: a code redeemed with a verifier that is not the challenge's is refused.
    rig.sandbox.set_faults(Faults::default()).expect("valid faults");
    let scope = format!("{}/.default offline_access openid", pcbulk::wire::TOKEN_RESOURCE);
    let authorize = format!("{}/{TENANT}/oauth2/v2.0/authorize", rig.url());
    let query = [
        ("client_id", AcceptedCredentials::DEFAULT_CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", "http://localhost:1"),
        ("scope", scope.as_str()),
        ("state", "s"),
        ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        ("code_challenge_method", "S256"),
    ];
    let authorize = url::Url::parse_with_params(&authorize, &query).expect("a url");
    let page = http().get(authorize).send().await.expect("the sign-in page answers");
    let location = url::Url::parse(page.headers()["location"].to_str().expect("text")).expect("a url");
    let code = location.query_pairs().find(|(key, _)| key == "code").expect("a code").1.to_string();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", AcceptedCredentials::DEFAULT_CLIENT_ID),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:1"),
        ("code_verifier", "not-the-verifier-of-that-challenge-at-all-00000"),
        ("scope", scope.as_str()),
    ];
    let token_url = format!("{}/{TENANT}/oauth2/v2.0/token", rig.url());
    let answer = http().post(token_url).form(&form).send().await.expect("the token endpoint answers");
    assert_eq!(answer.status().as_u16(), 400);
    assert!(answer.text().await.unwrap_or_default().contains("code_verifier does not match"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_a_device_code_approved_through_the_sandbox() {
    let rig = Rig::new(1, Faults { device_code_interval_secs: 1, ..Faults::default() }).await;
    let url = rig.url();
    let approve = |approve: bool| {
        let url = url.clone();
        move |line: String| async move {
            let code = line.split("enter the code ").nth(1).and_then(|rest| rest.split(' ').next()).expect("a code");
            let body = serde_json::json!({"user_code": code, "approve": approve});
            let answer = http().post(format!("{url}/_sandbox/device/approve")).json(&body).send().await;
            assert_eq!(answer.expect("the side endpoint answers").status().as_u16(), 204);
        }
    };
    let denied = rig.login_acting(&["--device-code"], &[], "to sign in, open", approve(false)).await;
    assert_eq!(denied.status.code(), Some(1));
    assert!(stderr(&denied).contains("declined on the device page (access_denied)"), "{}", stderr(&denied));
    assert!(!rig.kept_file().exists());

    let login = rig.login_acting(&["--device-code"], &[], "to sign in, open", approve(true)).await;
    assert_eq!(login.status.code(), Some(0), "{}", stderr(&login));
    assert!(stderr(&login).contains(&format!("{url}/_sandbox/devicelogin and enter the code")));
    assert_eq!(rig.sandbox.counters().tokens_issued.get("device_code"), Some(&1));
    let whoami = rig.run(&["whoami", "--offline"], &[]).await;
    assert_eq!(whoami.status.code(), Some(0), "{}", stderr(&whoami));
    assert!(stdout(&whoami).contains("not checked (--offline)"));
    assert!(stdout(&whoami).contains(SANDBOX_USER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_is_written_back_the_old_refresh_token_is_refused_and_the_job_finishes() {
    // Every renewal replaces the refresh token, and the replaced one stops working at once.
    let faults = Faults { refresh_token_grace_secs: 0, token_lifetime_secs: 2, latency_ms: 50, ..Faults::default() };
    let rig = Rig::new(30, faults).await;
    let login = rig.login_in_browser(&[]).await;
    assert_eq!(login.status.code(), Some(0), "{}", stderr(&login));
    let first = rig.kept_refresh_token();

    let csv = rig.csv(30);
    let job = rig.run(&["apply", &csv, "--base-url", &rig.url(), "--rate", "10", "--concurrency", "2"], &[]).await;
    assert_eq!(job.status.code(), Some(0), "{}", stderr(&job));
    assert_eq!(rig.sandbox.counters().total_puts_succeeded(), 30);
    assert!(sign_in_renewals(&rig) >= 2, "the job renewed its token while it ran: {:?}", rig.sandbox.counters());
    assert_eq!(rig.sandbox.counters().token_refusals, 0);

    let newest = rig.kept_refresh_token();
    assert_ne!(newest, first, "the rotated refresh token was written back");
    let (status, body) = refresh_at_v2(&rig, &first).await;
    assert_eq!(status, 400, "the replaced refresh token is refused: {body}");
    assert!(body.contains("invalid_grant"));
    let whoami = rig.run(&["whoami"], &[]).await;
    assert_eq!(whoami.status.code(), Some(0), "the kept one still works: {}", stderr(&whoami));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_renewing_at_once_both_keep_working() {
    let rig = Rig::new(1, Faults { refresh_token_grace_secs: 0, latency_ms: 0, ..Faults::default() }).await;
    let login = rig.login_in_browser(&[]).await;
    assert_eq!(login.status.code(), Some(0), "{}", stderr(&login));
    let (a, b, c, d) = tokio::join!(
        rig.run(&["whoami"], &[]),
        rig.run(&["whoami"], &[]),
        rig.run(&["whoami"], &[]),
        rig.run(&["whoami"], &[])
    );
    for output in [&a, &b, &c, &d] {
        assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
    }
    assert_eq!(rig.sandbox.counters().token_refusals, 0, "no process presented a replaced refresh token");
    assert_eq!(sign_in_renewals(&rig), 4);
    let (status, body) = refresh_at_v2(&rig, &rig.kept_refresh_token()).await;
    assert_eq!(status, 200, "the kept refresh token is the newest: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_forgets_the_sign_in_and_says_where_from() {
    let rig = Rig::new(1, Faults::default()).await;
    let login = rig.login_in_browser(&[]).await;
    assert_eq!(login.status.code(), Some(0), "{}", stderr(&login));
    let logout = rig.run(&["logout", "--tenant", TENANT], &[]).await;
    assert_eq!(logout.status.code(), Some(0), "{}", stderr(&logout));
    assert!(stderr(&logout).contains(&format!("signed out of tenant {TENANT}: removed {}", rig.kept_file().display())));
    assert!(!rig.kept_file().exists());
    let again = rig.run(&["logout"], &[]).await;
    assert!(stderr(&again).contains("no sign-in is kept: nothing to remove"));
    let job = rig.apply(&rig.csv(1), &[]).await;
    assert_eq!(job.status.code(), Some(1));
    assert!(stderr(&job).contains("no credentials: sign in with `pcbulk login --tenant T --client-id C`"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_sign_in_says_sign_in_again_with_the_exact_command() {
    let rig = Rig::new(5, Faults::default()).await;
    let login = rig.login_in_browser(&[]).await;
    assert_eq!(login.status.code(), Some(0), "{}", stderr(&login));
    rig.sandbox.revoke_tokens();
    let command = format!(
        "sign in again with `pcbulk login --tenant {TENANT} --client-id {} --authority {}`",
        AcceptedCredentials::DEFAULT_CLIENT_ID,
        rig.url()
    );
    let job = rig.apply(&rig.csv(5), &[]).await;
    assert_eq!(job.status.code(), Some(1), "{}", stderr(&job));
    assert!(stderr(&job).contains(&command), "{}", stderr(&job));
    assert_eq!(rig.sandbox.counters().total_puts_succeeded(), 0);
    let whoami = rig.run(&["whoami"], &[]).await;
    assert_eq!(whoami.status.code(), Some(1));
    assert!(stderr(&whoami).contains(&command), "{}", stderr(&whoami));
    assert!(stdout(&whoami).contains("works:     no"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_code_or_token_appears_in_any_output_or_file_at_trace() {
    let rig = Rig::new(10, Faults { token_lifetime_secs: 1, device_code_interval_secs: 1, ..Faults::default() }).await;
    let trace = [("RUST_LOG", "trace")];
    let mut outputs = vec![rig.login_in_browser(&trace).await];
    let csv = rig.csv(10);
    outputs.push(rig.apply(&csv, &trace).await);
    outputs.push(rig.run(&["whoami"], &trace).await);
    outputs.push(rig.run(&["logout"], &trace).await);
    for output in &outputs {
        assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
    }
    assert!(stderr(&outputs[1]).contains("TRACE") || stderr(&outputs[1]).contains("DEBUG"), "the most verbose ran");
    let mut everything: Vec<u8> = Vec::new();
    for output in &outputs {
        everything.extend_from_slice(&output.stdout);
        everything.extend_from_slice(&output.stderr);
    }
    for entry in std::fs::read_dir(rig.work.root()).expect("the work dir") {
        everything.extend(std::fs::read(entry.expect("an entry").path()).unwrap_or_default());
    }
    let secrets = rig.sandbox.issued_secrets();
    assert!(secrets.len() >= 4, "a code, then access and refresh tokens were issued");
    for secret in &secrets {
        assert!(!everything.windows(secret.len()).any(|window| window == secret.as_bytes()), "a secret leaked");
    }
}

/// Where no OS credential store answers (a headless server, a container: here, a session bus that is not there),
/// `login` keeps the sign-in in the 0600 file and says where in one line of warning; `PCBULK_CREDENTIAL_STORE=os`
/// refuses before anyone signs in; a value that is neither is named. (Linux: the Secret Service is the one store
/// a test can make unreachable by its environment.)
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_os_credential_store_the_sign_in_falls_back_to_the_file_with_a_one_line_warning() {
    let rig = Rig::new(1, Faults::default()).await;
    let no_bus = ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/pcbulk-test-bus");
    let login = rig.login_args(&[]);
    let login: Vec<&str> = login.iter().map(String::as_str).collect();

    let forced = rig.run(&login, &[("PCBULK_CREDENTIAL_STORE", "os"), no_bus]).await;
    assert_eq!(forced.status.code(), Some(1), "{}", stderr(&forced));
    let printed = stderr(&forced);
    assert!(
        printed.contains("env PCBULK_CREDENTIAL_STORE=os, but the Secret Service cannot be reached ("),
        "{printed}"
    );
    assert!(printed.contains("unset it to keep the sign-in in a 0600 file"), "{printed}");
    assert!(!printed.contains("/oauth2/v2.0/authorize"), "refused before the sign-in page: {printed}");
    let wrong = rig.run(&login, &[("PCBULK_CREDENTIAL_STORE", "keychain")]).await;
    assert_eq!(wrong.status.code(), Some(1));
    assert!(stderr(&wrong).contains("env PCBULK_CREDENTIAL_STORE: value \"keychain\": give file or os"));
    assert!(!rig.kept_file().exists());

    let unset = [("PCBULK_CREDENTIAL_STORE", ""), no_bus];
    let login = rig.login_in_browser(&unset).await;
    assert_eq!(login.status.code(), Some(0), "{}", stderr(&login));
    let printed = stderr(&login);
    let warnings: Vec<&str> = printed.lines().filter(|line| line.contains("warning")).collect();
    let expected = format!(
        "warning: the sign-in is kept in a file, {} (mode 0600): no OS credential store answered (the Secret Service: ",
        rig.kept_file().display()
    );
    assert!(warnings.len() == 1 && warnings[0].starts_with(&expected), "one line: {printed}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(rig.kept_file()).expect("the kept file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(rig.sandbox.issued_secrets().contains(&rig.kept_refresh_token()), "the file holds the refresh token");
    assert!(rig.kept().get("refresh_token_in").is_none(), "the file holds the token itself");

    let whoami = rig.run(&["whoami"], &unset).await;
    assert_eq!(whoami.status.code(), Some(0), "{}", stderr(&whoami));
    assert!(stdout(&whoami).contains(&format!("kept in:   a file, {} (mode 0600)", rig.kept_file().display())));
    let logout = rig.run(&["logout"], &unset).await;
    assert_eq!(logout.status.code(), Some(0), "{}", stderr(&logout));
    let said = stderr(&logout);
    assert!(
        said.contains(&format!("signed out of tenant {TENANT}: removed {}\n", rig.kept_file().display())),
        "{said}"
    );
    assert!(!rig.kept_file().exists());
}

/// Issue 18: a job running on the kept sign-in whose consent is withdrawn mid-job (the sandbox revokes every token)
/// stops resumable with exit 1 and the exact command to sign in again; after that new sign-in the same command
/// finishes the job, every row applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_revoked_mid_job_stops_it_resumable_and_after_a_new_login_every_row_is_applied_once() {
    const ROWS: usize = 60;
    let rig = Rig::new(ROWS, Faults { latency_ms: 20, ..Faults::default() }).await;
    let login = rig.login_in_browser(&[]).await;
    assert_eq!(login.status.code(), Some(0), "{}", stderr(&login));
    let csv = rig.csv(ROWS);
    let revoke = async {
        let started = std::time::Instant::now();
        while rig.sandbox.counters().total_puts_succeeded() < 5 {
            assert!(started.elapsed() < Duration::from_secs(120), "the job never got going");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        rig.sandbox.revoke_tokens();
    };
    let (stopped, ()) = tokio::join!(rig.apply(&csv, &[]), revoke);
    assert_eq!(stopped.status.code(), Some(1), "credentials revoked: {}", stderr(&stopped));
    let command = format!(
        "sign in again with `pcbulk login --tenant {TENANT} --client-id {} --authority {}`",
        AcceptedCredentials::DEFAULT_CLIENT_ID,
        rig.url()
    );
    assert!(stderr(&stopped).contains(&command), "{}", stderr(&stopped));
    assert!(stderr(&stopped).contains(&format!("to resume: pcbulk apply {csv} ")), "{}", stderr(&stopped));
    let done_before = rig.sandbox.counters().total_puts_succeeded();
    assert!(done_before < ROWS as u64, "the job stopped before its end: {done_before}");
    let report = rig.work.read("jobs.csv.report.csv");
    let pending = report_rows(&report).iter().filter(|(_, status, _)| status == "pending").count();
    assert!(pending > 0, "rows left for the resume: {report}");
    assert!(report_rows(&report).iter().all(|(_, status, _)| status != "failed"), "{report}");

    let again = rig.login_in_browser(&[]).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let resumed = rig.apply(&csv, &[]).await;
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    let report = rig.work.read("jobs.csv.report.csv");
    assert!(report_rows(&report).iter().all(|(_, status, _)| status == "updated"), "{report}");
    let puts = rig.sandbox.counters().puts_succeeded;
    assert_eq!(puts.len(), ROWS, "every customer written");
    assert!(puts.values().all(|&count| count == 1), "each exactly once: {puts:?}");
}

/// Issue 18, point 3: `--cloud china` signs in at the 21Vianet authority for the 21Vianet API's audience (here
/// both on 127.0.0.1: `--authority` and `--base-url` point at a sandbox that accepts only that audience); `whoami`
/// and a job on the kept sign-in work; the public audience is refused there, and a command of another cloud than
/// the kept sign-in's is refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_whoami_and_a_job_on_the_china_cloud() {
    const CHINA_API: &str = "https://partner.partnercenterapi.microsoftonline.cn";
    let rig = Rig::with(SandboxConfig { token_resource: CHINA_API.into(), ..SandboxConfig::default() }, 5).await;
    let public = rig.login_in_browser(&[]).await;
    assert_eq!(public.status.code(), Some(1));
    assert!(stderr(&public).contains("the sign-in was refused (invalid_scope: AADSTS70011"), "{}", stderr(&public));

    let login = rig
        .login_acting(&["--cloud", "china"], &[], "http", |page| async move {
            assert!(
                page.contains(&format!(
                    "scope={}",
                    url::form_urlencoded::byte_serialize(format!("{CHINA_API}/.default").as_bytes())
                        .collect::<String>()
                )),
                "{page}"
            );
            follow_as_browser(&page).await
        })
        .await;
    assert_eq!(login.status.code(), Some(0), "{}", stderr(&login));
    assert_eq!(rig.kept()["cloud"], "china");
    assert_eq!(rig.kept()["resource"], CHINA_API);

    let whoami = rig.run(&["whoami"], &[]).await;
    assert_eq!(whoami.status.code(), Some(0), "{}", stderr(&whoami));
    assert!(stdout(&whoami).contains("cloud:     china"), "{}", stdout(&whoami));
    assert!(stdout(&whoami).contains("works:     yes"), "{}", stdout(&whoami));

    let csv = rig.csv(5);
    let other_cloud = rig.apply(&csv, &[]).await;
    assert_eq!(other_cloud.status.code(), Some(1));
    assert!(
        stderr(&other_cloud).contains("is of the china cloud, not public: add --cloud china"),
        "{}",
        stderr(&other_cloud)
    );
    assert_eq!(rig.sandbox.counters().total_put_attempts(), 0);
    let job = rig.apply(&csv, &[("PCBULK_CLOUD", "china")]).await;
    assert_eq!(job.status.code(), Some(0), "{}", stderr(&job));
    assert_eq!(rig.sandbox.counters().total_puts_succeeded(), 5);
    assert!(sign_in_renewals(&rig) >= 2, "whoami and the job renewed the china sign-in");

    rig.sandbox.revoke_tokens();
    let revoked = rig.run(&["whoami"], &[]).await;
    let command = format!(
        "sign in again with `pcbulk login --tenant {TENANT} --client-id {} --cloud china --authority {}`",
        AcceptedCredentials::DEFAULT_CLIENT_ID,
        rig.url()
    );
    assert!(stderr(&revoked).contains(&command), "{}", stderr(&revoked));
}
