//! Snapshot records: one sealed JSON object (`LPSN`) per backup run, named by a random ID.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::id::Id;

/// One backup run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub time: DateTime<FixedOffset>,
    pub tree: Id,
    pub paths: Vec<String>,
    pub hostname: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Id>,
    #[serde(default)]
    pub excludes: Vec<String>,
    #[serde(default)]
    pub program_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
}

/// What a backup run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub backup_start: String,
    pub backup_end: String,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub files_unreadable: u64,
    pub dirs: u64,
    pub data_blobs: u64,
    pub tree_blobs: u64,
    /// Plaintext bytes of blobs this run added.
    pub data_added: u64,
    /// Stored (compressed, encrypted) bytes of blobs this run added.
    pub data_added_packed: u64,
    pub total_files_processed: u64,
    pub total_bytes_processed: u64,
}

/// Narrows a snapshot list, as `--host`, `--path` and `--tag` do.
#[derive(Clone, Debug, Default)]
pub struct SnapshotFilter {
    pub hosts: Vec<String>,
    pub paths: Vec<String>,
    pub tags: Vec<String>,
}

impl SnapshotFilter {
    /// True when it selects every snapshot.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.paths.is_empty() && self.tags.is_empty()
    }

    pub fn matches(&self, s: &Snapshot) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&s.hostname))
            && (self.paths.is_empty() || self.paths.iter().all(|p| s.paths.contains(p)))
            && (self.tags.is_empty() || self.tags.iter().any(|t| s.tags.contains(t)))
    }
}
