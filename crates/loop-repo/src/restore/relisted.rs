//! The index listed again during a restore, for blobs a prune moved after the restore read it.

use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::index::Index;
use crate::repo::Repository;

/// The index as listed again once a pack the restore's index names was gone: a prune that
/// ended after the restore read the index moved the pack's blobs (it writes their new pack
/// and index file before it deletes the old pack), so they are read from where they are now.
/// Listed once in a restore, by the first reader that finds a pack gone (the others wait for
/// that listing); a pack gone from it too is lost, or moved again by a later prune, and its
/// blobs' first error stands.
#[derive(Default)]
pub(super) struct Relisted {
    index: Mutex<Option<Option<Arc<Index>>>>,
}

impl Relisted {
    /// `read` (a blob or tree read) on the index as listed again; `None` when it could not
    /// be listed.
    pub(super) fn read<T>(
        &self,
        repo: &Repository,
        read: impl Fn(&Index) -> Result<T>,
    ) -> Option<Result<T>> {
        let index = self
            .index
            .lock()
            .expect("relisted index")
            .get_or_insert_with(|| {
                let listed = repo.load_index_lenient(&Default::default());
                listed.ok().map(|(index, _)| Arc::new(index))
            })
            .clone()?;
        Some(read(&index))
    }
}
