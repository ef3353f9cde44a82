//! Snapshots of an opened repository: load, save, list, remove and find by name.

use super::{FETCH_THREADS, MAX_SNAPSHOT, Repository, SEALED_OVERHEAD, SnapshotList};
use crate::error::{Error, Result};
use crate::format::{self, Magic, Version};
use crate::id::Id;
use crate::snapshot::{Snapshot, SnapshotFilter};
use crate::storage::FileKind;
use crate::util::parallel_map;

impl Repository {
    pub fn load_snapshot(&self, id: &Id) -> Result<Snapshot> {
        self.load_snapshot_from(id, false)
    }

    /// Loads a snapshot; `listed` when a fresh listing just named it, so a cached copy may
    /// serve (a snapshot asked for by ID alone may have been forgotten since it was cached).
    fn load_snapshot_from(&self, id: &Id, listed: bool) -> Result<Snapshot> {
        let name = id.to_hex();
        let object = FileKind::Snapshot.path(&name);
        let open = |bytes: &[u8]| -> Result<Snapshot> {
            match format::open(&self.master, Magic::Snapshot, &object, bytes, MAX_SNAPSHOT)? {
                (Version::V1, json) => serde_json::from_slice(&json)
                    .map_err(|e| Error::corrupt(&object, e.to_string())),
            }
        };
        let max = SEALED_OVERHEAD + MAX_SNAPSHOT as u64;
        if listed && let Some(snap) = self.cached_file(FileKind::Snapshot, &name, max, open) {
            return Ok(snap);
        }
        let bytes = self.storage.get(FileKind::Snapshot, &name, max)?;
        let snap = open(&bytes)?;
        if let Some(c) = &self.cache {
            c.put_file(FileKind::Snapshot, &name, &bytes);
        }
        Ok(snap)
    }

    pub fn save_snapshot(&self, snap: &Snapshot) -> Result<Id> {
        let id = Id::random();
        let json = serde_json::to_vec(snap).expect("snapshots serialize");
        self.storage.put(
            FileKind::Snapshot,
            &id.to_hex(),
            format::seal(&self.master, Magic::Snapshot, &json, 3),
        )?;
        Ok(id)
    }

    /// Every snapshot that can be read, oldest first, and apart from them the snapshot
    /// objects that cannot (damaged, or of a newer format), with the reason. One bad object
    /// (a token holder can write any snapshot object) never hides the others: listing,
    /// `latest`, forget and stats skip it and say so, prune refuses to delete anything while
    /// it cannot know what a snapshot uses, and check reports it. Storage errors still fail.
    pub fn list_snapshots(&self) -> Result<SnapshotList> {
        let names: Vec<String> = self
            .storage
            .list(FileKind::Snapshot)?
            .into_iter()
            .map(|o| o.name)
            .collect();
        if let Some(c) = &self.cache {
            c.retain_files(
                FileKind::Snapshot,
                &names.iter().map(String::as_str).collect(),
            );
        }
        let loaded = parallel_map(&names, FETCH_THREADS, |name| {
            let id = Id::parse(name)?;
            match self.load_snapshot_from(&id, true) {
                Ok(s) => Ok(Some((id, s))),
                // Removed by a concurrent forget between list and get.
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            }
        });
        let mut out = SnapshotList::default();
        for (name, r) in names.into_iter().zip(loaded) {
            match r {
                Ok(Some(s)) => out.snapshots.push(s),
                Ok(None) => {}
                Err(e @ (Error::Corrupt { .. } | Error::NewerVersion { .. })) => {
                    out.damaged.push((name, e))
                }
                Err(e) => return Err(e),
            }
        }
        out.snapshots
            .sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        out.damaged.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Removes a snapshot object without reading it, so a damaged one can go too; one already
    /// gone counts as removed. Takes no marker, because nothing running depends on the object
    /// staying: the snapshot's trees and data stay until a prune, which waits for backup,
    /// restore and check markers, and a reader that listed the snapshot just before skips it
    /// ([`Repository::list_snapshots`]).
    pub fn remove_snapshot(&self, id: &Id) -> Result<()> {
        self.storage.delete(FileKind::Snapshot, &id.to_hex())
    }

    /// The ID of the snapshot object `spec` names (a full ID or a unique prefix of at least 4
    /// hex digits) without reading it, so a damaged snapshot can still be removed.
    pub fn snapshot_name(&self, spec: &str) -> Result<Id> {
        if spec.len() < 4 || spec.len() > 64 || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!(
                "{spec:?} is not a snapshot ID (at least 4 hex digits)"
            )));
        }
        let spec_lower = spec.to_ascii_lowercase();
        let matches: Vec<String> = self
            .storage
            .list(FileKind::Snapshot)?
            .into_iter()
            .map(|o| o.name)
            .filter(|n| n.starts_with(&spec_lower))
            .collect();
        match matches.as_slice() {
            [one] => Id::parse(one),
            [] => Err(Error::NotFound(format!("snapshot {spec}"))),
            _ => Err(Error::Invalid(format!(
                "snapshot prefix {spec} is ambiguous"
            ))),
        }
    }

    /// Resolves `latest`, a full ID or a unique ID prefix (at least 4 hex digits).
    pub fn find_snapshot(&self, spec: &str, filter: &SnapshotFilter) -> Result<(Id, Snapshot)> {
        if spec == "latest" {
            return self
                .list_snapshots()?
                .snapshots
                .into_iter()
                .rev()
                .find(|(_, s)| filter.matches(s))
                .ok_or_else(|| Error::NotFound("a snapshot matching the filter".into()));
        }
        if spec.len() == 64 {
            let id = Id::parse(spec)?;
            return self.load_snapshot(&id).map(|s| (id, s)).map_err(|e| {
                if e.is_not_found() {
                    Error::NotFound(format!("snapshot {spec}"))
                } else {
                    e
                }
            });
        }
        if spec.len() < 4 || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!(
                "{spec:?} is neither `latest` nor a snapshot ID (at least 4 hex digits)"
            )));
        }
        let id = self.snapshot_name(spec)?;
        Ok((id, self.load_snapshot(&id)?))
    }
}
