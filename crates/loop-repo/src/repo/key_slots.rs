//! Key slots of an opened repository: the passphrases that unlock its master key.

use chrono::Local;

use super::{KeyInfo, MAX_KEY_SLOT, Repository};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::keys::{KdfParams, KeySlot, Secret, SlotMeta};
use crate::storage::{FileKind, Storage};

impl Repository {
    /// Every key slot, read and parsed (still locked); a slot that cannot be read or is not
    /// a valid slot (damaged, or planted by someone who can write the storage) comes with
    /// why, so it is listed and can be removed without stopping the others' use.
    fn key_slots(&self) -> Result<Vec<(Id, Result<KeySlot>)>> {
        let mut out = Vec::new();
        for info in self.storage.list(FileKind::Key)? {
            let Ok(id) = Id::parse(&info.name) else {
                continue;
            };
            let object = FileKind::Key.path(&info.name);
            let slot = self
                .storage
                .get(FileKind::Key, &info.name, MAX_KEY_SLOT)
                .and_then(|bytes| KeySlot::parse(&object, bytes));
            out.push((id, slot));
        }
        Ok(out)
    }

    /// The key slots, oldest first; one that cannot be used is of kind `unusable`, with why.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut out = Vec::new();
        for (id, slot) in self.key_slots()? {
            out.push(match slot {
                Ok(slot) => KeyInfo {
                    id,
                    current: id == self.key_id,
                    kind: if slot.is_passphrase() {
                        "passphrase"
                    } else {
                        "raw-key"
                    },
                    meta: slot.meta,
                    problem: None,
                },
                Err(e) => KeyInfo {
                    id,
                    current: false,
                    kind: "unusable",
                    meta: SlotMeta::default(),
                    problem: Some(e.to_string()),
                },
            });
        }
        out.sort_by(|a, b| a.meta.created.cmp(&b.meta.created));
        Ok(out)
    }

    /// The key slots `secret` opens. Each usable slot is read; a raw key costs no key
    /// derivation, and a slot of the other kind is skipped without one.
    pub fn key_slots_opened_by(&self, secret: Secret<'_>) -> Result<Vec<Id>> {
        let mut out = Vec::new();
        for (id, slot) in self.key_slots()? {
            if let Ok(slot) = slot
                && slot.open(&secret)?.is_some()
            {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Adds a key slot for another passphrase or raw key. Data is not re-encrypted.
    pub fn add_key(&self, secret: Secret<'_>, kdf: KdfParams, meta: &SlotMeta) -> Result<Id> {
        let slot = KeySlot::create(&self.master, secret, kdf, meta)?;
        let id = Id::random();
        self.storage.put(FileKind::Key, &id.to_hex(), slot)?;
        Ok(id)
    }

    /// Removes a key slot. Refuses the slot this session opened with, so nobody locks
    /// themselves out by accident; removing the last slot needs [`Repository::destroy_keys`].
    pub fn remove_key(&self, id: &Id) -> Result<()> {
        if *id == self.key_id {
            return Err(Error::Invalid(
                "refusing to remove the key slot in use; open with another key to remove it".into(),
            ));
        }
        let name = id.to_hex();
        self.storage.size(FileKind::Key, &name).map_err(|e| {
            if e.is_not_found() {
                Error::NotFound(format!("key {}", id.short()))
            } else {
                e
            }
        })?;
        self.storage.delete(FileKind::Key, &name)
    }

    /// Replaces the current slot's passphrase: adds a new slot, then removes the old one.
    pub fn change_passphrase(&mut self, new: &[u8], kdf: KdfParams, meta: &SlotMeta) -> Result<Id> {
        let new_id = self.add_key(Secret::Passphrase(new), kdf, meta)?;
        let old = self.key_id;
        self.key_id = new_id;
        self.storage.delete(FileKind::Key, &old.to_hex())?;
        Ok(new_id)
    }

    /// Deletes every key slot: the repository becomes unreadable for good (crypto-shredding).
    pub fn destroy_keys(storage: &dyn Storage) -> Result<usize> {
        let slots = storage.list(FileKind::Key)?;
        for s in &slots {
            storage.delete(FileKind::Key, &s.name)?;
        }
        Ok(slots.len())
    }

    pub fn key_id(&self) -> Id {
        self.key_id
    }

    /// Host and user metadata for a new key slot.
    pub fn default_slot_meta(host: &str, user: &str) -> SlotMeta {
        SlotMeta {
            created: Local::now().to_rfc3339(),
            host: host.to_string(),
            user: user.to_string(),
            label: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::keys::MAX_KDF;
    use crate::storage::ObjectInfo;
    use crate::testutil::local_repo;

    /// Storage whose listing of key slots puts the names in `first` before the others, and
    /// whose reads of the names in `unreadable` fail.
    struct Planted {
        inner: Arc<dyn Storage>,
        first: Vec<String>,
        unreadable: Vec<String>,
    }

    impl Storage for Planted {
        fn location(&self) -> String {
            self.inner.location()
        }
        fn put(&self, kind: FileKind, name: &str, data: Vec<u8>) -> Result<()> {
            self.inner.put(kind, name, data)
        }
        fn get(&self, kind: FileKind, name: &str, max: u64) -> Result<Vec<u8>> {
            if kind == FileKind::Key && self.unreadable.iter().any(|n| n == name) {
                let e = std::io::Error::other("connection reset");
                return Err(Error::io(kind.path(name), e));
            }
            self.inner.get(kind, name, max)
        }
        fn get_range(&self, kind: FileKind, name: &str, at: u64, len: u64) -> Result<Vec<u8>> {
            self.inner.get_range(kind, name, at, len)
        }
        fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
            let mut all = self.inner.list(kind)?;
            all.sort_by_key(|o| !self.first.contains(&o.name));
            Ok(all)
        }
        fn delete(&self, kind: FileKind, name: &str) -> Result<()> {
            self.inner.delete(kind, name)
        }
        fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
            self.inner.size(kind, name)
        }
    }

    /// Someone who can write the storage but holds no key plants slots that are listed
    /// first: one that asks for a 4 GiB, 64-pass Argon2id (the most slots could ask for
    /// before), one just over today's bounds, and one whose reads fail. The right
    /// passphrase still opens the repository, without running any planted derivation; a
    /// wrong one is told that a slot could not be read, which may have been the right one.
    #[test]
    fn planted_slots_cannot_stop_or_slow_an_open() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = local_repo(tmp.path());
        let other = crate::crypto::Key::generate();
        let cheap = KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        };
        let slot = KeySlot::create(
            &other,
            Secret::Passphrase(b"x"),
            cheap,
            &SlotMeta::default(),
        )
        .unwrap();
        let costly = |m_kib: u32, t: u32| {
            let mut b = slot.clone();
            b[9..13].copy_from_slice(&m_kib.to_le_bytes());
            b[13..17].copy_from_slice(&t.to_le_bytes());
            b
        };
        let mut first = Vec::new();
        for bytes in [
            costly(4 * 1024 * 1024, 64),
            costly(MAX_KDF.m_kib + 1, MAX_KDF.t),
            slot.clone(),
        ] {
            let name = Id::random().to_hex();
            assert_eq!(
                KeySlot::parse(&name, bytes.clone()).is_ok(),
                bytes == slot,
                "only the cheap slot parses"
            );
            repo.storage().put(FileKind::Key, &name, bytes).unwrap();
            first.push(name);
        }
        let unreadable = vec![first[2].clone()];
        let storage: Arc<dyn Storage> = Arc::new(Planted {
            inner: repo.storage().clone(),
            first,
            unreadable: unreadable.clone(),
        });

        let opened = Repository::open(storage.clone(), Secret::Passphrase(b"pw")).unwrap();
        assert_eq!(opened.key_id(), repo.key_id());
        assert_eq!(opened.config().id, repo.config().id);
        // Listed, each planted one as unusable with why (so it can be removed); the slots a
        // key opens are found past them.
        let listed = opened.list_keys().unwrap();
        let kinds: Vec<(&str, bool)> = listed
            .iter()
            .map(|k| (k.kind, k.problem.is_some()))
            .collect();
        assert_eq!(kinds.len(), 4, "{listed:?}");
        assert_eq!(
            kinds.iter().filter(|k| **k == ("unusable", true)).count(),
            3
        );
        assert!(listed.iter().any(|k| k.current && k.kind == "passphrase"));
        assert_eq!(
            opened
                .key_slots_opened_by(Secret::Passphrase(b"pw"))
                .unwrap(),
            vec![repo.key_id()]
        );

        let err = Repository::open(storage, Secret::Passphrase(b"wrong"))
            .err()
            .expect("a wrong passphrase opens nothing")
            .to_string();
        assert!(
            err.contains(&unreadable[0]) && err.contains("connection reset"),
            "{err}"
        );
    }
}
