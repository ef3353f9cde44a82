//! Trees: encoding one for storage, and loading one with the parts a large tree is stored in
//! (see [`crate::tree::TreeParts`]).

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::Index;
use crate::storage::FileKind;
use crate::tree::{EncodedTree, TREE_PART, Tree, TreeParts, store_json};

use super::Repository;

impl Repository {
    /// Loads and validates one tree.
    pub fn load_tree(&self, index: &Index, id: &Id) -> Result<Tree> {
        Ok(self.load_tree_with_parts(index, id)?.0)
    }

    /// Loads and validates one tree, with the parts it is stored in (none for a tree stored
    /// as one blob): what a snapshot that names the tree uses besides the tree's own blob.
    pub fn load_tree_with_parts(&self, index: &Index, id: &Id) -> Result<(Tree, Vec<Id>)> {
        read_tree(index, id, self.tree_limit, |blob| match &self.cache {
            Some(c) => self.read_tree_cached(c, index, blob),
            None => self.read_blob(index, blob),
        })
    }

    /// A tree blob from the cached copy of its pack; a tree pack not cached yet is
    /// downloaded whole first. A cached copy that does not authenticate is dropped, and the
    /// blob read from storage like an uncached one.
    fn read_tree_cached(&self, c: &Cache, index: &Index, id: &Id) -> Result<Vec<u8>> {
        let Some(loc) = index.get(id).filter(|l| index.is_tree_pack(&l.pack)) else {
            return self.read_blob(index, id);
        };
        if !c.has_pack(&loc.pack) {
            let name = loc.pack.to_hex();
            let limit = crate::pack::max_pack_size(self.config.pack_size as usize);
            // A failed download is not an error here: the blob's own read reports it.
            c.download_pack(&loc.pack, || {
                self.storage.get(FileKind::Pack, &name, limit).ok()
            });
        }
        if let Some(stored) = c.get_blob(&loc) {
            match self.decode_stored_blob(&loc, id, stored) {
                Ok(data) => return Ok(data),
                Err(_) => c.forget_file(FileKind::Pack, &loc.pack.to_hex()),
            }
        }
        self.read_blob(index, id)
    }

    /// The ID a tree gets when stored, and the blobs to store for it: one, or for a tree
    /// longer than [`TREE_PART`], its parts and the list naming them.
    pub fn encode_tree(&self, tree: &Tree) -> Result<EncodedTree> {
        store_json(tree.encode(), TREE_PART, |data| self.blob_id(data))
    }
}

/// Reads tree `id` with `read` (a blob's plaintext, checked against its ID): its blob, and
/// when that is a parts list, each part, which must be at most [`TREE_PART`] bytes and not
/// a parts list itself, and all of them at most `limit` bytes. Answers the decoded,
/// validated tree and its parts.
pub(crate) fn read_tree(
    index: &Index,
    id: &Id,
    limit: usize,
    mut read: impl FnMut(&Id) -> Result<Vec<u8>>,
) -> Result<(Tree, Vec<Id>)> {
    let object = format!("tree {}", id.short());
    let data = read(id)?;
    let over = |bytes: usize| {
        Error::Invalid(format!(
            "{object} is a listing of {} MiB or more, larger than this reader loads ({} MiB): \
             read it with `loop` on a machine of its own",
            bytes >> 20,
            limit >> 20
        ))
    };
    let (json, parts) = match TreeParts::decode(&object, &data)? {
        None if data.len() > limit => return Err(over(data.len())),
        None => (data, Vec::new()),
        Some(list) => {
            // Each part but the last is whole: the count alone may say it is too long.
            if (list.parts.len().saturating_sub(1)).saturating_mul(TREE_PART) > limit {
                return Err(over((list.parts.len() - 1) * TREE_PART));
            }
            let json = join_parts(index, &object, &list.parts, read)?;
            if json.len() > limit {
                return Err(over(json.len()));
            }
            (json, list.parts)
        }
    };
    let tree = Tree::decode(&object, &json)?;
    tree.validate(&object)?;
    Ok((tree, parts))
}

/// A large tree's JSON: its parts read with `read` and joined. Lengths are checked against
/// the index before anything is read, and each part again once read, so a forged list
/// gathers at most [`crate::tree::MAX_TREE_PARTS`] × [`TREE_PART`] bytes.
fn join_parts(
    index: &Index,
    object: &str,
    parts: &[Id],
    mut read: impl FnMut(&Id) -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    let too_long = |n: usize, part: &Id| {
        Error::corrupt(
            object,
            format!(
                "part {n} ({}) is longer than the {TREE_PART} bytes a part may hold",
                part.short()
            ),
        )
    };
    let mut total = 0usize;
    for (n, part) in parts.iter().enumerate() {
        // A part no index names is reported by its read, below.
        if let Some(loc) = index.get(part) {
            if loc.entry.raw_len as usize > TREE_PART {
                return Err(too_long(n, part));
            }
            total += loc.entry.raw_len as usize;
        }
    }
    // Grown as parts arrive: the index's lengths are only a claim until each part is read.
    let mut json = Vec::with_capacity(total.min(TREE_PART));
    for (n, part) in parts.iter().enumerate() {
        // Damage is named as the tree's, and which part; storage errors pass as they are.
        let data = read(part).map_err(|e| match e {
            Error::Corrupt { .. } => {
                Error::corrupt(object, format!("part {n} ({}): {e}", part.short()))
            }
            e => e,
        })?;
        if data.len() > TREE_PART {
            return Err(too_long(n, part));
        }
        if !matches!(TreeParts::decode(object, &data), Ok(None)) {
            return Err(Error::corrupt(
                object,
                format!("part {n} ({}) is itself a parts list", part.short()),
            ));
        }
        json.extend_from_slice(&data);
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::BlobKind;
    use crate::testutil::{local_repo, store_blobs, store_trees, wide_tree};

    /// A listing of about 6 MiB: two parts.
    fn large_tree() -> Tree {
        wide_tree(20_000, 250)
    }

    /// The error loading a tree whose parts list is `list`, stored as a tree blob.
    fn loading_list(repo: &Repository, list: &TreeParts) -> Error {
        let id = store_blobs(repo, &[(BlobKind::Tree, list.encode())])[0];
        let index = repo.load_index().unwrap();
        repo.load_tree(&index, &id).unwrap_err()
    }

    fn assert_says(e: &Error, what: &str) {
        assert!(e.to_string().contains(what), "{what:?} not in: {e}");
    }

    /// A reader that takes trees of at most 4 MiB (a server's) refuses a larger one with a
    /// clear error, and still loads a small one.
    #[test]
    fn a_reader_with_a_tree_limit_refuses_a_larger_tree_and_loads_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let repo = local_repo(&dir.path().join("repo"));
        let ids = store_trees(&repo, &[large_tree(), wide_tree(10, 10)]);
        let index = repo.load_index().unwrap();
        let limited = Repository::open(
            repo.storage().clone(),
            crate::keys::Secret::Passphrase(b"pw"),
        )
        .unwrap()
        .with_tree_limit(TREE_PART);
        let e = limited.load_tree(&index, &ids[0]).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e:?}");
        assert_says(&e, "larger than this reader loads (4 MiB)");
        assert!(limited.load_tree(&index, &ids[1]).is_ok());
        // A tree stored as one blob is held to the limit too.
        let small = limited.with_tree_limit(100);
        let e = small.load_tree(&index, &ids[1]).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e:?}");
        assert!(repo.load_tree(&index, &ids[0]).is_ok());
    }

    #[test]
    fn a_large_tree_is_stored_in_parts_and_loads_whole_with_and_without_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let tree = large_tree();
        let repo = local_repo(&dir.path().join("repo"));
        let encoded = repo.encode_tree(&tree).unwrap();
        assert_eq!(encoded.blobs.len(), 3, "two parts and their list");
        let id = store_trees(&repo, std::slice::from_ref(&tree))[0];
        assert_eq!(id, encoded.id);
        let index = repo.load_index().unwrap();
        let (loaded, parts) = repo.load_tree_with_parts(&index, &id).unwrap();
        assert_eq!(loaded, tree);
        assert_eq!(parts, [encoded.blobs[0].0, encoded.blobs[1].0]);

        let cached = Repository::open(
            repo.storage().clone(),
            crate::keys::Secret::Passphrase(b"pw"),
        )
        .unwrap()
        .with_cache(&dir.path().join("cache"));
        assert_eq!(cached.load_tree(&index, &id).unwrap(), tree);
        assert_eq!(
            cached.load_tree(&index, &id).unwrap(),
            tree,
            "from the cached pack"
        );
    }

    /// A tree blob may not exceed `MAX_BLOB`: a file of a million chunks (a 4 GiB disk
    /// image in 4 KiB chunks) failed its backup at the end. Now every blob stored for it is
    /// at most a part long. (Reading parts back is shown on smaller trees, which are quicker.)
    #[test]
    fn a_file_naming_more_chunks_than_one_blob_can_list_is_stored_in_parts() {
        use crate::tree::{Name, Node, NodeKind};
        let dir = tempfile::tempdir().unwrap();
        let repo = local_repo(dir.path());
        let chunks = crate::pack::MAX_BLOB as usize / 67 + 1_000;
        let mut file = Node::bare(Name(b"disk.img".to_vec()), NodeKind::File, 0, None);
        file.content = (0..chunks as u32)
            .map(|i| repo.blob_id(&i.to_le_bytes()))
            .collect();
        let tree = Tree { nodes: vec![file] };

        let encoded = repo.encode_tree(&tree).unwrap();

        let (list, parts) = encoded.blobs.split_last().unwrap();
        assert_eq!(list.0, encoded.id);
        assert!(parts.len() > 16, "{} parts", parts.len());
        assert!(parts.iter().all(|(_, d)| d.len() <= TREE_PART));
        let stored: usize = parts.iter().map(|(_, d)| d.len()).sum();
        assert!(stored > crate::pack::MAX_BLOB as usize);
    }

    #[test]
    fn a_small_tree_is_one_blob_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let repo = local_repo(dir.path());
        let tree = wide_tree(10, 10);
        let encoded = repo.encode_tree(&tree).unwrap();
        assert_eq!(encoded.id, repo.blob_id(&tree.encode()));
        assert_eq!(encoded.blobs, [(encoded.id, tree.encode())]);
    }

    #[test]
    fn a_parts_list_of_too_many_parts_is_refused_before_any_part_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let repo = local_repo(dir.path());
        let part = store_blobs(&repo, &[(BlobKind::Tree, b"{\"nodes\":[]}".to_vec())])[0];
        let list = TreeParts {
            parts: vec![part; crate::tree::MAX_TREE_PARTS + 1],
        };
        assert_says(&loading_list(&repo, &list), "1025 parts");
    }

    #[test]
    fn a_part_that_is_itself_a_parts_list_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let repo = local_repo(dir.path());
        let inner = TreeParts {
            parts: vec![store_blobs(&repo, &[(BlobKind::Tree, b"{\"nodes\":[]}".to_vec())])[0]],
        };
        let nested = store_blobs(&repo, &[(BlobKind::Tree, inner.encode())])[0];
        let e = loading_list(
            &repo,
            &TreeParts {
                parts: vec![nested],
            },
        );
        assert_says(&e, "itself a parts list");
    }

    #[test]
    fn a_missing_part_is_named_with_its_tree() {
        let dir = tempfile::tempdir().unwrap();
        let repo = local_repo(dir.path());
        let list = TreeParts {
            parts: vec![repo.blob_id(b"never stored")],
        };
        let list_id = repo.blob_id(&list.encode());
        let e = loading_list(&repo, &list);
        assert_says(&e, &format!("tree {}", list_id.short()));
        assert_says(&e, "not in any index");
    }

    #[test]
    fn a_part_longer_than_a_part_may_be_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let repo = local_repo(dir.path());
        let long = store_blobs(&repo, &[(BlobKind::Tree, vec![b' '; TREE_PART + 1])])[0];
        let e = loading_list(&repo, &TreeParts { parts: vec![long] });
        assert_says(&e, "longer than");
    }

    /// Blob IDs do not depend on the kind, and backup and prune keep one copy of an ID
    /// whatever its kind: a part is read by its ID alone, as a whole tree always was. A list
    /// naming a file's chunk gives a tree that does not decode.
    #[test]
    fn a_part_naming_file_data_is_damage_and_a_data_copy_of_a_real_part_reads() {
        let dir = tempfile::tempdir().unwrap();
        let repo = local_repo(dir.path());
        let chunk = store_blobs(&repo, &[(BlobKind::Data, b"some file's bytes".to_vec())])[0];
        let e = loading_list(&repo, &TreeParts { parts: vec![chunk] });
        assert_says(&e, "tree ");

        let encoded = repo.encode_tree(&large_tree()).unwrap();
        let (parts, list) = encoded.blobs.split_at(2);
        store_blobs(
            &repo,
            &parts
                .iter()
                .map(|(_, d)| (BlobKind::Data, d.clone()))
                .collect::<Vec<_>>(),
        );
        store_blobs(&repo, &[(BlobKind::Tree, list[0].1.clone())]);
        let index = repo.load_index().unwrap();
        assert_eq!(repo.load_tree(&index, &encoded.id).unwrap(), large_tree());
    }
}
