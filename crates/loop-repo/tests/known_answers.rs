//! Known answers for the repository format, computed independently of the engine.
//!
//! Round-trip tests cannot see a change that moves the encoder and the decoder together, yet
//! such a change makes every existing repository unreadable. These tests read objects that
//! `tests/vectors/make_vectors.py` wrote with its own implementation of docs/FORMAT.md
//! (Python's blake3, argon2-cffi, cryptography and zstandard), and compare what the engine
//! computes with the values that script computed. The script's output is committed as
//! `tests/vectors/expected.rs`; nothing here runs Python.

use std::fs;
use std::sync::Arc;

use loop_repo::chunker::{ChunkMode, Chunker, ChunkerParams};
use loop_repo::crypto::{IdKey, Key};
use loop_repo::format::{self, Magic};
use loop_repo::index::IndexFile;
use loop_repo::keys::{KeySlot, Secret};
use loop_repo::pack::{self, BlobKind, PACK_HEADER_LEN, PackEntry};
use loop_repo::snapshot::Snapshot;
use loop_repo::tree::{Name, Node, NodeKind, Tree, TreeParts, Xattr};
use loop_repo::{Id, ObjectStorage, Repository, S3Options};

#[allow(dead_code)]
mod v {
    include!("vectors/expected.rs");
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("vector hex")
}

fn key(s: &str) -> Key {
    Key::from_bytes(unhex(s).try_into().expect("32 bytes"))
}

fn id(s: &str) -> Id {
    Id::parse(s).expect("vector id")
}

fn ids() -> IdKey {
    IdKey::new(&key(v::ID_KEY))
}

/// The input of the chunker vectors: the BLAKE3 extendable output of a label, a generator any
/// language has, so the expected cut points can be recomputed without this code.
fn xof(label: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(label)
        .finalize_xof()
        .fill(&mut out);
    out
}

#[test]
fn blob_ids_are_keyed_blake3_of_the_plaintext() {
    let ids = ids();
    assert_eq!(ids.id(b"").to_hex(), v::ID_OF_EMPTY);
    assert_eq!(ids.id(b"abc").to_hex(), v::ID_OF_ABC);
    assert_eq!(
        ids.id(&xof(b"loop id vector", 5000)).to_hex(),
        v::ID_OF_STREAM_5000
    );
}

/// Cut points decide deduplication: if they moved, every file of an existing repository would
/// be stored again. The expected lengths come from an independent FastCDC 2020 with the gear
/// table rebuilt from MD5 and XORed with the seed, as docs/FORMAT.md describes.
#[test]
fn content_defined_cut_points_are_pinned() {
    let chunk_lengths = |params: ChunkerParams, data: &[u8]| -> Vec<usize> {
        let chunker = Chunker::new(params, ChunkMode::ContentDefined);
        let mut buf = Vec::new();
        let mut reader = chunker.reader(data, &mut buf, None);
        let mut out = Vec::new();
        while let Some(chunk) = reader.next_chunk().expect("in-memory read") {
            out.push(chunk.len());
        }
        out
    };
    let small = |seed| ChunkerParams {
        min: 64,
        avg: 256,
        max: 1024,
        seed,
    };
    let input = xof(b"loop chunker vector", 20_000);
    assert_eq!(chunk_lengths(small(42), &input), v::CHUNKS_SMALL_SEED_42);
    assert_eq!(chunk_lengths(small(0), &input), v::CHUNKS_SMALL_SEED_0);

    let defaults = ChunkerParams::with_seed(0x0123_4567_89ab_cdef);
    assert_eq!(
        (defaults.min, defaults.avg, defaults.max),
        (256 * 1024, 1024 * 1024, 4 * 1024 * 1024),
        "the documented default sizes"
    );
    let big = xof(b"loop chunker vector", 12 * 1024 * 1024 + 77);
    assert_eq!(chunk_lengths(defaults, &big), v::CHUNKS_DEFAULT);
}

#[test]
fn a_passphrase_slot_from_another_writer_opens() {
    let slot = KeySlot::parse("keys/vector", unhex(v::PASSPHRASE_SLOT)).expect("parses");
    assert!(slot.is_passphrase());
    assert_eq!(
        (slot.params().m_kib, slot.params().t, slot.params().p),
        (64, 1, 1)
    );
    assert_eq!(slot.meta.host, "vector-host");
    assert_eq!(slot.meta.user, "vector");
    let master = slot
        .open(&Secret::Passphrase(v::PASSPHRASE.as_bytes()))
        .expect("no error")
        .expect("the passphrase opens the slot");
    assert_eq!(hex::encode(master.expose()), v::MASTER);
    let wrong = slot
        .open(&Secret::Passphrase(b"correct horse battery stapler"))
        .expect("no error");
    assert!(wrong.is_none(), "another passphrase must not open it");
}

#[test]
fn a_raw_key_slot_from_another_writer_opens() {
    let slot = KeySlot::parse("keys/vector", unhex(v::RAW_KEY_SLOT)).expect("parses");
    assert!(!slot.is_passphrase());
    let master = slot
        .open(&Secret::RawKey(&key(v::RAW_KEY)))
        .expect("no error")
        .expect("the raw key opens the slot");
    assert_eq!(hex::encode(master.expose()), v::MASTER);
    let passphrase = slot
        .open(&Secret::Passphrase(v::PASSPHRASE.as_bytes()))
        .expect("no error");
    assert!(passphrase.is_none(), "a raw-key slot takes no passphrase");
}

#[test]
fn sealed_objects_from_another_writer_open() {
    let master = key(v::MASTER);
    let raw = format::open(
        &master,
        Magic::Snapshot,
        "snapshots/raw",
        &unhex(v::SEALED_RAW),
        1 << 20,
    )
    .expect("codec 0 opens");
    assert_eq!(raw.0, format::Version::V1);
    assert_eq!(hex::encode(raw.1), v::SEALED_RAW_PAYLOAD);

    let sealed = unhex(v::SEALED_SNAPSHOT);
    let json = format::open(&master, Magic::Snapshot, "snapshots/z", &sealed, 1 << 20)
        .expect("codec 1 opens")
        .1;
    assert_eq!(json, v::SNAPSHOT_JSON.as_bytes());

    // The header is the associated data: the same bytes under another magic do not open.
    let mut as_index = sealed.clone();
    as_index[..4].copy_from_slice(b"LPIX");
    assert!(format::open(&master, Magic::Index, "index/z", &as_index, 1 << 20).is_err());
    // The salt chooses the subkey: another salt does not open.
    let mut other_salt = sealed;
    other_salt[8] ^= 1;
    assert!(
        format::open(
            &master,
            Magic::Snapshot,
            "snapshots/z",
            &other_salt,
            1 << 20
        )
        .is_err()
    );
}

#[test]
fn a_snapshot_record_from_another_writer_reads() {
    let snap: Snapshot = serde_json::from_str(v::SNAPSHOT_JSON).expect("snapshot JSON");
    assert_eq!(
        snap.time.to_rfc3339(),
        "2026-12-01T10:20:30.123456789+01:00"
    );
    assert_eq!(snap.tree.to_hex(), v::EMPTY_TREE_ID);
    assert_eq!(snap.paths, ["/home/user/docs"]);
    assert_eq!(
        (snap.hostname.as_str(), snap.username.as_str()),
        ("vector-host", "vector")
    );
    assert_eq!(snap.tags, ["daily"]);
    assert_eq!(snap.excludes, ["*.tmp"]);
    assert_eq!(snap.parent, None);
    let summary = snap.summary.expect("summary");
    assert_eq!(
        (
            summary.files_new,
            summary.files_changed,
            summary.files_unmodified
        ),
        (3, 1, 40)
    );
    assert_eq!(
        (summary.data_added, summary.data_added_packed),
        (123_456, 65_432)
    );
    assert_eq!(summary.total_bytes_processed, 987_654);
    // Written back, an absent parent stays absent.
    let json = serde_json::to_string(&Snapshot {
        summary: None,
        ..serde_json::from_str(v::SNAPSHOT_JSON).unwrap()
    })
    .unwrap();
    assert!(!json.contains("parent"), "{json}");
}

#[test]
fn a_pack_from_another_writer_decodes() {
    let master = key(v::MASTER);
    let pack = unhex(v::PACK);
    let size = pack.len() as u64;
    let tlen = pack::trailer_len("data/60", &pack[pack.len() - 4..], size).expect("trailer len");
    let start = (size - 4 - tlen) as usize;
    let (pack_id, entries) = pack::parse_trailer(
        &master,
        "data/60",
        &pack[..PACK_HEADER_LEN],
        pack[start..pack.len() - 4].to_vec(),
        size,
    )
    .expect("trailer opens");
    assert_eq!(pack_id.to_hex(), v::PACK_ID);
    let placed: Vec<_> = entries
        .iter()
        .map(|e| (e.kind.byte(), e.offset, e.length, e.raw_len))
        .collect();
    assert_eq!(placed, v::PACK_ENTRIES, "offsets follow from the lengths");

    let ids = ids();
    let cipher = pack::pack_cipher(&master, &pack_id);
    for (e, plain) in entries
        .iter()
        .zip([v::PACK_BLOB_0, v::PACK_BLOB_1, v::PACK_BLOB_2])
    {
        let plain = unhex(plain);
        assert_eq!(e.id, ids.id(&plain));
        let stored = pack[e.offset as usize..(e.offset + e.length) as usize].to_vec();
        assert_eq!(
            pack::decode_blob(&cipher, e, stored, "data/60").unwrap(),
            plain
        );
    }
    assert!(!entries[0].is_compressed() && entries[1].is_compressed());

    // Kind and ID are associated data: the same bytes claimed as a tree do not open.
    let e = PackEntry {
        kind: BlobKind::Tree,
        ..entries[0]
    };
    let stored = pack[e.offset as usize..(e.offset + e.length) as usize].to_vec();
    assert!(pack::decode_blob(&cipher, &e, stored, "data/60").is_err());
}

#[test]
fn an_index_file_from_another_writer_reads_and_encodes_identically() {
    let file =
        IndexFile::open(&key(v::MASTER), "index/v", &unhex(v::SEALED_INDEX)).expect("index opens");
    assert_eq!(file.packs.len(), 2);
    assert_eq!(file.packs[0].0.to_hex(), v::PACK_ID);
    let placed: Vec<_> = file.packs[0]
        .1
        .iter()
        .map(|e| (e.kind.byte(), e.offset, e.length, e.raw_len))
        .collect();
    assert_eq!(placed, v::PACK_ENTRIES);
    assert_eq!(file.packs[1].0.to_hex(), v::INDEX_OTHER_PACK);
    assert_eq!(file.packs[1].1[0].id, ids().id(b"x"));
    assert_eq!(hex::encode(file.encode()), v::INDEX_PAYLOAD);
}

/// Tree bytes decide tree IDs, and equal IDs are what make an unchanged directory free in the
/// next backup: the encoding itself is pinned, field order and all.
#[test]
fn trees_encode_byte_for_byte_as_documented() {
    let ids = ids();
    let node = |name: &[u8], kind| Node {
        name: Name(name.to_vec()),
        kind,
        mode: 0,
        uid: 0,
        gid: 0,
        size: 0,
        mtime_ns: 0,
        ctime_ns: 0,
        inode: 0,
        dev: 0,
        links: 1,
        rdev: 0,
        link_target: None,
        content: Vec::new(),
        subtree: None,
        xattrs: Vec::new(),
    };
    let tree = Tree {
        nodes: vec![
            Node {
                mode: 0o755,
                mtime_ns: -1_500_000_000,
                ctime_ns: 1_700_000_000_000_000_000,
                inode: 2,
                dev: 2049,
                links: 2,
                subtree: Some(id(v::EMPTY_TREE_ID)),
                ..node(b"bin", NodeKind::Dir)
            },
            Node {
                mode: 0o4755,
                uid: 1000,
                gid: 1000,
                size: 5,
                mtime_ns: 1_700_000_000_123_456_789,
                ctime_ns: 1_700_000_000_123_456_789,
                inode: 42,
                dev: 2049,
                links: 3,
                content: vec![ids.id(b"ab"), ids.id(b"cde")],
                xattrs: vec![
                    Xattr {
                        name: Name(b"user.\xff".to_vec()),
                        value: vec![0, 0xff, 1],
                    },
                    Xattr {
                        name: Name(b"user.note".to_vec()),
                        value: Vec::new(),
                    },
                ],
                ..node("café ☕.txt".as_bytes(), NodeKind::File)
            },
            Node {
                mode: 0o666,
                inode: 5,
                dev: 5,
                rdev: 259,
                ..node(b"null", NodeKind::Chardev)
            },
            Node {
                mode: 0o600,
                uid: 1000,
                gid: 1000,
                mtime_ns: 1,
                ctime_ns: 1,
                inode: 7,
                dev: 2049,
                ..node(b"pipe", NodeKind::Fifo)
            },
            Node {
                mode: 0o600,
                mtime_ns: 2,
                ctime_ns: 2,
                ..node(b"stdin", NodeKind::File)
            },
            Node {
                mode: 0o777,
                uid: 1000,
                gid: 1000,
                mtime_ns: 3,
                ctime_ns: 3,
                inode: 9,
                dev: 2049,
                link_target: Some(Name(b"../\x80".to_vec())),
                ..node(b"z-\xff", NodeKind::Symlink)
            },
        ],
    };
    tree.validate("tree v").expect("a valid tree");
    assert_eq!(String::from_utf8(tree.encode()).unwrap(), v::TREE_JSON);
    assert_eq!(ids.id(&tree.encode()).to_hex(), v::TREE_ID);
    assert_eq!(
        Tree::decode("tree v", v::TREE_JSON.as_bytes()).unwrap(),
        tree
    );
    assert_eq!(ids.id(&Tree::default().encode()).to_hex(), v::EMPTY_TREE_ID);
}

/// The objects above, laid out as a repository on disk and opened through the public entry
/// point, with the directory holding it.
fn vector_repository() -> (tempfile::TempDir, Repository) {
    let dir = tempfile::tempdir().unwrap();
    let put = |rel: &str, bytes: Vec<u8>| {
        let path = dir.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    };
    let name = |n: u8| hex::encode([n; 32]);
    put(&format!("keys/{}", name(1)), unhex(v::PASSPHRASE_SLOT));
    put("config", unhex(v::SEALED_CONFIG));
    put(&format!("index/{}", name(2)), unhex(v::SEALED_INDEX));
    put(&format!("data/60/{}", v::PACK_ID), unhex(v::PACK));
    put(&format!("snapshots/{}", name(3)), unhex(v::SEALED_SNAPSHOT));

    let storage =
        ObjectStorage::open(dir.path().to_str().unwrap(), &S3Options::default(), false).unwrap();
    let repo = Repository::open(
        Arc::new(storage),
        Secret::Passphrase(v::PASSPHRASE.as_bytes()),
    )
    .expect("the repository opens");
    (dir, repo)
}

/// Key slot, config, index, pack, tree and snapshot as another writer made them.
#[test]
fn a_repository_written_by_another_implementation_opens() {
    let (_dir, repo) = vector_repository();
    let config = repo.config();
    assert_eq!(
        config.id,
        id(&hex::encode((0xa0..0xc0).collect::<Vec<u8>>()))
    );
    assert_eq!(
        config.chunker,
        ChunkerParams::with_seed(81_985_529_216_486_895)
    );
    assert_eq!((config.compression_level, config.pack_size), (3, 16 << 20));
    assert_eq!(
        repo.blob_id(b"abc").to_hex(),
        v::ID_OF_ABC,
        "the config's id_key is used"
    );

    let index = repo.load_index().expect("index loads");
    let tree_id = ids().id(&unhex(v::PACK_BLOB_2));
    let tree = repo.load_tree(&index, &tree_id).expect("tree blob reads");
    assert_eq!(tree.nodes[0].content, [id(v::ID_OF_ABC)]);
    let data_id = ids().id(&unhex(v::PACK_BLOB_1));
    assert_eq!(
        repo.read_blob(&index, &data_id).unwrap(),
        unhex(v::PACK_BLOB_1)
    );

    let snapshots = repo.list_snapshots().expect("snapshots list").snapshots;
    assert_eq!(snapshots.len(), 1);
    assert_eq!(
        snapshots[0].0.to_hex(),
        hex::encode([3u8; 32]),
        "a snapshot's ID is its object name"
    );
    assert_eq!(snapshots[0].1.hostname, "vector-host");
}

/// A tree longer than one part is cut into parts at exactly the documented places, and its
/// ID is that of the documented parts list: the same large directory gets the same ID from
/// any writer, and so costs nothing in the next backup.
#[test]
fn a_large_tree_is_cut_into_parts_exactly_as_documented() {
    let (_dir, repo) = vector_repository();
    let ids = ids();
    let file = Node {
        name: Name(b"disk.img".to_vec()),
        kind: NodeKind::File,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: v::LARGE_TREE_CHUNKS as u64 * 4096,
        mtime_ns: 0,
        ctime_ns: 0,
        inode: 0,
        dev: 0,
        links: 0,
        rdev: 0,
        link_target: None,
        content: (0..v::LARGE_TREE_CHUNKS as u32)
            .map(|i| ids.id(&i.to_le_bytes()))
            .collect(),
        subtree: None,
        xattrs: Vec::new(),
    };
    let tree = Tree { nodes: vec![file] };

    let encoded = repo.encode_tree(&tree).expect("a tree of three parts");

    assert_eq!(encoded.id.to_hex(), v::LARGE_TREE_ID);
    let (list_id, list) = encoded.blobs.last().unwrap();
    assert_eq!(
        (list_id, list.as_slice()),
        (&encoded.id, v::LARGE_TREE_PARTS_JSON.as_bytes())
    );
    let parts = &encoded.blobs[..encoded.blobs.len() - 1];
    let lens: Vec<usize> = parts.iter().map(|(_, d)| d.len()).collect();
    assert_eq!(lens, v::LARGE_TREE_PART_LENS);
    let joined: Vec<u8> = parts.iter().flat_map(|(_, d)| d.iter().copied()).collect();
    assert_eq!(
        joined,
        tree.encode(),
        "the parts joined are the tree's JSON"
    );
    let named = TreeParts::decode("tree v", v::LARGE_TREE_PARTS_JSON.as_bytes())
        .unwrap()
        .expect("a parts list");
    let part_ids: Vec<Id> = parts.iter().map(|(id, _)| *id).collect();
    assert_eq!(named.parts, part_ids);
    for (id, data) in parts {
        assert_eq!(ids.id(data), *id);
    }
}
