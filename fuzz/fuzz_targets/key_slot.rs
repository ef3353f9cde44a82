//! A key slot is read before anything is authenticated: parsing never panics, and neither
//! does opening one with any parameters the parser lets through (only cheap ones are tried
//! here; the parser bounds the rest).
#![no_main]

use libfuzzer_sys::fuzz_target;
use loop_repo::crypto::Key;
use loop_repo::keys::{KeySlot, Secret};

fuzz_target!(|data: &[u8]| {
    let Ok(slot) = KeySlot::parse("fuzz", data.to_vec()) else {
        return;
    };
    let params = slot.params();
    if slot.is_passphrase() {
        if params.m_kib <= 256 && params.t <= 2 {
            let _ = slot.open(&Secret::Passphrase(b"fuzz"));
        }
    } else {
        let _ = slot.open(&Secret::RawKey(&Key::from_bytes([7; 32])));
    }
});
