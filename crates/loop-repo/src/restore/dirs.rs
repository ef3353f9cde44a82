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
    /// Its device and inode when restore made it: reopened by name, what is there must
    /// still be it.
    pub(super) inode: (u64, u64),
}

/// The device and inode of an open file or directory.
pub(super) fn inode_of(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
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
/// keeping the last chain open (consecutive lookups are usually siblings). A directory found
/// at a recorded name that is not the one restore made (someone who writes the target
/// renamed it away and put another there) is refused, so nothing lands on theirs.
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
            if inode_of(fd.as_fd())? != records[i].inode {
                return Err(io::Error::other(
                    "the directory was replaced since the restore made it",
                ));
            }
            self.open.push((i, fd));
        }
        Ok(self.open.last().expect("non-empty").1.as_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{Name, NodeKind};

    /// Someone who writes the target renames a directory restore made and puts another at
    /// its name: reopening it for its metadata refuses theirs.
    #[test]
    fn a_directory_replaced_after_restore_made_it_is_not_reopened() {
        let tmp = tempfile::tempdir().unwrap();
        let root: OwnedFd = std::fs::File::open(tmp.path()).unwrap().into();
        let made = super::super::nofollow::make_dir(root.as_fd(), &Name(b"d".to_vec())).unwrap();
        let records = vec![DirRecord {
            parent: None,
            node: Node::bare(Name(b"d".to_vec()), NodeKind::Dir, 0, None),
            inode: inode_of(made.as_fd()).unwrap(),
        }];
        let mut chain = DirChain::default();
        assert!(chain.open(&root, &records, Some(0)).is_ok());

        std::fs::rename(tmp.path().join("d"), tmp.path().join("d.away")).unwrap();
        std::fs::create_dir(tmp.path().join("d")).unwrap();
        let mut chain = DirChain::default();
        let err = chain.open(&root, &records, Some(0)).unwrap_err();
        assert!(err.to_string().contains("replaced"), "{err}");
    }
}
