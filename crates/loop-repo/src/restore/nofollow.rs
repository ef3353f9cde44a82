//! The file-system calls of a restore that touch a name under the target. Auditing this
//! file is auditing the rule that keeps a restore inside its target:
//!
//! - every entry is reached relative to its parent's directory descriptor, by one name
//!   component, never through a path string. Callers pass single components only (loading a
//!   tree rejects other names, and the walker checks again), as `O_NOFOLLOW` guards only the
//!   last component of a path;
//! - nothing is ever resolved through a symlink: directories are opened with `O_NOFOLLOW`,
//!   files are created with `O_CREAT | O_EXCL | O_NOFOLLOW`, the metadata of a symlink, FIFO
//!   or device goes through an `O_PATH | O_NOFOLLOW` descriptor of the entry just made
//!   ([`Made`]; a symlink's xattrs, which only a name can reach, are set only where nobody
//!   else can rename names there), and a hard link to a symlink links the symlink itself;
//! - whatever non-directory is in the way (a planted symlink, a FIFO, an old file) is
//!   unlinked, never opened, and the entry is created afresh; a regular file is instead
//!   written under a new temporary name beside it and renamed over it once complete
//!   (`renameat` replaces the name, never following what it held), so a restore that fails
//!   midway (a full disk, a damaged blob, a cancel) leaves what was there as it was.
//!
//! So nothing can be written outside the target, whatever a hostile repository or someone
//! else writing into the target puts there. The one path resolved normally is the target
//! itself, which the user names ([`open_target`]). The rest of the restore reaches the file
//! system only through these functions and the descriptors they return.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use crate::tree::{Name, Xattr};

/// Creates (if needed) and opens the restore target, the one path resolved normally.
pub(super) fn open_target(target: &Path) -> io::Result<OwnedFd> {
    std::fs::create_dir_all(target)?;
    Ok(rustix::fs::openat(
        rustix::fs::CWD,
        target,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Fails unless the open directory `dir` lies under one of `roots` (resolved paths), as the
/// kernel names it (`/proc/self/fd`): where it is, not where its path pointed when checked.
pub(super) fn check_within(dir: &OwnedFd, roots: &[PathBuf]) -> Result<(), String> {
    let link = format!("/proc/self/fd/{}", dir.as_raw_fd());
    let real = std::fs::read_link(&link).map_err(|e| format!("where it lies is unknown ({e})"))?;
    if roots.iter().any(|r| real.starts_with(r)) {
        return Ok(());
    }
    Err(format!("it lies at {}, outside {}", real.display(), {
        let shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        shown.join(", ")
    }))
}

pub(super) fn open_dir(parent: BorrowedFd<'_>, name: &Name) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        parent,
        name.to_os(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Creates (or reuses) a directory. Anything else in the way, a planted symlink included, is
/// unlinked, never followed. The directory stays writable for us until `finish_dirs`.
pub(super) fn make_dir(parent: BorrowedFd<'_>, name: &Name) -> io::Result<OwnedFd> {
    let os = name.to_os();
    match rustix::fs::mkdirat(parent, os, Mode::RWXU) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let fd = match open_dir(parent, name) {
        Ok(fd) => fd,
        Err(e) if matches!(Errno::from_io_error(&e), Some(Errno::LOOP | Errno::NOTDIR)) => {
            rustix::fs::unlinkat(parent, os, AtFlags::empty())?;
            rustix::fs::mkdirat(parent, os, Mode::RWXU)?;
            open_dir(parent, name)?
        }
        Err(e) => return Err(e),
    };
    let st = rustix::fs::fstat(&fd)?;
    if st.st_mode & 0o700 != 0o700 {
        let _ = rustix::fs::fchmod(&fd, Mode::from_raw_mode(st.st_mode | 0o700));
    }
    Ok(fd)
}

/// Creates an empty regular file, readable and writable only by us until its metadata is set.
pub(super) fn create_file(dir: BorrowedFd<'_>, name: &Name) -> io::Result<File> {
    let mut fd = None;
    replacing(dir, name, || {
        fd = Some(rustix::fs::openat(
            dir,
            name.to_os(),
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::RUSR | Mode::WUSR,
        )?);
        Ok(())
    })?;
    Ok(File::from(fd.expect("created")))
}

/// Creates an empty regular file at `name` like [`create_file`]; when the name is taken,
/// creates it under a temporary name in the same directory instead (answered beside the
/// file), for [`put_in_place`] to rename over `name` once the file is complete, or
/// [`remove_temporary`] to remove if it is not.
pub(super) fn create_file_beside(
    dir: BorrowedFd<'_>,
    name: &Name,
) -> io::Result<(File, Option<Name>)> {
    let create = |at: &OsStr| {
        rustix::fs::openat(
            dir,
            at,
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::RUSR | Mode::WUSR,
        )
    };
    match create(name.to_os()) {
        Ok(fd) => return Ok((File::from(fd), None)),
        Err(Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    // Short and fixed in length, so that it fits wherever the name it stands in for does.
    loop {
        let temporary =
            Name(format!(".loop-restore-{}", &crate::Id::random().to_hex()[..16]).into_bytes());
        match create(temporary.to_os()) {
            Ok(fd) => return Ok((File::from(fd), Some(temporary))),
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Renames the complete file `temporary` over `name` (whatever non-directory is there).
pub(super) fn put_in_place(dir: BorrowedFd<'_>, temporary: &Name, name: &Name) -> io::Result<()> {
    Ok(rustix::fs::renameat(
        dir,
        temporary.to_os(),
        dir,
        name.to_os(),
    )?)
}

pub(super) fn remove_temporary(dir: BorrowedFd<'_>, temporary: &Name) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(
        dir,
        temporary.to_os(),
        AtFlags::empty(),
    )?)
}

pub(super) fn make_symlink(dir: BorrowedFd<'_>, name: &Name, target: &OsStr) -> io::Result<()> {
    replacing(dir, name, || {
        rustix::fs::symlinkat(target, dir, name.to_os())
    })
}

/// A FIFO or a device node.
pub(super) fn make_node(
    dir: BorrowedFd<'_>,
    name: &Name,
    kind: FileType,
    mode: Mode,
    rdev: u64,
) -> io::Result<()> {
    replacing(dir, name, || {
        rustix::fs::mknodat(dir, name.to_os(), kind, mode, rdev)
    })
}

/// Links `old_dir`/`old_name` as `dir`/`name`; a symlink at the old name is linked itself
/// (no `AT_SYMLINK_FOLLOW`).
pub(super) fn hard_link(
    old_dir: BorrowedFd<'_>,
    old_name: &Name,
    dir: BorrowedFd<'_>,
    name: &Name,
) -> io::Result<()> {
    replacing(dir, name, || {
        rustix::fs::linkat(
            old_dir,
            old_name.to_os(),
            dir,
            name.to_os(),
            AtFlags::empty(),
        )
    })
}

/// Runs `create`; when the name is taken, unlinks what is there (not a directory: unlinkat
/// refuses those) and tries once more.
fn replacing(
    dir: BorrowedFd<'_>,
    name: &Name,
    mut create: impl FnMut() -> rustix::io::Result<()>,
) -> io::Result<()> {
    match create() {
        Err(Errno::EXIST) => {
            rustix::fs::unlinkat(dir, name.to_os(), AtFlags::empty())?;
            Ok(create()?)
        }
        r => Ok(r?),
    }
}

/// A symlink, FIFO or device node just made, held by an `O_PATH | O_NOFOLLOW` descriptor of
/// the entry itself. Its owner, mode, xattrs and times are set through that descriptor, so
/// they land on the entry we made even when someone who writes the directory renames another
/// file (a hard link to one outside the target, say) over its name meanwhile.
pub(super) struct Made<'a> {
    dir: BorrowedFd<'a>,
    name: &'a OsStr,
    fd: OwnedFd,
    symlink: bool,
}

/// Opens what [`make_symlink`] or [`make_node`] just made at `name`. Something of another
/// type there, or a file with other names (a hard link put in its place), is not ours: an
/// error, and nothing is set on it.
pub(super) fn open_made<'a>(
    dir: BorrowedFd<'a>,
    name: &'a Name,
    kind: FileType,
) -> io::Result<Made<'a>> {
    let fd = rustix::fs::openat(
        dir,
        name.to_os(),
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != kind || st.st_nlink != 1 {
        return Err(io::Error::other(
            "replaced by another file while it was restored",
        ));
    }
    Ok(Made {
        dir,
        name: name.to_os(),
        fd,
        symlink: kind == FileType::Symlink,
    })
}

impl Made<'_> {
    pub(super) fn is_symlink(&self) -> bool {
        self.symlink
    }

    /// The entry's inode through `/proc`: the magic link leads to the inode the descriptor
    /// holds, whatever its name now is. Not for a symlink, which it would follow.
    fn proc_path(&self) -> String {
        debug_assert!(!self.symlink);
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }

    /// `AT_EMPTY_PATH` acts on the descriptor's entry itself, a symlink included.
    pub(super) fn chown(&self, uid: Uid, gid: Gid) -> rustix::io::Result<()> {
        rustix::fs::chownat(&self.fd, "", Some(uid), Some(gid), AtFlags::EMPTY_PATH)
    }

    /// Linux has no mode for a symlink: one is left as it is.
    pub(super) fn chmod(&self, mode: Mode) -> rustix::io::Result<()> {
        if self.symlink {
            return Ok(());
        }
        rustix::fs::chmodat(
            rustix::fs::CWD,
            self.proc_path().as_str(),
            mode,
            AtFlags::empty(),
        )
    }

    /// Whether only we (or root) can add, remove or rename names in the entry's directory:
    /// it is ours and not writable by group or others. Directories a restore creates are,
    /// until they are finished.
    pub(super) fn only_we_rename(&self) -> bool {
        rustix::fs::fstat(self.dir).is_ok_and(|st| {
            st.st_uid == rustix::process::geteuid().as_raw() && st.st_mode & 0o022 == 0
        })
    }

    /// A symlink's xattrs can only be set by name (`lsetxattr`); callers check first that
    /// nobody else can rename names in its directory ([`Made::only_we_rename`]).
    pub(super) fn set_xattr(&self, x: &Xattr) -> rustix::io::Result<()> {
        if self.symlink {
            let mut at = PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_raw_fd()));
            at.push(self.name);
            return rustix::fs::lsetxattr(&at, x.name.to_os(), &x.value, XattrFlags::empty());
        }
        rustix::fs::setxattr(
            self.proc_path().as_str(),
            x.name.to_os(),
            &x.value,
            XattrFlags::empty(),
        )
    }

    /// A symlink's times are set by name without following it: were the name taken
    /// meanwhile, only that file's times would change.
    pub(super) fn set_times(&self, times: &Timestamps) -> rustix::io::Result<()> {
        if self.symlink {
            return rustix::fs::utimensat(self.dir, self.name, times, AtFlags::SYMLINK_NOFOLLOW);
        }
        rustix::fs::utimensat(
            rustix::fs::CWD,
            self.proc_path().as_str(),
            times,
            AtFlags::empty(),
        )
    }
}
