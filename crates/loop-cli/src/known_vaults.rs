//! The server vaults this client has opened with a passphrase, one vault ID per line.
//!
//! A vault's key custody is chosen when it is made and never changes. A server that offers
//! the key of a vault this client knows as a customer-key vault is therefore not the server
//! the vault was opened on, or it lies; taking its key would encrypt the next backup under a
//! key that server holds, so such a vault is refused (trust on first use, as SSH's
//! `known_hosts`).

use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub struct KnownVaults {
    /// The file, or none where this client has no place for it (no home directory).
    path: Option<PathBuf>,
}

impl KnownVaults {
    pub fn at(path: Option<PathBuf>) -> KnownVaults {
        KnownVaults { path }
    }

    /// Refuses a key the server offers for `vault_id` when this client has opened that
    /// vault with a passphrase before.
    pub fn check_offered_key(&self, vault_id: &str) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if read(path)?.iter().any(|v| v == vault_id) {
            bail!(
                "the server offers its own key for vault {vault_id}, which this client has \
                 opened with a passphrase before ({}): a vault's key custody never changes, \
                 so this server is not the vault's or it lies; nothing was opened or written",
                path.display()
            );
        }
        Ok(())
    }

    /// Records that `vault_id` opened with a passphrase. A record that cannot be written
    /// is a warning, not a failed command.
    pub fn remember(&self, vault_id: &str) {
        let Some(path) = &self.path else {
            return;
        };
        let known = match read(path) {
            Ok(known) => known,
            Err(e) => return eprintln!("warning: {e:#}"),
        };
        if known.iter().any(|v| v == vault_id) {
            return;
        }
        if let Err(e) = append(path, vault_id) {
            eprintln!(
                "warning: recording vault {vault_id} in {}: {e}",
                path.display()
            );
        }
    }
}

/// The vault IDs in `path` (none when it does not exist yet).
fn read(path: &Path) -> Result<Vec<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

/// Adds a line, in a file and directory only this user reads.
fn append(path: &Path, vault_id: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    // One write of the whole line, so lines of clients appending at once never interleave.
    f.write_all(format!("{vault_id}\n").as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vault_opened_with_a_passphrase_is_refused_a_key_later_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownVaults::at(Some(dir.path().join("loop/known-vaults")));
        known.check_offered_key("vlt_a").unwrap();
        known.remember("vlt_a");
        known.remember("vlt_a");
        known.remember("vlt_b");
        let text = std::fs::read_to_string(dir.path().join("loop/known-vaults")).unwrap();
        assert_eq!(text, "vlt_a\nvlt_b\n");
        let e = known.check_offered_key("vlt_a").unwrap_err().to_string();
        assert!(e.contains("offers its own key for vault vlt_a"), "{e}");
        assert!(known.check_offered_key("vlt_b").is_err());
        known.check_offered_key("vlt_c").unwrap();
        known.check_offered_key("vlt_").unwrap();
        // No place for the file: nothing is refused or recorded.
        let nowhere = KnownVaults::at(None);
        nowhere.remember("vlt_a");
        nowhere.check_offered_key("vlt_a").unwrap();
    }
}
