//! One function per command. Each turns arguments into engine calls and prints the result for
//! people, or as JSON with `--json`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, FixedOffset, Local};
use loop_repo::backup::{BackupOptions, BackupProgress, ParentChoice, StdinSource};
use loop_repo::check::{CheckOptions, CheckProgress, ReadData};
use loop_repo::chunker::ChunkMode;
use loop_repo::forget::{self, Decision, ForgetPlan, ForgetRequest, KeepPolicy};
use loop_repo::human_bytes;
use loop_repo::keys::Secret;
use loop_repo::prune::{PruneOptions, PrunePlan};
use loop_repo::restore::{RestoreOptions, RestoreProgress};
use loop_repo::snapshot::{Snapshot, SnapshotFilter};
use loop_repo::tree::{Node, NodeKind};
use loop_repo::{Id, InitOptions, Repository, browse, prune};
use serde_json::json;

use crate::args::*;
use crate::progress::Bar;
use crate::repo_open;

/// The operation a command performs, as told to the server when it opens a vault.
fn operation(c: &Command) -> &'static str {
    match c {
        Command::Init(_) => "init",
        Command::Backup(_) => "backup",
        Command::Snapshots(_) | Command::Ls(_) | Command::Diff(_) | Command::Stats(_) => "browse",
        Command::Restore(_) | Command::Dump(_) => "restore",
        Command::Forget(_) => "forget",
        Command::Prune(_) => "prune",
        Command::Check(_) => "check",
        Command::Key(_) => "key",
        _ => "service",
    }
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let mut global = cli.global;
    global.operation = operation(&cli.command).to_string();
    let g = &global;
    match cli.command {
        Command::Init(a) => init(g, a),
        Command::Backup(a) => backup(g, a),
        Command::Snapshots(a) => snapshots(g, a),
        Command::Ls(a) => ls(g, a),
        Command::Diff(a) => diff(g, a),
        Command::Restore(a) => restore(g, a),
        Command::Dump(a) => dump(g, a),
        Command::Forget(a) => forget_cmd(g, a),
        Command::Prune(a) => prune_cmd(g, a),
        Command::Check(a) => check(g, a),
        Command::Stats(a) => stats(g, a),
        Command::Key(k) => key(g, k),
        Command::Server(a) => crate::service::server(a, g.json),
        Command::Login(a) => crate::service::login(g, a),
        Command::Logout => crate::service::logout(g),
        Command::Whoami => crate::service::whoami(g),
        Command::Tenant(c) => crate::service::tenant(g, c),
        Command::User(c) => crate::service::user(g, c),
        Command::Device(c) => crate::service::device(g, c),
        Command::Token(c) => crate::service::token(g, c),
        Command::Vault(c) => crate::service::vault(g, c),
        Command::Session(c) => crate::service::session(g, c),
        Command::Audit(c) => crate::service::audit(g, c),
        Command::Admin(c) => crate::service::admin(g, c),
        Command::Completions { shell } => crate::manual::completions(shell),
        Command::Man { dir } => crate::manual::man(dir.as_deref()),
    }
}

fn ok() -> Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}

/// Success, or the given failure code (see the exit codes in main.rs).
fn exit_code(success: bool, failure: u8) -> ExitCode {
    if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(failure)
    }
}

fn human(g: &Global) -> bool {
    !g.json && !g.quiet
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

fn filter(f: &Filter) -> SnapshotFilter {
    SnapshotFilter {
        hosts: f.hosts.clone(),
        paths: f.paths.clone(),
        tags: f.tags.clone(),
    }
}

fn snapshot_json(id: &Id, s: &Snapshot) -> serde_json::Value {
    json!({
        "id": id.to_hex(),
        "short_id": id.short(),
        "time": s.time.to_rfc3339(),
        "hostname": s.hostname,
        "username": s.username,
        "paths": s.paths,
        "tags": s.tags,
        "tree": s.tree.to_hex(),
        "parent": s.parent.map(|p| p.to_hex()),
        "summary": s.summary,
    })
}

/// True for a repository behind network requests (a server, S3).
fn remote_store(g: &Global) -> bool {
    g.repo.as_deref().is_some_and(|r| r.contains("://"))
}

/// Threads for read-heavy work: one per core on local disk (more only adds contention), four
/// per core on remote storage, where they hide round trips.
fn io_threads(g: &Global) -> usize {
    if g.threads != 0 {
        return g.threads;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    if remote_store(g) { cores * 4 } else { cores }
}

// ---- init ----

fn init(g: &Global, a: InitArgs) -> Result<ExitCode> {
    if !(1..=22).contains(&a.compression) {
        bail!("--compression must be between 1 and 22");
    }
    let storage = repo_open::storage(g, true)?;
    let pass = repo_open::init_passphrase(g)?;
    repo_open::validate_password(&pass)?;
    let opts = InitOptions {
        kdf: repo_open::kdf(g),
        compression_level: a.compression,
        meta: Repository::default_slot_meta(&repo_open::hostname(), &repo_open::username()),
        ..Default::default()
    };
    let repo = Repository::init(storage, Secret::Passphrase(&pass.0), &opts)?;
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

// ---- backup ----

fn backup(g: &Global, a: BackupArgs) -> Result<ExitCode> {
    let mut session = None;
    let repo = if !a.init {
        let (repo, s) = repo_open::open_with_session(g)?;
        session = s;
        repo
    } else {
        let storage = match repo_open::remote(g)? {
            Some((storage, s)) => {
                session = Some(s);
                storage
            }
            None => repo_open::storage(g, true)?,
        };
        if let Some(key) = session.as_ref().and_then(|s| s.key.as_ref()) {
            // A managed vault: the server created it, so --init has nothing to do.
            Repository::open(storage, Secret::RawKey(key))?
        } else {
            let pass = repo_open::passphrase(g)?;
            match Repository::open(storage.clone(), Secret::Passphrase(&pass.0)) {
                Err(loop_repo::Error::NoRepository(_)) => {
                    repo_open::validate_password(&pass)?;
                    let opts = InitOptions {
                        kdf: repo_open::kdf(g),
                        meta: Repository::default_slot_meta(
                            &repo_open::hostname(),
                            &repo_open::username(),
                        ),
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
                    repo
                }
                other => other?,
            }
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
        scan: human(g),
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
        eprintln!("warning: could not read {w}");
    }
    for w in &r.changed_while_reading {
        eprintln!("warning: {w} changed while it was read");
    }
    for w in &r.warnings {
        eprintln!("warning: {w}");
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

// ---- snapshots ----

/// Says on stderr which snapshots were skipped because they cannot be read.
fn warn_damaged(damaged: &[(String, loop_repo::Error)]) {
    for (name, e) in damaged {
        eprintln!(
            "warning: skipped snapshot {name}, which cannot be read ({e}); `loop check` \
             reports it and `loop forget {name}` removes it"
        );
    }
}

fn snapshots(g: &Global, a: SnapshotsArgs) -> Result<ExitCode> {
    let repo = repo_open::open(g)?;
    let f = filter(&a.filter);
    let all = repo.list_snapshots()?;
    warn_damaged(&all.damaged);
    let list: Vec<(Id, Snapshot)> = all
        .snapshots
        .into_iter()
        .filter(|(_, s)| f.matches(s))
        .collect();
    if g.json {
        let v: Vec<_> = list.iter().map(|(id, s)| snapshot_json(id, s)).collect();
        print_json(&v)?;
        return ok();
    }
    println!(
        "{:<9} {:<20} {:<16} {:<14} Paths",
        "ID", "Time", "Host", "Tags"
    );
    println!("{}", "-".repeat(80));
    for (id, s) in &list {
        let time = s
            .time
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        println!(
            "{:<9} {:<20} {:<16} {:<14} {}",
            id.short(),
            time,
            s.hostname,
            s.tags.join(","),
            s.paths.join(" ")
        );
    }
    println!("{}", "-".repeat(80));
    println!("{} snapshots", list.len());
    ok()
}

// ---- ls ----

fn kind_char(k: NodeKind) -> char {
    match k {
        NodeKind::File => '-',
        NodeKind::Dir => 'd',
        NodeKind::Symlink => 'l',
        NodeKind::Chardev => 'c',
        NodeKind::Blockdev => 'b',
        NodeKind::Fifo => 'p',
        NodeKind::Socket => 's',
    }
}

fn mode_string(n: &Node) -> String {
    let mut s = String::with_capacity(10);
    s.push(kind_char(n.kind));
    for shift in [6u32, 3, 0] {
        let bits = (n.mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn node_json(path: &str, n: &Node) -> serde_json::Value {
    json!({
        "path": path,
        "name": n.name.to_string(),
        "type": n.kind,
        "size": n.size,
        "mode": n.mode,
        "uid": n.uid,
        "gid": n.gid,
        "mtime": DateTime::from_timestamp_nanos(n.mtime_ns).to_rfc3339(),
        "link_target": n.link_target.as_ref().map(|t| t.to_string()),
    })
}

fn ls(g: &Global, a: LsArgs) -> Result<ExitCode> {
    let repo = repo_open::open(g)?;
    let (id, snap) = repo.find_snapshot(&a.snapshot, &filter(&a.filter))?;
    let index = repo.load_index()?;
    let prefix = a.path.clone().unwrap_or_default();
    let prefix = prefix.trim_end_matches('/');
    let mut out = std::io::stdout().lock();
    if !g.json && !g.quiet {
        writeln!(
            out,
            "snapshot {} of {} at {}:",
            id.short(),
            snap.paths.join(" "),
            snap.time
        )?;
    }
    let mut print = |path: &str, n: &Node| -> loop_repo::Result<()> {
        let r = if g.json {
            serde_json::to_writer(&mut out, &node_json(path, n))
                .map_err(std::io::Error::from)
                .and_then(|_| writeln!(out))
        } else if a.long {
            let t = DateTime::from_timestamp_nanos(n.mtime_ns)
                .with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S");
            writeln!(
                out,
                "{} {:>6} {:>6} {:>12} {} {}",
                mode_string(n),
                n.uid,
                n.gid,
                n.size,
                t,
                path
            )
        } else {
            writeln!(out, "{path}")
        };
        r.map_err(|e| loop_repo::Error::Io {
            path: "stdout".into(),
            source: e,
        })
    };
    let node = loop_repo::restore::find_node(&repo, &index, &snap.tree, prefix)?
        .ok_or_else(|| anyhow::anyhow!("{prefix} is not in snapshot {}", id.short()))?;
    let path = format!("/{}", prefix.trim_start_matches('/'));
    let base = if path == "/" { String::new() } else { path };
    if !base.is_empty() {
        print(&base, &node)?;
    }
    if let (NodeKind::Dir, Some(sub)) = (node.kind, node.subtree) {
        browse::walk(&repo, &index, &sub, &base, &mut print)?;
    }
    ok()
}

// ---- diff ----

fn diff(g: &Global, a: DiffArgs) -> Result<ExitCode> {
    let repo = repo_open::open(g)?;
    let none = SnapshotFilter::default();
    let (ia, sa) = repo.find_snapshot(&a.first, &none)?;
    let (ib, sb) = repo.find_snapshot(&a.second, &none)?;
    let index = repo.load_index()?;
    let changes = browse::diff(&repo, &index, &sa.tree, &sb.tree)?;
    if g.json {
        print_json(&json!({"first": ia.to_hex(), "second": ib.to_hex(), "changes": changes}))?;
        return ok();
    }
    println!("comparing snapshot {} to {}:", ia.short(), ib.short());
    let mut counts: BTreeMap<char, usize> = BTreeMap::new();
    for c in &changes {
        println!("{}    {}", c.kind, c.path);
        *counts.entry(c.kind).or_default() += 1;
    }
    println!(
        "\nadded: {}, removed: {}, changed: {}, metadata only: {}, type changed: {}",
        counts.get(&'+').unwrap_or(&0),
        counts.get(&'-').unwrap_or(&0),
        counts.get(&'M').unwrap_or(&0),
        counts.get(&'U').unwrap_or(&0),
        counts.get(&'T').unwrap_or(&0)
    );
    ok()
}

// ---- restore / dump ----

fn restore(g: &Global, a: RestoreArgs) -> Result<ExitCode> {
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
        owner: None,
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
        eprintln!("warning: {w}");
    }
    for e in &report.errors {
        eprintln!("error: {e}");
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

fn dump(g: &Global, a: DumpArgs) -> Result<ExitCode> {
    let repo = repo_open::open(g)?;
    let (_, snap) = repo.find_snapshot(&a.snapshot, &filter(&a.filter))?;
    let mut out = std::io::stdout().lock();
    loop_repo::restore::dump(&repo, &snap.tree, &a.path, &mut out)?;
    out.flush()?;
    ok()
}

// ---- forget / prune ----

fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().with_context(|| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => bail!("bad duration {s:?}: use s, m, h or d"),
    };
    Ok(Duration::from_secs(secs))
}

fn prune_options(o: &PruneOpts) -> Result<PruneOptions> {
    if !(0.0..=100.0).contains(&o.max_unused) {
        bail!("--max-unused is a percentage between 0 and 100");
    }
    Ok(PruneOptions {
        max_unused: o.max_unused / 100.0,
        grace: parse_duration(&o.grace)?,
    })
}

fn print_plan(p: &PrunePlan) {
    println!("snapshots: {}, blobs in use: {}", p.snapshots, p.used_blobs);
    println!(
        "packs: {} total, {} kept, {} to repack, {} to delete, {} unindexed to delete ({} younger than the grace period kept)",
        p.packs_total,
        p.packs_keep,
        p.packs_repack,
        p.packs_delete,
        p.orphan_packs_delete,
        p.orphan_packs_young
    );
    if p.condemned_packs_execute + p.condemned_packs_waiting > 0 {
        println!(
            "earlier plans: {} packs can be deleted now, {} wait for running backups",
            p.condemned_packs_execute, p.condemned_packs_waiting
        );
    }
    println!(
        "data: {} stored, {} unused, {} to copy, {} to free",
        human_bytes(p.bytes_total),
        human_bytes(p.bytes_unused),
        human_bytes(p.bytes_to_repack),
        human_bytes(p.bytes_to_free)
    );
}

fn run_prune(g: &Global, repo: &Repository, o: &PruneOpts, dry_run: bool) -> Result<()> {
    let opts = prune_options(o)?;
    let plan = prune::plan(repo, &opts)?;
    if g.json && dry_run {
        return print_json(&json!({"message_type": "prune_plan", "plan": plan}));
    }
    if human(g) {
        print_plan(&plan);
    }
    if dry_run {
        if human(g) {
            println!("dry run: nothing was changed");
        }
        return Ok(());
    }
    if plan.is_noop() {
        if g.json {
            print_json(&json!({"message_type": "prune_report", "plan": plan, "report": null}))?;
        } else if !g.quiet {
            println!("nothing to prune");
        }
        return Ok(());
    }
    let plan_json = serde_json::to_value(&plan)?;
    let report = prune::execute(repo, plan)?;
    if g.json {
        print_json(&json!({"message_type": "prune_report", "plan": plan_json, "report": report}))?;
    } else if !g.quiet {
        println!(
            "wrote {} packs and {} index files, deleted {} packs and {} index files{}",
            report.packs_written,
            report.index_files_written,
            report.packs_deleted,
            report.index_files_deleted,
            if report.packs_deferred > 0 {
                format!(
                    "; {} packs wait for running backups and go at the next prune",
                    report.packs_deferred
                )
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

fn prune_cmd(g: &Global, a: PruneArgs) -> Result<ExitCode> {
    let repo = repo_open::open(g)?;
    run_prune(g, &repo, &a.opts, a.dry_run)?;
    ok()
}

/// The engine's request for `loop forget`: named snapshots, or a policy with filters.
fn forget_request(a: &ForgetArgs) -> Result<ForgetRequest> {
    let policy = KeepPolicy {
        last: a.keep_last,
        hourly: a.keep_hourly,
        daily: a.keep_daily,
        weekly: a.keep_weekly,
        monthly: a.keep_monthly,
        yearly: a.keep_yearly,
        tags: a.keep_tags.clone(),
        within: a
            .keep_within
            .as_deref()
            .map(forget::parse_within)
            .transpose()
            .map_err(anyhow::Error::msg)?,
    };
    if !a.snapshots.is_empty() {
        if !policy.is_empty() {
            bail!("name snapshots or give a policy, not both");
        }
        return Ok(ForgetRequest::Snapshots(a.snapshots.clone()));
    }
    if policy.is_empty() {
        bail!("no policy given: name snapshots or use --keep-* options (nothing was removed)");
    }
    Ok(ForgetRequest::Policy {
        policy,
        filter: filter(&a.filter),
    })
}

/// The policy's verdicts, group by group.
fn print_forget_plan(plan: &ForgetPlan) {
    for group in &plan.groups {
        println!(
            "snapshots of host {}, paths {}:",
            group.host,
            group.paths.join(" ")
        );
        for v in &group.snapshots {
            match &v.decision {
                Decision::Keep(reasons) => {
                    let why: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
                    println!(
                        "  keep   {} {} ({})",
                        v.id.short(),
                        v.snapshot.time,
                        why.join(", ")
                    );
                }
                Decision::Remove => println!("  remove {} {}", v.id.short(), v.snapshot.time),
            }
        }
    }
}

fn forget_plan_json(plan: &ForgetPlan) -> Vec<serde_json::Value> {
    plan.groups
        .iter()
        .map(|group| {
            let mut keep = Vec::new();
            let mut remove = Vec::new();
            for v in &group.snapshots {
                match &v.decision {
                    Decision::Keep(reasons) => {
                        let why: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
                        keep.push(json!({"id": v.id.to_hex(), "reasons": why}));
                    }
                    Decision::Remove => remove.push(v.id.to_hex()),
                }
            }
            json!({"host": group.host, "paths": group.paths, "keep": keep, "remove": remove})
        })
        .collect()
}

fn forget_cmd(g: &Global, a: ForgetArgs) -> Result<ExitCode> {
    let repo = repo_open::open(g)?;
    let request = forget_request(&a)?;
    let plan = forget::plan(&repo, &request)?;
    // A policy cannot judge a snapshot it cannot read: those are kept.
    warn_damaged(&plan.damaged);
    if human(g) {
        print_forget_plan(&plan);
    }
    let removed = if a.dry_run {
        plan.remove.clone()
    } else {
        forget::execute(&repo, &plan)?.removed
    };
    if g.json {
        print_json(
            &json!({"message_type": "forget", "dry_run": a.dry_run, "groups": forget_plan_json(&plan), "removed": removed.iter().map(|i| i.to_hex()).collect::<Vec<_>>()}),
        )?;
    } else if !g.quiet {
        println!(
            "{} {} snapshots",
            if a.dry_run { "would remove" } else { "removed" },
            removed.len()
        );
    }
    if a.prune {
        run_prune(g, &repo, &a.prune_opts, a.dry_run)?;
    }
    ok()
}

// ---- check ----

fn check(g: &Global, a: CheckArgs) -> Result<ExitCode> {
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
            eprintln!("error: {e}");
        }
        for d in &report.damaged {
            eprintln!("damaged pack {}: {}", d.pack, d.reason);
            if !d.snapshots.is_empty() {
                eprintln!("  affects snapshots: {}", d.snapshots.join(", "));
            }
            for f in &d.files {
                eprintln!("  affects {f}");
            }
        }
        if !g.quiet {
            for w in &report.warnings {
                println!("note: {w}");
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

// ---- stats ----

fn stats(g: &Global, a: StatsArgs) -> Result<ExitCode> {
    let repo = repo_open::open(g)?;
    let index = repo.load_index()?;
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

// ---- key ----

fn key(g: &Global, k: KeyCommand) -> Result<ExitCode> {
    let mut repo = repo_open::open(g)?;
    match k {
        KeyCommand::List => {
            let keys = repo.list_keys()?;
            if g.json {
                print_json(&keys)?;
            } else {
                println!(
                    " {:<9} {:<11} {:<26} {:<16} {:<10} Label",
                    "ID", "Kind", "Created", "Host", "User"
                );
                for k in keys {
                    println!(
                        "{}{:<9} {:<11} {:<26} {:<16} {:<10} {}",
                        if k.current { "*" } else { " " },
                        k.id.short(),
                        k.kind,
                        k.meta.created,
                        k.meta.host,
                        k.meta.user,
                        k.meta.label
                    );
                }
            }
        }
        KeyCommand::Add(n) => {
            let pass =
                repo_open::new_passphrase(n.new_password_file.as_deref(), "LOOP_NEW_PASSWORD")?;
            repo_open::validate_password(&pass)?;
            let mut meta =
                Repository::default_slot_meta(&repo_open::hostname(), &repo_open::username());
            meta.label = n.label;
            let id = repo.add_key(Secret::Passphrase(&pass.0), repo_open::kdf(g), &meta)?;
            if g.json {
                print_json(&json!({"id": id.to_hex()}))?;
            } else if !g.quiet {
                println!("added key {}", id.short());
            }
        }
        KeyCommand::Remove { id } => {
            let keys = repo.list_keys()?;
            let matches: Vec<_> = keys
                .iter()
                .filter(|k| k.id.to_hex().starts_with(&id.to_ascii_lowercase()))
                .collect();
            let target = match matches.as_slice() {
                [one] => one.id,
                [] => bail!("no key {id}"),
                _ => bail!("key prefix {id} is ambiguous"),
            };
            repo.remove_key(&target)?;
            if !g.quiet && !g.json {
                println!("removed key {}", target.short());
            }
        }
        KeyCommand::Passwd(n) => {
            let pass =
                repo_open::new_passphrase(n.new_password_file.as_deref(), "LOOP_NEW_PASSWORD")?;
            repo_open::validate_password(&pass)?;
            let mut meta =
                Repository::default_slot_meta(&repo_open::hostname(), &repo_open::username());
            meta.label = n.label;
            let id = repo.change_passphrase(&pass.0, repo_open::kdf(g), &meta)?;
            if g.json {
                print_json(&json!({"id": id.to_hex()}))?;
            } else if !g.quiet {
                println!("passphrase changed (new key {})", id.short());
            }
        }
    }
    ok()
}
