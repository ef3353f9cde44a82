//! Read-only views of snapshots: listing (`ls`), comparing (`diff`) and sizes (`stats`).

use std::collections::HashSet;

use serde::Serialize;

use crate::error::Result;
use crate::id::Id;
use crate::index::Index;
use crate::repo::Repository;
use crate::tree::{Node, NodeKind, Tree};

/// Calls `f` for every node below `tree`, depth first in name order, with its path inside the
/// snapshot (starting with `/`).
pub fn walk(
    repo: &Repository,
    index: &Index,
    tree: &Id,
    prefix: &str,
    f: &mut dyn FnMut(&str, &Node) -> Result<()>,
) -> Result<()> {
    let t = repo.load_tree(index, tree)?;
    for node in &t.nodes {
        let path = format!("{prefix}/{}", node.name);
        f(&path, node)?;
        if node.kind == NodeKind::Dir
            && let Some(sub) = &node.subtree
        {
            walk(repo, index, sub, &path, f)?;
        }
    }
    Ok(())
}

/// One difference between two snapshots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `+` added, `-` removed, `M` content changed, `U` metadata only, `T` type changed.
    pub kind: char,
    pub path: String,
}

/// Compares two trees. Identical subtrees (same ID) are skipped without loading them.
pub fn diff(repo: &Repository, index: &Index, a: &Id, b: &Id) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    diff_trees(repo, index, Some(a), Some(b), "", &mut out)?;
    Ok(out)
}

fn diff_trees(
    repo: &Repository,
    index: &Index,
    a: Option<&Id>,
    b: Option<&Id>,
    prefix: &str,
    out: &mut Vec<Change>,
) -> Result<()> {
    if a.is_some() && a == b {
        return Ok(());
    }
    let load = |id: Option<&Id>| -> Result<Tree> {
        match id {
            Some(id) => repo.load_tree(index, id),
            None => Ok(Tree::default()),
        }
    };
    let (ta, tb) = (load(a)?, load(b)?);
    let (mut i, mut j) = (0, 0);
    while i < ta.nodes.len() || j < tb.nodes.len() {
        let na = ta.nodes.get(i);
        let nb = tb.nodes.get(j);
        let order = match (na, nb) {
            (Some(x), Some(y)) => x.name.cmp(&y.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                let n = na.expect("present");
                report_all(repo, index, n, prefix, '-', out)?;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                let n = nb.expect("present");
                report_all(repo, index, n, prefix, '+', out)?;
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (na.expect("present"), nb.expect("present"));
                let path = format!("{prefix}/{}", x.name);
                if x.kind != y.kind {
                    out.push(Change {
                        kind: 'T',
                        path: path.clone(),
                    });
                }
                if x.kind == NodeKind::Dir || y.kind == NodeKind::Dir {
                    // A missing side (the other node is not a directory) reads as empty.
                    diff_trees(
                        repo,
                        index,
                        x.subtree.as_ref(),
                        y.subtree.as_ref(),
                        &path,
                        out,
                    )?;
                } else if x.kind != y.kind {
                    // Reported above.
                } else if x.content != y.content
                    || x.link_target != y.link_target
                    || x.rdev != y.rdev
                {
                    out.push(Change { kind: 'M', path });
                } else if x.mode != y.mode
                    || x.uid != y.uid
                    || x.gid != y.gid
                    || x.mtime_ns != y.mtime_ns
                    || x.xattrs != y.xattrs
                {
                    out.push(Change { kind: 'U', path });
                }
                i += 1;
                j += 1;
            }
        }
    }
    Ok(())
}

fn report_all(
    repo: &Repository,
    index: &Index,
    node: &Node,
    prefix: &str,
    kind: char,
    out: &mut Vec<Change>,
) -> Result<()> {
    let path = format!("{prefix}/{}", node.name);
    out.push(Change {
        kind,
        path: path.clone(),
    });
    if let (NodeKind::Dir, Some(sub)) = (node.kind, &node.subtree) {
        walk(repo, index, sub, &path, &mut |p, _| {
            out.push(Change {
                kind,
                path: p.to_string(),
            });
            Ok(())
        })?;
    }
    Ok(())
}

/// Sizes of one or more snapshots.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub snapshots: usize,
    /// Files, counting each snapshot's files separately.
    pub total_files: u64,
    /// Bytes a full restore of every selected snapshot would write.
    pub restore_size: u64,
    /// Distinct blobs the selected snapshots reference.
    pub unique_blobs: u64,
    /// Plaintext bytes of those distinct blobs (what deduplication leaves).
    pub unique_size: u64,
    /// Stored bytes of those blobs (after compression and encryption).
    pub stored_size: u64,
}

impl Stats {
    pub fn dedup_ratio(&self) -> f64 {
        if self.unique_size == 0 {
            0.0
        } else {
            self.restore_size as f64 / self.unique_size as f64
        }
    }
}

pub fn stats(repo: &Repository, index: &Index, roots: &[Id]) -> Result<Stats> {
    let mut st = Stats {
        snapshots: roots.len(),
        ..Default::default()
    };
    let mut seen: HashSet<Id> = HashSet::new();
    for root in roots {
        if seen.insert(*root) {
            count_blob(index, root, &mut st);
        }
        walk(repo, index, root, "", &mut |_, node| {
            match node.kind {
                NodeKind::File => {
                    st.total_files += 1;
                    st.restore_size += node.size;
                    for id in &node.content {
                        if seen.insert(*id) {
                            count_blob(index, id, &mut st);
                        }
                    }
                }
                NodeKind::Dir => {
                    if let Some(sub) = node.subtree
                        && seen.insert(sub)
                    {
                        count_blob(index, &sub, &mut st);
                    }
                }
                _ => {}
            }
            Ok(())
        })?;
    }
    Ok(st)
}

fn count_blob(index: &Index, id: &Id, st: &mut Stats) {
    if let Some(loc) = index.get(id) {
        st.unique_blobs += 1;
        st.unique_size += loc.entry.raw_len as u64;
        st.stored_size += loc.entry.length as u64;
    }
}
