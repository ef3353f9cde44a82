//! The index: which pack holds each blob, and where.
//!
//! Index files are sealed objects (`LPIX`, see `format`) whose payload is
//!
//! ```text
//! payload = pack_count u32 || pack_count × (pack_id[32] || blob_count u32
//!           || blob_count × (kind u8 || blob_id[32] || offset u32 || length u32 || raw_len u32))
//! ```
//!
//! In memory, [`Index`] keeps one sorted array of 48-byte entries (the blob ID, a pack number,
//! offset, length, and the raw length with the blob kind in its top bit) plus one table of pack
//! IDs. That is 48 bytes per chunk, against about 350 in restic, and lookups are a binary search.

use std::collections::{HashMap, HashSet};

use crate::crypto::Key;
use crate::error::{Error, Result};
use crate::format::{self, Magic, Version};
use crate::id::Id;
use crate::pack::{BlobKind, MAX_BLOB, PackEntry};

/// An index file's pack record: pack ID, then its blob count (u32).
const PACK_REC: usize = 32 + 4;
/// A blob record: kind byte, blob ID, offset, length and raw length (u32 each).
const BLOB_REC: usize = 1 + 32 + 4 + 4 + 4;
/// Largest index file payload accepted from storage.
pub const MAX_INDEX_FILE: usize = 256 * 1024 * 1024;
/// In memory, a blob's kind rides in the top bit of its raw length (blobs are far smaller
/// than 2 GiB), which keeps an entry at 48 bytes.
const TREE_BIT: u32 = 1 << 31;

/// Where a blob lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: Id,
    pub entry: PackEntry,
}

// The memory budget is a format promise: fail the build, not a test, if an entry grows.
const _: () = assert!(std::mem::size_of::<Entry>() == 48);

#[derive(Clone, Copy)]
struct Entry {
    id: [u8; 32],
    pack: u32,
    offset: u32,
    length: u32,
    raw_and_kind: u32,
}

fn prefix16(id: &[u8; 32]) -> usize {
    u16::from_be_bytes([id[0], id[1]]) as usize
}

/// One index file's contents: packs and their blobs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexFile {
    pub packs: Vec<(Id, Vec<PackEntry>)>,
}

impl IndexFile {
    pub fn blob_count(&self) -> usize {
        self.packs.iter().map(|(_, b)| b.len()).sum()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(4 + self.packs.len() * PACK_REC + self.blob_count() * BLOB_REC);
        out.extend_from_slice(&(self.packs.len() as u32).to_le_bytes());
        for (pack, blobs) in &self.packs {
            out.extend_from_slice(&pack.0);
            out.extend_from_slice(&(blobs.len() as u32).to_le_bytes());
            for b in blobs {
                out.push(b.kind.byte());
                out.extend_from_slice(&b.id.0);
                out.extend_from_slice(&b.offset.to_le_bytes());
                out.extend_from_slice(&b.length.to_le_bytes());
                out.extend_from_slice(&b.raw_len.to_le_bytes());
            }
        }
        out
    }

    /// Parses a payload, checking every count against the bytes actually present before it
    /// allocates, so a hostile count cannot demand memory.
    ///
    /// Each pack is named once, and its blobs come in pack order without overlapping (each
    /// starts at or after the end of the one before), as every writer lists them. Records
    /// that repeat compress to almost nothing: without this rule a small index file could
    /// decode into millions of entries and hundreds of MiB.
    pub fn decode(object: &str, data: &[u8]) -> Result<IndexFile> {
        let bad = |why: &str| Error::corrupt(object, why.to_string());
        let mut pos = 0usize;
        let mut take = |n: usize| -> Result<&[u8]> {
            if data.len() - pos < n {
                return Err(bad("truncated index"));
            }
            let s = &data[pos..pos + n];
            pos += n;
            Ok(s)
        };
        let u32_of = |s: &[u8]| u32::from_le_bytes(s.try_into().expect("4 bytes"));
        let packs = u32_of(take(4)?) as usize;
        if packs > data.len() / PACK_REC {
            return Err(bad("pack count larger than the file"));
        }
        let mut out = IndexFile {
            packs: Vec::with_capacity(packs),
        };
        let mut named = HashSet::new();
        for _ in 0..packs {
            let pack = Id(take(32)?.try_into().expect("32"));
            if !named.insert(pack) {
                return Err(Error::corrupt(
                    object,
                    format!("pack {} is named twice", pack.short()),
                ));
            }
            let n = u32_of(take(4)?) as usize;
            if n > data.len() / BLOB_REC {
                return Err(bad("blob count larger than the file"));
            }
            let mut blobs = Vec::with_capacity(n);
            // Where the blob before ends.
            let mut end = 0u64;
            for _ in 0..n {
                let rec = take(BLOB_REC)?;
                let kind = BlobKind::from_byte(rec[0]).ok_or_else(|| bad("unknown blob kind"))?;
                let e = PackEntry {
                    kind,
                    id: Id(rec[1..33].try_into().expect("32")),
                    offset: u32_of(&rec[33..37]),
                    length: u32_of(&rec[37..41]),
                    raw_len: u32_of(&rec[41..45]),
                };
                // Stored bytes are the plaintext or a shorter zstd frame, plus the tag: a
                // longer entry would have readers fetch (and hold) bytes no blob has.
                if e.raw_len > MAX_BLOB
                    || (e.length as usize) < crate::crypto::TAG_LEN
                    || e.length as u64 > e.raw_len as u64 + crate::crypto::TAG_LEN as u64
                {
                    return Err(bad("blob size out of range"));
                }
                if (e.offset as u64) < end {
                    return Err(Error::corrupt(
                        object,
                        format!(
                            "pack {}: blob {} at offset {} starts before the blob listed \
                             before it ends ({end}); blobs must be listed in pack order, \
                             each once",
                            pack.short(),
                            e.id.short(),
                            e.offset
                        ),
                    ));
                }
                end = e.offset as u64 + e.length as u64;
                blobs.push(e);
            }
            out.packs.push((pack, blobs));
        }
        if pos != data.len() {
            return Err(bad("trailing bytes after the index"));
        }
        Ok(out)
    }

    pub fn seal(&self, master: &Key) -> Vec<u8> {
        format::seal(master, Magic::Index, &self.encode(), 1)
    }

    pub fn open(master: &Key, object: &str, bytes: &[u8]) -> Result<IndexFile> {
        match format::open(master, Magic::Index, object, bytes, MAX_INDEX_FILE)? {
            (Version::V1, payload) => IndexFile::decode(object, &payload),
        }
    }
}

/// The in-memory index of a repository. See the module documentation for its layout.
#[derive(Default)]
pub struct Index {
    packs: Vec<Id>,
    pack_numbers: HashMap<Id, u32>,
    /// Per pack number: whether the pack holds any data blob (else it holds only trees).
    pack_has_data: Vec<bool>,
    entries: Vec<Entry>,
    /// `buckets[b]..buckets[b + 1]` are the entries whose ID starts with the 16-bit prefix `b`.
    /// IDs are uniformly distributed, so a lookup binary-searches a handful of entries
    /// (256 KiB for the table, whatever the repository size).
    buckets: Vec<u32>,
    sorted: bool,
    /// Further copies of blobs stored more than once, sorted by ID: readers fall back to them
    /// when the first copy is damaged, or was indexed by a writer who lied about it.
    alternates: Vec<Entry>,
}

impl Index {
    pub fn new() -> Index {
        Index {
            sorted: true,
            ..Default::default()
        }
    }

    /// Adds every blob of a pack. Call [`Index::finish`] before looking anything up.
    pub fn add_pack(&mut self, pack: Id, blobs: &[PackEntry]) {
        let n = *self.pack_numbers.entry(pack).or_insert_with(|| {
            self.packs.push(pack);
            self.pack_has_data.push(false);
            (self.packs.len() - 1) as u32
        });
        if blobs.iter().any(|b| b.kind == BlobKind::Data) {
            self.pack_has_data[n as usize] = true;
        }
        self.entries.reserve(blobs.len());
        for b in blobs {
            let kind_bit = if b.kind == BlobKind::Tree {
                TREE_BIT
            } else {
                0
            };
            self.entries.push(Entry {
                id: b.id.0,
                pack: n,
                offset: b.offset,
                length: b.length,
                raw_and_kind: b.raw_len | kind_bit,
            });
        }
        self.sorted = false;
    }

    pub fn add_file(&mut self, file: &IndexFile) {
        for (pack, blobs) in &file.packs {
            self.add_pack(*pack, blobs);
        }
    }

    /// Sorts, and keeps one place per blob in the lookup table; further copies of a blob
    /// stored more than once go to [`Index::alternates`].
    pub fn finish(&mut self) {
        self.entries
            .sort_unstable_by(|a, b| a.id.cmp(&b.id).then(a.pack.cmp(&b.pack)));
        let alternates = &mut self.alternates;
        self.entries.dedup_by(|later, kept| {
            let same = later.id == kept.id;
            if same {
                alternates.push(*later);
            }
            same
        });
        // In ID order also when `finish` runs again after more packs were added.
        self.alternates.sort_by_key(|e| e.id);
        self.entries.shrink_to_fit();
        self.buckets = vec![0u32; (1 << 16) + 1];
        for e in &self.entries {
            self.buckets[prefix16(&e.id) + 1] += 1;
        }
        for b in 1..self.buckets.len() {
            self.buckets[b] += self.buckets[b - 1];
        }
        self.sorted = true;
    }

    fn find(&self, id: &Id) -> Option<&Entry> {
        debug_assert!(self.sorted, "Index::finish must run before lookups");
        let b = prefix16(&id.0);
        let (lo, hi) = match self.buckets.get(b..b + 2) {
            Some(r) => (r[0] as usize, r[1] as usize),
            None => (0, self.entries.len()),
        };
        let bucket = &self.entries[lo..hi];
        bucket
            .binary_search_by(|e| e.id.cmp(&id.0))
            .ok()
            .map(|i| &bucket[i])
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.find(id).is_some()
    }

    /// The number of the pack (a position in [`Index::pack_ids`]) that holds `id`.
    pub fn pack_number(&self, id: &Id) -> Option<usize> {
        self.find(id).map(|e| e.pack as usize)
    }

    pub fn get(&self, id: &Id) -> Option<BlobLocation> {
        self.find(id).map(|e| self.location(e))
    }

    /// The other places a blob is stored, beyond [`Index::get`]'s.
    pub fn alternates(&self, id: &Id) -> Vec<BlobLocation> {
        let start = self.alternates.partition_point(|e| e.id < id.0);
        self.alternates[start..]
            .iter()
            .take_while(|e| e.id == id.0)
            .map(|e| self.location(e))
            .collect()
    }

    fn location(&self, e: &Entry) -> BlobLocation {
        BlobLocation {
            pack: self.packs[e.pack as usize],
            entry: PackEntry {
                kind: if e.raw_and_kind & TREE_BIT != 0 {
                    BlobKind::Tree
                } else {
                    BlobKind::Data
                },
                id: Id(e.id),
                offset: e.offset,
                length: e.length,
                raw_len: e.raw_and_kind & !TREE_BIT,
            },
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn pack_ids(&self) -> &[Id] {
        &self.packs
    }

    /// Whether `pack` is indexed and holds trees only (packers keep trees and data apart).
    pub fn is_tree_pack(&self, pack: &Id) -> bool {
        self.pack_numbers
            .get(pack)
            .is_some_and(|&n| !self.pack_has_data[n as usize])
    }

    /// Every blob with its location, in ID order.
    pub fn iter(&self) -> impl Iterator<Item = BlobLocation> + '_ {
        self.entries.iter().map(|e| self.location(e))
    }

    /// Bytes of memory per indexed blob, for the record.
    pub const BYTES_PER_BLOB: usize = std::mem::size_of::<Entry>();
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An entry with its offset still to be placed: (kind, ID, gap before it, length, raw
    /// length).
    fn arb_entry() -> impl Strategy<Value = (bool, [u8; 32], u32, u32, u32)> {
        (
            any::<bool>(),
            any::<[u8; 32]>(),
            0u32..1 << 20,
            16u32..1 << 24,
            0..MAX_BLOB,
        )
            // A stored blob is at most its plaintext plus the tag.
            .prop_map(|(t, id, gap, length, raw_len)| {
                (t, id, gap, length, raw_len.max(length - 16))
            })
    }

    /// A pack's entries as writers list them: in pack order, from offset 40, with any gaps.
    fn arb_pack() -> impl Strategy<Value = Vec<PackEntry>> {
        proptest::collection::vec(arb_entry(), 0..10).prop_map(|raw| {
            let mut at = 40u32;
            raw.into_iter()
                .map(|(t, id, gap, length, raw_len)| {
                    let offset = at + gap;
                    at = offset + length;
                    PackEntry {
                        kind: if t { BlobKind::Tree } else { BlobKind::Data },
                        id: Id(id),
                        offset,
                        length,
                        raw_len,
                    }
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn index_files_round_trip(packs in proptest::collection::vec((any::<[u8; 32]>(), arb_pack()), 0..6)) {
            let file = IndexFile { packs: packs.into_iter().map(|(p, b)| (Id(p), b)).collect() };
            let k = Key::generate();
            let sealed = file.seal(&k);
            prop_assert_eq!(IndexFile::open(&k, "i", &sealed).unwrap(), file.clone());
            let mut idx = Index::new();
            idx.add_file(&file);
            idx.finish();
            for (pack, blobs) in &file.packs {
                for b in blobs {
                    let loc = idx.get(&b.id).unwrap();
                    // Random IDs are unique, so each lookup returns exactly what was added.
                    prop_assert_eq!(loc.pack, *pack);
                    prop_assert_eq!(loc.entry, *b);
                }
            }
            prop_assert!(!idx.contains(&Id([0xEE; 32])) || file.packs.iter().any(|(_, b)| b.iter().any(|e| e.id == Id([0xEE; 32]))));
        }

        #[test]
        fn decoding_garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..500)) {
            let _ = IndexFile::decode("i", &data);
        }
    }

    #[test]
    fn hostile_counts_are_refused() {
        let mut data = u32::MAX.to_le_bytes().to_vec();
        data.extend_from_slice(&[0; 40]);
        assert!(IndexFile::decode("i", &data).is_err());
    }

    fn entry(n: u8, offset: u32, length: u32) -> PackEntry {
        PackEntry {
            kind: BlobKind::Data,
            id: Id([n; 32]),
            offset,
            length,
            raw_len: length - 16,
        }
    }

    /// An entry longer than its plaintext and tag would have readers fetch bytes no blob
    /// has (a forged index pointing at a whole large pack): damage.
    #[test]
    fn a_blob_longer_than_its_plaintext_and_tag_is_refused() {
        let p = Id([1; 32]);
        let mut e = entry(1, 40, 116);
        assert!(decode_packs(vec![(p, vec![e])]).is_ok(), "stored raw");
        e.raw_len = 99;
        let err = decode_packs(vec![(p, vec![e])]).unwrap_err().to_string();
        assert!(err.contains("blob size out of range"), "{err}");
    }

    fn decode_packs(packs: Vec<(Id, Vec<PackEntry>)>) -> Result<IndexFile> {
        IndexFile::decode("index/x", &IndexFile { packs }.encode())
    }

    /// Writers list each pack once, its blobs in pack order; gaps between blobs (what a
    /// repack left) are allowed, anything else is refused with the pack and blob named.
    #[test]
    fn blobs_out_of_pack_order_overlapping_or_repeated_are_refused() {
        let p = Id([1; 32]);
        let ordered = vec![entry(1, 40, 20), entry(2, 60, 20), entry(3, 200, 16)];
        assert!(decode_packs(vec![(p, ordered.clone())]).is_ok());
        for (blobs, blob) in [
            (vec![entry(1, 60, 20), entry(2, 40, 20)], 2),
            (vec![entry(1, 40, 20), entry(2, 59, 20)], 2),
            (vec![entry(1, 40, 20), entry(1, 40, 20)], 1),
        ] {
            let err = decode_packs(vec![(p, blobs)]).unwrap_err().to_string();
            let want = format!("pack {}: blob {}", p.short(), Id([blob; 32]).short());
            assert!(err.contains(&want) && err.contains("pack order"), "{err}");
        }
        let twice = vec![(p, vec![entry(1, 40, 20)]), (p, vec![entry(2, 60, 20)])];
        let err = decode_packs(twice).unwrap_err().to_string();
        assert!(err.contains("named twice"), "{err}");
    }

    #[test]
    fn a_blob_stored_twice_keeps_its_other_copy_as_an_alternate() {
        let id = Id([7; 32]);
        let entry = |offset| PackEntry {
            kind: BlobKind::Data,
            id,
            offset,
            length: 100,
            raw_len: 84,
        };
        let (p1, p2) = (Id([1; 32]), Id([2; 32]));
        let mut index = Index::new();
        index.add_pack(p1, &[entry(40)]);
        index.add_pack(p2, &[entry(140)]);
        index.finish();
        assert_eq!(index.get(&id).unwrap().pack, p1);
        let alts = index.alternates(&id);
        assert_eq!(alts.len(), 1);
        assert_eq!((alts[0].pack, alts[0].entry.offset), (p2, 140));
        assert!(index.alternates(&Id([8; 32])).is_empty());
    }

    #[test]
    fn a_pack_is_a_tree_pack_only_when_every_index_file_lists_only_trees_in_it() {
        let blob = |kind, n| PackEntry {
            kind,
            id: Id([n; 32]),
            offset: 40 + 100 * n as u32,
            length: 100,
            raw_len: 84,
        };
        let (trees, mixed, later_mixed) = (Id([1; 32]), Id([2; 32]), Id([3; 32]));
        let mut index = Index::new();
        index.add_pack(trees, &[blob(BlobKind::Tree, 1), blob(BlobKind::Tree, 2)]);
        index.add_pack(mixed, &[blob(BlobKind::Tree, 3), blob(BlobKind::Data, 4)]);
        index.add_pack(later_mixed, &[blob(BlobKind::Tree, 5)]);
        index.add_pack(later_mixed, &[blob(BlobKind::Data, 6)]);
        index.finish();
        assert!(index.is_tree_pack(&trees));
        assert!(!index.is_tree_pack(&mixed));
        assert!(!index.is_tree_pack(&later_mixed));
        assert!(!index.is_tree_pack(&Id([9; 32])), "a pack no index names");
    }
}
