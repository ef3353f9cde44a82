//! Key custody for managed vaults.
//!
//! ```text
//! server master key  (key file or LOOP_MASTER_KEY; never in the database)
//!   └─ wraps each tenant key        (tenant_keys.wrapped = wrap_key(master, tenant_id, key))
//!        └─ derives each vault's KEK = BLAKE3-derive_key(CONTEXT, tenant_key || vault_id)
//!             └─ opens the vault's raw-key slot, which wraps the vault master key
//! ```
//!
//! Deleting a tenant's `tenant_keys` row therefore makes every managed vault of the tenant
//! unreadable (crypto-shredding), even though the vault objects are still on storage.
//!
//! Rotation never re-encrypts vault data. A new master key is configured with the old one
//! among `previous_master_key_files`: values still wrapped under an old key open (read
//! only), new values are wrapped under the new key, and `loop server rewrap-keys` (the
//! `rewrap` module) rewraps the rest. A tenant key is rotated by a job
//! (`tenant-key-rotation`) that gives each managed vault a key slot for the new key before
//! the old one's slots are removed.

use std::path::Path;

use loop_repo::crypto::{Key, unwrap_key, wrap_key};
use zeroize::Zeroize as _;

/// Frozen: derives a managed vault's key-encryption key from its tenant key.
const VAULT_KEK_CONTEXT: &str = "loop-backup 2026-11-30 managed vault kek v1";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("master key file {0}: {1}")]
    File(String, std::io::Error),
    #[error("the master key must be 64 hex digits")]
    Malformed,
    #[error("the key wrapped for {0} does not open with this master key")]
    WrongMaster(String),
}

/// The server master key, and the previous master keys that still open what they wrapped.
pub struct MasterKey {
    current: Key,
    previous: Vec<Key>,
}

/// Which master key opened a wrapped value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenedBy {
    Current,
    Previous,
}

fn parse_hex_key(text: &str) -> Result<Key, KeyError> {
    let mut bytes = [0u8; 32];
    let r = hex::decode_to_slice(text.trim(), &mut bytes);
    let key = Key::from_bytes(bytes);
    bytes.zeroize();
    r.map_err(|_| KeyError::Malformed)?;
    Ok(key)
}

impl MasterKey {
    /// From the environment value when given, else from `file`, which is created (mode
    /// 0600) with a fresh key when it does not exist.
    pub fn load(env_value: Option<&str>, file: &Path) -> Result<MasterKey, KeyError> {
        let current = |current| MasterKey {
            current,
            previous: Vec::new(),
        };
        if let Some(v) = env_value {
            return parse_hex_key(v).map(current);
        }
        let err = |e| KeyError::File(file.display().to_string(), e);
        match std::fs::read_to_string(file) {
            Ok(mut text) => {
                let k = parse_hex_key(&text);
                text.zeroize();
                k.map(current)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Key::generate();
                let mut text = hex::encode(key.expose());
                text.push('\n');
                let r = crate::fsutil::write_private(file, text.as_bytes());
                text.zeroize();
                r.map_err(err)?;
                Ok(current(key))
            }
            Err(e) => Err(err(e)),
        }
    }

    /// Adds previous master keys: hex values (comma-separated, from the environment) and
    /// files, which must exist. They only open; nothing new is wrapped under them.
    pub fn with_previous(
        mut self,
        env_values: Option<&str>,
        files: &[std::path::PathBuf],
    ) -> Result<MasterKey, KeyError> {
        for v in env_values.unwrap_or_default().split(',') {
            if !v.trim().is_empty() {
                self.previous.push(parse_hex_key(v)?);
            }
        }
        for file in files {
            let mut text = std::fs::read_to_string(file)
                .map_err(|e| KeyError::File(file.display().to_string(), e))?;
            let k = parse_hex_key(&text);
            text.zeroize();
            self.previous.push(k?);
        }
        Ok(self)
    }

    pub fn previous_count(&self) -> usize {
        self.previous.len()
    }

    /// The master key of `config`, with the previous ones of a rotation.
    pub fn from_config(config: &crate::config::Config) -> Result<MasterKey, KeyError> {
        MasterKey::load(
            config.master_key.as_ref().map(|k| k.expose()),
            &config.master_key_file(),
        )?
        .with_previous(
            config.previous_master_keys.as_ref().map(|k| k.expose()),
            &config.previous_master_key_files,
        )
    }

    /// A fresh tenant key, and its wrapped form for the database.
    pub fn new_tenant_key(&self, tenant_id: &str) -> (Key, String) {
        let key = Key::generate();
        let wrapped = self.wrap(tenant_id, &key);
        (key, wrapped)
    }

    pub fn open_tenant_key(&self, tenant_id: &str, wrapped: &str) -> Result<Key, KeyError> {
        self.unwrap(tenant_id, wrapped)
    }

    /// `key` wrapped under the master key for the database (hex), bound to `context`: the
    /// row it belongs to, so a wrapped value copied to another row does not open.
    pub fn wrap(&self, context: &str, key: &Key) -> String {
        hex::encode(wrap_key(&self.current, context.as_bytes(), key))
    }

    pub fn unwrap(&self, context: &str, wrapped: &str) -> Result<Key, KeyError> {
        self.open(context, wrapped).map(|(k, _)| k)
    }

    /// Opens `wrapped` with the current master key, else with a previous one.
    pub fn open(&self, context: &str, wrapped: &str) -> Result<(Key, OpenedBy), KeyError> {
        let bytes = hex::decode(wrapped).map_err(|_| KeyError::WrongMaster(context.into()))?;
        let open = |k: &Key| unwrap_key(k, context.as_bytes(), &bytes);
        if let Some(k) = open(&self.current) {
            return Ok((k, OpenedBy::Current));
        }
        self.previous
            .iter()
            .find_map(open)
            .map(|k| (k, OpenedBy::Previous))
            .ok_or_else(|| KeyError::WrongMaster(context.into()))
    }

    /// `wrapped` wrapped anew under the current master key when a previous one opened it;
    /// `None` when the current one already does.
    pub fn rewrap(&self, context: &str, wrapped: &str) -> Result<Option<String>, KeyError> {
        Ok(match self.open(context, wrapped)? {
            (_, OpenedBy::Current) => None,
            (key, OpenedBy::Previous) => Some(self.wrap(context, &key)),
        })
    }
}

/// The wrapping context of a user's TOTP secret.
pub fn totp_context(user_id: &str) -> String {
    format!("totp:{user_id}")
}

/// The wrapping context of a webhook target's signing secret.
pub fn webhook_secret_context(target_id: &str) -> String {
    format!("loop-backup webhook secret {target_id}")
}

/// The wrapping context of a remote's replication token.
pub fn remote_token_context(remote_id: &str) -> String {
    format!("loop-backup remote token {remote_id}")
}

/// The KEK that opens a managed vault's key slot.
pub fn vault_kek(tenant_key: &Key, vault_id: &str) -> Key {
    use zeroize::Zeroize as _;
    let mut h = blake3::Hasher::new_derive_key(VAULT_KEK_CONTEXT);
    h.update(tenant_key.expose());
    h.update(vault_id.as_bytes());
    let mut kek = h.finalize();
    // The hasher's state holds the tenant key's bytes, and the result is the key itself.
    h.zeroize();
    let key = Key::from_bytes(*kek.as_bytes());
    kek.zeroize();
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_master_key_prints_nothing() {
        loop_testkit::assert_no_debug!(MasterKey);
    }

    #[test]
    fn master_key_file_is_created_private_and_reloads_the_same_key() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master.key");
        let a = MasterKey::load(None, &file).unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (tk, wrapped) = a.new_tenant_key("tn_1");
        let b = MasterKey::load(None, &file).unwrap();
        assert_eq!(
            b.open_tenant_key("tn_1", &wrapped).unwrap().expose(),
            tk.expose()
        );
        assert!(b.open_tenant_key("tn_2", &wrapped).is_err());
        let other = MasterKey::load(Some(&"11".repeat(32)), &file).unwrap();
        assert!(other.open_tenant_key("tn_1", &wrapped).is_err());
        assert!(MasterKey::load(Some("xyz"), &file).is_err());
    }

    #[test]
    fn previous_master_keys_open_old_values_and_rewrap_them_under_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let old_file = dir.path().join("old.key");
        let old = MasterKey::load(None, &old_file).unwrap();
        let (tk, wrapped) = old.new_tenant_key("tn_1");
        let (other, other_wrapped) = old.new_tenant_key("tn_2");
        let new_hex = "22".repeat(32);
        let bare = MasterKey::load(Some(&new_hex), &dir.path().join("unused")).unwrap();
        assert!(bare.open_tenant_key("tn_1", &wrapped).is_err());
        let new = MasterKey::load(Some(&new_hex), &dir.path().join("unused"))
            .unwrap()
            .with_previous(None, std::slice::from_ref(&old_file))
            .unwrap();
        let (k, by) = new.open("tn_1", &wrapped).unwrap();
        assert_eq!((k.expose(), by), (tk.expose(), OpenedBy::Previous));
        let rewrapped = new.rewrap("tn_1", &wrapped).unwrap().unwrap();
        assert_ne!(rewrapped, wrapped);
        // The rewrapped value opens under the new key alone, and needs no second rewrap.
        assert_eq!(
            bare.open_tenant_key("tn_1", &rewrapped).unwrap().expose(),
            tk.expose()
        );
        assert_eq!(new.rewrap("tn_1", &rewrapped).unwrap(), None);
        // Still bound to its row.
        assert!(new.rewrap("tn_2", &wrapped).is_err());
        // Previous keys from the environment, comma-separated.
        let old_hex = std::fs::read_to_string(&old_file).unwrap();
        let from_env = MasterKey::load(Some(&new_hex), &dir.path().join("unused"))
            .unwrap()
            .with_previous(
                Some(&format!("{}, {}", "33".repeat(32), old_hex.trim())),
                &[],
            )
            .unwrap();
        assert_eq!(from_env.previous_count(), 2);
        assert_eq!(
            from_env.unwrap("tn_2", &other_wrapped).unwrap().expose(),
            other.expose()
        );
        let missing = dir.path().join("missing.key");
        assert!(bare_with_missing(&new_hex, &missing).is_err());
        assert!(!missing.exists(), "a previous key file is never created");
    }

    fn bare_with_missing(hex: &str, file: &Path) -> Result<MasterKey, KeyError> {
        MasterKey::load(Some(hex), &file.with_extension("unused"))?
            .with_previous(None, &[file.to_path_buf()])
    }

    #[test]
    fn vault_keks_differ_per_vault_and_tenant() {
        let t1 = Key::generate();
        let t2 = Key::generate();
        assert_ne!(
            vault_kek(&t1, "vt_a").expose(),
            vault_kek(&t1, "vt_b").expose()
        );
        assert_ne!(
            vault_kek(&t1, "vt_a").expose(),
            vault_kek(&t2, "vt_a").expose()
        );
    }
}
