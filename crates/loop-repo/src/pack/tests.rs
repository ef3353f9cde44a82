//! Packs written, read back, checked and damaged.

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

/// A pack of two small blobs, as a writer makes it.
fn small_pack() -> (Key, Id, Vec<u8>, Vec<PackEntry>) {
    let master = Key::generate();
    let mut w = PackWriter::new(&master, 1024);
    w.add(BlobKind::Data, Id([1; 32]), &[7; 50], 50);
    w.add(BlobKind::Tree, Id([2; 32]), &[8; 30], 30);
    let (id, bytes, entries) = w.finish();
    (master, id, bytes, entries)
}

/// [`check_envelope`] on a whole pack in memory.
fn envelope(expected: &Id, bytes: &[u8]) -> std::result::Result<(), String> {
    let head = &bytes[..bytes.len().min(PACK_HEADER_LEN)];
    let last4 = &bytes[bytes.len().saturating_sub(4)..];
    check_envelope(expected, head, last4, bytes.len() as u64).map_err(|e| e.to_string())
}

#[test]
fn an_envelope_is_checked_without_the_key_and_every_refusal_says_why() {
    let (_, id, bytes, _) = small_pack();
    assert_eq!(envelope(&id, &bytes), Ok(()));
    assert_eq!(
        envelope(&Id([9; 32]), &bytes),
        Err("the pack ID inside the pack differs from its name".into())
    );
    let mut outside = bytes.clone();
    let end = outside.len();
    outside[end - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        envelope(&id, &outside),
        Err("the pack's trailer length points outside the pack".into())
    );
    for short in [PACK_HEADER_LEN, PACK_HEADER_LEN + 3] {
        assert_eq!(
            envelope(&id, &bytes[..short]),
            Err("a pack is shorter than its header and trailer length".into())
        );
    }
    let mut not_a_pack = bytes.clone();
    not_a_pack[..4].copy_from_slice(&Magic::Index.bytes());
    let err = envelope(&id, &not_a_pack).unwrap_err();
    assert!(
        err.contains(&id.to_hex()) && err.contains("bad magic"),
        "{err}"
    );
    let err = envelope(&id, &bytes[..3]).unwrap_err();
    assert!(err.contains("shorter than its header"), "{err}");
}

#[test]
fn a_probe_fed_in_any_chunks_judges_as_the_whole_pack_does() {
    let (_, id, bytes, _) = small_pack();
    let mut wrong_trailer = bytes.clone();
    let end = wrong_trailer.len();
    wrong_trailer[end - 4..].copy_from_slice(&9999u32.to_le_bytes());
    for pack in [
        &bytes,
        &wrong_trailer,
        &bytes[..PACK_HEADER_LEN + 2].to_vec(),
    ] {
        for (chunk, expected) in [1, 3, 4, 5, PACK_HEADER_LEN, 100, pack.len()]
            .into_iter()
            .flat_map(|c| [(c, id), (c, Id([9; 32]))])
        {
            let mut probe = EnvelopeProbe::default();
            for piece in pack.chunks(chunk) {
                probe.observe(piece);
            }
            assert_eq!(
                probe.check(&expected).map_err(|e| e.to_string()),
                envelope(&expected, pack),
                "chunks of {chunk}"
            );
        }
    }
}

#[test]
fn index_entries_are_checked_against_the_pack_size() {
    let (_, _, bytes, entries) = small_pack();
    let size = bytes.len() as u64;
    assert_eq!(check_layout(&entries, size), (vec![], vec![]));

    // Cut one byte into the second blob.
    let cut = entries[1].offset as u64 + 1;
    let (problems, beyond) = check_layout(&entries, cut);
    assert_eq!(beyond, vec![Id([2; 32])]);
    assert_eq!(
        problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        vec![format!(
            "{cut} bytes, but its index entries need {size} (truncated; 1 blobs cut off)"
        )]
    );
    assert_eq!(
        check_layout(&entries, size + 1).0[0].to_string(),
        format!(
            "{} bytes, but its index entries account for {size}",
            size + 1
        )
    );
    let mut overlapping = entries.clone();
    overlapping[1].offset = overlapping[0].offset + 1;
    let problems = check_layout(&overlapping, size).0;
    assert_eq!(
        problems[0].to_string(),
        format!(
            "the index places blob {} at offset {}, over the header or another blob",
            Id([2; 32]).short(),
            overlapping[1].offset
        )
    );
}

#[test]
fn a_whole_pack_reads_back_its_entries_and_leaves_no_slack() {
    let (master, id, bytes, entries) = small_pack();
    let contents = read_contents(&master, "data/p", &bytes).unwrap();
    assert_eq!(contents.id, id);
    assert_eq!(contents.entries, entries);
    assert_eq!(contents.slack(), 0);

    for garbage in [&bytes[..PACK_HEADER_LEN + 3], &[0u8; 200][..]] {
        let err = read_contents(&master, "data/p", garbage).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
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

/// A pack of `blob_area` bytes of blobs and a trailer a key holder sealed around `plain`.
fn pack_with_trailer(master: &Key, blob_area: &[u8], plain: &[u8]) -> Vec<u8> {
    let id = Id([9; 32]);
    let mut bytes = Magic::Pack.header().to_vec();
    bytes.extend_from_slice(&id.0);
    bytes.extend_from_slice(blob_area);
    let start = bytes.len();
    let aad = bytes[..PACK_HEADER_LEN].to_vec();
    let nonce = NonceSequence::new().final_nonce().unwrap();
    master
        .subkey(&id.0)
        .cipher()
        .seal_into(nonce, &aad, plain, &mut bytes);
    let sealed = (bytes.len() - start) as u32;
    bytes.extend_from_slice(&sealed.to_le_bytes());
    bytes
}

/// A trailer entry longer than its plaintext and tag (a key holder's forgery) is damage:
/// readers would fetch and hold bytes no blob has.
#[test]
fn a_trailer_entry_longer_than_its_plaintext_and_tag_is_refused() {
    let master = Key::generate();
    let parse = |raw_len: u32| {
        let mut w = PackWriter::new(&master, 1024);
        w.add(BlobKind::Data, Id([3; 32]), &[7u8; 100], raw_len);
        let (_, bytes, _) = w.finish();
        let size = bytes.len() as u64;
        let tl = trailer_len("p", &bytes[bytes.len() - 4..], size).unwrap();
        let t_start = (size - 4 - tl) as usize;
        parse_trailer(
            &master,
            "p",
            &bytes[..PACK_HEADER_LEN],
            bytes[t_start..bytes.len() - 4].to_vec(),
            size,
        )
    };
    assert!(parse(100).is_ok(), "stored raw");
    let err = parse(99).unwrap_err().to_string();
    assert!(err.contains("out of range"), "{err}");
}

/// Trailer plaintexts as a key holder could seal them: a count that may lie, records with
/// any kind, length and raw length, and sometimes stray bytes after them.
fn trailer_plain() -> impl Strategy<Value = Vec<u8>> {
    let record = (
        0u8..3,
        prop_oneof![3 => 0u32..120, 1 => any::<u32>()],
        prop_oneof![3 => 0u32..1000, 1 => any::<u32>()],
    );
    (
        proptest::collection::vec(record, 0..5),
        prop_oneof![3 => Just(None), 1 => any::<u32>().prop_map(Some)],
        prop_oneof![3 => Just(Vec::new()), 1 => proptest::collection::vec(any::<u8>(), 1..3)],
    )
        .prop_map(|(records, count, tail)| {
            let count = count.unwrap_or(records.len() as u32);
            let mut plain = count.to_le_bytes().to_vec();
            for (kind, length, raw_len) in records {
                plain.push(kind);
                plain.extend_from_slice(&[kind; 32]);
                plain.extend_from_slice(&length.to_le_bytes());
                plain.extend_from_slice(&raw_len.to_le_bytes());
            }
            plain.extend_from_slice(&tail);
            plain
        })
}

proptest! {
    #[test]
    fn any_bytes_as_a_pack_are_refused_without_a_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        size in any::<u64>(),
    ) {
        let master = Key::generate();
        prop_assert!(read_contents(&master, "p", &bytes).is_err());
        let head = &bytes[..bytes.len().min(PACK_HEADER_LEN)];
        let last4 = &bytes[bytes.len().saturating_sub(4)..];
        let _ = check_envelope(&Id([9; 32]), head, last4, size);
    }

    #[test]
    fn a_sealed_trailer_of_any_content_is_read_within_the_pack_or_refused(
        blob_area in proptest::collection::vec(any::<u8>(), 0..300),
        plain in trailer_plain(),
    ) {
        let master = Key::generate();
        let bytes = pack_with_trailer(&master, &blob_area, &plain);
        prop_assert!(check_envelope(&Id([9; 32]), &bytes[..PACK_HEADER_LEN], &bytes[bytes.len() - 4..], bytes.len() as u64).is_ok());
        if let Ok(contents) = read_contents(&master, "p", &bytes) {
            // Whatever the trailer says, every entry it yields lies in the blob area.
            let mut at = PACK_HEADER_LEN as u64;
            for e in &contents.entries {
                prop_assert_eq!(e.offset as u64, at);
                prop_assert!(e.length as usize >= TAG_LEN && e.raw_len <= MAX_BLOB);
                at += e.length as u64;
            }
            prop_assert!(at <= contents.trailer_start);
            prop_assert_eq!(contents.trailer_start, (PACK_HEADER_LEN + blob_area.len()) as u64);
        }
    }
}
