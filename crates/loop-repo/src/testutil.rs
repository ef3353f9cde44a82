//! Helpers for the engine's unit tests.

use std::path::Path;
use std::sync::Arc;

use crate::keys::{KdfParams, Secret};
use crate::{InitOptions, ObjectStorage, Repository, S3Options};

/// A new local repository at `dir` (created if missing), with cheap key derivation.
pub fn local_repo(dir: &Path) -> Repository {
    let storage = ObjectStorage::open(
        dir.to_str().expect("utf-8 temp path"),
        &S3Options::default(),
        true,
    )
    .expect("open local storage");
    let opts = InitOptions {
        kdf: KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        },
        ..Default::default()
    };
    Repository::init(Arc::new(storage), Secret::Passphrase(b"pw"), &opts).expect("init")
}

/// Known answers computed by `tests/vectors/make_vectors.py`, independently of the engine.
#[allow(dead_code)]
pub mod vectors {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/expected.rs"
    ));
}

/// Bytes from a vector's hex.
pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("vector hex")
}

/// A key from a vector's hex.
pub fn key(s: &str) -> crate::crypto::Key {
    crate::crypto::Key::from_bytes(unhex(s).try_into().expect("32-byte key"))
}
