//! Deterministic file contents: the same seed gives the same bytes on every machine.

use std::fs;
use std::path::Path;

/// Deterministic pseudo-random bytes (xorshift), incompressible like real binaries.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Text that compresses like source code: words and punctuation of C and Rust, with a line
/// break after about one word in nine.
pub fn text(len: usize, seed: u64) -> Vec<u8> {
    let words: Vec<&[u8]> = b"fn let mut struct impl return match if else for while loop { } ( ) ; -> static const unsigned int char void #include <linux/module.h> */ /* kernel"
        .split(|b| *b == b' ')
        .collect();
    let r = noise(2 * len + 2, seed);
    let mut v = Vec::with_capacity(len + 64);
    let mut i = 0;
    while v.len() < len {
        v.extend_from_slice(words[r[i] as usize % words.len()]);
        v.push(if r[i + 1].is_multiple_of(9) {
            b'\n'
        } else {
            b' '
        });
        i += 2;
    }
    v.truncate(len);
    v
}

pub fn write(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).expect("mkdir");
    }
    fs::write(path, data).expect("write");
}
