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
