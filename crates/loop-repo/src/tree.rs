//! Directory trees: one JSON document per directory, stored as a deduplicated blob.
//!
//! A tree is `{"nodes": [node, ...]}` sorted by name bytes. File names are bytes on Unix; a
//! name that is valid UTF-8 is stored as a JSON string, any other as `{"hex": "..."}`, so no
//! name is ever altered. Unchanged directories serialize to the same bytes and so to the same
//! blob ID, which makes an unchanged subtree free. A tree longer than [`TREE_PART`] is stored
//! in parts (`parts.rs`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::id::Id;

mod parts;

pub(crate) use parts::store_json;
pub use parts::{EncodedTree, MAX_TREE_PARTS, TREE_PART, TreeParts};

/// The longest path inside a snapshot (its components joined by `/`) that readers follow:
/// 64 KiB, sixteen times Linux's `PATH_MAX`, which a backup's walk already stays within. A
/// tree below that depth is damage: without the bound, a few megabytes of hostile nested
/// trees (long names, or thousands of levels) would have every walker copy gigabytes of
/// paths.
pub const MAX_PATH: usize = 64 * 1024;

/// A file name or symlink target, kept as raw bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Name(pub Vec<u8>);

impl Name {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// True when the name is one plain path component: not empty, not `.` or `..`, no `/`
    /// and no NUL. Restore refuses any other name from a snapshot.
    pub fn is_safe_component(&self) -> bool {
        let b = &self.0;
        !b.is_empty() && b != b"." && b != b".." && !b.contains(&b'/') && !b.contains(&0)
    }

    pub fn to_os(&self) -> &std::ffi::OsStr {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(&self.0)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("hex", &hex::encode(&self.0))?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Name, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Hex { hex: String },
        }
        match Repr::deserialize(d)? {
            Repr::Text(t) => Ok(Name(t.into_bytes())),
            Repr::Hex { hex } => hex::decode(hex).map(Name).map_err(serde::de::Error::custom),
        }
    }
}

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
    Chardev,
    Blockdev,
    Fifo,
    Socket,
}

/// One extended attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    pub name: Name,
    #[serde(with = "hex_bytes")]
    pub value: Vec<u8>,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One directory entry with its metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: Name,
    #[serde(rename = "type")]
    pub kind: NodeKind,
    /// Permission bits, including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    pub mtime_ns: i64,
    #[serde(default)]
    pub ctime_ns: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inode: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dev: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub links: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rdev: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_target: Option<Name>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<Id>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
}

impl Node {
    /// A node of `kind` with no metadata but its size and subtree (mode 0755, owner and times
    /// 0): the root a walk through a snapshot's trees starts from.
    pub fn bare(name: Name, kind: NodeKind, size: u64, subtree: Option<Id>) -> Node {
        Node {
            name,
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size,
            mtime_ns: 0,
            ctime_ns: 0,
            inode: 0,
            dev: 0,
            links: 0,
            rdev: 0,
            link_target: None,
            content: Vec::new(),
            subtree,
            xattrs: Vec::new(),
        }
    }

    /// True when a file's recorded state says its content cannot have changed: same size,
    /// modification time, change time and inode. Ctime catches writes that reset mtime.
    pub fn same_content_state(&self, other: &Node) -> bool {
        self.kind == NodeKind::File
            && other.kind == NodeKind::File
            && self.size == other.size
            && self.mtime_ns == other.mtime_ns
            && self.ctime_ns == other.ctime_ns
            && self.inode == other.inode
    }
}

/// A directory's entries, sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("trees serialize")
    }

    pub fn decode(object: &str, data: &[u8]) -> Result<Tree> {
        let tree: Tree = serde_json::from_slice(data)
            .map_err(|e| Error::corrupt(object, format!("tree: {e}")))?;
        Ok(tree)
    }

    /// Looks up a child by name (nodes are sorted).
    pub fn find(&self, name: &[u8]) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.0.as_slice().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }

    /// Checks what restore relies on: safe, unique, sorted names and consistent node kinds.
    pub fn validate(&self, object: &str) -> Result<()> {
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.name.is_safe_component() {
                return Err(Error::corrupt(
                    object,
                    format!("unsafe file name {:?}", n.name),
                ));
            }
            if i > 0 && self.nodes[i - 1].name >= n.name {
                return Err(Error::corrupt(
                    object,
                    format!("names not sorted and unique at {:?}", n.name),
                ));
            }
            if (n.kind == NodeKind::Dir) != n.subtree.is_some() {
                return Err(Error::corrupt(
                    object,
                    format!("{:?}: directory without subtree", n.name),
                ));
            }
            if n.kind != NodeKind::File && !n.content.is_empty() {
                return Err(Error::corrupt(
                    object,
                    format!("{:?}: content on a non-file", n.name),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(name: Vec<u8>, kind: NodeKind, size: u64, content: Vec<Id>) -> Node {
        Node {
            name: Name(name),
            kind,
            mode: 0o644,
            uid: 1,
            gid: 2,
            size,
            mtime_ns: 1_700_000_000_123_456_789,
            ctime_ns: 5,
            inode: 9,
            dev: 3,
            links: 1,
            rdev: 0,
            link_target: if kind == NodeKind::Symlink {
                Some(Name(b"../x".to_vec()))
            } else {
                None
            },
            subtree: if kind == NodeKind::Dir {
                Some(Id([7; 32]))
            } else {
                None
            },
            content,
            xattrs: vec![Xattr {
                name: Name(b"user.k".to_vec()),
                value: vec![0, 255, 1],
            }],
        }
    }

    proptest! {
        #[test]
        fn trees_round_trip_with_any_names(names in proptest::collection::btree_set(proptest::collection::vec(1u8..=255, 1..20), 0..20), size in any::<u64>()) {
            let nodes: Vec<Node> = names.into_iter().enumerate().map(|(i, n)| {
                let kind = [NodeKind::File, NodeKind::Dir, NodeKind::Symlink, NodeKind::Fifo][i % 4];
                let content = if kind == NodeKind::File { vec![Id([i as u8; 32])] } else { vec![] };
                node(n, kind, size, content)
            }).collect();
            let tree = Tree { nodes };
            let back = Tree::decode("t", &tree.encode()).unwrap();
            prop_assert_eq!(&back, &tree);
            prop_assert_eq!(back.encode(), tree.encode());
        }

        #[test]
        fn decoding_garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Tree::decode("t", &data);
            let _ = TreeParts::decode("t", &data);
        }
    }

    #[test]
    fn unsafe_names_are_rejected() {
        for bad in [&b".."[..], b".", b"", b"a/b", b"/etc", b"x\0y"] {
            let t = Tree {
                nodes: vec![node(bad.to_vec(), NodeKind::File, 0, vec![])],
            };
            assert!(t.validate("t").is_err(), "{bad:?} accepted");
        }
        let dup = Tree {
            nodes: vec![
                node(b"a".to_vec(), NodeKind::File, 0, vec![]),
                node(b"a".to_vec(), NodeKind::Fifo, 0, vec![]),
            ],
        };
        assert!(dup.validate("t").is_err());
        let ok = Tree {
            nodes: vec![
                node(b"a".to_vec(), NodeKind::File, 0, vec![]),
                node(b"b".to_vec(), NodeKind::Dir, 0, vec![]),
            ],
        };
        ok.validate("t").unwrap();
    }
}
