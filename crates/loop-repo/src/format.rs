//! The frame every stored object starts with, and sealed (encrypted) objects.
//!
//! ```text
//! header  = magic[4] || version u8 || reserved[3] (zero)
//! sealed  = header || salt[32] || AES-256-GCM(subkey(master, salt), nonce = FINAL,
//!                                              aad = header, body) || tag[16]
//! body    = codec u8 (0 raw, 1 zstd) || payload
//! ```
//!
//! Magics are frozen ASCII tags, one per kind of object; versions start at 1. A reader accepts
//! every version up to its own and names the object when it meets a newer one.

use std::io::Read;

use crate::crypto::{Key, NonceSequence, SALT_LEN, TAG_LEN, random_salt};
use crate::error::{Error, Result};

pub const HEADER_LEN: usize = 8;

/// A format version this program reads. Every decoder matches on it, so adding a version
/// makes the compiler point at each decoder that has to learn it (and writers keep writing
/// [`Magic::current_version`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
}

impl Version {
    /// The version byte `b`, when this program reads it (0 is never valid).
    pub fn from_byte(b: u8) -> Option<Version> {
        match b {
            1 => Some(Version::V1),
            _ => None,
        }
    }
}

/// The kinds of framed object. Magic values are frozen: "LP" for Loop, two letters for the kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Magic {
    Config,
    KeySlot,
    Pack,
    Index,
    Snapshot,
    Lock,
    PrunePlan,
}

impl Magic {
    pub const fn bytes(self) -> [u8; 4] {
        match self {
            Magic::Config => *b"LPCF",
            Magic::KeySlot => *b"LPKY",
            Magic::Pack => *b"LPPK",
            Magic::Index => *b"LPIX",
            Magic::Snapshot => *b"LPSN",
            Magic::Lock => *b"LPLK",
            Magic::PrunePlan => *b"LPPP",
        }
    }

    /// The newest version of this kind that this program writes and reads.
    pub const fn current_version(self) -> u8 {
        1
    }

    pub fn header(self) -> [u8; HEADER_LEN] {
        let m = self.bytes();
        [m[0], m[1], m[2], m[3], self.current_version(), 0, 0, 0]
    }

    /// Checks the header of `bytes` and returns its version.
    pub fn check(self, object: &str, bytes: &[u8]) -> Result<Version> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::corrupt(object, "shorter than its header"));
        }
        if bytes[..4] != self.bytes() {
            return Err(Error::corrupt(
                object,
                format!("not a {self:?} object (bad magic)"),
            ));
        }
        let version = bytes[4];
        if version == 0 {
            return Err(Error::corrupt(object, "version 0 is invalid"));
        }
        match Version::from_byte(version) {
            Some(v) if version <= self.current_version() => Ok(v),
            _ => Err(Error::NewerVersion {
                object: object.to_string(),
                found: version,
                supported: self.current_version(),
            }),
        }
    }
}

const CODEC_RAW: u8 = 0;
const CODEC_ZSTD: u8 = 1;

/// Seals a whole object: compresses when that helps, then encrypts under a fresh salt.
pub fn seal(master: &Key, magic: Magic, payload: &[u8], zstd_level: i32) -> Vec<u8> {
    seal_with_salt(master, magic, payload, zstd_level, &random_salt())
}

/// [`seal`] with a given salt. Private: a salt must never be reused, so only `seal` (fresh
/// salts) and the known-answer tests (fixed ones) call it.
fn seal_with_salt(
    master: &Key,
    magic: Magic,
    payload: &[u8],
    zstd_level: i32,
    salt: &[u8; SALT_LEN],
) -> Vec<u8> {
    let mut body = Vec::with_capacity(payload.len() / 2 + 64);
    body.push(CODEC_ZSTD);
    match zstd::bulk::compress(payload, zstd_level) {
        Ok(c) if c.len() < payload.len() => body.extend_from_slice(&c),
        _ => {
            body.clear();
            body.push(CODEC_RAW);
            body.extend_from_slice(payload);
        }
    }
    let header = magic.header();
    let mut out = Vec::with_capacity(HEADER_LEN + SALT_LEN + body.len() + TAG_LEN);
    out.extend_from_slice(&header);
    out.extend_from_slice(salt);
    let nonce = NonceSequence::new()
        .final_nonce()
        .expect("a new sequence has its final nonce");
    master
        .subkey(salt)
        .cipher()
        .seal_into(nonce, &header, &body, &mut out);
    out
}

/// Opens a sealed object, refusing more than `max_plain` bytes of payload. Returns the
/// object's format version with the payload, for the decoder to match on.
pub fn open(
    master: &Key,
    magic: Magic,
    object: &str,
    bytes: &[u8],
    max_plain: usize,
) -> Result<(Version, Vec<u8>)> {
    let version = magic.check(object, bytes)?;
    if bytes.len() < HEADER_LEN + SALT_LEN + TAG_LEN + 1 {
        return Err(Error::corrupt(object, "truncated"));
    }
    let header = &bytes[..HEADER_LEN];
    let salt: [u8; SALT_LEN] = bytes[HEADER_LEN..HEADER_LEN + SALT_LEN]
        .try_into()
        .expect("32 bytes");
    let mut body = bytes[HEADER_LEN + SALT_LEN..].to_vec();
    let nonce = NonceSequence::new()
        .final_nonce()
        .expect("a new sequence has its final nonce");
    if !master
        .subkey(&salt)
        .cipher()
        .open_in_place(nonce, header, &mut body)
    {
        return Err(Error::corrupt(
            object,
            "authentication failed (modified, truncated, or written with another key)",
        ));
    }
    if body.is_empty() {
        return Err(Error::corrupt(object, "empty body"));
    }
    let payload = match body[0] {
        CODEC_RAW => {
            body.remove(0);
            if body.len() > max_plain {
                return Err(Error::corrupt(object, "larger than allowed"));
            }
            body
        }
        CODEC_ZSTD => decompress_bounded(object, &body[1..], max_plain)?,
        other => return Err(Error::corrupt(object, format!("unknown codec {other}"))),
    };
    Ok((version, payload))
}

/// Decompresses zstd data of unknown size, failing once it would exceed `max` bytes. Grows the
/// output as data arrives, so a hostile frame header cannot make it allocate up front.
pub fn decompress_bounded(object: &str, data: &[u8], max: usize) -> Result<Vec<u8>> {
    let decoder = zstd::stream::read::Decoder::new(data)
        .map_err(|e| Error::corrupt(object, format!("zstd: {e}")))?;
    let mut out = Vec::new();
    decoder
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::corrupt(object, format!("zstd: {e}")))?;
    if out.len() > max {
        return Err(Error::corrupt(object, "decompresses to more than allowed"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sealed_objects_round_trip_and_reject_damage() {
        let k = Key::generate();
        let data = b"snapshot snapshot snapshot snapshot".repeat(100);
        let sealed = seal(&k, Magic::Snapshot, &data, 3);
        assert_eq!(
            open(&k, Magic::Snapshot, "s", &sealed, 1 << 20).unwrap(),
            (Version::V1, data)
        );
        // wrong kind, wrong key, flipped byte, truncated, oversized
        assert!(open(&k, Magic::Index, "s", &sealed, 1 << 20).is_err());
        assert!(open(&Key::generate(), Magic::Snapshot, "s", &sealed, 1 << 20).is_err());
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x40;
        assert!(matches!(
            open(&k, Magic::Snapshot, "s", &bad, 1 << 20),
            Err(Error::Corrupt { .. })
        ));
        assert!(open(&k, Magic::Snapshot, "s", &sealed[..20], 1 << 20).is_err());
        assert!(open(&k, Magic::Snapshot, "s", &sealed, 100).is_err());
    }

    #[test]
    fn newer_version_is_named() {
        let k = Key::generate();
        let mut sealed = seal(&k, Magic::Snapshot, b"x", 3);
        sealed[4] = 9;
        let err = open(&k, Magic::Snapshot, "snapshots/ab", &sealed, 100).unwrap_err();
        assert!(matches!(err, Error::NewerVersion { found: 9, .. }), "{err}");
        assert!(err.to_string().contains("snapshots/ab"));
    }

    /// A sealed object written today has exactly the bytes an independent writer makes:
    /// header, salt, then AES-256-GCM under the salted subkey with the final nonce and the
    /// header alone as associated data.
    #[test]
    fn sealed_objects_are_written_byte_for_byte_as_documented() {
        use crate::testutil::{key, unhex, vectors as v};
        let salt: [u8; 32] = unhex(v::SALT).try_into().unwrap();
        let payload = unhex(v::SEALED_RAW_PAYLOAD);
        let sealed = seal_with_salt(&key(v::MASTER), Magic::Snapshot, &payload, 3, &salt);
        assert_eq!(hex::encode(sealed), v::SEALED_RAW);
    }

    proptest! {
        #[test]
        fn any_bytes_as_a_sealed_object_are_refused_without_a_panic(
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let k = Key::generate();
            let mut bytes = Magic::Snapshot.header().to_vec();
            bytes.extend_from_slice(&body);
            prop_assert!(open(&k, Magic::Snapshot, "s", &bytes, 1024).is_err());
            prop_assert!(open(&k, Magic::Snapshot, "s", &body, 1024).is_err());
        }

        /// A key holder can seal any body: any codec byte, any frame. Opening it yields at
        /// most the caller's limit or an error.
        #[test]
        fn a_sealed_body_of_any_content_opens_within_its_limit_or_is_refused(
            codec in 0u8..3,
            rest in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..200),
                (1usize..4096).prop_map(|n| zstd::bulk::compress(&vec![b'a'; n], 3).unwrap()),
            ],
        ) {
            let k = Key::generate();
            let salt = [5u8; SALT_LEN];
            let header = Magic::Snapshot.header();
            let mut bytes = header.to_vec();
            bytes.extend_from_slice(&salt);
            let mut body = vec![codec];
            body.extend_from_slice(&rest);
            let nonce = NonceSequence::new().final_nonce().unwrap();
            k.subkey(&salt).cipher().seal_into(nonce, &header, &body, &mut bytes);
            if let Ok((_, payload)) = open(&k, Magic::Snapshot, "s", &bytes, 1024) {
                prop_assert!(payload.len() <= 1024);
            }
        }
    }
}
