//! The index of an opened repository: every index file, loaded into one in-memory index.

use std::collections::HashSet;

use super::{FETCH_THREADS, Repository, SEALED_OVERHEAD};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::{Index, IndexFile};
use crate::storage::FileKind;
use crate::util::parallel_map;

/// How many times the index is listed when a file it listed is gone by the time it is read
/// (a concurrent prune replaced it).
const INDEX_ROUNDS: usize = 4;
/// Index files fetched and decoded together: at most this many, and no more once their
/// stored sizes reach [`INDEX_BATCH_BYTES`] (a single larger file is a batch of its own).
const INDEX_BATCH_FILES: usize = 64;
const INDEX_BATCH_BYTES: u64 = 256 << 20;

impl Repository {
    /// Loads every index file into one in-memory index.
    pub fn load_index(&self) -> Result<Index> {
        self.load_index_excluding(&HashSet::new())
    }

    /// Loads the index without the packs in `skip` (packs a pending prune will delete).
    pub fn load_index_excluding(&self, skip: &HashSet<Id>) -> Result<Index> {
        self.load_index_with(skip, false).map(|(index, _)| index)
    }

    /// Like [`Repository::load_index_excluding`], but an index file that is damaged or from a
    /// newer version is skipped with a warning instead of failing. Backups use this: a lost
    /// index file only costs deduplication against the blobs it names. So do readers (restore,
    /// `ls`, `diff`, `dump`, `stats`, the console's browser): they fail only on what they
    /// cannot find. Anything that deletes data (prune) must never use it.
    pub fn load_index_lenient(&self, skip: &HashSet<Id>) -> Result<(Index, Vec<String>)> {
        self.load_index_with(skip, true)
    }

    fn load_index_with(&self, skip: &HashSet<Id>, lenient: bool) -> Result<(Index, Vec<String>)> {
        let list = || -> Result<Vec<(String, u64)>> {
            Ok(self
                .storage
                .list(FileKind::Index)?
                .into_iter()
                .map(|o| (o.name, o.size))
                .collect())
        };
        let mut names = list()?;
        if let Some(c) = &self.cache {
            c.retain_files(
                FileKind::Index,
                &names.iter().map(|(n, _)| n.as_str()).collect(),
            );
        }
        let mut index = Index::new();
        let mut warnings = Vec::new();
        let mut read: HashSet<String> = Default::default();
        // A file removed between the listing and its read was replaced by a concurrent
        // prune, which writes the new index file before it removes the old: listed again,
        // the new one is read (a few rounds, in case prunes follow one another).
        for _ in 0..INDEX_ROUNDS {
            let mut vanished = false;
            names.retain(|(n, _)| read.insert(n.clone()));
            for chunk in index_batches(&names) {
                let files =
                    parallel_map(chunk, FETCH_THREADS, |(name, _)| self.load_index_file(name));
                for f in files {
                    let file = match f {
                        Ok(file) => file,
                        Err(e) if e.is_not_found() => {
                            vanished = true;
                            continue;
                        }
                        Err(e @ (Error::Corrupt { .. } | Error::NewerVersion { .. }))
                            if lenient =>
                        {
                            warnings.push(format!(
                                "{e}; skipped, so what only it lists is not found (a backup \
                                 stores that again; `loop repair index` rebuilds the index)"
                            ));
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    for (pack, blobs) in &file.packs {
                        if !skip.contains(pack) {
                            index.add_pack(*pack, blobs);
                        }
                    }
                }
            }
            if !vanished {
                break;
            }
            names = list()?;
        }
        index.finish();
        if let Some(c) = &self.cache {
            let packs: Vec<String> = index.pack_ids().iter().map(Id::to_hex).collect();
            c.retain_files(FileKind::Pack, &packs.iter().map(String::as_str).collect());
        }
        Ok((index, warnings))
    }

    pub fn load_index_file(&self, name: &str) -> Result<IndexFile> {
        let object = FileKind::Index.path(name);
        let open = |bytes: &[u8]| IndexFile::open(&self.master, &object, bytes);
        let max = SEALED_OVERHEAD + crate::index::MAX_INDEX_FILE as u64;
        if let Some(file) = self.cached_file(FileKind::Index, name, max, open) {
            return Ok(file);
        }
        let bytes = self.storage.get(FileKind::Index, name, max)?;
        let file = open(&bytes)?;
        if let Some(c) = &self.cache {
            c.put_file(FileKind::Index, name, &bytes);
        }
        Ok(file)
    }

    pub fn save_index_file(&self, file: &IndexFile) -> Result<Id> {
        let id = Id::random();
        self.storage
            .put(FileKind::Index, &id.to_hex(), file.seal(&self.master))?;
        Ok(id)
    }
}

/// `files` (name, stored size) cut into the batches the index is loaded in: every file a
/// batch decodes is held until the batch is added, so a batch is bounded by stored bytes as
/// well as by count.
fn index_batches(files: &[(String, u64)]) -> Vec<&[(String, u64)]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, (_, size)) in files.iter().enumerate() {
        if i > start && (i - start == INDEX_BATCH_FILES || bytes + size > INDEX_BATCH_BYTES) {
            out.push(&files[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < files.len() {
        out.push(&files[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{self, Magic};
    use crate::testutil::{local_repo, store_trees};
    use crate::tree::Tree;

    /// An index file of 5,000,000 identical records: 225 MB that seal into less than 1 MiB.
    /// Loading the index refuses it, naming it; where a damaged index file is tolerated
    /// (backups, restores) the other files still load.
    #[test]
    fn an_index_file_of_repeated_records_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = local_repo(tmp.path());
        let tree = store_trees(&repo, &[Tree::default()])[0];
        let mut payload = 1u32.to_le_bytes().to_vec();
        payload.extend_from_slice(&[9; 32]);
        payload.extend_from_slice(&5_000_000u32.to_le_bytes());
        let mut record = vec![0u8];
        record.extend_from_slice(&[7; 32]);
        for field in [40u32, 100, 84] {
            record.extend_from_slice(&field.to_le_bytes());
        }
        payload.extend_from_slice(&record.repeat(5_000_000));
        let sealed = format::seal(repo.master(), Magic::Index, &payload, 1);
        drop(payload);
        assert!(sealed.len() < 1 << 20, "{} bytes", sealed.len());
        let name = Id::random().to_hex();
        repo.storage().put(FileKind::Index, &name, sealed).unwrap();

        let err = repo.load_index().map(|i| i.len()).unwrap_err().to_string();
        assert!(err.contains(&name) && err.contains("pack order"), "{err}");
        let (index, warnings) = repo.load_index_lenient(&HashSet::new()).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains(&name), "{}", warnings[0]);
        assert_eq!(index.len(), 1);
        assert!(index.contains(&tree));
    }

    #[test]
    fn index_files_are_loaded_in_batches_bounded_by_count_and_stored_bytes() {
        let mib = |n: u64| n << 20;
        let files: Vec<(String, u64)> = [200, 50, 10, 300, 1]
            .into_iter()
            .map(|n| (format!("{n}"), mib(n)))
            .chain((0..130).map(|i| (format!("small {i}"), 1000)))
            .collect();
        let sizes: Vec<Vec<u64>> = index_batches(&files)
            .iter()
            .map(|b| b.iter().map(|(_, s)| *s).collect())
            .collect();
        assert_eq!(sizes[0], [mib(200), mib(50)]);
        assert_eq!(sizes[1], [mib(10)]);
        assert_eq!(sizes[2], [mib(300)]);
        assert_eq!(sizes[3].len(), 64);
        assert_eq!(sizes[3][0], mib(1));
        assert_eq!(sizes.iter().map(Vec::len).sum::<usize>(), files.len());
        assert!(sizes.iter().all(|b| b.len() <= 64));
        assert!(index_batches(&[]).is_empty());
    }
}
