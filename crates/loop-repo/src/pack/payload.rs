//! A blob's stored payload: zstd when that shrinks it, raw otherwise, and raw without trying
//! zstd when its bytes look random (already compressed or encrypted content).

/// Compresses a blob for storage: zstd when it shrinks the data, raw otherwise. Data whose
/// bytes look uniformly random ([`looks_random`]: compressed or encrypted content) is stored
/// raw without trying zstd, which would spend as long failing as it spends compressing text.
pub fn encode_payload(
    compressor: &mut zstd::bulk::Compressor<'_>,
    data: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    if looks_random(data) {
        out.extend_from_slice(data);
        return false;
    }
    let bound = zstd::zstd_safe::compress_bound(data.len());
    out.reserve(bound);
    match compressor.compress_to_buffer(data, out) {
        Ok(n) if n < data.len() => true,
        _ => {
            out.clear();
            out.extend_from_slice(data);
            false
        }
    }
}

/// Blobs shorter than this always go through zstd: too few bytes to judge by.
const RANDOM_MIN_LEN: usize = 1024;
/// Bytes counted of a larger blob: this many slices of [`RANDOM_SLICE`] bytes, spread over it.
const RANDOM_SLICES: usize = 16;
const RANDOM_SLICE: usize = 4096;
/// Collision entropy (Rényi entropy of order 2), in bits per byte, from which a blob counts
/// as random. Text measures 3 to 5, machine code 5 to 7; zstd, gzip, JPEG or encrypted data
/// close to 8 (random blocks of 1 KiB measure at least 7.9).
const RANDOM_BITS: f64 = 7.85;

/// Whether `data`'s bytes look uniformly random: the chance that two bytes drawn from it
/// are equal (estimated without bias from the byte histogram of all of it, or of 64 KiB
/// sampled over a larger blob) is at most 2^-[`RANDOM_BITS`], near the 1/256 of random
/// bytes. Integer counting and one comparison, cheap next to a zstd call. A blob that
/// repeats one random block inside itself is the one thing this misses, and stays raw.
pub fn looks_random(data: &[u8]) -> bool {
    if data.len() < RANDOM_MIN_LEN {
        return false;
    }
    // Four tables, so consecutive bytes do not wait on each other's counter.
    let mut counts = [[0u32; 256]; 4];
    // The first slice decides most blobs: text and machine code measure far below the
    // threshold already in its first KiB, while random data never does (a random KiB
    // measures above 7.9 bits), so only a blob that still looks random is counted further.
    let sample = RANDOM_SLICES * RANDOM_SLICE;
    let step = if data.len() <= sample {
        RANDOM_SLICE
    } else {
        data.len() / RANDOM_SLICES
    };
    let mut n = 0u64;
    for i in 0..RANDOM_SLICES {
        let start = i * step;
        if start >= data.len() {
            break;
        }
        let slice = &data[start..(start + RANDOM_SLICE).min(data.len())];
        if i == 0 {
            // Text is ruled out by its first KiB already, so most blobs count no further.
            let (head, rest) = slice.split_at(RANDOM_MIN_LEN);
            count(&mut counts, head);
            if !above(&counts, RANDOM_MIN_LEN as u64, RANDOM_EARLY_BITS) {
                return false;
            }
            count(&mut counts, rest);
        } else {
            count(&mut counts, slice);
        }
        n += slice.len() as u64;
        if i == 0 && data.len() > RANDOM_SLICE && !above(&counts, n, RANDOM_EARLY_BITS) {
            return false;
        }
    }
    above(&counts, n, RANDOM_BITS)
}

fn count(counts: &mut [[u32; 256]; 4], bytes: &[u8]) {
    let mut quads = bytes.chunks_exact(4);
    for q in &mut quads {
        counts[0][q[0] as usize] += 1;
        counts[1][q[1] as usize] += 1;
        counts[2][q[2] as usize] += 1;
        counts[3][q[3] as usize] += 1;
    }
    for &b in quads.remainder() {
        counts[0][b as usize] += 1;
    }
}

/// Bits per byte below which the first slice of a blob rules out randomness.
const RANDOM_EARLY_BITS: f64 = 7.0;

/// Whether the collision entropy of `n` counted bytes is at least `bits` per byte.
fn above(counts: &[[u32; 256]; 4], n: u64, bits: f64) -> bool {
    let same_pairs: u64 = (0..256)
        .map(|b| {
            let c = (counts[0][b] + counts[1][b] + counts[2][b] + counts[3][b]) as u64;
            c * c.saturating_sub(1)
        })
        .sum();
    (same_pairs as f64) <= (n * (n - 1)) as f64 * (-bits).exp2()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random bytes (xorshift64), seeded.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    }

    fn text(len: usize) -> Vec<u8> {
        let line = b"static int probe(struct device *dev, const char *name) { return -ENODEV; }\n";
        line.iter().copied().cycle().take(len).collect()
    }

    #[test]
    fn random_bytes_are_recognised_at_every_size_and_text_never_is() {
        for seed in 0..300 {
            for len in [RANDOM_MIN_LEN, 1500, 4096, 65_536, 70_000, 2 << 20] {
                assert!(looks_random(&noise(seed, len)), "seed {seed}, {len} bytes");
                if seed % 50 == 0 {
                    assert!(!looks_random(&text(len)), "text of {len} bytes");
                }
            }
        }
        assert!(
            !looks_random(&noise(1, RANDOM_MIN_LEN - 1)),
            "too short to judge"
        );
        assert!(!looks_random(&vec![0u8; 1 << 20]));
        // Random bytes written as hex: 4 bits per byte, compressible.
        let hex: Vec<u8> = noise(2, 8192)
            .iter()
            .flat_map(|b| format!("{b:02x}").into_bytes())
            .collect();
        assert!(!looks_random(&hex));
        // Half text and half random over a large blob: the sample sees both.
        let mut mixed = text(1 << 20);
        mixed.extend(noise(3, 1 << 20));
        assert!(!looks_random(&mixed));
        let mut mixed = noise(4, 1 << 20);
        mixed.extend(text(1 << 20));
        assert!(!looks_random(&mixed));
        // A text head decides at once: the rest is not counted, the blob goes to zstd.
        let mut headed = text(RANDOM_SLICE);
        headed.extend(noise(5, 60_000));
        assert!(!looks_random(&headed));
    }

    #[test]
    fn random_data_is_stored_raw_and_text_compressed() {
        let mut c = zstd::bulk::Compressor::new(3).unwrap();
        let mut out = Vec::new();
        let random = noise(7, 10_000);
        assert!(!encode_payload(&mut c, &random, &mut out));
        assert_eq!(out, random);
        let t = text(10_000);
        assert!(encode_payload(&mut c, &t, &mut out));
        assert!(out.len() < t.len() / 10, "{} bytes", out.len());
        assert_eq!(zstd::bulk::decompress(&out, t.len()).unwrap(), t);
    }
}
