//! The scan: counts files and bytes ahead of the walker, so progress can show an ETA.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use super::BackupProgress;
use crate::exclude::{CACHEDIR_TAG, Excluder};

/// Counts files and bytes for progress, on its own thread, while the backup runs.
pub(super) fn scan(paths: &[PathBuf], excluder: &Excluder, progress: &BackupProgress) {
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        if progress.cancel.load(Ordering::Relaxed) {
            break;
        }
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                let only_tag = excluder.skips_cache(&p);
                for e in rd.flatten() {
                    let child = e.path();
                    if only_tag && e.file_name() != CACHEDIR_TAG {
                        continue;
                    }
                    if !excluder.is_excluded(&child) {
                        stack.push(child);
                    }
                }
            }
        } else if meta.is_file() {
            progress.files_total.fetch_add(1, Ordering::Relaxed);
            progress
                .bytes_total
                .fetch_add(meta.size(), Ordering::Relaxed);
        }
    }
    progress.scan_finished.store(true, Ordering::Relaxed);
}
