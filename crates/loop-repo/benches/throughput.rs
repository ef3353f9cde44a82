//! Throughput of each pipeline stage on one core: `cargo bench -p loop-repo`.
//!
//! Prints MB/s for chunking, keyed BLAKE3, zstd at levels 1 to 3, AES-256-GCM sealing, and
//! the whole per-chunk path, on 64 MiB of source-like text and 64 MiB of random bytes. A plain
//! harness keeps the dependency tree small; each number is the best of five runs.

use std::hint::black_box;
use std::time::Instant;

use loop_repo::Id;
use loop_repo::chunker::{ChunkMode, Chunker, ChunkerParams};
use loop_repo::crypto::{IdKey, Key};
use loop_repo::pack::{BlobKind, PackWriter, encode_payload};
use loop_testkit::data::{noise, text};

const SIZE: usize = 64 << 20;

fn best_of(label: &str, bytes: usize, mut f: impl FnMut()) {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("{label:<40} {:>9.0} MB/s", bytes as f64 / best / 1e6);
}

fn chunks(c: &Chunker, data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let n = c.cut(&data[pos..]);
        out.push((pos, n));
        pos += n;
    }
    out
}

fn main() {
    let chunker = Chunker::new(
        ChunkerParams::with_seed(0x1234_5678),
        ChunkMode::ContentDefined,
    );
    let ids = IdKey::new(&Key::generate());
    let master = Key::generate();
    for (name, data) in [("text", text(SIZE, 1)), ("random", noise(SIZE, 1))] {
        println!("-- {name} ({} MiB)", SIZE >> 20);
        best_of("chunking (FastCDC, seeded)", SIZE, || {
            black_box(chunks(&chunker, &data));
        });
        let cuts = chunks(&chunker, &data);
        best_of("keyed BLAKE3 IDs", SIZE, || {
            for &(p, n) in &cuts {
                black_box(ids.id(&data[p..p + n]));
            }
        });
        for level in 1..=3 {
            let mut comp = zstd::bulk::Compressor::new(level).unwrap();
            let mut out = Vec::new();
            let mut stored = 0usize;
            best_of(&format!("zstd level {level}"), SIZE, || {
                stored = 0;
                for &(p, n) in &cuts {
                    encode_payload(&mut comp, &data[p..p + n], &mut out);
                    stored += out.len();
                }
            });
            println!(
                "{:<40} {:>9.3}",
                format!("  ratio at level {level}"),
                SIZE as f64 / stored as f64
            );
        }
        best_of("AES-256-GCM into packs", SIZE, || {
            let mut w = PackWriter::new(&master, SIZE + (1 << 20));
            for &(p, n) in &cuts {
                w.add(BlobKind::Data, Id::default(), &data[p..p + n], n as u32);
            }
            black_box(w.finish());
        });
        let mut comp = zstd::bulk::Compressor::new(3).unwrap();
        let mut out = Vec::new();
        best_of("all stages (chunk, ID, zstd 3, seal)", SIZE, || {
            let mut w = PackWriter::new(&master, SIZE + (1 << 20));
            for (p, n) in chunks(&chunker, &data) {
                let id = ids.id(&data[p..p + n]);
                encode_payload(&mut comp, &data[p..p + n], &mut out);
                w.add(BlobKind::Data, id, &out, n as u32);
            }
            black_box(w.finish());
        });
    }
}
