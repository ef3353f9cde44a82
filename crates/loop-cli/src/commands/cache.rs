//! `loop cache`: the local caches of remote repositories' trees and index.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Result, bail};
use chrono::{DateTime, Local, SecondsFormat, Utc};
use loop_repo::{CacheDir, human_bytes};
use serde::Serialize;

use crate::args::*;
use crate::output::show;
use crate::repo_open;

/// One cache as `--json` prints it.
#[derive(Serialize)]
struct Listed {
    repository: String,
    path: String,
    last_used: String,
    bytes: u64,
    /// Unused for `--max-unused-days` or longer.
    old: bool,
    /// Removed by this run (`--cleanup`).
    removed: bool,
}

pub(super) fn cache(g: &Global, a: CacheArgs) -> Result<ExitCode> {
    let Some(root) = repo_open::cache_root(g) else {
        bail!("no cache directory: give --cache-dir, or set XDG_CACHE_HOME or HOME");
    };
    let unused = Duration::from_secs(a.max_unused_days.saturating_mul(86_400));
    let cutoff = SystemTime::now().checked_sub(unused);
    let is_old = |c: &CacheDir| cutoff.is_some_and(|t| c.last_used <= t);
    let removed: Vec<CacheDir> = match a.cleanup {
        true => loop_repo::remove_unused_caches(&root, unused),
        false => Vec::new(),
    };
    let mut listed: Vec<Listed> = loop_repo::caches(&root)
        .iter()
        .chain(&removed)
        .map(|c| Listed {
            repository: c.repository.clone(),
            path: c.path.display().to_string(),
            last_used: DateTime::<Utc>::from(c.last_used)
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            bytes: c.bytes,
            old: is_old(c),
            removed: removed.contains(c),
        })
        .collect();
    listed.sort_by(|x, y| (&x.last_used, &x.repository).cmp(&(&y.last_used, &y.repository)));
    show(g, &listed, |listed| {
        println!("Caches in {}", root.display());
        if listed.is_empty() {
            println!("(none)");
            return;
        }
        println!("{:<12} {:<17} {:>10}", "Repository", "Last used", "Size");
        for c in listed {
            let used = DateTime::parse_from_rfc3339(&c.last_used)
                .map(|t| t.with_timezone(&Local).format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default();
            let state = match (c.removed, c.old) {
                (true, _) => "  removed",
                (false, true) => "  old",
                (false, false) => "",
            };
            let short = c.repository.get(..10).unwrap_or(&c.repository);
            println!("{short:<12} {used:<17} {:>10}{state}", human_bytes(c.bytes));
        }
        let old: Vec<&Listed> = listed.iter().filter(|c| c.old && !c.removed).collect();
        let days = a.max_unused_days;
        if !removed.is_empty() {
            let bytes = removed.iter().map(|c| c.bytes).sum();
            println!(
                "removed {} cache(s), {}, unused for {days} days or more",
                removed.len(),
                human_bytes(bytes)
            );
        } else if !old.is_empty() {
            println!(
                "{} cache(s) unused for {days} days or more: `loop cache --cleanup` removes them",
                old.len()
            );
        }
    })
}
