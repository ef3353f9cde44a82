//! The finalizer: turns each finished directory listing into a tree blob, once the files and
//! subdirectories in it are done.

use crossbeam_channel::{Receiver, Sender};

use super::packer::BlobJob;
use super::state::Run;
use crate::id::Id;
use crate::pack::BlobKind;
use crate::tree::{Node, Tree};

/// One entry of a directory, as the walker found it.
pub(super) enum Child {
    Ready(Node),
    /// Files being read by a hasher, in name order, with where their nodes will arrive.
    Files(usize, Receiver<Vec<Option<Node>>>),
    Dir(Node, Receiver<Option<Id>>),
}

/// A listed directory waiting for its children, and where its tree ID goes.
pub(super) struct PendingDir {
    pub(super) children: Vec<Child>,
    pub(super) reply: Sender<Option<Id>>,
}

impl Run<'_> {
    pub(super) fn finalize(&self, dirs: Receiver<PendingDir>, blobs: Sender<BlobJob>) {
        for pd in dirs {
            let mut nodes = Vec::with_capacity(
                pd.children
                    .iter()
                    .map(|c| match c {
                        Child::Files(n, _) => *n,
                        _ => 1,
                    })
                    .sum(),
            );
            for child in pd.children {
                match child {
                    Child::Ready(n) => nodes.push(n),
                    Child::Files(_, rx) => {
                        // A failed run drops the reply; the run's failure is recorded.
                        if let Ok(done) = rx.recv() {
                            nodes.extend(done.into_iter().flatten());
                        }
                    }
                    Child::Dir(mut n, rx) => {
                        if let Ok(Some(id)) = rx.recv() {
                            n.subtree = Some(id);
                            nodes.push(n);
                        }
                    }
                }
            }
            let tree = Tree { nodes };
            let id = match self.repo.encode_tree(&tree) {
                Ok(encoded) => {
                    // A large tree's parts go first, then the list that names them.
                    for (id, data) in encoded.blobs {
                        if self.want_blob(&id) {
                            let _ = blobs.send(BlobJob {
                                kind: BlobKind::Tree,
                                id,
                                data,
                            });
                        }
                    }
                    Some(encoded.id)
                }
                Err(e) => {
                    self.fail(e);
                    None
                }
            };
            let _ = pd.reply.send(id);
        }
    }
}
