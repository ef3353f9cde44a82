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
//!
//! Every check of a pack's structure lives here, so nothing else reads the layout:
//! [`check_envelope`] (and [`EnvelopeProbe`] for a stream) tells without the key whether an
//! upload is a pack stored under its own ID; [`check_layout`] compares index entries with a
//! pack's size without reading it; [`read_contents`] opens a whole pack's trailer.

use std::fmt;

use crate::crypto::{Cipher, Key, NonceSequence, NonceValue, TAG_LEN};
use crate::error::{Error, Result};
use crate::format::{HEADER_LEN, Magic, Version};
use crate::id::Id;

mod payload;
pub use payload::{encode_payload, looks_random};

/// The start of a pack: header and pack ID.
pub const PACK_HEADER_LEN: usize = HEADER_LEN + 32;
const TRAILER_ENTRY_LEN: usize = 1 + 32 + 4 + 4;
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
    decode_payload(
        entry,
        decrypt_payload(cipher, entry, stored, object)?,
        object,
    )
}

/// The blob a decrypted payload holds (decompressed when it was stored compressed).
pub fn decode_payload(entry: &PackEntry, stored: Vec<u8>, object: &str) -> Result<Vec<u8>> {
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
    let too_short = || Error::corrupt(object, "too short to be a pack");
    if pack_size < (PACK_HEADER_LEN + TAG_LEN + 4) as u64 {
        return Err(too_short());
    }
    let n = stored_trailer_len(last4).ok_or_else(too_short)?;
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
    let id = header_id(header);
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
        if (length as usize) < TAG_LEN
            || raw_len > MAX_BLOB
            || length as u64 > raw_len as u64 + TAG_LEN as u64
            || offset + length as u64 > blob_limit
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

// ---- verification ----

/// Why a pack's envelope is wrong: what [`check_envelope`] can tell without the key.
#[derive(Debug, thiserror::Error)]
pub enum PackEnvelopeError {
    /// Not a pack, a newer version, or shorter than the frame header; the error names the pack.
    #[error(transparent)]
    Header(Error),
    #[error("a pack is shorter than its header and trailer length")]
    TooShort,
    #[error("the pack ID inside the pack differs from its name")]
    WrongId,
    #[error("the pack's trailer length points outside the pack")]
    TrailerOutside,
}

/// Checks what can be checked of a pack without its key: the header, that the pack ID inside
/// is `expected` (a pack is stored under its ID), and that the trailer length points inside
/// the pack. `head` is the pack's start (its first [`PACK_HEADER_LEN`] bytes, or all of a
/// shorter pack), `last4` its last four bytes and `size` its length. [`EnvelopeProbe`]
/// gathers these from a stream.
pub fn check_envelope(
    expected: &Id,
    head: &[u8],
    last4: &[u8],
    size: u64,
) -> std::result::Result<(), PackEnvelopeError> {
    Magic::Pack
        .check(&expected.to_hex(), head)
        .map_err(PackEnvelopeError::Header)?;
    if size < (PACK_HEADER_LEN + 4) as u64 || head.len() < PACK_HEADER_LEN {
        return Err(PackEnvelopeError::TooShort);
    }
    if header_id(head) != *expected {
        return Err(PackEnvelopeError::WrongId);
    }
    let trailer = stored_trailer_len(last4).ok_or(PackEnvelopeError::TooShort)?;
    if trailer + PACK_HEADER_LEN as u64 + 4 > size {
        return Err(PackEnvelopeError::TrailerOutside);
    }
    Ok(())
}

/// Gathers what [`check_envelope`] reads while a pack streams past, so an upload is checked
/// without being held in memory: its first [`PACK_HEADER_LEN`] bytes and its last four.
#[derive(Debug, Default)]
pub struct EnvelopeProbe {
    head: Vec<u8>,
    last4: Vec<u8>,
    size: u64,
}

impl EnvelopeProbe {
    /// Takes the next bytes of the pack.
    pub fn observe(&mut self, chunk: &[u8]) {
        self.size += chunk.len() as u64;
        if self.head.len() < PACK_HEADER_LEN {
            let take = (PACK_HEADER_LEN - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.last4
            .extend_from_slice(&chunk[chunk.len().saturating_sub(4)..]);
        let excess = self.last4.len().saturating_sub(4);
        self.last4.drain(..excess);
    }

    /// [`check_envelope`] on everything observed so far.
    pub fn check(&self, expected: &Id) -> std::result::Result<(), PackEnvelopeError> {
        check_envelope(expected, &self.head, &self.last4, self.size)
    }
}

/// The pack ID in a pack's header; `head` is at least [`PACK_HEADER_LEN`] bytes.
fn header_id(head: &[u8]) -> Id {
    Id(head[HEADER_LEN..PACK_HEADER_LEN]
        .try_into()
        .expect("32 bytes"))
}

/// The trailer length a pack's last four bytes state, unchecked.
fn stored_trailer_len(last4: &[u8]) -> Option<u64> {
    Some(u32::from_le_bytes(last4.try_into().ok()?) as u64)
}

/// The trailer a pack of `blobs` blobs ends with, including its length field: count, one
/// entry per blob, the GCM tag, then the length.
fn trailer_size(blobs: u64) -> u64 {
    4 + blobs * TRAILER_ENTRY_LEN as u64 + TAG_LEN as u64 + 4
}

/// Something wrong with where an index places a pack's blobs, seen from the pack's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutProblem {
    /// A blob starts inside the header or inside the blob before it.
    Overlap { blob: Id, offset: u64 },
    /// The pack is shorter than its entries need; `cut_off` blobs lie (partly) beyond its end.
    Truncated {
        size: u64,
        expected: u64,
        cut_off: usize,
    },
    /// The pack is longer than its entries and its trailer.
    TooLong { size: u64, expected: u64 },
}

impl fmt::Display for LayoutProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutProblem::Overlap { blob, offset } => write!(
                f,
                "the index places blob {} at offset {offset}, over the header or another blob",
                blob.short()
            ),
            LayoutProblem::Truncated {
                size,
                expected,
                cut_off,
            } => write!(
                f,
                "{size} bytes, but its index entries need {expected} (truncated; {cut_off} blobs cut off)"
            ),
            LayoutProblem::TooLong { size, expected } => write!(
                f,
                "{size} bytes, but its index entries account for {expected}"
            ),
        }
    }
}

/// Checks a pack's index entries (in offset order) against its size in storage without
/// reading it: blobs after the header, not overlapping, followed by exactly the trailer a
/// writer puts there. Returns the problems and the blobs that lie (partly) beyond the end.
pub fn check_layout(entries: &[PackEntry], size: u64) -> (Vec<LayoutProblem>, Vec<Id>) {
    let mut problems = Vec::new();
    let mut end = PACK_HEADER_LEN as u64;
    for e in entries {
        let start = e.offset as u64;
        if start < end {
            problems.push(LayoutProblem::Overlap {
                blob: e.id,
                offset: start,
            });
        }
        end = end.max(start + e.length as u64);
    }
    let expected = end + trailer_size(entries.len() as u64);
    let beyond: Vec<Id> = entries
        .iter()
        .filter(|e| e.offset as u64 + e.length as u64 > size)
        .map(|e| e.id)
        .collect();
    if size < expected {
        problems.push(LayoutProblem::Truncated {
            size,
            expected,
            cut_off: beyond.len(),
        });
    } else if size > expected {
        problems.push(LayoutProblem::TooLong { size, expected });
    }
    (problems, beyond)
}

/// A whole pack read back: the ID its header names, the blobs its trailer lists, and where
/// the trailer starts. The entries lie back to back from the header on and end at or before
/// `trailer_start` ([`parse_trailer`] refuses anything else).
#[derive(Debug)]
pub struct PackContents {
    pub id: Id,
    pub entries: Vec<PackEntry>,
    pub trailer_start: u64,
}

impl PackContents {
    /// Bytes between the last blob and the trailer; a writer leaves none.
    pub fn slack(&self) -> u64 {
        let blobs_end = self.entries.last().map_or(PACK_HEADER_LEN as u64, |e| {
            e.offset as u64 + e.length as u64
        });
        self.trailer_start.saturating_sub(blobs_end)
    }
}

/// Reads a whole pack held in memory: its size, header and trailer length, then the
/// decrypted trailer.
pub fn read_contents(master: &Key, object: &str, bytes: &[u8]) -> Result<PackContents> {
    let size = bytes.len() as u64;
    if bytes.len() < PACK_HEADER_LEN + 4 {
        return Err(Error::corrupt(object, "too short to be a pack"));
    }
    let tl = trailer_len(object, &bytes[bytes.len() - 4..], size)?;
    // trailer_len guarantees header + trailer + length field fit in the pack.
    let trailer_start = size - 4 - tl;
    let (id, entries) = parse_trailer(
        master,
        object,
        &bytes[..PACK_HEADER_LEN],
        bytes[trailer_start as usize..bytes.len() - 4].to_vec(),
        size,
    )?;
    Ok(PackContents {
        id,
        entries,
        trailer_start,
    })
}

#[cfg(test)]
mod tests;
