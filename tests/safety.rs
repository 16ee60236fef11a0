//! Secrets never leak, files are private, and unsafe targets or state files are refused: as the real binary.

use crate::common;

use common::{WorkDir, stderr, stdout};
use pcbulk::sandbox::{Faults, Sandbox, SandboxConfig};
use std::process::Output;

const SECRET: &str = "s3cr3t-client-secret-value";
const REFRESH: &str = "r3fr3sh-token-value";

fn customer(index: usize) -> String {
    format!("{index:08x}-bbbb-4ccc-8ddd-{index:012x}")
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S], env: &[(&str, &str)]) -> Output {
    common::pcbulk_with(args, env)
}

async fn sandbox(rows: usize, lifetime: u64) -> Sandbox {
    let credentials = pcbulk::sandbox::AcceptedCredentials {
        client_id: "app".into(),
        client_secret: SECRET.into(),
        refresh_token: REFRESH.into(),
    };
    let faults = Faults { token_lifetime_secs: lifetime, ..Faults::default() };
    let config = SandboxConfig {
        customer_ids: (0..rows).map(customer).collect(),
        credentials,
        faults,
        ..SandboxConfig::default()
    };
    Sandbox::start(config).await.unwrap()
}

fn csv(work: &WorkDir, rows: usize) -> String {
    let mut text = String::from("customer_id,companyName\n");
    for index in 0..rows {
        text.push_str(&format!("{},Renamed {index}\n", customer(index)));
    }
    work.write("jobs.csv", text).display().to_string()
}

/// Everything the job left behind, as bytes: outputs, the state file (and its WAL), the report.
fn everything(work: &WorkDir, outputs: &[&Output]) -> Vec<u8> {
    let mut all = Vec::new();
    for output in outputs {
        all.extend_from_slice(&output.stdout);
        all.extend_from_slice(&output.stderr);
    }
    for entry in std::fs::read_dir(work.root()).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap_or_default());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_in_any_output_state_or_report_even_at_trace() {
    let sandbox = sandbox(20, 1).await;
    let work = WorkDir::new();
    let path = csv(&work, 20);
    let url = sandbox.url().to_string();
    let common = ["--base-url", &url, "--authority", &url, "--tenant", "t", "--client-id", "app", "--rate", "15"];
    let owned = |head: &[&str]| head.iter().chain(common.iter()).map(|arg| arg.to_string()).collect::<Vec<String>>();
    let app_only = owned(&["apply", &path]);
    let first =
        tokio::task::spawn_blocking(move || run(&app_only, &[("PCBULK_CLIENT_SECRET", SECRET), ("RUST_LOG", "trace")]))
            .await
            .unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(stderr(&first).contains("TRACE") || stderr(&first).contains("DEBUG"), "the most verbose logging ran");
    let app_user = owned(&["apply", &path, "--restart", "--yes"]);
    let second = tokio::task::spawn_blocking(move || {
        run(&app_user, &[("PCBULK_REFRESH_TOKEN", REFRESH), ("RUST_LOG", "trace"), ("PCBULK_CLIENT_SECRET", SECRET)])
    })
    .await
    .unwrap();
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let counters = sandbox.counters();
    assert!(counters.tokens_issued.values().sum::<u64>() >= 2, "{:?}", counters.tokens_issued);
    let all = everything(&work, &[&first, &second]);
    assert!(!contains(&all, SECRET), "the client secret leaked");
    assert!(!contains(&all, REFRESH), "the refresh token leaked");
    // Every access token the sandbox issues starts like this.
    assert!(!contains(&all, "sbx-access."), "an access token leaked");
    assert!(!contains(&all, "sbx-refresh."), "a rotated refresh token leaked");
}

#[test]
fn plain_http_off_loopback_is_refused_with_exit_1() {
    let work = WorkDir::new();
    let path = csv(&work, 1);
    let output = run(&["apply", &path, "--base-url", "http://partner.example.com"], &[("PCBULK_TOKEN", "t")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--base-url http://partner.example.com"), "{}", stderr(&output));
    assert!(!work.path("jobs.csv.pcbulk.db").exists(), "nothing is created for a refused target");
}

#[test]
fn a_corrupt_state_file_is_refused_and_left_alone() {
    let work = WorkDir::new();
    let path = csv(&work, 1);
    let state = work.write("jobs.csv.pcbulk.db", "this is not a database, it is someone's notes\n".repeat(20));
    let before = std::fs::read(&state).unwrap();
    let output = run(&["apply", &path, "--base-url", "http://127.0.0.1:9"], &[("PCBULK_TOKEN", "t")]);
    assert_eq!(output.status.code(), Some(1), "{}{}", stdout(&output), stderr(&output));
    assert!(stderr(&output).contains("not a pcbulk state file"), "{}", stderr(&output));
    assert_eq!(std::fs::read(&state).unwrap(), before);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_file_that_cannot_be_written_fails_before_any_put() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = sandbox(3, 3600).await;
    let work = WorkDir::new();
    let path = csv(&work, 3);
    let locked = work.path("locked");
    // A read-only filesystem refuses even root; without the right to mount one, a directory without write permission
    // refuses any other user.
    let read_only = Tiny::mount_with(&locked, "ro,size=16k");
    if read_only.is_none() {
        std::fs::create_dir_all(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
    }
    let state = locked.join("state.db").display().to_string();
    let (token, url) = (sandbox.mint_token(), sandbox.url().to_string());
    let output = tokio::task::spawn_blocking(move || {
        run(&["apply", &path, "--base-url", &url, "--state", &state], &[("PCBULK_TOKEN", &token)])
    })
    .await
    .unwrap();
    drop(read_only);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("state file"), "{}", stderr(&output));
    assert_eq!(sandbox.counters().requests.values().sum::<u64>(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_and_report_files_are_private() {
    let sandbox = sandbox(2, 3600).await;
    let work = WorkDir::new();
    let path = csv(&work, 2);
    let token = sandbox.mint_token();
    let url = sandbox.url().to_string();
    let job = path.clone();
    let output =
        tokio::task::spawn_blocking(move || run(&["apply", &job, "--base-url", &url], &[("PCBULK_TOKEN", &token)]))
            .await
            .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    #[cfg(unix)]
    for name in ["jobs.csv.pcbulk.db", "jobs.csv.report.csv"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(work.path(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
}

/// A small filesystem of its own, unmounted when dropped.
struct Tiny {
    dir: std::path::PathBuf,
}

impl Tiny {
    /// A tmpfs of `kib` KiB at `dir`, or `None` where this user may not mount one (not root).
    fn mount(dir: &std::path::Path, kib: u32) -> Option<Tiny> {
        Tiny::mount_with(dir, &format!("size={kib}k"))
    }

    /// A tmpfs with these mount options at `dir`, or `None` where this user may not mount one.
    fn mount_with(dir: &std::path::Path, options: &str) -> Option<Tiny> {
        std::fs::create_dir_all(dir).ok()?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Tiny { dir: dir.to_path_buf() })
    }
}

impl Drop for Tiny {
    fn drop(&mut self) {
        // Best effort: a leftover mount in a temporary directory is harmless, and a panic here would hide the test's.
        let _ = std::process::Command::new("umount").arg(&self.dir).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_job_at_once_before_any_request() {
    let work = WorkDir::new();
    let Some(tiny) = Tiny::mount(&work.path("full"), 48) else {
        // Only root can mount the small filesystem this needs (CI runs as root here); say so rather than pretend.
        eprintln!("not run: cannot mount a tmpfs as this user");
        return;
    };
    let sandbox = sandbox(400, 3600).await;
    let path = csv(&work, 400);
    let state = tiny.dir.join("job.pcbulk.db").display().to_string();
    let (token, url) = (sandbox.mint_token(), sandbox.url().to_string());
    let output = tokio::task::spawn_blocking(move || {
        run(&["apply", &path, "--base-url", &url, "--state", &state], &[("PCBULK_TOKEN", &token)])
    })
    .await
    .unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("state file") && text.contains("full"), "{text}");
    let counters = sandbox.counters();
    assert_eq!(counters.requests.values().sum::<u64>(), 0, "nothing was sent: {:?}", counters.requests);
}
