//! Pack files: many encrypted blobs in one object, with an encrypted trailer that lists them.
//!
//! ```text
//! pack    = header("LPPK", 1) || pack_id[32] || blob* || trailer || trailer_len u32 LE
//! blob    = AES-256-GCM(subkey(master, pack_id), nonce = blob offset, aad = kind || blob_id)
//!           of codec payload (zstd, or raw when zstd does not shrink it)
//! trailer = AES-256-GCM(same subkey, nonce = FINAL, aad = header || pack_id) of
//!           count u32 || count × (kind u8 || blob_id[32] || length u32 || raw_len u32)
//! ```
//!
//! The pack ID is a fresh random value and doubles as the subkey salt. Blob offsets strictly
//! increase inside a pack and every blob is at least a tag long, so using the offset as the
//! nonce never repeats one under a subkey; [`OffsetNonces`] enforces it. A blob whose stored
//! length minus the tag equals its raw length is stored raw; anything shorter is zstd.

use crate::crypto::{Cipher, Key, NonceSequence, NonceValue, TAG_LEN};
use crate::error::{Error, Result};
use crate::format::{HEADER_LEN, Magic, Version};
use crate::id::Id;

/// The start of a pack: header and pack ID.
pub const PACK_HEADER_LEN: usize = HEADER_LEN + 32;
pub const TRAILER_ENTRY_LEN: usize = 1 + 32 + 4 + 4;
/// Largest plaintext blob accepted from storage. Chunks are at most 16 MiB; trees are capped
/// at this size when written.
pub const MAX_BLOB: u32 = 64 * 1024 * 1024;
/// Largest pack trailer accepted from storage.
const MAX_TRAILER: u64 = 64 * 1024 * 1024;

/// What a blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum BlobKind {
    Data,
    Tree,
}

impl BlobKind {
    pub fn byte(self) -> u8 {
        match self {
            BlobKind::Data => 0,
            BlobKind::Tree => 1,
        }
    }

    pub fn from_byte(b: u8) -> Option<BlobKind> {
        match b {
            0 => Some(BlobKind::Data),
            1 => Some(BlobKind::Tree),
            _ => None,
        }
    }
}

/// One blob's place in a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackEntry {
    pub kind: BlobKind,
    pub id: Id,
    pub offset: u32,
    pub length: u32,
    pub raw_len: u32,
}

impl PackEntry {
    pub fn is_compressed(&self) -> bool {
        self.length as u64 - TAG_LEN as u64 != self.raw_len as u64
    }
}

fn blob_aad(kind: BlobKind, id: &Id) -> [u8; 33] {
    let mut aad = [0u8; 33];
    aad[0] = kind.byte();
    aad[1..].copy_from_slice(&id.0);
    aad
}

/// Nonces for blobs, derived from strictly increasing offsets.
struct OffsetNonces {
    last: u64,
}

impl OffsetNonces {
    fn for_offset(&mut self, offset: u64) -> NonceValue {
        assert!(offset > self.last, "pack offsets only grow");
        self.last = offset;
        NonceValue::at(offset)
    }
}

/// The largest pack a writer with this target makes: the target, one more blob, the trailer.
pub fn max_pack_size(target: usize) -> u64 {
    target as u64 + 3 * MAX_BLOB as u64
}

/// Capacity to reserve for a pack buffer of `target` bytes. A pack can overshoot its target by
/// one blob, so the buffer never reallocates; and it is at least 40 MiB, above glibc's 32 MiB
/// cap on its adaptive mmap threshold, so every pack buffer is a mapping of its own that goes
/// back to the system when freed. Smaller buffers would move that threshold up and land in the
/// thread arenas, where they fragment (measured: 150 MiB peak instead of about 100 MiB for a
/// kernel-tree backup). Only the bytes written are ever touched, so this costs no memory.
pub fn pack_buffer_capacity(target: usize) -> usize {
    (target + 2 * MAX_BLOB as usize).max(40 << 20)
}

/// Builds one pack in memory.
pub struct PackWriter {
    id: Id,
    cipher: Cipher,
    nonces: OffsetNonces,
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl PackWriter {
    pub fn new(master: &Key, capacity: usize) -> PackWriter {
        PackWriter::with_id(master, Id::random(), capacity)
    }

    /// A writer for a given pack ID, which is also the subkey salt: only [`PackWriter::new`]
    /// (fresh random IDs) and the known-answer tests (a fixed one) call it.
    fn with_id(master: &Key, id: Id, capacity: usize) -> PackWriter {
        let mut buf = Vec::with_capacity(capacity);
        buf.extend_from_slice(&Magic::Pack.header());
        buf.extend_from_slice(&id.0);
        PackWriter {
            id,
            cipher: master.subkey(&id.0).cipher(),
            nonces: OffsetNonces {
                last: PACK_HEADER_LEN as u64 - 1,
            },
            buf,
            entries: Vec::new(),
        }
    }

    pub fn id(&self) -> Id {
        self.id
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn count(&self) -> usize {
        self.entries.len()
    }

    /// Appends one blob. `payload` is the stored codec payload (compressed or raw) and
    /// `raw_len` the plaintext length.
    pub fn add(&mut self, kind: BlobKind, id: Id, payload: &[u8], raw_len: u32) -> PackEntry {
        let offset = self.buf.len() as u64;
        let nonce = self.nonces.for_offset(offset);
        self.cipher
            .seal_into(nonce, &blob_aad(kind, &id), payload, &mut self.buf);
        let entry = PackEntry {
            kind,
            id,
            offset: offset as u32,
            length: (self.buf.len() as u64 - offset) as u32,
            raw_len,
        };
        self.entries.push(entry);
        entry
    }

    /// Writes the trailer and returns the pack bytes and its entries.
    pub fn finish(mut self) -> (Id, Vec<u8>, Vec<PackEntry>) {
        let mut trailer = Vec::with_capacity(4 + self.entries.len() * TRAILER_ENTRY_LEN);
        trailer.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            trailer.push(e.kind.byte());
            trailer.extend_from_slice(&e.id.0);
            trailer.extend_from_slice(&e.length.to_le_bytes());
            trailer.extend_from_slice(&e.raw_len.to_le_bytes());
        }
        let start = self.buf.len();
        let nonce = NonceSequence::new()
            .final_nonce()
            .expect("a new sequence has its final nonce");
        let aad: Vec<u8> = self.buf[..PACK_HEADER_LEN].to_vec();
        self.cipher.seal_into(nonce, &aad, &trailer, &mut self.buf);
        let tlen = (self.buf.len() - start) as u32;
        self.buf.extend_from_slice(&tlen.to_le_bytes());
        (self.id, self.buf, self.entries)
    }
}

/// Compresses a blob for storage: zstd when it shrinks the data, raw otherwise.
pub fn encode_payload(
    compressor: &mut zstd::bulk::Compressor<'_>,
    data: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
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

/// Authenticates and decrypts one blob, leaving its stored codec payload (for repacking
/// without recompressing).
pub fn decrypt_payload(
    cipher: &Cipher,
    entry: &PackEntry,
    mut stored: Vec<u8>,
    object: &str,
) -> Result<Vec<u8>> {
    if entry.raw_len > MAX_BLOB || stored.len() < TAG_LEN {
        return Err(Error::corrupt(
            object,
            format!("blob {} has an impossible size", entry.id.short()),
        ));
    }
    if !cipher.open_in_place(
        NonceValue::at(entry.offset as u64),
        &blob_aad(entry.kind, &entry.id),
        &mut stored,
    ) {
        return Err(Error::corrupt(
            object,
            format!("blob {} failed authentication", entry.id.short()),
        ));
    }
    Ok(stored)
}

thread_local! {
    /// One zstd decompression context per thread: creating one per blob costs more than
    /// decompressing a small tree.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decrypts and decodes one blob read from storage (`stored` is exactly the blob's bytes).
pub fn decode_blob(
    cipher: &Cipher,
    entry: &PackEntry,
    stored: Vec<u8>,
    object: &str,
) -> Result<Vec<u8>> {
    let stored = decrypt_payload(cipher, entry, stored, object)?;
    if stored.len() as u64 == entry.raw_len as u64 {
        return Ok(stored);
    }
    if stored.len() as u64 > entry.raw_len as u64 {
        return Err(Error::corrupt(
            object,
            format!("blob {} is longer than recorded", entry.id.short()),
        ));
    }
    let out = DECOMPRESSOR
        .with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = Some(zstd::bulk::Decompressor::new()?);
            }
            d.as_mut()
                .expect("just created")
                .decompress(&stored, entry.raw_len as usize)
        })
        .map_err(|e| Error::corrupt(object, format!("blob {}: zstd: {e}", entry.id.short())))?;
    if out.len() != entry.raw_len as usize {
        return Err(Error::corrupt(
            object,
            format!("blob {} has the wrong length", entry.id.short()),
        ));
    }
    Ok(out)
}

/// The length of a pack's encrypted trailer, from the pack's last four bytes, checked against
/// the pack's size.
pub fn trailer_len(object: &str, last4: &[u8], pack_size: u64) -> Result<u64> {
    if last4.len() != 4 || pack_size < (PACK_HEADER_LEN + TAG_LEN + 4) as u64 {
        return Err(Error::corrupt(object, "too short to be a pack"));
    }
    let n = u32::from_le_bytes(last4.try_into().expect("4 bytes")) as u64;
    if n < TAG_LEN as u64 + 4 || n > MAX_TRAILER || n + 4 + PACK_HEADER_LEN as u64 > pack_size {
        return Err(Error::corrupt(object, "trailer length out of range"));
    }
    Ok(n)
}

/// Decrypts a pack's trailer. `header` is the pack's first [`PACK_HEADER_LEN`] bytes and
/// `trailer` the encrypted trailer; `pack_size` bounds the entries.
pub fn parse_trailer(
    master: &Key,
    object: &str,
    header: &[u8],
    mut trailer: Vec<u8>,
    pack_size: u64,
) -> Result<(Id, Vec<PackEntry>)> {
    let Version::V1 = Magic::Pack.check(object, header)?;
    if header.len() != PACK_HEADER_LEN {
        return Err(Error::corrupt(object, "bad pack header"));
    }
    let id = Id(header[HEADER_LEN..].try_into().expect("32 bytes"));
    // Blobs end where the trailer starts.
    let blob_limit = pack_size.saturating_sub(4 + trailer.len() as u64);
    let cipher = master.subkey(&id.0).cipher();
    let nonce = NonceValue::at(NonceValue::FINAL);
    if !cipher.open_in_place(nonce, header, &mut trailer) {
        return Err(Error::corrupt(object, "pack trailer failed authentication"));
    }
    if trailer.len() < 4 {
        return Err(Error::corrupt(object, "pack trailer truncated"));
    }
    let count = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes")) as usize;
    if trailer.len() != 4 + count * TRAILER_ENTRY_LEN {
        return Err(Error::corrupt(
            object,
            "pack trailer length does not match its count",
        ));
    }
    let mut entries = Vec::with_capacity(count);
    let mut offset = PACK_HEADER_LEN as u64;
    for rec in trailer[4..].chunks_exact(TRAILER_ENTRY_LEN) {
        let kind = BlobKind::from_byte(rec[0])
            .ok_or_else(|| Error::corrupt(object, "unknown blob kind in trailer"))?;
        let length = u32::from_le_bytes(rec[33..37].try_into().expect("4"));
        let raw_len = u32::from_le_bytes(rec[37..41].try_into().expect("4"));
        if (length as usize) < TAG_LEN || raw_len > MAX_BLOB || offset + length as u64 > blob_limit
        {
            return Err(Error::corrupt(object, "pack trailer entry out of range"));
        }
        entries.push(PackEntry {
            kind,
            id: Id(rec[1..33].try_into().expect("32")),
            offset: offset as u32,
            length,
            raw_len,
        });
        offset += length as u64;
    }
    Ok((id, entries))
}

/// The cipher for reading blobs of one pack.
pub fn pack_cipher(master: &Key, pack: &Id) -> Cipher {
    master.subkey(&pack.0).cipher()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(blobs: &[(bool, Vec<u8>)]) -> Result<()> {
        let master = Key::generate();
        let mut c = zstd::bulk::Compressor::new(3).unwrap();
        let mut w = PackWriter::new(&master, 1024);
        let mut payload = Vec::new();
        for (tree, data) in blobs {
            let kind = if *tree {
                BlobKind::Tree
            } else {
                BlobKind::Data
            };
            encode_payload(&mut c, data, &mut payload);
            w.add(
                kind,
                Id(*blake3::hash(data).as_bytes()),
                &payload,
                data.len() as u32,
            );
        }
        let (id, bytes, entries) = w.finish();
        let size = bytes.len() as u64;
        let tl = trailer_len("p", &bytes[bytes.len() - 4..], size)?;
        let t_start = (size - 4 - tl) as usize;
        let (pid, parsed) = parse_trailer(
            &master,
            "p",
            &bytes[..PACK_HEADER_LEN],
            bytes[t_start..bytes.len() - 4].to_vec(),
            size,
        )?;
        assert_eq!(pid, id);
        assert_eq!(parsed, entries);
        let cipher = pack_cipher(&master, &id);
        for (e, (_, data)) in parsed.iter().zip(blobs) {
            let stored = bytes[e.offset as usize..(e.offset + e.length) as usize].to_vec();
            assert_eq!(&decode_blob(&cipher, e, stored, "p")?, data);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn packs_round_trip(blobs in proptest::collection::vec((any::<bool>(), proptest::collection::vec(0u8..4, 0..3000)), 0..20)) {
            roundtrip(&blobs).unwrap();
        }
    }

    #[test]
    fn a_flipped_byte_is_caught_and_named() {
        let master = Key::generate();
        let mut c = zstd::bulk::Compressor::new(3).unwrap();
        let mut w = PackWriter::new(&master, 1024);
        let data = b"some data some data some data".to_vec();
        let mut payload = Vec::new();
        encode_payload(&mut c, &data, &mut payload);
        let e = w.add(BlobKind::Data, Id([1; 32]), &payload, data.len() as u32);
        let (id, mut bytes, _) = w.finish();
        bytes[e.offset as usize + 2] ^= 0x10;
        let stored = bytes[e.offset as usize..(e.offset + e.length) as usize].to_vec();
        let err = decode_blob(&pack_cipher(&master, &id), &e, stored, "data/xx").unwrap_err();
        assert!(err.to_string().contains("data/xx"), "{err}");
        // A hostile trailer length is refused before any allocation.
        assert!(trailer_len("p", &u32::MAX.to_le_bytes(), 100).is_err());
    }

    /// A pack written today has exactly the bytes an independent writer makes from the same
    /// blobs: offsets as nonces, kind and ID as associated data, the trailer last.
    #[test]
    fn packs_are_written_byte_for_byte_as_documented() {
        use crate::testutil::{key, unhex, vectors as v};
        let ids = crate::crypto::IdKey::new(&key(v::ID_KEY));
        let blobs = [
            (v::PACK_BLOB_0, v::PACK_PAYLOAD_0),
            (v::PACK_BLOB_1, v::PACK_PAYLOAD_1),
            (v::PACK_BLOB_2, v::PACK_PAYLOAD_2),
        ];
        let pack_id = Id(unhex(v::PACK_ID).try_into().unwrap());
        let mut w = PackWriter::with_id(&key(v::MASTER), pack_id, 4096);
        for ((plain, payload), &(kind, ..)) in blobs.iter().zip(v::PACK_ENTRIES) {
            let plain = unhex(plain);
            let kind = BlobKind::from_byte(kind).unwrap();
            w.add(kind, ids.id(&plain), &unhex(payload), plain.len() as u32);
        }
        let (_, bytes, entries) = w.finish();
        assert_eq!(hex::encode(bytes), v::PACK);
        let placed: Vec<_> = entries
            .iter()
            .map(|e| (e.kind.byte(), e.offset, e.length, e.raw_len))
            .collect();
        assert_eq!(placed, v::PACK_ENTRIES);
    }
}
