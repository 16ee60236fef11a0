//! Shared helpers of the integration tests: a work directory, files in it, the real binary, and (in `rig`) the
//! in-process sandbox as a job's API.

pub mod rig;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// A temporary directory that lives as long as the test.
pub struct WorkDir {
    dir: tempfile::TempDir,
}

impl WorkDir {
    pub fn new() -> WorkDir {
        WorkDir { dir: tempfile::tempdir().expect("a temporary directory") }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("writable work dir");
        path
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).expect("a readable file")
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

/// The path of a bundled sample.
pub fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(name)
}

/// Runs the real `pcbulk` binary with these arguments.
pub fn pcbulk(args: &[&str]) -> Output {
    pcbulk_with(args, &[])
}

/// The real `pcbulk` binary, with none of the caller's credentials: only those of `env`.
fn command(env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pcbulk"));
    for name in ["PCBULK_TOKEN", "PCBULK_REFRESH_TOKEN", "PCBULK_CLIENT_SECRET", "PCBULK_BASE_URL", "PCBULK_NOTIFY_URL"]
    {
        command.env_remove(name);
    }
    // Never the user's own kept sign-in (`pcbulk login`): a directory no test writes, unless `env` names another.
    command.env("PCBULK_CONFIG_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-sign-in"));
    // Never the user's OS credential store either: a test that means it says so (an empty value is unset).
    command.env("PCBULK_CREDENTIAL_STORE", "file");
    command.envs(env.iter().copied());
    command
}

/// Runs the real `pcbulk` binary with these arguments and environment variables, to its end.
pub fn pcbulk_with<S: AsRef<std::ffi::OsStr>>(args: &[S], env: &[(&str, &str)]) -> Output {
    command(env).args(args).output().expect("the pcbulk binary runs")
}

/// Starts the real `pcbulk` binary with these arguments and environment variables (and no other credentials),
/// its stderr going to `stderr`, and returns it still running.
pub fn spawn_pcbulk(args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Child {
    command(env)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("the pcbulk binary starts")
}

/// Waits for a child to exit, killing it and failing the test when it takes longer than `limit`.
pub fn wait_at_most(child: &mut Child, limit: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return status;
        }
        if started.elapsed() > limit {
            // Best effort: the test fails either way, and a leftover process must not outlive it.
            let _ = child.kill();
            let _ = child.wait();
            panic!("pcbulk did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The turn of a test that must not share the CPU with another such test: the soak (`crash.rs`), whose pace must
/// meet the sandbox's rate limit, and the spreadsheet engine's conversions (`office.rs`), each a burst of CPU.
pub fn heavy_turn() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A test that failed while holding the turn leaves nothing behind that the next one needs.
    HEAVY.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A CSV reader over a report pcbulk wrote, past the UTF-8 byte-order mark every CSV it writes starts with (which
/// the csv crate would take as part of the first header), separated by the delimiter of its job's input (the one
/// after its first column, `line`); the one place the tests parse a report.
pub fn report_reader(text: &str) -> csv::Reader<&[u8]> {
    let body = text.strip_prefix('\u{feff}').expect("a report starts with a UTF-8 byte-order mark");
    let delimiter = body.strip_prefix("line").and_then(|rest| rest.bytes().next()).expect("a report's header");
    csv::ReaderBuilder::new().delimiter(delimiter).from_reader(body.as_bytes())
}

/// The text of a report file, for [`report_reader`].
pub fn read_text(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Reads a report into (line, status, error) triples.
pub fn report_rows(text: &str) -> Vec<(u64, String, String)> {
    let mut reader = report_reader(text);
    let headers = reader.headers().expect("a header").clone();
    let column = |name: &str| headers.iter().position(|header| header == name).expect("a report column");
    let (line, status, error) = (column("line"), column("status"), column("error"));
    reader
        .records()
        .map(|record| {
            let record = record.expect("a report record");
            (record[line].parse().expect("a line number"), record[status].to_string(), record[error].to_string())
        })
        .collect()
}

/// Cancels a job after a number of rows, as Ctrl-C would.
pub struct CancelAfter {
    rows: u64,
    done: std::sync::atomic::AtomicU64,
    cancel: tokio_util::sync::CancellationToken,
}

impl CancelAfter {
    pub fn new(rows: u64, cancel: tokio_util::sync::CancellationToken) -> CancelAfter {
        CancelAfter { rows, done: Default::default(), cancel }
    }
}

impl pcbulk::progress::Progress for CancelAfter {
    fn started(&self, _total: u64) {}
    fn row_done(&self, _status: pcbulk::state::RowStatus) {
        if self.done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == self.rows {
            self.cancel.cancel();
        }
    }
    fn finished(&self) {}
}
