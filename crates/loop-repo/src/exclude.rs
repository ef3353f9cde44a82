//! Path patterns (`--exclude`, and restore's `--include`/`--exclude`).

use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};

/// Compiled `--exclude` patterns. A pattern without `/` matches a name at any depth; one with
/// `/` matches the absolute path (a leading `/` anchors it at the root); `**` crosses
/// directories. An excluded directory is skipped with everything below it.
pub(crate) struct Excluder {
    set: GlobSet,
}

impl Excluder {
    pub(crate) fn new(patterns: &[String]) -> Result<Excluder> {
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            let p = p.trim();
            if p.is_empty() || p.starts_with('#') {
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
        })
    }

    pub(crate) fn is_excluded(&self, path: &Path) -> bool {
        !self.set.is_empty() && self.set.is_match(path)
    }
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
}
