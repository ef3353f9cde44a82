//! One function per command. Each turns arguments into engine calls and prints the result for
//! people, or as JSON with `--json`.

mod backup;
mod cache;
mod check;
mod key;
mod restore;
mod retention;
mod snapshots;

use std::process::ExitCode;

use anyhow::Result;
use loop_repo::snapshot::SnapshotFilter;

use crate::args::*;

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
        Command::Repair(_) => "repair",
        Command::Key(_) => "key",
        _ => "service",
    }
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let mut global = cli.global;
    global.operation = operation(&cli.command).to_string();
    let g = &global;
    match cli.command {
        Command::Init(a) => backup::init(g, a),
        Command::Backup(a) => backup::backup(g, a),
        Command::Snapshots(a) => snapshots::snapshots(g, a),
        Command::Ls(a) => snapshots::ls(g, a),
        Command::Diff(a) => snapshots::diff(g, a),
        Command::Restore(a) => restore::restore(g, a),
        Command::Dump(a) => restore::dump(g, a),
        Command::Forget(a) => retention::forget_cmd(g, a),
        Command::Prune(a) => retention::prune_cmd(g, a),
        Command::Check(a) => check::check(g, a),
        Command::Repair(RepairCommand::Index { dry_run }) => check::repair_index(g, dry_run),
        Command::Stats(a) => check::stats(g, a),
        Command::Key(k) => key::key(g, k),
        Command::Cache(a) => cache::cache(g, a),
        Command::Server(a) => crate::service::server(a, g.json),
        Command::Login(a) => crate::service::login(g, a),
        Command::Logout => crate::service::logout(g),
        Command::Whoami => crate::service::whoami(g),
        Command::Tenant(c) => crate::service::tenant(g, c),
        Command::User(c) => crate::service::user(g, c),
        Command::Privacy(c) => crate::service::privacy(g, c),
        Command::Signup(c) => crate::service::signup(g, c),
        Command::Plan(c) => crate::service::plan(g, c),
        Command::Subscription(c) => crate::service::subscription(g, c),
        Command::Invoice(c) => crate::service::invoice(g, c),
        Command::Device(c) => crate::service::device(g, c),
        Command::Token(c) => crate::service::token(g, c),
        Command::Vault(c) => crate::service::vault(g, c),
        Command::Agent(c) => crate::service::agent(g, c),
        Command::Item(c) => crate::service::item(g, c),
        Command::Policy(c) => crate::service::policy(g, c),
        Command::Notify(c) => crate::service::notify(g, c),
        Command::Remote(c) => crate::service::remote(g, c),
        Command::Sync(c) => crate::service::sync(g, c),
        Command::Job(c) => crate::service::job(g, c),
        Command::Session(c) => crate::service::session(g, c),
        Command::Audit(c) => crate::service::audit(g, c),
        Command::Admin(c) => crate::service::admin(g, c),
        Command::Completions { shell } => crate::manual::completions(shell),
        Command::Man { dir } => crate::manual::man(dir.as_deref()),
    }
}

pub(super) fn filter(f: &Filter) -> SnapshotFilter {
    SnapshotFilter {
        hosts: f.hosts.clone(),
        paths: f.paths.clone(),
        tags: f.tags.clone(),
    }
}

/// True for a repository behind network requests (a server, S3).
pub(super) fn remote_store(g: &Global) -> bool {
    g.repo.as_deref().is_some_and(|r| r.contains("://"))
}

/// Threads for read-heavy work: one per core on local disk (more only adds contention), four
/// per core on remote storage, where they hide round trips.
pub(super) fn io_threads(g: &Global) -> usize {
    if g.threads != 0 {
        return g.threads;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    if remote_store(g) { cores * 4 } else { cores }
}
