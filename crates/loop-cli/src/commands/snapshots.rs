//! Reading what a repository holds: `loop snapshots`, `ls` and `diff`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, Local};
use loop_repo::index::Index;
use loop_repo::snapshot::{Snapshot, SnapshotFilter};
use loop_repo::tree::{Node, NodeKind};
use loop_repo::{Id, Repository, browse};
use serde_json::json;

use super::filter;
use crate::args::*;
use crate::output::{ok, print_json, printable};
use crate::repo_open;

/// The index for a command that only reads. An index file that cannot be read is skipped with
/// a warning on stderr, as restore does: the command then fails only on what it cannot find.
pub(super) fn readable_index(repo: &Repository) -> Result<Index> {
    let (index, warnings) = repo.load_index_lenient(&Default::default())?;
    for w in warnings {
        eprintln!("warning: {}", printable(&w.to_string()));
    }
    Ok(index)
}

/// Says on stderr which snapshots were skipped because they cannot be read.
pub(super) fn warn_damaged(damaged: &[(String, loop_repo::Error)]) {
    for (name, e) in damaged {
        let e = printable(&e.to_string()).into_owned();
        eprintln!(
            "warning: skipped snapshot {name}, which cannot be read ({e}); `loop check` \
             reports it and `loop forget {name}` removes it"
        );
    }
}

pub(super) fn snapshot_json(id: &Id, s: &Snapshot) -> serde_json::Value {
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

pub(super) fn snapshots(g: &Global, a: SnapshotsArgs) -> Result<ExitCode> {
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
            printable(&s.hostname),
            printable(&s.tags.join(",")),
            printable(&s.paths.join(" "))
        );
    }
    println!("{}", "-".repeat(80));
    println!("{} snapshots", list.len());
    ok()
}

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

pub(super) fn ls(g: &Global, a: LsArgs) -> Result<ExitCode> {
    let repo = repo_open::open(g)?;
    let (id, snap) = repo.find_snapshot(&a.snapshot, &filter(&a.filter))?;
    let index = readable_index(&repo)?;
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
                printable(path)
            )
        } else {
            writeln!(out, "{}", printable(path))
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

pub(super) fn diff(g: &Global, a: DiffArgs) -> Result<ExitCode> {
    let repo = repo_open::open(g)?;
    let none = SnapshotFilter::default();
    let (ia, sa) = repo.find_snapshot(&a.first, &none)?;
    let (ib, sb) = repo.find_snapshot(&a.second, &none)?;
    let index = readable_index(&repo)?;
    // Each change is printed as it is found: however many there are, none is held.
    let mut out = std::io::stdout().lock();
    let written = |r: std::io::Result<()>| {
        r.map_err(|e| loop_repo::Error::Io {
            path: "stdout".into(),
            source: e,
        })
    };
    if g.json {
        // The one JSON object `{"first", "second", "changes": [...]}`, its list streamed.
        let head = json!({"first": ia.to_hex(), "second": ib.to_hex()}).to_string();
        write!(out, "{},\"changes\":[", head.trim_end_matches('}'))?;
        let mut first = true;
        browse::diff(&repo, &index, &sa.tree, &sb.tree, &mut |c| {
            let sep = if std::mem::take(&mut first) { "" } else { "," };
            written(
                write!(out, "{sep}").and_then(|()| {
                    serde_json::to_writer(&mut out, &c).map_err(std::io::Error::from)
                }),
            )
        })?;
        writeln!(out, "]}}")?;
        return ok();
    }
    writeln!(out, "comparing snapshot {} to {}:", ia.short(), ib.short())?;
    let mut counts: BTreeMap<char, usize> = BTreeMap::new();
    browse::diff(&repo, &index, &sa.tree, &sb.tree, &mut |c| {
        *counts.entry(c.kind).or_default() += 1;
        written(writeln!(out, "{}    {}", c.kind, printable(&c.path)))
    })?;
    writeln!(
        out,
        "\nadded: {}, removed: {}, changed: {}, metadata only: {}, type changed: {}",
        counts.get(&'+').unwrap_or(&0),
        counts.get(&'-').unwrap_or(&0),
        counts.get(&'M').unwrap_or(&0),
        counts.get(&'U').unwrap_or(&0),
        counts.get(&'T').unwrap_or(&0)
    )?;
    ok()
}
