//! `loop restore` and `loop dump`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result};
use loop_repo::human_bytes;
use loop_repo::restore::{RestoreOptions, RestoreProgress};
use serde_json::json;

use super::{filter, io_threads, remote_store};
use crate::args::*;
use crate::output::{exit_code, human, ok, print_json, printable};
use crate::progress::Bar;
use crate::repo_open;

pub(super) fn restore(g: &Global, a: RestoreArgs) -> Result<ExitCode> {
    let repo = repo_open::open(g)?;
    let (id, snap) = repo.find_snapshot(&a.snapshot, &filter(&a.filter))?;
    std::fs::create_dir_all(&a.target)
        .with_context(|| format!("creating {}", a.target.display()))?;
    let opts = RestoreOptions {
        target: a.target.clone(),
        includes: a.includes.clone(),
        excludes: a.excludes.clone(),
        verify: a.verify,
        threads: io_threads(g),
        tree_fetchers: if remote_store(g) { io_threads(g) } else { 0 },
        // Through a server or S3 each read is a round trip: plan more files per batch so
        // their blobs merge into fewer, longer reads.
        files_per_batch: if remote_store(g) { 1024 } else { 0 },
        owner: None,
        within: Vec::new(),
    };
    let progress = Arc::new(RestoreProgress::default());
    let bar = {
        let p = progress.clone();
        Bar::bytes(
            human(g),
            Box::new(move || {
                let msg = format!("{} files", p.files_done.load(Ordering::Relaxed));
                (
                    p.bytes_done.load(Ordering::Relaxed),
                    Some(p.bytes_total.load(Ordering::Relaxed)),
                    msg,
                )
            }),
        )
    };
    let result = loop_repo::restore::run(&repo, &snap.tree, &opts, &progress);
    bar.finish();
    let report = result?;
    for w in &report.warnings {
        eprintln!("warning: {}", printable(w));
    }
    for e in &report.errors {
        eprintln!("error: {}", printable(e));
    }
    if g.json {
        print_json(
            &json!({"message_type": "summary", "snapshot_id": id.to_hex(), "report": report}),
        )?;
    } else if !g.quiet {
        println!(
            "restored snapshot {} to {}: {} files, {} dirs, {}{}",
            id.short(),
            a.target.display(),
            report.files,
            report.dirs,
            human_bytes(report.bytes),
            if a.verify {
                format!(", {} files verified", report.verified_files)
            } else {
                String::new()
            }
        );
    }
    Ok(exit_code(report.errors.is_empty(), 1))
}

pub(super) fn dump(g: &Global, a: DumpArgs) -> Result<ExitCode> {
    let repo = repo_open::open(g)?;
    let (_, snap) = repo.find_snapshot(&a.snapshot, &filter(&a.filter))?;
    let mut out = std::io::stdout().lock();
    let index = super::snapshots::readable_index(&repo)?;
    loop_repo::restore::dump(&repo, &index, &snap.tree, &a.path, &mut out)?;
    out.flush()?;
    ok()
}
