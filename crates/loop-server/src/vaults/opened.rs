//! A managed vault opened for reading, the opened vaults a node keeps, and the walk over a
//! snapshot's tree that the search and the archives share. Nothing here knows the service's
//! state: the vault reader opens vaults and keeps them here.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use loop_repo::Repository;
use loop_repo::index::Index;
use loop_repo::tree::{Node, NodeKind};

/// Opened vaults kept at most (each holds its index in memory).
const KEPT: usize = 8;

/// A managed vault opened for reading.
pub struct Opened {
    pub repo: Repository,
    pub index: Index,
    pub(super) index_files: Vec<String>,
    /// Where it was opened: kept only while the vault lives there (a promotion moves it).
    pub(super) destination: String,
}

/// The vaults this node has opened lately (see the module's documentation).
#[derive(Default)]
pub struct Readers {
    kept: Mutex<Vec<(String, Arc<Opened>)>>,
}

impl Readers {
    pub(super) fn get(&self, vault: &str) -> Option<Arc<Opened>> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter()
            .find(|(v, _)| v == vault)
            .map(|(_, o)| o.clone())
    }

    pub(super) fn keep(&self, vault: &str, opened: Arc<Opened>) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.retain(|(v, _)| v != vault);
        kept.insert(0, (vault.to_string(), opened));
        kept.truncate(KEPT);
    }
}

/// What [`walk`] calls for each node, with its path: go on, or stop the walk.
pub type Visit<'a, E> = dyn FnMut(&[u8], &Node) -> Result<ControlFlow<()>, E> + 'a;

/// Visits `top` (at `path`) and everything below it, depth first, each directory before its
/// entries and the entries by name. The walk keeps its own stack, so a snapshot nested
/// however deep (anyone with a token may write one) cannot exhaust the thread's.
pub fn walk<E: From<loop_repo::Error>>(
    o: &Opened,
    path: Vec<u8>,
    top: Node,
    visit: &mut Visit<'_, E>,
) -> Result<(), E> {
    let mut stack = vec![(path, top)];
    while let Some((path, n)) = stack.pop() {
        if visit(&path, &n)?.is_break() {
            break;
        }
        if let (NodeKind::Dir, Some(sub)) = (n.kind, n.subtree) {
            let t = o.repo.load_tree(&o.index, &sub)?;
            for c in t.nodes.into_iter().rev() {
                let mut p = Vec::with_capacity(path.len() + 1 + c.name.0.len());
                p.extend_from_slice(&path);
                p.push(b'/');
                p.extend_from_slice(c.name.as_bytes());
                stack.push((p, c));
            }
        }
    }
    Ok(())
}
