//! Path patterns (`--exclude`, and restore's `--include`/`--exclude`).

use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};

/// Compiled `--exclude` patterns. A pattern without `/` matches a name at any depth; one with
/// `/` matches the absolute path (a leading `/` anchors it at the root); `**` crosses
/// directories. An excluded directory is skipped with everything below it.
pub(crate) struct Excluder {
    set: GlobSet,
    /// `--exclude-caches`: a directory tagged as a cache keeps only its tag file.
    caches: bool,
}

/// The name of the file that marks a directory as a cache (the Cache Directory Tagging
/// Specification, which tar, restic and borg follow too).
pub(crate) const CACHEDIR_TAG: &str = "CACHEDIR.TAG";

/// What a cache tag starts with; a file of that name without it is an ordinary file.
pub(crate) const CACHEDIR_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";

impl Excluder {
    pub(crate) fn new(patterns: &[String]) -> Result<Excluder> {
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            let p = p.trim();
            // `#` starts a comment only in an exclude file (its reader drops those lines): a
            // pattern given here is a pattern, like `#*#` for editors' autosave files.
            if p.is_empty() {
                continue;
            }
            let pat = if p.starts_with('/') {
                p.to_string()
            } else {
                format!("**/{}", p.trim_end_matches('/'))
            };
            let glob = GlobBuilder::new(pat.trim_end_matches('/'))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| Error::Invalid(format!("exclude pattern {p:?}: {e}")))?;
            b.add(glob);
        }
        Ok(Excluder {
            set: b.build().map_err(|e| Error::Invalid(e.to_string()))?,
            caches: false,
        })
    }

    /// Also skips the contents of directories tagged as caches, but for the tag itself.
    pub(crate) fn with_caches(mut self, caches: bool) -> Excluder {
        self.caches = caches;
        self
    }

    pub(crate) fn is_excluded(&self, path: &Path) -> bool {
        !self.set.is_empty() && self.set.is_match(path)
    }

    /// Whether the directory `dir` is a cache whose contents are skipped, all but its tag.
    pub(crate) fn skips_cache(&self, dir: &Path) -> bool {
        self.caches && is_tagged_cache(dir)
    }
}

/// Whether `dir` holds a cache tag: a regular file named [`CACHEDIR_TAG`] that starts with
/// the signature. The tag is opened without following a link or waiting on a FIFO, and only
/// the signature's bytes are read.
fn is_tagged_cache(dir: &Path) -> bool {
    use rustix::fs::{FileType, Mode, OFlags};
    use std::io::Read as _;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::open(dir.join(CACHEDIR_TAG), flags, Mode::empty()) else {
        return false;
    };
    let regular = rustix::fs::fstat(&fd)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile);
    let mut head = [0u8; CACHEDIR_SIGNATURE.len()];
    regular && std::fs::File::from(fd).read_exact(&mut head).is_ok() && head == CACHEDIR_SIGNATURE
}

/// A pattern that matches the path `path` itself and nothing else: every character patterns
/// read specially is escaped, and whitespace at the end (which patterns trim) is written as a
/// class of its own. For a place chosen by name, such as a folder picked to restore.
pub fn literal_pattern(path: &str) -> String {
    let kept = path.trim_end();
    let mut out = String::with_capacity(path.len() + 8);
    for c in kept.chars() {
        if matches!(c, '\\' | '*' | '?' | '[' | ']' | '{' | '}') {
            out.push('\\');
        }
        out.push(c);
    }
    for c in path[kept.len()..].chars() {
        out.push('[');
        out.push(c);
        out.push(']');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers, and each pattern matches its own path and not one its characters would
    /// match as a pattern.
    #[test]
    fn a_literal_pattern_matches_its_path_only() {
        for (path, pattern, not) in [
            ("/data/[x]", "/data/\\[x\\]", "/data/x"),
            ("/a/*", "/a/\\*", "/a/b"),
            ("/a/{b,c}", "/a/\\{b,c\\}", "/a/b"),
            ("/a/b?", "/a/b\\?", "/a/bc"),
            ("/a/back\\slash", "/a/back\\\\slash", "/a/backslash"),
            ("/a/b ", "/a/b[ ]", "/a/b"),
        ] {
            assert_eq!(literal_pattern(path), pattern);
            let set = Excluder::new(&[literal_pattern(path)]).unwrap();
            assert!(set.is_excluded(Path::new(path)), "{path}");
            assert!(!set.is_excluded(Path::new(not)), "{path} matched {not}");
        }
    }

    /// A pattern that starts with `#` is a pattern (editors' autosave files), whether it
    /// excludes in a backup or selects in a restore.
    #[test]
    fn a_pattern_starting_with_a_hash_matches() {
        let set = Excluder::new(&["#*#".to_string(), "/srv/#notes".to_string()]).unwrap();
        assert!(set.is_excluded(Path::new("/home/u/#draft.txt#")));
        assert!(set.is_excluded(Path::new("/srv/#notes")));
        assert!(!set.is_excluded(Path::new("/home/u/draft.txt")));
    }
}
