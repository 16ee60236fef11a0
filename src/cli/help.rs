//! The end of every command's `--help`, in one layout: "Environment:", "Examples:", "Exit codes:" (issue 19). The
//! clap structs only name the page (`after_help = help::apply()`); the words live here, so the pages cannot drift
//! apart, and a test walks every command (a new one included) and holds its help to the layout.

use super::Exit;

/// The variables of the commands that call the Partner Center API (cli.md, "Authentication").
const API_ENVIRONMENT: &[(&str, &str)] = &[
    ("PCBULK_TOKEN", "a ready bearer token (cannot be renewed); wins over every other credential"),
    ("PCBULK_REFRESH_TOKEN", "with --tenant and --client-id: App+User, the refresh-token grant"),
    ("PCBULK_CLIENT_SECRET", "with --tenant and --client-id: app only (or a confidential app's secret, App+User)"),
    ("PCBULK_BASE_URL", "the API root, as --base-url"),
    ("PCBULK_CLOUD", "public or china, as --cloud"),
    ("PCBULK_CONFIG_DIR", "where the sign-in of `pcbulk login` is kept"),
];

/// The order in which credentials are looked for (cli.md, "Authentication"), as `--help` says it.
pub const AUTHENTICATION_HELP: &str = "Credentials (the first given wins):
  1. env PCBULK_TOKEN, or --token-file FILE: a ready bearer token
  2. env PCBULK_REFRESH_TOKEN with --tenant and --client-id (App+User; env PCBULK_CLIENT_SECRET for a confidential app)
  3. env PCBULK_CLIENT_SECRET with --tenant and --client-id (app only)
  4. the sign-in kept by `pcbulk login` (of --tenant when several are kept)";

/// The progress line of a job off a terminal.
const PROGRESS: (&str, &str) =
    ("PCBULK_PROGRESS_SECS", "seconds between progress lines when stderr is not a terminal (default 30)");
/// How long a job waits for the service's first answer (docs/big-jobs.md).
const FIRST_ANSWER: (&str, &str) =
    ("PCBULK_FIRST_ANSWER_SECS", "seconds a job waits for the service's first answer before it stops (default 120)");
/// The webhook a job's end is posted to (`--notify`), kept off the command line.
const NOTIFY: (&str, &str) =
    ("PCBULK_NOTIFY_URL", "the incoming webhook to tell of the job's end, as --notify (a secret: never printed whole)");
/// Where `login` keeps its sign-in, for the commands that only read or remove it.
const CONFIG_DIR: (&str, &str) = ("PCBULK_CONFIG_DIR", "where the sign-in of `pcbulk login` is kept");
/// Where `login` keeps the refresh token (docs/authentication.md).
const CREDENTIAL_STORE: (&str, &str) = (
    "PCBULK_CREDENTIAL_STORE",
    "file or os: where the refresh token is kept (unset: the OS credential store, else a 0600 file)",
);

/// The environment of a command that calls no API.
const NO_API: &str = "none of the credentials: this command calls no API";

/// The exit codes, in the words of cli.md's table.
const CLEAN_JOB: (Exit, &str) = (Exit::Clean, "every row updated, unchanged or would_update");
const ROWS_FAILED: (Exit, &str) =
    (Exit::RowsFailed, "the job ran to its end, and some rows are failed, invalid or conflict");
const FAILED_JOB: (Exit, &str) = (
    Exit::Failed,
    "the job could not run or had to stop: bad arguments, unreadable or malformed file, credentials refused or \
     revoked, state file of another CSV",
);
const STOPPED: (Exit, &str) =
    (Exit::Stopped, "stopped by the error budget (--max-failures) or after a canary (--canary); resumable");
const INTERRUPTED: (Exit, &str) = (Exit::Interrupted, "interrupted (Ctrl-C); resumable");
const DONE: (Exit, &str) = (Exit::Clean, "done");
const FAILED: (Exit, &str) =
    (Exit::Failed, "could not run: bad arguments, an unreadable file, credentials refused, or any other failure");

/// What a command reads from the environment.
enum Reads {
    /// The API's variables and the order of the credentials, and these too.
    Api(&'static [(&'static str, &'static str)]),
    /// Only these (or, when empty, no credentials at all).
    Only(&'static [(&'static str, &'static str)]),
}

/// One page end: the three sections, always in this order and this layout.
fn page(reads: Reads, examples: &[(&str, &str)], exits: &[(Exit, &str)]) -> String {
    let mut text = String::from("Environment:\n");
    let (variables, credentials): (Vec<(&str, &str)>, bool) = match reads {
        Reads::Api(extra) => (API_ENVIRONMENT.iter().chain(extra).copied().collect(), true),
        Reads::Only(only) => (only.to_vec(), false),
    };
    if variables.is_empty() {
        text.push_str(&format!("  {NO_API}\n"));
    }
    let width = variables.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    for (name, words) in &variables {
        text.push_str(&format!("  {name:<width$}  {words}\n"));
    }
    if credentials {
        text.push('\n');
        text.push_str(AUTHENTICATION_HELP);
        text.push('\n');
    }
    text.push_str("\nExamples:\n");
    for (words, line) in examples {
        text.push_str(&format!("  # {words}\n  {line}\n"));
    }
    text.push_str("\nExit codes:\n");
    let mut exits = exits.to_vec();
    exits.sort_by_key(|(exit, _)| exit.code());
    for (exit, words) in exits {
        text.push_str(&format!("  {:<3}  {words}\n", exit.code()));
    }
    text.trim_end().to_string()
}

pub fn top() -> String {
    page(
        Reads::Api(&[PROGRESS, FIRST_ANSWER]),
        &[
            ("check a CSV offline", "pcbulk validate updates.csv"),
            ("rehearse the whole job against an in-process sandbox", "pcbulk apply updates.csv --sandbox"),
            ("see what would change, then run the job", "pcbulk apply updates.csv --dry-run"),
        ],
        &[CLEAN_JOB, ROWS_FAILED, FAILED_JOB, STOPPED, INTERRUPTED],
    )
}

pub fn validate() -> String {
    page(
        Reads::Only(&[]),
        &[
            ("check every row; problems are printed with their line", "pcbulk validate updates.csv"),
            (
                "a spreadsheet saved in a European locale, with a report",
                "pcbulk validate updates.csv --delimiter ';' --report checked.csv",
            ),
            (
                "a sheet of an Excel workbook, with its report as a workbook",
                "pcbulk validate updates.xlsx --sheet Changes --report checked.xlsx",
            ),
        ],
        &[
            (Exit::Clean, "every row valid"),
            (Exit::RowsFailed, "some rows are invalid"),
            (Exit::Failed, "the file could not be checked: bad arguments, an unreadable or malformed file"),
        ],
    )
}

pub fn apply() -> String {
    page(
        Reads::Api(&[PROGRESS, FIRST_ANSWER, NOTIFY]),
        &[
            ("read and merge every row, write nothing: what would change", "pcbulk apply updates.csv --dry-run"),
            (
                "write the first 10 rows, look, then run the same command without --canary",
                "pcbulk apply updates.csv --canary 10",
            ),
            (
                "the job as App+User (run it again to resume)",
                "PCBULK_REFRESH_TOKEN=... pcbulk apply updates.csv --tenant T --client-id C",
            ),
        ],
        &[CLEAN_JOB, ROWS_FAILED, FAILED_JOB, STOPPED, INTERRUPTED],
    )
}

pub fn export() -> String {
    page(
        Reads::Api(&[PROGRESS, FIRST_ANSWER]),
        &[
            ("every customer's billing profile, as a workbook to edit in Excel", "pcbulk export --out current.xlsx"),
            (
                "only some columns, of the customers of a CSV",
                "pcbulk export --out current.csv --columns email,defaultAddress.phoneNumber --customers ids.csv",
            ),
            ("then, after editing it: what would change, and the apply", "pcbulk apply current.xlsx --dry-run"),
        ],
        &[
            (Exit::Clean, "every customer read and written to the file"),
            (Exit::RowsFailed, "some customers could not be read (see the report); the others are in the file"),
            FAILED_JOB,
            INTERRUPTED,
        ],
    )
}

pub fn rollback() -> String {
    page(
        Reads::Api(&[PROGRESS, FIRST_ANSWER, NOTIFY]),
        &[
            ("say per row what would be put back, write nothing", "pcbulk rollback updates.csv --dry-run"),
            ("put back what the job of updates.csv changed (run it again to resume)", "pcbulk rollback updates.csv"),
            ("a state file kept elsewhere", "pcbulk rollback --state /var/lib/pcbulk/updates.csv.pcbulk.db"),
        ],
        &[(Exit::Clean, "every row restored, unchanged or would_update"), ROWS_FAILED, FAILED_JOB, INTERRUPTED],
    )
}

pub fn status() -> String {
    page(
        Reads::Only(&[]),
        &[
            ("counts per status of the job of updates.csv", "pcbulk status updates.csv"),
            (
                "the rollback of a state file kept elsewhere",
                "pcbulk status --state jobs/updates.csv.pcbulk.db --job rollback",
            ),
        ],
        &[DONE, (Exit::Failed, "no state file, or it holds no such job")],
    )
}

pub fn report() -> String {
    page(
        Reads::Only(&[]),
        &[
            ("the report again, as CSV", "pcbulk report updates.csv --out again.report.csv"),
            ("the summary page", "pcbulk report updates.csv --out summary.html --format html"),
        ],
        &[DONE, (Exit::Failed, "no state file, it holds no such job, or the report cannot be written")],
    )
}

pub fn partner() -> String {
    page(
        Reads::Api(&[]),
        &[
            ("the billing profile as JSON", "pcbulk partner get billing"),
            (
                "change a field (shows the diff, PUT with If-Match)",
                "pcbulk partner set support --set telephone=4255550100",
            ),
            ("put back the last change", "pcbulk partner undo support"),
        ],
        &[DONE, FAILED],
    )
}

pub fn partner_get() -> String {
    page(
        Reads::Api(&[]),
        &[
            ("the billing profile as JSON", "pcbulk partner get billing"),
            ("the support profile, with a token from a file", "pcbulk partner get support --token-file token.txt"),
        ],
        &[DONE, FAILED],
    )
}

pub fn partner_set() -> String {
    page(
        Reads::Api(&[]),
        &[
            ("show the diff, send nothing", "pcbulk partner set support --set telephone=4255550100 --dry-run"),
            (
                "change two fields",
                "pcbulk partner set billing --set address.city=Seattle --set address.addressLine2='<clear>'",
            ),
        ],
        &[DONE, FAILED],
    )
}

pub fn partner_undo() -> String {
    page(
        Reads::Api(&[]),
        &[
            ("show what would be put back, send nothing", "pcbulk partner undo support --dry-run"),
            ("put back the last change to the support profile", "pcbulk partner undo support"),
        ],
        &[DONE, FAILED],
    )
}

pub fn login() -> String {
    page(
        Reads::Only(&[("PCBULK_CLOUD", "public or china, as --cloud"), CONFIG_DIR, CREDENTIAL_STORE]),
        &[
            ("sign in in a browser", "pcbulk login --tenant contoso.onmicrosoft.com --client-id C"),
            (
                "on a machine without a browser",
                "pcbulk login --tenant contoso.onmicrosoft.com --client-id C --device-code",
            ),
        ],
        &[(Exit::Clean, "signed in, the sign-in kept"), FAILED],
    )
}

pub fn whoami() -> String {
    page(
        Reads::Only(&[CONFIG_DIR]),
        &[
            ("who is signed in, and whether the sign-in still works", "pcbulk whoami"),
            (
                "one tenant's sign-in, without asking the token endpoint",
                "pcbulk whoami --tenant contoso.onmicrosoft.com --offline",
            ),
        ],
        &[
            (Exit::Clean, "signed in (and it works, unless --offline)"),
            (Exit::Failed, "no sign-in kept, or it no longer works"),
        ],
    )
}

pub fn logout() -> String {
    page(
        Reads::Only(&[CONFIG_DIR, CREDENTIAL_STORE]),
        &[
            ("forget one tenant's sign-in", "pcbulk logout --tenant contoso.onmicrosoft.com"),
            ("forget every kept sign-in", "pcbulk logout"),
        ],
        &[(Exit::Clean, "done (also when nothing was kept)"), FAILED],
    )
}

pub fn sandbox() -> String {
    page(
        Reads::Only(&[]),
        &[
            ("serve 10 customers; it prints its URL and a token to export", "pcbulk sandbox"),
            (
                "the CSV's customers, throttled, on a fixed port",
                "pcbulk sandbox --port 8080 --seed-from updates.csv --rate-limit 5",
            ),
        ],
        &[
            (Exit::Clean, "stopped with Ctrl-C"),
            (Exit::Failed, "could not start: bad arguments, an unreadable --seed-from or --data file, a port in use"),
        ],
    )
}

pub fn completions() -> String {
    page(
        Reads::Only(&[]),
        &[
            ("bash, for this shell", "pcbulk completions bash > ~/.local/share/bash-completion/completions/pcbulk"),
            ("zsh", "pcbulk completions zsh > \"${fpath[1]}/_pcbulk\""),
        ],
        &[DONE, (Exit::Failed, "bad arguments, or the script could not be printed")],
    )
}

#[cfg(test)]
mod tests {
    use crate::cli::Cli;
    use clap::CommandFactory;

    /// Every command, this one's subcommands included, with its full name (`pcbulk partner set`).
    fn every_command(command: &clap::Command, name: String, found: &mut Vec<(String, clap::Command)>) {
        for sub in command.get_subcommands().filter(|sub| sub.get_name() != "help") {
            every_command(sub, format!("{name} {}", sub.get_name()), found);
        }
        found.push((name, command.clone()));
    }

    /// A command that takes the API options, or has a subcommand that does.
    fn calls_the_api(command: &clap::Command) -> bool {
        command.get_arguments().any(|arg| arg.get_id() == "token_file") || command.get_subcommands().any(calls_the_api)
    }

    /// Issue 19: every `--help` ends with the same three sections, names the API's variables where the command calls
    /// the API, and shows at least two examples of itself. The commands are walked, so a new one cannot be forgotten.
    #[test]
    fn every_commands_help_names_its_environment_examples_and_exit_codes() {
        let mut root = Cli::command();
        root.build();
        let mut commands = Vec::new();
        every_command(&root, "pcbulk".into(), &mut commands);
        assert!(commands.len() >= 15, "{:?}", commands.iter().map(|(name, _)| name).collect::<Vec<_>>());
        for (name, mut command) in commands {
            let help = command.render_long_help().to_string();
            let environment = help.find("\nEnvironment:\n");
            let examples = help.find("\nExamples:\n");
            let exits = help.find("\nExit codes:\n");
            assert!(
                environment.is_some() && environment < examples && examples < exits,
                "`{name} --help` lacks Environment:, Examples:, Exit codes:, in that order:\n{help}"
            );
            if calls_the_api(&command) {
                for variable in
                    ["PCBULK_TOKEN", "PCBULK_REFRESH_TOKEN", "PCBULK_CLIENT_SECRET", "PCBULK_BASE_URL", "PCBULK_CLOUD"]
                {
                    assert!(help.contains(variable), "`{name} --help` does not name {variable}:\n{help}");
                }
            }
            let example = |line: &str| {
                let line = line.trim();
                line == name || line.starts_with(&format!("{name} "))
            };
            let shown = help.lines().filter(|line| example(line)).count();
            assert!(shown >= 2, "`{name} --help` shows {shown} examples of `{name} `, not two or more:\n{help}");
            let codes = &help[exits.unwrap()..];
            assert!(
                codes.contains("\n  0 ") && codes.contains("\n  1 "),
                "`{name} --help`: exit codes 0 and 1:\n{help}"
            );
        }
    }
}
