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

/// The server master key.
pub struct MasterKey(Key);

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
        if let Some(v) = env_value {
            return parse_hex_key(v).map(MasterKey);
        }
        let err = |e| KeyError::File(file.display().to_string(), e);
        match std::fs::read_to_string(file) {
            Ok(mut text) => {
                let k = parse_hex_key(&text);
                text.zeroize();
                k.map(MasterKey)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Key::generate();
                let mut text = hex::encode(key.expose());
                text.push('\n');
                let r = crate::fsutil::write_private(file, text.as_bytes());
                text.zeroize();
                r.map_err(err)?;
                Ok(MasterKey(key))
            }
            Err(e) => Err(err(e)),
        }
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
        hex::encode(wrap_key(&self.0, context.as_bytes(), key))
    }

    pub fn unwrap(&self, context: &str, wrapped: &str) -> Result<Key, KeyError> {
        let bytes = hex::decode(wrapped).map_err(|_| KeyError::WrongMaster(context.into()))?;
        unwrap_key(&self.0, context.as_bytes(), &bytes)
            .ok_or_else(|| KeyError::WrongMaster(context.into()))
    }
}

/// The KEK that opens a managed vault's key slot.
pub fn vault_kek(tenant_key: &Key, vault_id: &str) -> Key {
    let mut h = blake3::Hasher::new_derive_key(VAULT_KEK_CONTEXT);
    h.update(tenant_key.expose());
    h.update(vault_id.as_bytes());
    Key::from_bytes(*h.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

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
