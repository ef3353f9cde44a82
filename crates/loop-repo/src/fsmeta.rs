//! Reading file metadata into tree nodes (backup side).

use std::ffi::OsStr;
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::tree::{Name, Node, NodeKind, Xattr};

/// Extended attributes larger than this are not recorded (they would not fit most
/// filesystems anyway).
const MAX_XATTR_LIST: usize = 64 * 1024;

pub(crate) fn nanos(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// Builds a node from `lstat` metadata and reads the link target. Extended attributes are
/// read only with `with_xattrs` (backup reuses the parent's when the change time says they
/// cannot differ).
pub(crate) fn node_from_metadata(
    name: &OsStr,
    meta: &Metadata,
    path: &Path,
    with_xattrs: bool,
) -> io::Result<Node> {
    let ft = meta.file_type();
    let kind = if ft.is_file() {
        NodeKind::File
    } else if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_symlink() {
        NodeKind::Symlink
    } else if ft.is_char_device() {
        NodeKind::Chardev
    } else if ft.is_block_device() {
        NodeKind::Blockdev
    } else if ft.is_fifo() {
        NodeKind::Fifo
    } else {
        NodeKind::Socket
    };
    let link_target = if kind == NodeKind::Symlink {
        Some(Name(
            std::fs::read_link(path)?.as_os_str().as_bytes().to_vec(),
        ))
    } else {
        None
    };
    Ok(Node {
        name: Name(name.as_bytes().to_vec()),
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size: if kind == NodeKind::File {
            meta.size()
        } else {
            0
        },
        mtime_ns: nanos(meta.mtime(), meta.mtime_nsec()),
        ctime_ns: nanos(meta.ctime(), meta.ctime_nsec()),
        inode: meta.ino(),
        dev: meta.dev(),
        links: meta.nlink(),
        rdev: if matches!(kind, NodeKind::Chardev | NodeKind::Blockdev) {
            meta.rdev()
        } else {
            0
        },
        link_target,
        content: Vec::new(),
        subtree: None,
        xattrs: if with_xattrs {
            read_xattrs(path)
        } else {
            Vec::new()
        },
    })
}

/// Extended attributes of a path (not following symlinks). Filesystems without xattr support
/// give none.
pub(crate) fn read_xattrs(path: &Path) -> Vec<Xattr> {
    read_xattrs_with(
        |list| rustix::fs::llistxattr(path, list),
        |name, value| rustix::fs::lgetxattr(path, name, value),
    )
}

/// Extended attributes of an open file (of the file itself, wherever its name now leads).
pub(crate) fn read_xattrs_of(file: &std::fs::File) -> Vec<Xattr> {
    read_xattrs_with(
        |list| rustix::fs::flistxattr(file, list),
        |name, value| rustix::fs::fgetxattr(file, name, value),
    )
}

/// Lists the names with `list`, then reads each value with `get`, growing the buffers as
/// the file system asks, up to `MAX_XATTR_LIST`.
fn read_xattrs_with(
    list: impl Fn(&mut [u8]) -> rustix::io::Result<usize>,
    get: impl Fn(&OsStr, &mut [u8]) -> rustix::io::Result<usize>,
) -> Vec<Xattr> {
    let mut names = vec![0u8; 4096];
    let n = loop {
        match list(&mut names[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) if names.len() < MAX_XATTR_LIST => {
                names.resize(names.len() * 4, 0);
            }
            Err(_) => return Vec::new(),
        }
    };
    let mut out = Vec::new();
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name_os = OsStr::from_bytes(name);
        let mut value = vec![0u8; 4096];
        loop {
            match get(name_os, &mut value[..]) {
                Ok(len) => {
                    value.truncate(len);
                    out.push(Xattr {
                        name: Name(name.to_vec()),
                        value,
                    });
                    break;
                }
                Err(rustix::io::Errno::RANGE) if value.len() < MAX_XATTR_LIST => {
                    value.resize(value.len() * 4, 0);
                }
                Err(_) => break,
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
