//! Key slots: each wraps the repository master key under one key-encryption key (KEK).
//!
//! ```text
//! slot    = header("LPKY", 1) || kind u8 || m_kib u32 || t u32 || p u32 || salt[32]
//!           || meta_len u32 || meta (JSON: created, host, user, label)
//!           || AES-256-GCM(kek, nonce = FINAL, aad = everything before) of master[32] || tag[16]
//! kind 1  = passphrase: kek = Argon2id(passphrase, salt, m_kib, t, p)
//! kind 2  = raw key:    kek = BLAKE3-derive_key(raw 256-bit key || salt)  (managed vaults)
//! ```
//!
//! A KEK is used for exactly one encryption (each slot has its own random salt, and a slot is
//! never rewritten: `passwd` adds a new slot and removes the old one), so the fixed nonce is
//! safe. Deleting every slot makes the repository unreadable at once (crypto-shredding).

use serde::{Deserialize, Serialize};

use crate::crypto::{Key, NonceSequence, SALT_LEN, TAG_LEN, random_salt};
use crate::error::{Error, Result};
use crate::format::{HEADER_LEN, Magic, Version};

/// Slot kinds (docs/FORMAT.md): a passphrase through Argon2id, or a raw 256-bit key.
const KIND_PASSPHRASE: u8 = 1;
const KIND_RAW: u8 = 2;
/// A slot's fixed part: header, kind, Argon2 m/t/p (u32 each), salt, metadata length.
const FIXED_LEN: usize = HEADER_LEN + 1 + 12 + SALT_LEN + 4;
/// What a raw-key slot stores in its unused cost fields: fixed, so that its bytes do not
/// follow the passphrase default.
const RAW_SLOT_PARAMS: KdfParams = KdfParams {
    m_kib: 64 * 1024,
    t: 3,
    p: 1,
};
/// Largest slot metadata (creation time, host, user and label as JSON) accepted from storage.
const MAX_META: usize = 64 * 1024;

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 4 lanes: the second option RFC 9106 recommends (section 4), about
    /// a tenth of a second on one core. The lanes are computed on as many cores as there
    /// are, so the unlock every command starts with takes 0.06 s on two cores where one
    /// lane took 0.09 (slots written with one lane, the default before, keep their own
    /// parameters).
    fn default() -> Self {
        KdfParams {
            m_kib: 64 * 1024,
            t: 3,
            p: 4,
        }
    }
}

/// The most Argon2id work a passphrase slot may ask for: 256 MiB, 8 passes, 16 lanes. loop
/// writes 64 MiB, 3 passes and 4 lanes (1 lane before 2026-12-05), and the bounds leave
/// room above that for a stronger choice. Anyone who can write the repository's storage
/// can plant a slot that every passphrase open tries, so the bounds are also what one open
/// can be made to cost: about ten times the default.
pub const MAX_KDF: KdfParams = KdfParams {
    m_kib: 256 * 1024,
    t: 8,
    p: 16,
};

impl KdfParams {
    /// Whether these parameters are within [`MAX_KDF`] and Argon2's minimums; why not.
    fn check(&self) -> std::result::Result<(), &'static str> {
        if self.m_kib < 8 || self.m_kib > MAX_KDF.m_kib || self.t == 0 || self.t > MAX_KDF.t {
            return Err("key derivation parameters out of range");
        }
        if self.p == 0 || self.p > MAX_KDF.p {
            return Err("key derivation parallelism out of range");
        }
        // Argon2 gives each lane at least 8 KiB; less is not a slot anyone wrote.
        if self.m_kib < 8 * self.p {
            return Err("key derivation memory below 8 KiB per lane");
        }
        Ok(())
    }
}

/// Plain metadata shown by `key list`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SlotMeta {
    pub created: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub label: String,
}

/// What opens a slot.
pub enum Secret<'a> {
    Passphrase(&'a [u8]),
    RawKey(&'a Key),
}

/// A decoded (still locked) key slot.
pub struct KeySlot {
    kind: u8,
    params: KdfParams,
    salt: [u8; SALT_LEN],
    pub meta: SlotMeta,
    aad_len: usize,
    bytes: Vec<u8>,
}

impl KeySlot {
    pub fn is_passphrase(&self) -> bool {
        self.kind == KIND_PASSPHRASE
    }

    pub fn params(&self) -> KdfParams {
        self.params
    }

    /// Builds a slot that wraps `master`.
    pub fn create(
        master: &Key,
        secret: Secret<'_>,
        params: KdfParams,
        meta: &SlotMeta,
    ) -> Result<Vec<u8>> {
        Self::create_with_salt(master, secret, params, meta, &random_salt())
    }

    /// [`KeySlot::create`] with a given salt, for the known-answer tests; every slot written
    /// to storage gets a fresh one.
    fn create_with_salt(
        master: &Key,
        secret: Secret<'_>,
        params: KdfParams,
        meta: &SlotMeta,
        salt: &[u8; SALT_LEN],
    ) -> Result<Vec<u8>> {
        let (kind, kek, params) = match secret {
            Secret::Passphrase(p) => {
                // A slot this program would refuse to open is never written.
                params.check().map_err(|why| {
                    Error::Invalid(format!(
                        "{why}: at most {} KiB, {} passes and {} lanes",
                        MAX_KDF.m_kib, MAX_KDF.t, MAX_KDF.p
                    ))
                })?;
                (KIND_PASSPHRASE, argon2_kek(p, salt, params)?, params)
            }
            Secret::RawKey(k) => (KIND_RAW, k.raw_kek(salt), RAW_SLOT_PARAMS),
        };
        let meta_json = serde_json::to_vec(meta).expect("metadata serializes");
        let mut out = Vec::with_capacity(FIXED_LEN + meta_json.len() + 48);
        out.extend_from_slice(&Magic::KeySlot.header());
        out.push(kind);
        out.extend_from_slice(&params.m_kib.to_le_bytes());
        out.extend_from_slice(&params.t.to_le_bytes());
        out.extend_from_slice(&params.p.to_le_bytes());
        out.extend_from_slice(salt);
        out.extend_from_slice(&(meta_json.len() as u32).to_le_bytes());
        out.extend_from_slice(&meta_json);
        let aad = out.clone();
        let nonce = NonceSequence::new().final_nonce()?;
        kek.cipher()
            .seal_into(nonce, &aad, master.expose(), &mut out);
        Ok(out)
    }

    pub fn parse(object: &str, bytes: Vec<u8>) -> Result<KeySlot> {
        // One layout so far; a second version makes this pattern fail to compile here.
        let Version::V1 = Magic::KeySlot.check(object, &bytes)?;
        if bytes.len() < FIXED_LEN + 32 + TAG_LEN {
            return Err(Error::corrupt(object, "truncated key slot"));
        }
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
        let kind = bytes[HEADER_LEN];
        if kind != KIND_PASSPHRASE && kind != KIND_RAW {
            return Err(Error::corrupt(
                object,
                format!("unknown key slot kind {kind}"),
            ));
        }
        let params = KdfParams {
            m_kib: u32_at(HEADER_LEN + 1),
            t: u32_at(HEADER_LEN + 5),
            p: u32_at(HEADER_LEN + 9),
        };
        if kind == KIND_PASSPHRASE {
            params.check().map_err(|why| Error::corrupt(object, why))?;
        }
        let salt: [u8; SALT_LEN] = bytes[HEADER_LEN + 13..HEADER_LEN + 13 + SALT_LEN]
            .try_into()
            .expect("32 bytes");
        let meta_len = u32_at(FIXED_LEN - 4) as usize;
        if meta_len > MAX_META || bytes.len() != FIXED_LEN + meta_len + 32 + TAG_LEN {
            return Err(Error::corrupt(object, "key slot length does not add up"));
        }
        let meta: SlotMeta = serde_json::from_slice(&bytes[FIXED_LEN..FIXED_LEN + meta_len])
            .map_err(|e| Error::corrupt(object, format!("key slot metadata: {e}")))?;
        Ok(KeySlot {
            kind,
            params,
            salt,
            meta,
            aad_len: FIXED_LEN + meta_len,
            bytes,
        })
    }

    /// Unwraps the master key. `Ok(None)` means the secret does not open this slot.
    pub fn open(&self, secret: &Secret<'_>) -> Result<Option<Key>> {
        let kek = match (secret, self.kind) {
            (Secret::Passphrase(p), KIND_PASSPHRASE) => argon2_kek(p, &self.salt, self.params)?,
            (Secret::RawKey(k), KIND_RAW) => k.raw_kek(&self.salt),
            _ => return Ok(None),
        };
        let mut wrapped = self.bytes[self.aad_len..].to_vec();
        let nonce = NonceSequence::new().final_nonce()?;
        if !kek
            .cipher()
            .open_in_place(nonce, &self.bytes[..self.aad_len], &mut wrapped)
        {
            zeroize::Zeroize::zeroize(&mut wrapped);
            return Ok(None);
        }
        let mut master = [0u8; 32];
        master.copy_from_slice(&wrapped);
        zeroize::Zeroize::zeroize(&mut wrapped);
        let key = Key::from_bytes(master);
        zeroize::Zeroize::zeroize(&mut master);
        Ok(Some(key))
    }
}

fn argon2_kek(passphrase: &[u8], salt: &[u8; SALT_LEN], p: KdfParams) -> Result<Key> {
    let params = argon2::Params::new(p.m_kib, p.t, p.p, Some(32))
        .map_err(|e| Error::Invalid(format!("argon2 parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    argon
        .hash_password_into(passphrase, salt, &mut out)
        .map_err(|e| Error::Invalid(format!("argon2: {e}")))?;
    let key = Key::from_bytes(out);
    zeroize::Zeroize::zeroize(&mut out);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FAST: KdfParams = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    #[test]
    fn passphrase_slot_opens_only_with_its_passphrase() {
        let master = Key::generate();
        let meta = SlotMeta {
            created: "2026-11-30T00:00:00Z".into(),
            host: "h".into(),
            ..Default::default()
        };
        let bytes = KeySlot::create(&master, Secret::Passphrase(b"right"), FAST, &meta).unwrap();
        let slot = KeySlot::parse("keys/x", bytes.clone()).unwrap();
        assert_eq!(slot.meta, meta);
        let got = slot.open(&Secret::Passphrase(b"right")).unwrap().unwrap();
        assert_eq!(got.expose(), master.expose());
        assert!(slot.open(&Secret::Passphrase(b"wrong")).unwrap().is_none());
        let raw = Key::generate();
        assert!(slot.open(&Secret::RawKey(&raw)).unwrap().is_none());
    }

    #[test]
    fn raw_key_slot_round_trip() {
        let master = Key::generate();
        let raw = Key::generate();
        let bytes = KeySlot::create(
            &master,
            Secret::RawKey(&raw),
            KdfParams::default(),
            &SlotMeta::default(),
        )
        .unwrap();
        let slot = KeySlot::parse("keys/y", bytes).unwrap();
        assert!(!slot.is_passphrase());
        let got = slot.open(&Secret::RawKey(&raw)).unwrap().unwrap();
        assert_eq!(got.expose(), master.expose());
        assert!(
            slot.open(&Secret::RawKey(&Key::generate()))
                .unwrap()
                .is_none()
        );
    }

    /// docs/FORMAT.md: a new passphrase slot takes 64 MiB, 3 passes and 4 lanes, and a slot
    /// written with one lane (the default before) still opens with its own parameters.
    #[test]
    fn new_slots_take_the_documented_default_and_one_lane_slots_still_open() {
        let master = Key::generate();
        let one_lane = KdfParams {
            p: 1,
            ..KdfParams::default()
        };
        for (params, lanes) in [(KdfParams::default(), 4), (one_lane, 1)] {
            let bytes = KeySlot::create(
                &master,
                Secret::Passphrase(b"pw"),
                params,
                &SlotMeta::default(),
            )
            .unwrap();
            let slot = KeySlot::parse("keys/d", bytes).unwrap();
            let p = slot.params();
            assert_eq!((p.m_kib, p.t, p.p), (64 * 1024, 3, lanes));
            let got = slot.open(&Secret::Passphrase(b"pw")).unwrap().unwrap();
            assert_eq!(got.expose(), master.expose());
        }
    }

    #[test]
    fn hostile_slots_are_rejected_without_work() {
        let master = Key::generate();
        let mut bytes = KeySlot::create(
            &master,
            Secret::Passphrase(b"p"),
            FAST,
            &SlotMeta::default(),
        )
        .unwrap();
        // Demand 4 TiB of memory: must be refused before any derivation.
        bytes[HEADER_LEN + 1..HEADER_LEN + 5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            KeySlot::parse("k", bytes.clone()),
            Err(Error::Corrupt { .. })
        ));
        assert!(KeySlot::parse("k", bytes[..10].to_vec()).is_err());
        // 64 KiB for 16 lanes is within each limit but below Argon2's 8 KiB a lane: refused
        // as damage (so opening skips it), not an error that stops every other slot.
        bytes[HEADER_LEN + 1..HEADER_LEN + 5].copy_from_slice(&64u32.to_le_bytes());
        bytes[HEADER_LEN + 9..HEADER_LEN + 13].copy_from_slice(&16u32.to_le_bytes());
        assert!(matches!(
            KeySlot::parse("k", bytes.clone()),
            Err(Error::Corrupt { .. })
        ));
        let mut tampered = KeySlot::create(
            &master,
            Secret::Passphrase(b"p"),
            FAST,
            &SlotMeta::default(),
        )
        .unwrap();
        let n = tampered.len();
        tampered[n - 20] ^= 1;
        let slot = KeySlot::parse("k", tampered).unwrap();
        assert!(slot.open(&Secret::Passphrase(b"p")).unwrap().is_none());
    }

    /// A slot asking for more than [`MAX_KDF`] in any one parameter is refused as damage
    /// before any derivation (opening then skips it), and none is ever written; a slot at
    /// the bounds parses.
    #[test]
    fn slots_beyond_the_work_bounds_are_refused_and_never_written() {
        let master = Key::generate();
        let meta = SlotMeta::default();
        let cheap = KeySlot::create(&master, Secret::Passphrase(b"p"), FAST, &meta).unwrap();
        let with = |p: KdfParams| {
            let mut b = cheap.clone();
            for (i, v) in [p.m_kib, p.t, p.p].into_iter().enumerate() {
                let at = HEADER_LEN + 1 + 4 * i;
                b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            KeySlot::parse("keys/k", b)
        };
        assert!(with(MAX_KDF).is_ok());
        let old_bound = KdfParams {
            m_kib: 4 * 1024 * 1024,
            t: 64,
            p: 4,
        };
        for over in [
            old_bound,
            KdfParams {
                m_kib: MAX_KDF.m_kib + 1,
                ..MAX_KDF
            },
            KdfParams {
                t: MAX_KDF.t + 1,
                ..MAX_KDF
            },
            KdfParams {
                p: MAX_KDF.p + 1,
                ..MAX_KDF
            },
        ] {
            let err = with(over)
                .err()
                .unwrap_or_else(|| panic!("{over:?} parsed"));
            assert!(matches!(err, Error::Corrupt { .. }), "{err}");
            let made = KeySlot::create(&master, Secret::Passphrase(b"p"), over, &meta);
            let err = made.err().unwrap_or_else(|| panic!("{over:?} written"));
            assert!(err.to_string().contains("out of range"), "{err}");
        }
    }

    /// The passphrase KDF of existing slots must never change: Argon2id v0x13, 32 bytes.
    #[test]
    fn argon2id_matches_the_independent_vectors() {
        use crate::testutil::{unhex, vectors as v};
        let salt: [u8; 32] = unhex(v::SALT).try_into().unwrap();
        for (params, expected) in [
            ((64, 1, 1), v::KEK_FAST),
            ((256, 2, 2), v::KEK_LANES),
            ((65536, 3, 1), v::KEK_ONE_LANE),
            ((65536, 3, 4), v::KEK_DEFAULT),
        ] {
            let (m_kib, t, p) = params;
            let kek =
                argon2_kek(v::PASSPHRASE.as_bytes(), &salt, KdfParams { m_kib, t, p }).unwrap();
            assert_eq!(hex::encode(kek.expose()), expected, "{params:?}");
        }
    }

    /// A slot written today has exactly the bytes an independent writer makes from the same
    /// inputs, so other readers of the documented layout open it.
    #[test]
    fn slots_are_written_byte_for_byte_as_documented() {
        use crate::testutil::{key, unhex, vectors as v};
        let salt: [u8; 32] = unhex(v::SALT).try_into().unwrap();
        let meta = SlotMeta {
            created: "2026-12-01T00:00:00+00:00".into(),
            host: "vector-host".into(),
            user: "vector".into(),
            label: String::new(),
        };
        let master = key(v::MASTER);
        let slot = KeySlot::create_with_salt(
            &master,
            Secret::Passphrase(v::PASSPHRASE.as_bytes()),
            FAST,
            &meta,
            &salt,
        )
        .unwrap();
        assert_eq!(hex::encode(slot), v::PASSPHRASE_SLOT);
        let raw = KeySlot::create_with_salt(
            &master,
            Secret::RawKey(&key(v::RAW_KEY)),
            KdfParams::default(),
            &meta,
            &salt,
        )
        .unwrap();
        assert_eq!(hex::encode(raw), v::RAW_KEY_SLOT);
    }

    /// Key-slot bytes as anyone who can write the repository could store them: the real
    /// header, a kind, cost fields in and out of range, metadata that may be JSON, a length
    /// that may lie, and a wrapped key of any length.
    fn slot_bytes() -> impl Strategy<Value = Vec<u8>> {
        let costs = prop_oneof![
            (8u32..70_000, 1u32..5, 1u32..5).prop_map(|(m, t, p)| [m, t, p]),
            any::<[u32; 3]>(),
        ];
        let meta = prop_oneof![
            Just(br#"{"created":"2026-12-05T00:00:00Z"}"#.to_vec()),
            proptest::collection::vec(any::<u8>(), 0..40)
        ];
        let lie = prop_oneof![3 => Just(None), 1 => any::<u32>().prop_map(Some)];
        let wrapped = prop_oneof![3 => Just(32 + TAG_LEN), 1 => 0usize..100];
        (0u8..3, costs, meta, lie, wrapped).prop_map(|(kind, costs, meta, lie, wrapped)| {
            let mut b = Magic::KeySlot.header().to_vec();
            b.push(kind);
            for c in costs {
                b.extend_from_slice(&c.to_le_bytes());
            }
            b.extend_from_slice(&[3; SALT_LEN]);
            b.extend_from_slice(&lie.unwrap_or(meta.len() as u32).to_le_bytes());
            b.extend_from_slice(&meta);
            b.extend_from_slice(&vec![7; wrapped]);
            b
        })
    }

    proptest! {
        #[test]
        fn any_bytes_as_a_key_slot_parse_within_the_limits_or_are_refused(
            bytes in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300),
                slot_bytes(),
            ],
        ) {
            if let Ok(slot) = KeySlot::parse("keys/x", bytes.clone()) {
                // A slot that parses asks for no more work than the documented limits.
                if slot.kind == KIND_PASSPHRASE {
                    prop_assert!(slot.params.check().is_ok());
                }
                prop_assert_eq!(slot.bytes.len(), slot.aad_len + 32 + TAG_LEN);
                // And opening it with the wrong kind of secret is a plain "not this slot".
                if slot.kind == KIND_PASSPHRASE {
                    prop_assert!(slot.open(&Secret::RawKey(&Key::generate())).unwrap().is_none());
                }
            }
        }
    }
}
