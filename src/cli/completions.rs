//! `bcn completions` and `bcn man`: generated from the command line's own definition, so
//! they never fall behind it.

use clap::CommandFactory as _;

use super::{Cli, ExitStatus, Printer};
use crate::engine::EngineError;

/// Print a shell completion script: `bcn completions bash > /etc/bash_completion.d/bcn`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[expect(clippy::unnecessary_wraps, reason = "every command returns a Result")]
pub(crate) fn run(args: &Args, printer: Printer) -> anyhow::Result<ExitStatus> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "bcn", &mut out);
    printer.raw(&String::from_utf8_lossy(&out));
    Ok(ExitStatus::Success)
}

/// Print a manual page (roff): `bcn man > bcn.1`, `bcn man backup > bcn-backup.1`.
#[derive(Debug, clap::Args)]
pub(crate) struct ManArgs {
    /// A subcommand, for its own page (`bcn-backup(1)`); without it, the main page.
    subcommand: Option<String>,
}

pub(crate) fn man(args: &ManArgs, printer: Printer) -> anyhow::Result<ExitStatus> {
    let command = Cli::command();
    let page = match &args.subcommand {
        None => command,
        Some(name) => {
            let sub = command.find_subcommand(name).cloned().ok_or_else(|| {
                let known: Vec<&str> = command
                    .get_subcommands()
                    .map(clap::Command::get_name)
                    .collect();
                EngineError::invalid(format!(
                    "no subcommand `{name}`; subcommands: {}",
                    known.join(", ")
                ))
            })?;
            // clap names are `&'static str`; this process prints one page and ends.
            let full: &'static str = Box::leak(format!("bcn-{}", sub.get_name()).into_boxed_str());
            sub.name(full)
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out)?;
    printer.raw(&String::from_utf8_lossy(&out));
    Ok(ExitStatus::Success)
}
