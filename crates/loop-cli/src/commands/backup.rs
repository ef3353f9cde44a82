//! `loop init` and `loop backup`.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, FixedOffset};
use loop_repo::backup::{BackupOptions, BackupProgress, ParentChoice, StdinSource};
use loop_repo::chunker::ChunkMode;
use loop_repo::human_bytes;
use loop_repo::keys::Secret;
use loop_repo::snapshot::SnapshotFilter;
use loop_repo::{InitOptions, Repository, Storage};
use serde_json::json;

use super::io_threads;
use crate::args::*;
use crate::output::{exit_code, human, ok, print_json, printable};
use crate::progress::Bar;
use crate::repo_open;

pub(super) fn init(g: &Global, a: InitArgs) -> Result<ExitCode> {
    if !(1..=22).contains(&a.compression) {
        bail!("--compression must be between 1 and 22");
    }
    let served = repo_open::remote(g)?;
    let storage: Arc<dyn Storage> = match &served {
        Some((storage, _)) => storage.clone(),
        None => repo_open::storage(g, true)?,
    };
    let pass = repo_open::init_passphrase(g)?;
    repo_open::validate_password(&pass)?;
    let opts = InitOptions {
        kdf: repo_open::kdf(g),
        compression_level: a.compression,
        meta: Repository::default_slot_meta(&repo_open::hostname(), &repo_open::username()),
        ..Default::default()
    };
    let repo = Repository::init(storage, Secret::Passphrase(&pass.0), &opts)?;
    // A server vault made with a passphrase: a server that offers its own key for it later
    // is refused (crate::known_vaults).
    if let Some((storage, _)) = &served {
        repo_open::known_vaults().remember(storage.vault_id());
    }
    if g.json {
        print_json(
            &json!({"message_type": "initialized", "id": repo.config().id.to_hex(), "repository": repo.storage().location()}),
        )?;
    } else if !g.quiet {
        println!(
            "created repository {} at {}",
            repo.config().id.short(),
            repo.storage().location()
        );
        println!("Keep the passphrase safe: without it the data cannot be read, by anyone.");
    }
    ok()
}

/// `--init`: the repository the passphrase opens, or a new one where there is none.
fn open_or_init(g: &Global, storage: Arc<dyn Storage>) -> Result<Repository> {
    let pass = repo_open::passphrase(g)?;
    match Repository::open(storage.clone(), Secret::Passphrase(&pass.0)) {
        Err(loop_repo::Error::NoRepository(_)) => {
            repo_open::validate_password(&pass)?;
            let opts = InitOptions {
                kdf: repo_open::kdf(g),
                meta: Repository::default_slot_meta(&repo_open::hostname(), &repo_open::username()),
                ..Default::default()
            };
            let repo = Repository::init(storage, Secret::Passphrase(&pass.0), &opts)?;
            if human(g) {
                println!(
                    "created repository {} at {}",
                    repo.config().id.short(),
                    repo.storage().location()
                );
            }
            Ok(repo)
        }
        other => Ok(other?),
    }
}

pub(super) fn backup(g: &Global, a: BackupArgs) -> Result<ExitCode> {
    let mut session = None;
    let repo = if !a.init {
        let (repo, s) = repo_open::open_with_session(g)?;
        session = s;
        repo
    } else {
        // A managed vault opens with the server's key: the server made its repository, so
        // --init has nothing to do there.
        match repo_open::remote(g)? {
            Some((storage, s)) => {
                let known = repo_open::known_vaults();
                let repo = repo_open::open_served(storage, &s, &known, |storage| {
                    open_or_init(g, storage)
                })?;
                session = Some(s);
                repo
            }
            None => open_or_init(g, repo_open::storage(g, true)?)?,
        }
    };
    let mut excludes = a.excludes.clone();
    for f in &a.exclude_files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        excludes.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    // A backup-only token may not read earlier snapshots: such a backup reads every file
    // again, and still uploads only what the vault does not have.
    let may_read_snapshots = session
        .as_ref()
        .is_none_or(|s| s.can(loop_api::TokenPermission::Restore));
    let parent = if a.force || (!may_read_snapshots && a.parent.is_none()) {
        ParentChoice::None
    } else if let Some(p) = &a.parent {
        ParentChoice::Id(repo.find_snapshot(p, &SnapshotFilter::default())?.0)
    } else {
        ParentChoice::Auto
    };
    let time = a
        .time
        .as_deref()
        .map(DateTime::<FixedOffset>::parse_from_rfc3339)
        .transpose()
        .context("--time must be RFC 3339, like 2026-01-02T03:04:05+00:00")?;
    if a.stdin && !a.paths.is_empty() {
        bail!("--stdin takes no paths");
    }
    let opts = BackupOptions {
        paths: a.paths.clone(),
        excludes,
        exclude_caches: a.exclude_caches,
        one_file_system: a.one_file_system,
        tags: a.tags.clone(),
        host: a.host.clone().unwrap_or_else(repo_open::hostname),
        user: repo_open::username(),
        parent,
        dry_run: a.dry_run,
        chunk_mode: a
            .fixed_chunks
            .map(ChunkMode::Fixed)
            .unwrap_or(ChunkMode::ContentDefined),
        threads: g.threads,
        tree_fetchers: io_threads(g),
        index_flush: Duration::from_secs(a.index_flush_secs),
        stdin: a.stdin.then(|| StdinSource {
            name: a.stdin_filename.clone(),
            reader: Box::new(std::io::stdin()),
        }),
        time,
        // The count ahead of the walker only serves the bar's ETA: a second pass over every
        // entry's metadata, skipped when no bar is drawn (a pipe, a log, a scheduler).
        scan: Bar::shown(human(g)),
    };
    if matches!(opts.chunk_mode, ChunkMode::Fixed(n) if !(4096..=16 << 20).contains(&n)) {
        bail!("--fixed-chunks must be between 4096 and 16777216 bytes");
    }
    let progress = Arc::new(BackupProgress::default());
    let bar = {
        let p = progress.clone();
        Bar::bytes(
            human(g),
            Box::new(move || {
                let total = p
                    .scan_finished
                    .load(Ordering::Relaxed)
                    .then(|| p.bytes_total.load(Ordering::Relaxed));
                let msg = format!(
                    "{} files, {} uploaded",
                    p.files_done.load(Ordering::Relaxed),
                    human_bytes(p.bytes_uploaded.load(Ordering::Relaxed))
                );
                (p.bytes_done.load(Ordering::Relaxed), total, msg)
            }),
        )
    };
    let result = loop_repo::backup::run(&repo, opts, &progress);
    bar.finish();
    let r = result?;
    for w in &r.unreadable {
        eprintln!("warning: could not read {}", printable(w));
    }
    for w in &r.changed_while_reading {
        eprintln!("warning: {} changed while it was read", printable(w));
    }
    for w in &r.warnings {
        eprintln!("warning: {}", printable(w));
    }
    let s = r.snapshot.summary.clone().unwrap_or_default();
    if g.json {
        print_json(&json!({
            "message_type": "summary",
            "dry_run": a.dry_run,
            "snapshot_id": r.snapshot_id.map(|i| i.to_hex()),
            "files_new": s.files_new,
            "files_changed": s.files_changed,
            "files_unmodified": s.files_unmodified,
            "files_unreadable": s.files_unreadable,
            "dirs": s.dirs,
            "data_blobs": s.data_blobs,
            "tree_blobs": s.tree_blobs,
            "data_added": s.data_added,
            "data_added_packed": s.data_added_packed,
            "total_files_processed": s.total_files_processed,
            "total_bytes_processed": s.total_bytes_processed,
            "unreadable": r.unreadable,
            "changed_while_reading": r.changed_while_reading,
            "warnings": r.warnings,
        }))?;
    } else if !g.quiet {
        println!(
            "Files: {} new, {} changed, {} unmodified{}",
            s.files_new,
            s.files_changed,
            s.files_unmodified,
            if s.files_unreadable > 0 {
                format!(", {} unreadable", s.files_unreadable)
            } else {
                String::new()
            }
        );
        println!(
            "Added to the repository: {} ({} stored)",
            human_bytes(s.data_added),
            human_bytes(s.data_added_packed)
        );
        println!(
            "Processed {} files, {}",
            s.total_files_processed,
            human_bytes(s.total_bytes_processed)
        );
        match r.snapshot_id {
            Some(id) => println!("snapshot {} saved", id.short()),
            None => println!("dry run: nothing was written"),
        }
    }
    Ok(exit_code(r.unreadable.is_empty(), 3))
}
