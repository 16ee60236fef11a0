//! `pcbulk completions SHELL`: the shell's completion script, on stdout, made from the clap definition itself so it
//! never falls behind a new option.

use super::{Cli, Exit};
use anyhow::Context;
use clap::{Args, CommandFactory, ValueEnum};
use std::io::Write;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells operators use (clap_complete knows more; these are the ones we document and test).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

impl CompletionShell {
    pub const ALL: [CompletionShell; 4] =
        [CompletionShell::Bash, CompletionShell::Zsh, CompletionShell::Fish, CompletionShell::Powershell];

    fn generator(self) -> clap_complete::Shell {
        match self {
            CompletionShell::Bash => clap_complete::Shell::Bash,
            CompletionShell::Zsh => clap_complete::Shell::Zsh,
            CompletionShell::Fish => clap_complete::Shell::Fish,
            CompletionShell::Powershell => clap_complete::Shell::PowerShell,
        }
    }
}

/// Writes the completion script of `shell` for `pcbulk`.
pub fn write(shell: CompletionShell, out: &mut dyn Write) {
    clap_complete::generate(shell.generator(), &mut Cli::command(), "pcbulk", out);
}

/// Runs `pcbulk completions`.
pub fn run(args: CompletionsArgs) -> anyhow::Result<Exit> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    write(args.shell, &mut out);
    out.flush().context("cannot print")?;
    Ok(Exit::Clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_that_names_the_subcommands() {
        for shell in CompletionShell::ALL {
            let mut script = Vec::new();
            write(shell, &mut script);
            let script = String::from_utf8(script).unwrap();
            let command = Cli::command();
            let names: Vec<&str> = command.get_subcommands().map(|sub| sub.get_name()).collect();
            assert!(names.contains(&"apply") && names.contains(&"completions"), "{names:?}");
            for name in names {
                assert!(script.contains(name), "{shell:?} script lacks {name}");
            }
            assert!(script.contains("log-format"), "{shell:?} script lacks the global option");
        }
    }
}
