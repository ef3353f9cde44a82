//! `loop`: the Loop Backup command line.
//!
//! Exit codes: 0 success, 1 failure, 3 backup finished but some files could not be read.

mod args;
mod commands;
mod known_vaults;
mod manual;
mod output;
mod progress;
mod repo_open;
mod service;
mod service_args;

use std::process::ExitCode;

use clap::Parser;

/// Fixes glibc's mmap threshold at 8 MiB. By default glibc raises the threshold each time a
/// large mapped block is freed, after which 16 MiB pack buffers land in per-thread arenas and
/// stay resident there: peak memory of a backup or check grew by tens of megabytes
/// (docs/BENCHMARKS.md). With a fixed threshold, every large buffer is its own mapping and
/// goes back to the system when freed.
///
/// Fixing one threshold also fixes the trim threshold, at 128 KiB unless set: an arena then
/// gives back its free top as soon as it passes that, and zstd's working tables, which shrink
/// and grow again with the sizes of the blobs it compresses, were faulted in anew each time
/// (a third of a first backup's page faults). At 2 MiB they stay, and peak memory does not
/// move (docs/BENCHMARKS.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: mallopt only sets a tuning parameter of the C allocator. It is called first in
    // main, before any other thread exists, so no allocation races with it, and the values
    // are valid thresholds (glibc accepts an mmap threshold up to 32 MiB on 64-bit systems).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 8 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 2 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() -> ExitCode {
    tune_allocator();
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let line = loop_repo::one_line(&*e);
            eprintln!("error: {}", output::printable(&line));
            ExitCode::from(1)
        }
    }
}
