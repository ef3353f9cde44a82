//! Content-defined chunking (FastCDC 2020, crate `fastcdc` pinned to one version, because cut
//! points decide deduplication) with a per-repository gear seed, and a fixed-size mode for disk
//! and VM images.
//!
//! The seed is XORed into the gear table, so chunk boundaries depend on a repository secret and
//! chunk sizes do not fingerprint known content across repositories.

use std::borrow::Cow;
use std::io::{self, Read};

use fastcdc::v2020::{Normalization, cut_gear, get_gear_with_seed, select_masks};
use serde::{Deserialize, Serialize};

/// Chunking parameters, stored in the repository config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
    pub seed: u64,
}

impl ChunkerParams {
    /// About 1 MiB on average, 256 KiB to 4 MiB.
    pub fn with_seed(seed: u64) -> Self {
        ChunkerParams {
            min: 256 * 1024,
            avg: 1024 * 1024,
            max: 4 * 1024 * 1024,
            seed,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let ok = self.min >= 64
            && self.min <= 1 << 20
            && self.avg >= 256
            && self.avg <= 1 << 22
            && self.max >= 1024
            && self.max <= 1 << 24
            && self.min < self.avg
            && self.avg < self.max
            && self.min.is_multiple_of(2)
            && self.avg.is_multiple_of(2)
            && self.max.is_multiple_of(2);
        if ok {
            Ok(())
        } else {
            Err(format!("invalid chunker parameters {self:?}"))
        }
    }
}

/// How one backup cuts files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkMode {
    ContentDefined,
    /// Fixed-size chunks, for block devices and VM images where edits do not shift data.
    Fixed(u32),
}

/// A configured chunker: finds the next cut point in a buffer.
pub struct Chunker {
    params: ChunkerParams,
    mode: ChunkMode,
    mask_s: u64,
    mask_l: u64,
    gear: Cow<'static, [u64]>,
    gear_ls: Cow<'static, [u64]>,
}

impl Chunker {
    pub fn new(params: ChunkerParams, mode: ChunkMode) -> Chunker {
        let (mask_s, mask_l) = select_masks(params.avg as usize, Normalization::Level1);
        let (gear, gear_ls) = get_gear_with_seed(params.seed);
        Chunker {
            params,
            mode,
            mask_s,
            mask_l,
            gear,
            gear_ls,
        }
    }

    /// The largest chunk this chunker can return.
    pub fn max_size(&self) -> usize {
        match self.mode {
            ChunkMode::ContentDefined => self.params.max as usize,
            ChunkMode::Fixed(n) => n as usize,
        }
    }

    /// The length of the next chunk at the start of `data`. When `data` holds less than a
    /// maximum chunk, the caller must pass `eof = true` only at the real end of input.
    pub fn cut(&self, data: &[u8]) -> usize {
        match self.mode {
            ChunkMode::Fixed(n) => data.len().min(n as usize),
            ChunkMode::ContentDefined => {
                if data.len() <= self.params.min as usize {
                    return data.len();
                }
                let (_, len) = cut_gear(
                    data,
                    self.params.min as usize,
                    self.params.avg as usize,
                    self.params.max as usize,
                    self.mask_s,
                    self.mask_l,
                    self.mask_s << 1,
                    self.mask_l << 1,
                    &self.gear,
                    &self.gear_ls,
                );
                len.max(1)
            }
        }
    }

    /// Streams chunks out of a reader through `buf`, a reusable buffer of up to two maximum
    /// chunks; nothing else is allocated per file, and a small file only touches as many bytes
    /// of the buffer as it has.
    /// `size_hint` (the expected length, if known) keeps the buffer small for small inputs.
    pub fn reader<'c, 'b, R: Read>(
        &'c self,
        reader: R,
        buf: &'b mut Vec<u8>,
        size_hint: Option<u64>,
    ) -> ChunkReader<'c, 'b, R> {
        buf.clear();
        let room = 2 * self.max_size();
        buf.reserve(size_hint.map_or(room, |n| (n as usize).saturating_add(1).min(room)));
        ChunkReader {
            chunker: self,
            reader,
            buf,
            start: 0,
            eof: false,
        }
    }
}

/// Yields successive chunks of a stream; never holds more than two maximum chunks.
pub struct ChunkReader<'c, 'b, R> {
    chunker: &'c Chunker,
    reader: R,
    /// Unconsumed bytes are `buf[start..]`.
    buf: &'b mut Vec<u8>,
    start: usize,
    eof: bool,
}

impl<R: Read> ChunkReader<'_, '_, R> {
    /// The next chunk, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> io::Result<Option<&[u8]>> {
        let max = self.chunker.max_size();
        if self.buf.len() - self.start < max && !self.eof {
            self.buf.drain(..self.start);
            self.start = 0;
            loop {
                let want = (self.buf.capacity().min(2 * max) - self.buf.len()) as u64;
                // `take` bounds the read to the reserved room, so it never reallocates.
                let got = (&mut self.reader).take(want).read_to_end(self.buf)? as u64;
                if got < want {
                    self.eof = true;
                    break;
                }
                if self.buf.len() >= 2 * max {
                    break;
                }
                // Longer than the size hint said: grow to the full window, so cut points
                // never depend on the hint.
                self.buf.reserve(2 * max - self.buf.len());
            }
        }
        if self.start == self.buf.len() {
            return Ok(None);
        }
        let len = self.chunker.cut(&self.buf[self.start..]);
        let chunk = &self.buf[self.start..self.start + len];
        self.start += len;
        Ok(Some(chunk))
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small(seed: u64) -> Chunker {
        Chunker::new(
            ChunkerParams {
                min: 64,
                avg: 256,
                max: 1024,
                seed,
            },
            ChunkMode::ContentDefined,
        )
    }

    fn chunks(c: &Chunker, data: &[u8], read_size: usize) -> Vec<Vec<u8>> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(out.len()).min(self.1);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut buf = Vec::new();
        let hint = read_size.is_multiple_of(3).then_some(read_size as u64);
        let mut r = c.reader(Trickle(data, read_size), &mut buf, hint);
        let mut out = Vec::new();
        while let Some(ch) = r.next_chunk().unwrap() {
            out.push(ch.to_vec());
        }
        out
    }

    proptest! {
        #[test]
        fn chunks_reassemble_respect_bounds_and_ignore_read_sizes(
            data in proptest::collection::vec(any::<u8>(), 0..20_000),
            read_size in 1usize..5000,
            seed in any::<u64>(),
        ) {
            let c = small(seed);
            let a = chunks(&c, &data, read_size);
            let b = chunks(&c, &data, 1 << 20);
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(a.concat(), data.clone());
            for (i, ch) in a.iter().enumerate() {
                prop_assert!(ch.len() <= 1024);
                if i + 1 < a.len() { prop_assert!(ch.len() >= 64); }
            }
        }
    }

    #[test]
    fn an_insertion_only_changes_nearby_chunks() {
        let mut data = vec![0u8; 200_000];
        let mut x = 7u32;
        for b in data.iter_mut() {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *b = (x >> 16) as u8;
        }
        let c = small(42);
        let before = chunks(&c, &data, 4096);
        data.insert(100_000, 0xAB);
        let after = chunks(&c, &data, 4096);
        let same = before.iter().filter(|ch| after.contains(ch)).count();
        assert!(
            same + 4 >= before.len(),
            "{same} of {} chunks survived",
            before.len()
        );
    }

    #[test]
    fn seed_changes_cut_points() {
        let data: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_ne!(
            chunks(&small(1), &data, 9999),
            chunks(&small(2), &data, 9999)
        );
    }

    #[test]
    fn fixed_mode_cuts_at_fixed_offsets() {
        let c = Chunker::new(ChunkerParams::with_seed(0), ChunkMode::Fixed(1000));
        let data = vec![5u8; 2500];
        let lens: Vec<usize> = chunks(&c, &data, 333).iter().map(Vec::len).collect();
        assert_eq!(lens, vec![1000, 1000, 500]);
    }
}
