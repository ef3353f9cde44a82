//! Read-only views of snapshots: listing (`ls`), comparing (`diff`) and sizes (`stats`).

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::Index;
use crate::repo::Repository;
use crate::tree::{MAX_PATH, Node, NodeKind};

/// Calls `f` for every node below `tree`, depth first in name order, with its path inside the
/// snapshot (starting with `/`). Trees come from the repository, which may be hostile: the
/// walk keeps its own stack, so however deep they nest, ours does not grow, and one path
/// buffer, so that what it holds grows with the path (at most [`MAX_PATH`]), not with the
/// sum of every level's.
pub fn walk(
    repo: &Repository,
    index: &Index,
    tree: &Id,
    prefix: &str,
    f: &mut dyn FnMut(&str, &Node) -> Result<()>,
) -> Result<()> {
    let root = repo.load_tree(index, tree)?;
    let mut path = prefix.to_string();
    // Each level's entries left, and the length of its directory's path.
    let mut stack = vec![(root.nodes.into_iter(), path.len())];
    while let Some((nodes, dir)) = stack.last_mut() {
        path.truncate(*dir);
        let Some(node) = nodes.next() else {
            stack.pop();
            continue;
        };
        push_name(&mut path, &node)?;
        f(&path, &node)?;
        if node.kind == NodeKind::Dir
            && let Some(sub) = &node.subtree
        {
            let t = repo.load_tree(index, sub)?;
            stack.push((t.nodes.into_iter(), path.len()));
        }
    }
    Ok(())
}

/// Appends `/` and the node's name to `path`; a path longer than [`MAX_PATH`] is damage.
fn push_name(path: &mut String, node: &Node) -> Result<()> {
    use std::fmt::Write as _;
    let _ = write!(path, "/{}", node.name);
    if path.len() > MAX_PATH {
        let shown: String = path.chars().take(200).collect();
        return Err(Error::corrupt(
            format!("the tree at {shown}..."),
            format!("a path inside the snapshot is longer than {MAX_PATH} bytes"),
        ));
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

/// Compares two trees, calling `on` for each difference as it is found (in path order), so
/// that however many there are, none is held. Identical subtrees (same ID) are skipped
/// without loading them.
pub fn diff(
    repo: &Repository,
    index: &Index,
    a: &Id,
    b: &Id,
    on: &mut dyn FnMut(Change) -> Result<()>,
) -> Result<()> {
    diff_trees(repo, index, Some(a), Some(b), on)
}

/// Two directories being compared: their entries, how far each is read, and the length of
/// their path in the walk's one path buffer.
struct DiffFrame {
    a: Vec<Node>,
    b: Vec<Node>,
    i: usize,
    j: usize,
    prefix: usize,
}

/// Compares trees `a` and `b` (a missing one reads as empty) and everything below them,
/// depth first with a stack of its own, like [`walk`].
fn diff_trees(
    repo: &Repository,
    index: &Index,
    a: Option<&Id>,
    b: Option<&Id>,
    out: &mut dyn FnMut(Change) -> Result<()>,
) -> Result<()> {
    let frame = |a: Option<&Id>, b: Option<&Id>, prefix: usize| -> Result<Option<DiffFrame>> {
        if a.is_some() && a == b {
            return Ok(None);
        }
        let load = |id: Option<&Id>| -> Result<Vec<Node>> {
            match id {
                Some(id) => Ok(repo.load_tree(index, id)?.nodes),
                None => Ok(Vec::new()),
            }
        };
        Ok(Some(DiffFrame {
            a: load(a)?,
            b: load(b)?,
            i: 0,
            j: 0,
            prefix,
        }))
    };
    let mut path = String::new();
    let mut stack: Vec<DiffFrame> = frame(a, b, 0)?.into_iter().collect();
    while let Some(top) = stack.last_mut() {
        path.truncate(top.prefix);
        let (na, nb) = (top.a.get(top.i), top.b.get(top.j));
        let order = match (na, nb) {
            (None, None) => {
                stack.pop();
                continue;
            }
            (Some(x), Some(y)) => x.name.cmp(&y.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                report_all(repo, index, na.expect("present"), &path, '-', out)?;
                top.i += 1;
            }
            std::cmp::Ordering::Greater => {
                report_all(repo, index, nb.expect("present"), &path, '+', out)?;
                top.j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (na.expect("present"), nb.expect("present"));
                push_name(&mut path, x)?;
                if x.kind != y.kind {
                    out(Change {
                        kind: 'T',
                        path: path.clone(),
                    })?;
                }
                let mut below = None;
                if x.kind == NodeKind::Dir || y.kind == NodeKind::Dir {
                    // A directory's own owner, mode and attributes are in this tree, not in
                    // its subtree. (Not its mtime: that moves with every name added or
                    // removed, which the listing below shows.)
                    if x.kind == y.kind
                        && (x.mode != y.mode
                            || x.uid != y.uid
                            || x.gid != y.gid
                            || x.xattrs != y.xattrs)
                    {
                        out(Change {
                            kind: 'U',
                            path: path.clone(),
                        })?;
                    }
                    // A missing side (the other node is not a directory) reads as empty.
                    below = Some((x.subtree, y.subtree));
                } else if x.kind != y.kind {
                    // Reported above.
                } else if x.content != y.content
                    || x.link_target != y.link_target
                    || x.rdev != y.rdev
                {
                    out(Change {
                        kind: 'M',
                        path: path.clone(),
                    })?;
                } else if x.mode != y.mode
                    || x.uid != y.uid
                    || x.gid != y.gid
                    || x.mtime_ns != y.mtime_ns
                    || x.xattrs != y.xattrs
                {
                    out(Change {
                        kind: 'U',
                        path: path.clone(),
                    })?;
                }
                top.i += 1;
                top.j += 1;
                if let Some((sa, sb)) = below
                    && let Some(f) = frame(sa.as_ref(), sb.as_ref(), path.len())?
                {
                    stack.push(f);
                }
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
    out: &mut dyn FnMut(Change) -> Result<()>,
) -> Result<()> {
    let mut path = prefix.to_string();
    push_name(&mut path, node)?;
    out(Change {
        kind,
        path: path.clone(),
    })?;
    if let (NodeKind::Dir, Some(sub)) = (node.kind, &node.subtree) {
        walk(repo, index, sub, &path, &mut |p, _| {
            out(Change {
                kind,
                path: p.to_string(),
            })
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

/// Sizes of the snapshots whose root trees are `roots`. Files and restore size count every
/// place a file appears (a directory stored once but found under two names is restored
/// twice); the unique figures count each blob once. Each distinct tree is loaded once and
/// its totals kept, so shared subtrees cost nothing more, however often a hostile
/// repository repeats them.
pub fn stats(repo: &Repository, index: &Index, roots: &[Id]) -> Result<Stats> {
    let mut st = Stats {
        snapshots: roots.len(),
        ..Default::default()
    };
    let mut seen: HashSet<Id> = HashSet::new();
    let mut totals: HashMap<Id, Totals> = HashMap::new();
    for root in roots {
        if seen.insert(*root) {
            count_blob(index, root, &mut st);
        }
        let t = tree_totals(repo, index, root, &mut totals, &mut seen, &mut st)?;
        st.total_files = st.total_files.saturating_add(t.files);
        st.restore_size = st.restore_size.saturating_add(t.bytes);
    }
    Ok(st)
}

/// A tree being counted: its ID, its nodes left, and the totals so far.
type Frame = (Id, std::vec::IntoIter<Node>, Totals);

/// Files and their bytes below one tree, every place counted.
#[derive(Clone, Copy, Default)]
struct Totals {
    files: u64,
    bytes: u64,
}

impl Totals {
    fn add(&mut self, other: Totals) {
        self.files = self.files.saturating_add(other.files);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// The totals of tree `root`, from `totals` or computed (depth first, with a stack of its
/// own) and kept there with those of every tree below it. Blobs not in `seen` yet are added
/// to `st`'s unique figures.
fn tree_totals(
    repo: &Repository,
    index: &Index,
    root: &Id,
    totals: &mut HashMap<Id, Totals>,
    seen: &mut HashSet<Id>,
    st: &mut Stats,
) -> Result<Totals> {
    if let Some(t) = totals.get(root) {
        return Ok(*t);
    }
    // A large tree's parts are blobs of its own, counted like the tree's.
    let open = |id: &Id, seen: &mut HashSet<Id>, st: &mut Stats| -> Result<Frame> {
        let (tree, parts) = repo.load_tree_with_parts(index, id)?;
        for part in parts.iter().filter(|p| seen.insert(**p)) {
            count_blob(index, part, st);
        }
        Ok((*id, tree.nodes.into_iter(), Totals::default()))
    };
    let mut stack = vec![open(root, seen, st)?];
    // The trees on the stack. A tree's ID is the keyed hash of its content, so none can
    // contain itself; this only keeps a forged one from looping.
    let mut entered: HashSet<Id> = HashSet::from([*root]);
    while let Some((_, nodes, sum)) = stack.last_mut() {
        let Some(node) = nodes.next() else {
            let (id, _, done) = stack.pop().expect("the top");
            entered.remove(&id);
            totals.insert(id, done);
            match stack.last_mut() {
                Some((_, _, parent)) => parent.add(done),
                None => return Ok(done),
            }
            continue;
        };
        match (node.kind, node.subtree) {
            (NodeKind::File, _) => {
                sum.add(Totals {
                    files: 1,
                    bytes: node.size,
                });
                for id in &node.content {
                    if seen.insert(*id) {
                        count_blob(index, id, st);
                    }
                }
            }
            (NodeKind::Dir, Some(sub)) => {
                if seen.insert(sub) {
                    count_blob(index, &sub, st);
                }
                if let Some(t) = totals.get(&sub) {
                    sum.add(*t);
                } else if entered.insert(sub) {
                    stack.push(open(&sub, seen, st)?);
                }
            }
            _ => {}
        }
    }
    unreachable!("the root's frame returns")
}

fn count_blob(index: &Index, id: &Id, st: &mut Stats) {
    if let Some(loc) = index.get(id) {
        st.unique_blobs += 1;
        st.unique_size += loc.entry.raw_len as u64;
        st.stored_size += loc.entry.length as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{local_repo, store_trees};
    use crate::tree::{Name, Tree};

    fn node(name: &str, kind: NodeKind, size: u64, subtree: Option<Id>) -> Node {
        Node::bare(Name(name.as_bytes().to_vec()), kind, size, subtree)
    }

    /// Stores trees from the bottom up: `bottom`, then `levels` trees whose directories
    /// `names` each hold the tree below. Answers the top tree.
    fn stack_of_trees(repo: &Repository, bottom: Tree, levels: usize, names: &[&str]) -> Id {
        let mut trees = vec![bottom];
        let mut below = repo.encode_tree(&trees[0]).unwrap().id;
        for _ in 0..levels {
            let nodes = names
                .iter()
                .map(|n| node(n, NodeKind::Dir, 0, Some(below)))
                .collect();
            let tree = Tree { nodes };
            below = repo.encode_tree(&tree).unwrap().id;
            trees.push(tree);
        }
        *store_trees(repo, &trees).last().unwrap()
    }

    /// A hostile repository nests 20,000 directories. Listing, comparing and counting it
    /// must not overflow a small stack (which aborts the whole process).
    #[test]
    fn a_chain_of_20000_nested_trees_is_walked_on_a_small_stack() {
        const DEPTH: usize = 20_000;
        let tmp = tempfile::tempdir().unwrap();
        let repo = local_repo(tmp.path());
        // Two chains that differ only in the bottom file's time.
        let leaf = |mtime_ns| {
            let mut f = node("f", NodeKind::File, 3, None);
            f.mtime_ns = mtime_ns;
            Tree { nodes: vec![f] }
        };
        let a = stack_of_trees(&repo, leaf(1), DEPTH, &["d"]);
        let b = stack_of_trees(&repo, leaf(2), DEPTH, &["d"]);
        let index = repo.load_index().unwrap();
        let deepest = format!("{}/f", "/d".repeat(DEPTH));

        let (walked, changes, st) = std::thread::scope(|s| {
            std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn_scoped(s, || {
                    let mut walked = 0usize;
                    walk(&repo, &index, &a, "", &mut |_, _| {
                        walked += 1;
                        Ok(())
                    })?;
                    let mut changes = Vec::new();
                    diff(&repo, &index, &a, &b, &mut |c| {
                        changes.push(c);
                        Ok(())
                    })?;
                    let st = stats(&repo, &index, &[a])?;
                    Ok::<_, crate::Error>((walked, changes, st))
                })
                .unwrap()
                .join()
                .unwrap()
        })
        .unwrap();

        assert_eq!(walked, DEPTH + 1);
        assert_eq!(changes.len(), 1);
        assert_eq!((changes[0].kind, &changes[0].path), ('U', &deepest));
        assert_eq!((st.total_files, st.restore_size), (1, 3));
        assert_eq!(st.unique_blobs, DEPTH as u64 + 1);
    }

    /// A hostile repository nests 340 directories of 200-byte names: 68 kB of path, past
    /// [`MAX_PATH`]. Listing, comparing and restoring stop there with an error naming the
    /// limit, rather than go on (at a few megabytes of trees, gigabytes of paths).
    #[test]
    fn a_path_longer_than_the_limit_is_damage() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = local_repo(tmp.path());
        let long = "n".repeat(200);
        let leaf = |size| Tree {
            nodes: vec![node("f", NodeKind::File, size, None)],
        };
        let a = stack_of_trees(&repo, leaf(3), 340, &[&long]);
        let b = stack_of_trees(&repo, leaf(4), 340, &[&long]);
        let index = repo.load_index().unwrap();
        let limit = format!("longer than {MAX_PATH} bytes");

        let mut walked = 0;
        let err = walk(&repo, &index, &a, "", &mut |p, _| {
            assert!(p.len() <= MAX_PATH);
            walked += 1;
            Ok(())
        })
        .unwrap_err();
        assert!(err.to_string().contains(&limit), "{err}");
        assert_eq!(walked, MAX_PATH / (long.len() + 1));
        let err = diff(&repo, &index, &a, &b, &mut |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains(&limit), "{err}");
        let opts = crate::restore::RestoreOptions {
            target: tmp.path().join("out"),
            ..Default::default()
        };
        let report = crate::restore::run(&repo, &a, &opts, &Default::default()).unwrap();
        assert!(
            report.errors.iter().any(|e| e.contains(&limit)),
            "{:?}",
            report.errors
        );
        assert_eq!(report.files, 0);
        // `check` names it as damage, where the structure walk stops.
        repo.save_snapshot(&crate::testutil::bare_snapshot(a))
            .unwrap();
        let structure = crate::check::CheckOptions {
            read_data: crate::check::ReadData::None,
            threads: 1,
        };
        let found = crate::check::run(&repo, &structure, &Default::default()).unwrap();
        assert!(found.errors.iter().any(|e| e.contains(&limit)), "{found:?}");
    }

    /// Directories whose trees are shared: 40 levels of two directories that hold the same
    /// tree name 2^40 places of the one file at the bottom. Stats count every place (a
    /// restore writes each), and every distinct blob once, loading each tree once.
    #[test]
    fn stats_count_every_place_of_a_shared_subtree_and_each_blob_once() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = local_repo(tmp.path());
        let leaf = Tree {
            nodes: vec![node("f", NodeKind::File, 5, None)],
        };
        let top = stack_of_trees(&repo, leaf, 40, &["a", "b"]);
        let index = repo.load_index().unwrap();

        let st = stats(&repo, &index, &[top, top]).unwrap();

        assert_eq!(st.snapshots, 2);
        assert_eq!(st.total_files, 2 << 40);
        assert_eq!(st.restore_size, 5 * (2 << 40));
        assert_eq!(st.unique_blobs, 41);
        let stored: u64 = index.iter().map(|l| l.entry.length as u64).sum();
        assert_eq!(st.stored_size, stored);
    }
}
