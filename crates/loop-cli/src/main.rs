//! `loop`: the Loop Backup command line.
//!
//! Exit codes: 0 success, 1 failure, 3 backup finished but some files could not be read.

mod args;
mod commands;
mod progress;
mod repo_open;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
