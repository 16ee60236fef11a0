//! Issue 19, point 1: the plan on the terminal, as the real binary prints it after `apply --dry-run` and
//! `rollback --dry-run` (rows `before → after`, rows per field, pre-flight refusals, the command to run it for real),
//! and the same summary without rows after a real apply; colour under a pseudo-terminal (`script` from util-linux),
//! none in a pipe or with `NO_COLOR`. Every row shown is checked against the state file.

use crate::common;

use common::WorkDir;
use common::rig::customer;
use pcbulk::sandbox::{Sandbox, SandboxConfig};
use pcbulk::state::{JobKind, StateFile};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Changed rows in the CSV (each renames a company and moves its city); one more row pre-flight refuses.
const CHANGED: usize = 25;
const REFUSED_LINE: u64 = CHANGED as u64 + 2;

struct Setup {
    work: WorkDir,
    sandbox: Sandbox,
    csv: PathBuf,
}

async fn setup() -> Setup {
    let ids: Vec<String> = (0..=CHANGED).map(customer).collect();
    let config = SandboxConfig { customer_ids: ids.clone(), seed: 19, ..SandboxConfig::default() };
    let sandbox = Sandbox::start(config).await.unwrap();
    let work = WorkDir::new();
    let mut text = String::from(
        "customer_id,companyName,defaultAddress.city,defaultAddress.country,defaultAddress.state,defaultAddress.postalCode,defaultAddress.region\n",
    );
    for (index, id) in ids.iter().take(CHANGED).enumerate() {
        text.push_str(&format!("{id},Company {index},City {index},,,,\n"));
    }
    // A US postal code of four digits: pre-flight refuses it.
    text.push_str(&format!("{},,Seattle,US,WA,9810,<clear>\n", ids[CHANGED]));
    let csv = work.write("updates.csv", text);
    Setup { work, sandbox, csv }
}

impl Setup {
    /// The real binary with this command line, its stdout a pipe.
    async fn run(&self, args: &[&str], env: &[(&'static str, &'static str)]) -> Output {
        let mut command = self.command(env);
        command.args(args);
        tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
    }

    /// The real binary under a pseudo-terminal (`script -qc`), its stderr to a file so only stdout is the terminal.
    async fn run_on_terminal(&self, args: &str, env: &[(&'static str, &'static str)]) -> String {
        let binary = env!("CARGO_BIN_EXE_pcbulk");
        let errors = self.work.path("stderr.txt");
        let line = format!("{binary} {args} 2>{}", errors.display());
        let mut command = Command::new("script");
        command.args(["-qec", &line, "/dev/null"]);
        for name in ["PCBULK_REFRESH_TOKEN", "PCBULK_CLIENT_SECRET", "NO_COLOR"] {
            command.env_remove(name);
        }
        command.env("PCBULK_CONFIG_DIR", self.work.path("no-sign-in"));
        command.env("PCBULK_TOKEN", self.sandbox.mint_token()).envs(self.environment(env));
        let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
        let errors = std::fs::read_to_string(errors).unwrap_or_default();
        assert_eq!(output.status.code(), Some(2), "a refused row: {}\n{errors}", common::stdout(&output));
        common::stdout(&output)
    }

    fn environment(&self, env: &[(&'static str, &'static str)]) -> Vec<(String, String)> {
        let mut all = vec![("PCBULK_BASE_URL".to_string(), self.sandbox.url().to_string())];
        all.extend(env.iter().map(|(name, value)| (name.to_string(), value.to_string())));
        all
    }

    fn command(&self, env: &[(&'static str, &'static str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pcbulk"));
        for name in ["PCBULK_REFRESH_TOKEN", "PCBULK_CLIENT_SECRET", "NO_COLOR"] {
            command.env_remove(name);
        }
        command.env("PCBULK_CONFIG_DIR", self.work.path("no-sign-in"));
        command.env("PCBULK_TOKEN", self.sandbox.mint_token()).envs(self.environment(env));
        command
    }

    fn csv(&self) -> &str {
        self.csv.to_str().unwrap()
    }

    fn state(&self) -> PathBuf {
        self.work.path("updates.csv.pcbulk.db")
    }
}

/// What the state file says each changed row changed: `(line, customer id, [field: before → after])`.
fn recorded(state: &Path, kind: JobKind) -> Vec<(u64, String, Vec<String>)> {
    let file = StateFile::open_existing(state).unwrap();
    let job = file.find_job(kind).unwrap().unwrap();
    let mut rows = Vec::new();
    file.each_row(job.id, |row| {
        if ["would_update", "updated"].contains(&row.status.name()) {
            let before: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&row.before).unwrap();
            let after: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&row.after).unwrap();
            let show = |side: &serde_json::Map<String, serde_json::Value>, field: &str| {
                side.get(field).map_or("(absent)".to_string(), |value| value.to_string())
            };
            let changes = row
                .changed_fields
                .split_whitespace()
                .map(|field| format!("    {field}: {} → {}", show(&before, field), show(&after, field)))
                .collect();
            rows.push((row.line, row.customer_id, changes));
        }
        Ok(())
    })
    .unwrap();
    rows
}

/// The row blocks of a plan (before its counts): `(line, customer id, field lines)`.
fn shown_rows(text: &str) -> Vec<(u64, String, Vec<String>)> {
    let mut rows: Vec<(u64, String, Vec<String>)> = Vec::new();
    for line in text.lines().take_while(|line| !line.starts_with("fields:") && !line.starts_with("pre-flight")) {
        if let Some(rest) = line.strip_prefix("  line ") {
            let (number, id) = rest.split_once(' ').unwrap();
            rows.push((number.parse().unwrap(), id.to_string(), Vec::new()));
        } else if line.starts_with("    ") {
            rows.last_mut().expect("a field line under a row").2.push(line.to_string());
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_prints_the_plan_from_the_state_file_and_the_command_that_runs_it() {
    let setup = setup().await;
    let output = setup.run(&["apply", setup.csv(), "--dry-run"], &[]).await;
    let text = common::stdout(&output);
    assert_eq!(output.status.code(), Some(2), "a refused row: {}\n{}", text, common::stderr(&output));
    assert!(!text.contains('\x1b'), "no colour in a pipe:\n{text}");
    assert!(text.starts_with(&format!("{CHANGED} rows would change\n")), "{text}");

    let truth = recorded(&setup.state(), JobKind::DryRun);
    assert_eq!(truth.len(), CHANGED, "the state file's own count");
    let shown = shown_rows(&text);
    assert_eq!(shown, truth[..20], "the first 20 rows, exactly as the state file holds them");
    assert!(text.contains("  ... and 5 more (--show all prints every row"), "{text}");
    assert!(text.contains(&format!("fields: companyName: {CHANGED} rows, defaultAddress.city: {CHANGED} rows\n")));

    let refused = refusal(&setup.state(), REFUSED_LINE);
    let listed = format!("pre-flight would refuse 1 row:\n  line {REFUSED_LINE} {}: {refused}\n", customer(CHANGED));
    assert!(text.contains(&listed), "{listed}\nnot in:\n{text}");
    let run = format!("to run it for real:\n  pcbulk apply {}\n", setup.csv());
    assert!(text.ends_with(&run), "the same command without --dry-run last:\n{text}");

    let all = setup.run(&["apply", setup.csv(), "--dry-run", "--show", "all"], &[]).await;
    let text = common::stdout(&all);
    assert_eq!(shown_rows(&text), recorded(&setup.state(), JobKind::DryRun), "--show all: every row");
    assert!(!text.contains("more (--show all"), "{text}");
    assert!(text.ends_with(&format!("  pcbulk apply {}\n", setup.csv())), "--show is not part of the real run");
    assert_eq!(setup.sandbox.counters().total_puts_succeeded(), 0, "a dry run writes nothing");
}

/// The rule pre-flight recorded for this line.
fn refusal(state: &Path, line: u64) -> String {
    let file = StateFile::open_existing(state).unwrap();
    let job = file.find_job(JobKind::DryRun).unwrap().unwrap();
    let mut rule = None;
    file.each_row(job.id, |row| {
        if row.line == line {
            assert_eq!(row.status.name(), "invalid", "pre-flight refuses line {line}");
            rule = Some(row.preflight);
        }
        Ok(())
    })
    .unwrap();
    rule.filter(|rule| !rule.is_empty()).expect("the refused row's rule")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colour_on_a_terminal_only_and_never_with_no_color() {
    let setup = setup().await;
    let args = format!("apply {} --dry-run --show 3", setup.csv());
    let coloured = setup.run_on_terminal(&args, &[]).await;
    assert!(coloured.contains("\x1b[31m") && coloured.contains("\x1b[32m"), "before red, after green:\n{coloured}");
    assert!(coloured.contains("\x1b[1m25 rows would change\x1b[0m"), "{coloured:?}");
    let plain = setup.run_on_terminal(&args, &[("NO_COLOR", "1")]).await;
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
    assert!(plain.contains("25 rows would change"), "{plain}");
    let piped = common::stdout(&setup.run(&["apply", setup.csv(), "--dry-run", "--show", "3"], &[]).await);
    assert!(!piped.contains('\x1b') && piped.contains("25 rows would change"), "{piped:?}");
    assert_eq!(shown_rows(&piped).len(), 3, "--show 3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_ends_with_the_counts_and_a_rollback_dry_run_shows_its_plan() {
    let setup = setup().await;
    let apply = setup.run(&["apply", setup.csv()], &[]).await;
    let text = common::stdout(&apply);
    assert_eq!(apply.status.code(), Some(2), "{text}{}", common::stderr(&apply));
    assert!(text.starts_with(&format!("{CHANGED} rows changed\n")), "{text}");
    assert!(shown_rows(&text).is_empty(), "no row lines after a real job:\n{text}");
    assert!(text.contains(&format!("fields: companyName: {CHANGED} rows, defaultAddress.city: {CHANGED} rows\n")));
    assert!(text.contains(&format!("pre-flight refused 1 row:\n  line {REFUSED_LINE} ")), "{text}");
    assert!(!text.contains("for real"), "{text}");
    assert_eq!(recorded(&setup.state(), JobKind::Apply).len(), CHANGED);

    let state = setup.state();
    let rollback =
        setup.run(&["rollback", "--state", state.to_str().unwrap(), "--dry-run", "--show", "all"], &[]).await;
    let text = common::stdout(&rollback);
    assert!(rollback.status.success(), "{text}{}", common::stderr(&rollback));
    assert!(text.starts_with(&format!("{CHANGED} rows would be put back\n")), "{text}");
    let rows = shown_rows(&text);
    assert_eq!(rows.len(), CHANGED, "{text}");
    // Each row puts back what the apply found: the rollback's after is the apply's before.
    let applied = recorded(&setup.state(), JobKind::Apply);
    for ((line, id, changes), (apply_line, apply_id, apply_changes)) in rows.iter().zip(&applied) {
        assert_eq!((line, id), (apply_line, apply_id));
        let reversed: Vec<String> = apply_changes
            .iter()
            .map(|change| {
                let (field, values) = change.split_once(": ").unwrap();
                let (before, after) = values.split_once(" → ").unwrap();
                format!("{field}: {after} → {before}")
            })
            .collect();
        assert_eq!(changes, &reversed, "line {line}");
    }
    assert!(text.ends_with(&format!("to run it for real:\n  pcbulk rollback --state {}\n", state.display())), "{text}");
}
