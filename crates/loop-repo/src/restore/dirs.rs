//! The directories a restore created, recorded so that their metadata can be set at the end,
//! and reopened later without following a symlink (shared by the walker and the writer).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use super::nofollow::open_dir;
use crate::tree::Node;

/// A directory that was created (or found) and gets its metadata at the end.
pub(super) struct DirRecord {
    /// `None`: directly in the target.
    pub(super) parent: Option<usize>,
    pub(super) node: Node,
}

/// Path of a directory record relative to the target.
pub(super) fn record_path(records: &[DirRecord], mut i: usize) -> PathBuf {
    let mut names = vec![records[i].node.name.to_os()];
    while let Some(p) = records[i].parent {
        names.push(records[p].node.name.to_os());
        i = p;
    }
    names.iter().rev().collect()
}

/// Reopens recorded directories from the target down, one `O_NOFOLLOW` component at a time,
/// keeping the last chain open (consecutive lookups are usually siblings).
#[derive(Default)]
pub(super) struct DirChain {
    open: Vec<(usize, OwnedFd)>,
}

impl DirChain {
    /// The directory of `record`; `None` is the target itself.
    pub(super) fn open<'a>(
        &'a mut self,
        root: &'a OwnedFd,
        records: &[DirRecord],
        record: Option<usize>,
    ) -> io::Result<BorrowedFd<'a>> {
        let Some(record) = record else {
            return Ok(root.as_fd());
        };
        let mut path = vec![record];
        while let Some(p) = records[*path.last().expect("non-empty")].parent {
            path.push(p);
        }
        path.reverse();
        let keep = self
            .open
            .iter()
            .zip(&path)
            .take_while(|((a, _), b)| a == *b)
            .count();
        self.open.truncate(keep);
        for &i in &path[keep..] {
            let fd = {
                let parent = self.open.last().map_or(root.as_fd(), |(_, fd)| fd.as_fd());
                open_dir(parent, &records[i].node.name)?
            };
            self.open.push((i, fd));
        }
        Ok(self.open.last().expect("non-empty").1.as_fd())
    }
}
