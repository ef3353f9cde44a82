//! Shell completions and manual pages, generated from the argument definitions so they
//! never drift from what `loop` accepts.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::args::Cli;

pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut cmd = Cli::command();
    // Made in memory first: the generator panics when it cannot write.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "loop", &mut script);
    print(&script)
}

/// Writes to standard output; a reader that stopped early (`| head`) is not an error.
fn print(bytes: &[u8]) -> Result<ExitCode> {
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing to standard output")
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// `loop.1` on standard output, or every page (`loop.1`, `loop-backup.1`, ...) into `dir`.
pub fn man(dir: Option<&Path>) -> Result<ExitCode> {
    let cmd = Cli::command();
    match dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .context("rendering the manual page")?;
            return print(&page);
        }
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            clap_mangen::generate_to(cmd, d)
                .with_context(|| format!("writing manual pages to {}", d.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
