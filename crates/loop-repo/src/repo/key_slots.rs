//! Key slots of an opened repository: the passphrases that unlock its master key.

use chrono::Local;

use super::{KeyInfo, MAX_KEY_SLOT, Repository};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::keys::{KdfParams, KeySlot, Secret, SlotMeta};
use crate::storage::{FileKind, Storage};

impl Repository {
    /// Every key slot, read and parsed (still locked).
    fn key_slots(&self) -> Result<Vec<(Id, KeySlot)>> {
        let mut out = Vec::new();
        for info in self.storage.list(FileKind::Key)? {
            let object = FileKind::Key.path(&info.name);
            let slot = KeySlot::parse(
                &object,
                self.storage.get(FileKind::Key, &info.name, MAX_KEY_SLOT)?,
            )?;
            out.push((Id::parse(&info.name)?, slot));
        }
        Ok(out)
    }

    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut out = Vec::new();
        for (id, slot) in self.key_slots()? {
            out.push(KeyInfo {
                id,
                current: id == self.key_id,
                kind: if slot.is_passphrase() {
                    "passphrase"
                } else {
                    "raw-key"
                },
                meta: slot.meta,
            });
        }
        out.sort_by(|a, b| a.meta.created.cmp(&b.meta.created));
        Ok(out)
    }

    /// The key slots `secret` opens. Each slot is read; a raw key costs no key derivation,
    /// and a slot of the other kind is skipped without one.
    pub fn key_slots_opened_by(&self, secret: Secret<'_>) -> Result<Vec<Id>> {
        let mut out = Vec::new();
        for (id, slot) in self.key_slots()? {
            if slot.open(&secret)?.is_some() {
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
