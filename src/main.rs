//! The `pcbulk` binary: parse the command line, set up logging, run, and map the outcome to an exit code.

use clap::Parser;
use pcbulk::cli::{self, Cli, Exit, LogFormat};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// mimalloc, not the system's malloc: a row allocates a few hundred small blocks (JSON values, headers, SQL
/// parameters), and glibc's malloc and free were an eighth of `apply`'s CPU (README "Performance"). Its version 2
/// (the `v2` feature): version 3 commits memory in larger steps and took `validate` of a million rows past 64 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
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
