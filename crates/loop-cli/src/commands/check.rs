//! `loop check`, `loop repair` and `loop stats`.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result, bail};
use loop_repo::check::{CheckOptions, CheckProgress, ReadData};
use loop_repo::human_bytes;
use loop_repo::{Id, browse, repair};
use serde_json::json;

use super::snapshots::warn_damaged;
use super::{filter, io_threads};
use crate::args::*;
use crate::output::{exit_code, human, ok, print_json, printable};
use crate::progress::Bar;
use crate::repo_open;

pub(super) fn check(g: &Global, a: CheckArgs) -> Result<ExitCode> {
    let repo = repo_open::open(g)?;
    let read_data = if a.read_data {
        ReadData::All
    } else if let Some(p) = &a.read_data_subset {
        let v: f64 = p
            .trim_end_matches('%')
            .parse()
            .with_context(|| format!("bad percentage {p:?}"))?;
        if !(0.0..=100.0).contains(&v) {
            bail!("--read-data-subset takes a percentage between 0 and 100");
        }
        ReadData::Subset(v)
    } else {
        ReadData::None
    };
    let progress = Arc::new(CheckProgress::default());
    let bar = {
        let p = progress.clone();
        Bar::count(
            human(g) && !matches!(read_data, ReadData::None),
            Box::new(move || {
                (
                    p.packs_done.load(Ordering::Relaxed),
                    Some(p.packs_total.load(Ordering::Relaxed)),
                    format!(
                        "packs, {}",
                        human_bytes(p.bytes_done.load(Ordering::Relaxed))
                    ),
                )
            }),
        )
    };
    let result = loop_repo::check::run(
        &repo,
        &CheckOptions {
            read_data,
            threads: io_threads(g),
        },
        &progress,
    );
    bar.finish();
    let report = result?;
    if g.json {
        print_json(&report)?;
    } else {
        for e in &report.errors {
            eprintln!("error: {}", printable(e));
        }
        for d in &report.damaged {
            eprintln!("damaged pack {}: {}", d.pack, d.reason);
            if !d.snapshots.is_empty() {
                eprintln!("  affects snapshots: {}", d.snapshots.join(", "));
            }
            for f in &d.files {
                eprintln!("  affects {}", printable(f));
            }
        }
        if !g.quiet {
            for w in &report.warnings {
                println!("note: {}", printable(w));
            }
            println!(
                "checked {} snapshots, {} trees, {} data blobs, {} packs ({} read); {} unreferenced packs",
                report.snapshots,
                report.trees,
                report.data_blobs,
                report.packs,
                report.packs_read,
                report.unreferenced_packs
            );
            println!(
                "{}",
                if report.is_ok() {
                    "no errors were found"
                } else {
                    "the repository has errors"
                }
            );
        }
    }
    Ok(exit_code(report.is_ok(), 1))
}

pub(super) fn repair_index(g: &Global, dry_run: bool) -> Result<ExitCode> {
    let repo = repo_open::open(g)?;
    let report = repair::index(&repo, &repair::IndexRepairOptions { dry_run })?;
    if g.json {
        print_json(&report)?;
    } else {
        for p in &report.damaged_index_files {
            eprintln!("damaged index file {}: {}", p.object, p.reason);
        }
        for p in &report.unreadable_packs {
            eprintln!(
                "pack not indexed, its list of blobs cannot be read: {}: {}",
                p.object, p.reason
            );
        }
        for p in &report.packs_gone {
            eprintln!(
                "{p} is gone; the index no longer names it (`loop check` names the snapshots that used it)"
            );
        }
        for p in &report.index_files_left {
            eprintln!("could not delete {}: {}", p.object, p.reason);
        }
        if !g.quiet {
            if report.packs_of_running_backups > 0 {
                println!(
                    "note: {} packs stored since a running backup started are left for it to index",
                    report.packs_of_running_backups
                );
            }
            let would = if dry_run { "would index" } else { "indexed" };
            println!(
                "{} index files read ({} damaged), {} packs in storage; {would} {} packs ({} blobs) \
                 from their own lists, and {} index files naming packs that are gone {}",
                report.index_files,
                report.damaged_index_files.len(),
                report.packs,
                report.packs_indexed,
                report.blobs_indexed,
                report.rewritten_index_files,
                if dry_run {
                    "would be rewritten"
                } else {
                    "rewritten"
                },
            );
            if !dry_run {
                println!(
                    "{} index files written, {} deleted",
                    report.index_files_written, report.index_files_deleted
                );
            }
        }
    }
    let whole = report.unreadable_packs.is_empty() && report.index_files_left.is_empty();
    Ok(exit_code(whole, 1))
}

pub(super) fn stats(g: &Global, a: StatsArgs) -> Result<ExitCode> {
    let repo = repo_open::open(g)?;
    let index = super::snapshots::readable_index(&repo)?;
    let roots: Vec<Id> = if a.snapshots.is_empty() {
        let f = filter(&a.filter);
        let list = repo.list_snapshots()?;
        warn_damaged(&list.damaged);
        list.snapshots
            .into_iter()
            .filter(|(_, s)| f.matches(s))
            .map(|(_, s)| s.tree)
            .collect()
    } else {
        a.snapshots
            .iter()
            .map(|s| {
                repo.find_snapshot(s, &filter(&a.filter))
                    .map(|(_, s)| s.tree)
            })
            .collect::<loop_repo::Result<_>>()?
    };
    let st = browse::stats(&repo, &index, &roots)?;
    let stored_total: u64 = repo
        .storage()
        .list(loop_repo::FileKind::Pack)?
        .iter()
        .map(|o| o.size)
        .sum();
    if g.json {
        print_json(&json!({
            "snapshots": st.snapshots,
            "total_files": st.total_files,
            "restore_size": st.restore_size,
            "unique_blobs": st.unique_blobs,
            "unique_size": st.unique_size,
            "stored_size": st.stored_size,
            "dedup_ratio": st.dedup_ratio(),
            "repository_pack_bytes": stored_total,
            "index_blobs": index.len(),
            "index_bytes_per_blob": loop_repo::index::Index::BYTES_PER_BLOB,
        }))?;
    } else {
        println!("snapshots:              {}", st.snapshots);
        println!("files (all snapshots):  {}", st.total_files);
        println!("restore size:           {}", human_bytes(st.restore_size));
        println!(
            "unique data:            {} in {} blobs",
            human_bytes(st.unique_size),
            st.unique_blobs
        );
        println!("stored (compressed):    {}", human_bytes(st.stored_size));
        println!("deduplication ratio:    {:.2}x", st.dedup_ratio());
        println!("repository pack files:  {}", human_bytes(stored_total));
    }
    ok()
}
