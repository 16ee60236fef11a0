//! The `pcbulk` binary: parse the command line, set up logging, run, and map the outcome to an exit code.

use clap::Parser;
use pcbulk::cli::{self, Cli, Exit, LogFormat};
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// mimalloc, not the system's malloc: a row allocates a few hundred small blocks (JSON values, headers, SQL
/// parameters), and glibc's malloc and free were an eighth of `apply`'s CPU (README "Performance"). Its version 2
/// (the `v2` feature): version 3 commits memory in larger steps and took `validate` of a million rows past 64 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `--help` and `--version` go to stdout and exit 0; bad arguments exit 1 as the contract says (clap's own
        // 2 means "rows failed" to a wrapper script).
        Err(error) => {
            // Printing can fail only when stderr or stdout is gone; the exit code still tells.
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { Exit::Failed.code() } else { Exit::Clean.code() });
        }
    };
    // Text logs: warnings and errors only, unless RUST_LOG says more. JSON logs are for machines, so the job's own
    // events (start, progress, end with counts) are in them at the default level too.
    let default = match cli.log_format {
        LogFormat::Text => "warn",
        LogFormat::Json => "warn,pcbulk=info",
    };
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    match cli::run(cli, &cli::process_environment) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(error) => {
            eprintln!("error: {}", cli::error_words(&error));
            ExitCode::from(Exit::Failed.code())
        }
    }
}
