//! Large trees, stored in parts.
//!
//! A tree's JSON longer than [`TREE_PART`] bytes is cut into consecutive slices of
//! `TREE_PART` bytes (the last one shorter or equal), each stored as a tree blob, and the tree
//! itself is the small blob `{"parts":["<id>",...]}` naming them in order. Without this, a
//! directory of a few hundred thousand entries, or a file of a few million chunks, would need a
//! tree blob over [`crate::pack::MAX_BLOB`] and fail the whole backup after its data was
//! uploaded. Trees up to `TREE_PART` bytes are stored as one blob, as they always were, so
//! their IDs do not change.
//!
//! The JSON is cut by bytes, not by nodes: the parts are not trees, only the tree's encoding
//! in pieces. Programs from before parts existed refuse such a tree (it has no `nodes`) rather
//! than show an empty directory.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::Id;

/// The longest slice of a tree's JSON stored as one blob, and the largest tree stored
/// whole: 4 MiB, a quarter of a tree pack, far below [`crate::pack::MAX_BLOB`]. Frozen: a
/// writer that cut at another length would give unchanged trees new IDs.
pub const TREE_PART: usize = 4 << 20;

/// The most parts one tree may have: 1024, so a tree holds at most 4 GiB of JSON (about
/// ten million entries, or a file of 64 million chunks), and a forged parts list cannot make
/// a reader gather more.
pub const MAX_TREE_PARTS: usize = 1024;

/// The blob a large tree's ID names: its parts in order. Written compactly, exactly
/// `{"parts":["<64 hex digits>",...]}`; a blob with any other field is not a parts list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeParts {
    pub parts: Vec<Id>,
}

impl TreeParts {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("parts lists serialize")
    }

    /// The parts list a tree blob holds, or `None` when the blob is a tree's own JSON (or a
    /// slice of one). A list of no parts, or of more than [`MAX_TREE_PARTS`], is damage.
    pub fn decode(object: &str, data: &[u8]) -> Result<Option<TreeParts>> {
        // A tree's JSON fails at its first field (`nodes`, unknown here), so the attempt
        // costs next to nothing however large the tree.
        let Ok(list) = serde_json::from_slice::<TreeParts>(data) else {
            return Ok(None);
        };
        if list.parts.is_empty() || list.parts.len() > MAX_TREE_PARTS {
            return Err(Error::corrupt(
                object,
                format!(
                    "a parts list of {} parts (a tree has 1 to {MAX_TREE_PARTS})",
                    list.parts.len()
                ),
            ));
        }
        Ok(Some(list))
    }
}

/// A tree as it is stored: the ID that names it, and the blobs to store for it, each once,
/// parts before the list that names them.
#[derive(Debug)]
pub struct EncodedTree {
    pub id: Id,
    pub blobs: Vec<(Id, Vec<u8>)>,
}

/// How a tree whose encoding is `json` is stored, with parts of at most `part` bytes;
/// `blob_id` gives a blob's ID. A tree that would need more than [`MAX_TREE_PARTS`] parts is
/// refused.
pub(crate) fn store_json(
    json: Vec<u8>,
    part: usize,
    blob_id: impl Fn(&[u8]) -> Id,
) -> Result<EncodedTree> {
    if json.len() <= part {
        let id = blob_id(&json);
        return Ok(EncodedTree {
            id,
            blobs: vec![(id, json)],
        });
    }
    let count = json.len().div_ceil(part);
    if count > MAX_TREE_PARTS {
        return Err(Error::Invalid(format!(
            "a directory listing of {} bytes is larger than the {} a tree may hold (a \
             directory of millions of entries, or a file of tens of millions of chunks: back \
             up such a file with larger --fixed-chunks)",
            crate::util::human_bytes(json.len() as u64),
            crate::util::human_bytes((MAX_TREE_PARTS * part) as u64),
        )));
    }
    let mut list = TreeParts {
        parts: Vec::with_capacity(count),
    };
    let mut blobs: Vec<(Id, Vec<u8>)> = Vec::with_capacity(count + 1);
    for slice in json.chunks(part) {
        let id = blob_id(slice);
        list.parts.push(id);
        // Equal slices (a file of repeated chunks) are one blob, named as often as it occurs.
        if !blobs.iter().any(|(b, _)| *b == id) {
            blobs.push((id, slice.to_vec()));
        }
    }
    drop(json);
    let bytes = list.encode();
    let id = blob_id(&bytes);
    blobs.push((id, bytes));
    Ok(EncodedTree { id, blobs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Tree;

    fn id_of(data: &[u8]) -> Id {
        Id(*blake3::hash(data).as_bytes())
    }

    #[test]
    fn a_tree_of_the_part_size_is_one_blob_and_one_byte_more_is_two_parts() {
        let json = vec![b'x'; 100];

        let whole = store_json(json.clone(), 100, id_of).unwrap();
        assert_eq!(whole.id, id_of(&json));
        assert_eq!(whole.blobs, vec![(id_of(&json), json.clone())]);

        let mut longer = json.clone();
        longer.push(b'y');
        let split = store_json(longer.clone(), 100, id_of).unwrap();
        let (a, b) = (id_of(&longer[..100]), id_of(&longer[100..]));
        let list = format!("{{\"parts\":[\"{a}\",\"{b}\"]}}");
        assert_eq!(split.id, id_of(list.as_bytes()));
        assert_eq!(
            split.blobs,
            vec![
                (a, longer[..100].to_vec()),
                (b, b"y".to_vec()),
                (split.id, list.into_bytes())
            ]
        );
    }

    #[test]
    fn equal_slices_are_stored_once_and_named_each_time() {
        let split = store_json(vec![b'z'; 30], 10, id_of).unwrap();
        let list = TreeParts::decode("t", &split.blobs.last().unwrap().1)
            .unwrap()
            .unwrap();
        assert_eq!(list.parts, vec![id_of(&[b'z'; 10]); 3]);
        assert_eq!(split.blobs.len(), 2, "one part and the list");
    }

    #[test]
    fn a_tree_needing_more_than_the_most_parts_is_refused_before_anything_is_stored() {
        let err = store_json(vec![b'x'; MAX_TREE_PARTS * 2 + 1], 2, id_of).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        store_json(vec![b'x'; MAX_TREE_PARTS * 2], 2, id_of).unwrap();
    }

    #[test]
    fn only_a_list_of_parts_and_nothing_else_is_a_parts_list() {
        assert_eq!(TreeParts::decode("t", b"{\"nodes\":[]}").unwrap(), None);
        assert_eq!(TreeParts::decode("t", b"\"nodes\":[{\"na").unwrap(), None);
        let both = format!("{{\"parts\":[\"{}\"],\"nodes\":[]}}", Id([1; 32]));
        assert_eq!(TreeParts::decode("t", both.as_bytes()).unwrap(), None);
        let one = format!("{{\"parts\":[\"{}\"]}}", Id([1; 32]));
        assert_eq!(
            TreeParts::decode("t", one.as_bytes()).unwrap(),
            Some(TreeParts {
                parts: vec![Id([1; 32])]
            })
        );
    }

    #[test]
    fn a_parts_list_of_no_parts_or_too_many_is_damage() {
        assert!(TreeParts::decode("t", b"{\"parts\":[]}").is_err());
        let many = TreeParts {
            parts: vec![Id([2; 32]); MAX_TREE_PARTS + 1],
        };
        let err = TreeParts::decode("t", &many.encode()).unwrap_err();
        assert!(err.to_string().contains("1025 parts"), "{err}");
    }

    /// Programs from before parts existed decode a parts list as a tree: it must fail there,
    /// not read as an empty directory (which would restore nothing, silently).
    #[test]
    fn a_parts_list_is_not_an_empty_directory_to_a_reader_of_whole_trees() {
        let list = TreeParts {
            parts: vec![Id([3; 32])],
        };
        let err = Tree::decode("tree t", &list.encode()).unwrap_err();
        assert!(err.to_string().contains("nodes"), "{err}");
    }
}
