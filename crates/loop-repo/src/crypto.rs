//! Keys, subkeys and authenticated encryption (AES-256-GCM).
//!
//! Nonce scheme (argued in docs/FORMAT.md): every encrypted object or pack carries a fresh
//! random 256-bit salt, and its AES key is `BLAKE3-derive_key(CONTEXT, master || salt)`. Under
//! one such subkey, nonces come from a [`NonceSequence`], a counter that only moves forward
//! and is owned by the one writer of that object. A (key, nonce) pair therefore repeats only
//! if two salts collide, which for random 256-bit salts does not happen in practice.
//!
//! Key types zero their bytes on drop and implement no `Debug`, so a key cannot end up in a
//! log line by accident.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use rand::Rng as _;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};

/// Frozen: the BLAKE3 `derive_key` context for object subkeys. Changing it makes every
/// existing repository unreadable.
const SUBKEY_CONTEXT: &str = "loop-backup 2026-11-30 object subkey v1";
/// Frozen: the context that turns a raw 256-bit key (managed vaults) into a key-slot KEK.
const RAW_KEK_CONTEXT: &str = "loop-backup 2026-11-30 raw key slot kek v1";

/// AES-GCM's authentication tag, appended to every ciphertext.
pub const TAG_LEN: usize = 16;
/// The random salt of a sealed object or key slot, from which its subkey is derived.
pub const SALT_LEN: usize = 32;

/// 256 bits of secret key material.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key([u8; 32]);

impl Key {
    pub fn generate() -> Key {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        Key(k)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// The subkey for one salted object. See the module comment.
    pub(crate) fn subkey(&self, salt: &[u8; SALT_LEN]) -> Key {
        self.derive(SUBKEY_CONTEXT, salt)
    }

    /// The key-encryption key a raw-key slot uses, bound to the slot's salt.
    pub(crate) fn raw_kek(&self, salt: &[u8; SALT_LEN]) -> Key {
        self.derive(RAW_KEK_CONTEXT, salt)
    }

    /// BLAKE3's key derivation of this key and `salt` under `context`. The hasher holds the
    /// key in its buffer, and the output is the new key: both are zeroed here.
    fn derive(&self, context: &str, salt: &[u8; SALT_LEN]) -> Key {
        let mut h = blake3::Hasher::new_derive_key(context);
        h.update(&self.0);
        h.update(salt);
        let mut out = h.finalize();
        let key = Key(*out.as_bytes());
        out.zeroize();
        h.zeroize();
        key
    }

    pub(crate) fn cipher(&self) -> Cipher {
        Cipher(Aes256Gcm::new(&self.0.into()))
    }
}

/// A random salt.
pub fn random_salt() -> [u8; SALT_LEN] {
    let mut s = [0u8; SALT_LEN];
    rand::rng().fill_bytes(&mut s);
    s
}

/// One AES-256-GCM nonce. Only a [`NonceSequence`] makes new ones, so a writer cannot pick a
/// value twice; readers rebuild them from stored positions with [`NonceValue::at`].
#[derive(Clone, Copy)]
pub struct NonceValue([u8; 12]);

impl NonceValue {
    /// The nonce at a position. For reading only: writers take theirs from a sequence.
    pub(crate) fn at(n: u64) -> NonceValue {
        let mut b = [0u8; 12];
        b[4..].copy_from_slice(&n.to_be_bytes());
        NonceValue(b)
    }

    /// The reserved last nonce of a subkey, used once for a pack's trailer or a sealed object.
    pub(crate) const FINAL: u64 = u64::MAX;
}

/// Hands out nonces 1, 2, 3, ... for one subkey; never the reserved [`NonceValue::FINAL`].
pub struct NonceSequence {
    next: u64,
    finished: bool,
}

impl NonceSequence {
    pub fn new() -> Self {
        NonceSequence {
            next: 1,
            finished: false,
        }
    }

    pub fn next_nonce(&mut self) -> Result<NonceValue> {
        if self.finished || self.next == NonceValue::FINAL {
            return Err(Error::Invalid("nonce sequence exhausted".into()));
        }
        let n = NonceValue::at(self.next);
        self.next += 1;
        Ok(n)
    }

    /// The reserved final nonce; afterwards the sequence gives nothing more.
    pub fn final_nonce(&mut self) -> Result<NonceValue> {
        if self.finished {
            return Err(Error::Invalid("nonce sequence already finished".into()));
        }
        self.finished = true;
        Ok(NonceValue::at(NonceValue::FINAL))
    }
}

impl Default for NonceSequence {
    fn default() -> Self {
        Self::new()
    }
}

/// AES-256-GCM under one subkey. The underlying round keys are zeroed on drop.
pub struct Cipher(Aes256Gcm);

impl Cipher {
    /// Encrypts `buf` in place and appends the 16-byte tag.
    pub fn seal_in_place(&self, nonce: NonceValue, aad: &[u8], buf: &mut Vec<u8>) {
        let tag = self
            .0
            .encrypt_inout_detached(&Nonce::from(nonce.0), aad, buf.as_mut_slice().into())
            .expect("AES-GCM accepts messages below 64 GiB");
        buf.extend_from_slice(tag.as_slice());
    }

    /// Encrypts `plain` into `out` (appending ciphertext and tag).
    pub fn seal_into(&self, nonce: NonceValue, aad: &[u8], plain: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = self
            .0
            .encrypt_inout_detached(&Nonce::from(nonce.0), aad, (&mut out[start..]).into())
            .expect("AES-GCM accepts messages below 64 GiB");
        out.extend_from_slice(tag.as_slice());
    }

    /// Authenticates and decrypts `buf` (ciphertext || tag) in place, leaving the plaintext.
    pub fn open_in_place(&self, nonce: NonceValue, aad: &[u8], buf: &mut Vec<u8>) -> bool {
        if buf.len() < TAG_LEN {
            return false;
        }
        let split = buf.len() - TAG_LEN;
        let tag = Tag::try_from(&buf[split..]).expect("16 bytes");
        let ok = self
            .0
            .decrypt_inout_detached(&Nonce::from(nonce.0), aad, (&mut buf[..split]).into(), &tag)
            .is_ok();
        buf.truncate(split);
        ok
    }
}

/// Keyed BLAKE3: the blob ID function. The key is per repository, so equal content in two
/// repositories gets unrelated IDs. The keyed hasher holds the key: it, and each copy made
/// for an ID, is zeroed when dropped.
#[derive(Clone)]
pub struct IdKey(blake3::Hasher);

impl IdKey {
    pub fn new(key: &Key) -> IdKey {
        IdKey(blake3::Hasher::new_keyed(key.expose()))
    }

    pub fn id(&self, data: &[u8]) -> crate::Id {
        let mut h = self.0.clone();
        h.update(data);
        let id = crate::Id(*h.finalize().as_bytes());
        h.zeroize();
        id
    }
}

impl Drop for IdKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A key wrapped under another: `salt[32] || AES-256-GCM(subkey(kek, salt), nonce = FINAL,
/// aad = context) of key[32] || tag[16]`, 80 bytes. The server wraps each tenant key under its
/// master key this way; `context` binds the wrapping to its owner (the tenant ID), so a
/// wrapped key copied to another row does not open.
pub fn wrap_key(kek: &Key, context: &[u8], key: &Key) -> Vec<u8> {
    let salt = random_salt();
    let mut out = Vec::with_capacity(WRAPPED_KEY_LEN);
    out.extend_from_slice(&salt);
    let nonce = NonceSequence::new()
        .final_nonce()
        .expect("a new sequence has its final nonce");
    kek.subkey(&salt)
        .cipher()
        .seal_into(nonce, context, key.expose(), &mut out);
    out
}

/// The length of a [`wrap_key`] result.
pub const WRAPPED_KEY_LEN: usize = SALT_LEN + 32 + TAG_LEN;

/// Opens a [`wrap_key`] result; `None` when the KEK or context is wrong or the bytes were
/// changed.
pub fn unwrap_key(kek: &Key, context: &[u8], wrapped: &[u8]) -> Option<Key> {
    if wrapped.len() != WRAPPED_KEY_LEN {
        return None;
    }
    let salt: [u8; SALT_LEN] = wrapped[..SALT_LEN].try_into().expect("32 bytes");
    let mut body = wrapped[SALT_LEN..].to_vec();
    let nonce = NonceSequence::new()
        .final_nonce()
        .expect("a new sequence has its final nonce");
    if !kek
        .subkey(&salt)
        .cipher()
        .open_in_place(nonce, context, &mut body)
    {
        return None;
    }
    let mut bytes: [u8; 32] = body.as_slice().try_into().ok()?;
    body.zeroize();
    let key = Key::from_bytes(bytes);
    bytes.zeroize();
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Key types print nothing (this does not compile when one gets `Debug`), and the master
    /// key's type zeroes itself on drop.
    #[test]
    fn key_types_have_no_debug_and_zero_on_drop() {
        loop_testkit::assert_no_debug!(Key, IdKey);
        fn zeroed_on_drop<T: ZeroizeOnDrop>() {}
        zeroed_on_drop::<Key>();
    }

    #[test]
    fn seal_open_round_trip_and_tamper_detection() {
        let key = Key::generate().subkey(&random_salt());
        let c = key.cipher();
        let mut seq = NonceSequence::new();
        let n = seq.next_nonce().unwrap();
        let mut buf = b"hello world".to_vec();
        c.seal_in_place(n, b"aad", &mut buf);
        assert_ne!(&buf[..11], b"hello world");
        let mut ok = buf.clone();
        assert!(c.open_in_place(n, b"aad", &mut ok));
        assert_eq!(ok, b"hello world");
        let mut wrong_aad = buf.clone();
        assert!(!c.open_in_place(n, b"other", &mut wrong_aad));
        let mut flipped = buf.clone();
        flipped[3] ^= 1;
        assert!(!c.open_in_place(n, b"aad", &mut flipped));
        let mut short = vec![1, 2, 3];
        assert!(!c.open_in_place(n, b"aad", &mut short));
    }

    #[test]
    fn nonce_sequence_never_repeats_and_final_is_once() {
        let mut seq = NonceSequence::new();
        let a = seq.next_nonce().unwrap().0;
        let b = seq.next_nonce().unwrap().0;
        assert_ne!(a, b);
        let f = seq.final_nonce().unwrap().0;
        assert_ne!(f, a);
        assert!(seq.next_nonce().is_err());
        assert!(seq.final_nonce().is_err());
    }

    #[test]
    fn wrapped_keys_open_only_with_their_kek_and_context() {
        let kek = Key::generate();
        let key = Key::generate();
        let w = wrap_key(&kek, b"tn_a", &key);
        assert_eq!(w.len(), WRAPPED_KEY_LEN);
        assert_eq!(
            unwrap_key(&kek, b"tn_a", &w).unwrap().expose(),
            key.expose()
        );
        assert!(unwrap_key(&kek, b"tn_b", &w).is_none());
        assert!(unwrap_key(&Key::generate(), b"tn_a", &w).is_none());
        let mut bad = w.clone();
        bad[40] ^= 1;
        assert!(unwrap_key(&kek, b"tn_a", &bad).is_none());
        assert!(unwrap_key(&kek, b"tn_a", &w[..79]).is_none());
    }

    #[test]
    fn subkeys_differ_per_salt_and_ids_per_key() {
        let k = Key::generate();
        assert_ne!(k.subkey(&[1; 32]).expose(), k.subkey(&[2; 32]).expose());
        let a = IdKey::new(&Key::generate()).id(b"same");
        let b = IdKey::new(&Key::generate()).id(b"same");
        assert_ne!(a, b);
    }

    /// Subkeys of existing repositories must never change: pinned by independent vectors.
    #[test]
    fn subkeys_match_the_independent_vectors() {
        use crate::testutil::{key, unhex, vectors as v};
        let salt: [u8; 32] = unhex(v::SALT).try_into().unwrap();
        assert_eq!(
            hex::encode(key(v::MASTER).subkey(&salt).expose()),
            v::SUBKEY
        );
        assert_eq!(
            hex::encode(key(v::RAW_KEY).raw_kek(&salt).expose()),
            v::RAW_KEK
        );
    }
}
