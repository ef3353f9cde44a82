//! `--read-data`: which packs a subset reads, and reading one pack whole against itself and
//! the index.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use super::{CheckOptions, CheckProgress, Checker, ReadData, named, reason_of};
use crate::id::Id;
use crate::pack::{self, PackEntry};
use crate::repo::Repository;
use crate::storage::FileKind;
use crate::util::parallel_map;

/// Picks `percent`% of the packs at random (rounded up, at least one when above zero), in
/// pack order.
pub(super) fn sample_packs(candidates: &[Id], percent: f64) -> Vec<Id> {
    let n = candidates.len();
    if n == 0 || percent.is_nan() || percent <= 0.0 {
        return Vec::new();
    }
    // Multiply first so whole percentages of whole counts stay exact.
    let want = (percent.min(100.0) * n as f64 / 100.0).ceil() as usize;
    let mut picked = rand::seq::index::sample(&mut rand::rng(), n, want.clamp(1, n)).into_vec();
    picked.sort_unstable();
    picked.into_iter().map(|i| candidates[i]).collect()
}

/// What reading one pack found.
#[derive(Default)]
pub(super) struct PackOutcome {
    /// Reasons the pack is damaged (without its name).
    pub(super) damage: Vec<String>,
    /// Blobs whose copy in this pack cannot be read.
    pub(super) bad_blobs: Vec<Id>,
    /// Failures that say nothing about the pack (a storage error).
    pub(super) errors: Vec<String>,
    pub(super) warnings: Vec<String>,
    pub(super) bytes: u64,
}

/// Authenticates, decodes and re-hashes one blob whose bytes lie in `bytes`.
fn verify_blob(
    repo: &Repository,
    cipher: &crate::crypto::Cipher,
    object: &str,
    e: &PackEntry,
    bytes: &[u8],
    out: &mut PackOutcome,
) {
    let end = e.offset as u64 + e.length as u64;
    if end > bytes.len() as u64 {
        out.damage
            .push(format!("blob {} lies beyond the pack's end", e.id.short()));
        out.bad_blobs.push(e.id);
        return;
    }
    let stored = bytes[e.offset as usize..end as usize].to_vec();
    match pack::decode_blob(cipher, e, stored, object) {
        Ok(data) if repo.blob_id(&data) == e.id => {}
        Ok(_) => {
            out.damage
                .push(format!("blob {} does not match its ID", e.id.short()));
            out.bad_blobs.push(e.id);
        }
        Err(err) => {
            out.damage.push(reason_of(&err));
            out.bad_blobs.push(e.id);
        }
    }
}

/// Downloads one pack and verifies all of it against itself and against the index.
fn read_pack(repo: &Repository, pack: Id, listed_size: u64, indexed: &[PackEntry]) -> PackOutcome {
    let name = pack.to_hex();
    let object = FileKind::Pack.path(&name);
    let mut out = PackOutcome::default();
    // The largest pack a writer makes: the target, one more blob, and the trailer.
    let limit = pack::max_pack_size(repo.config().pack_size as usize);
    if listed_size > limit {
        out.damage.push(format!(
            "{listed_size} bytes, too large to be a pack; not read"
        ));
        return out;
    }
    let bytes = match repo.storage().get(FileKind::Pack, &name, limit) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            out.damage.push("missing from storage".into());
            out.bad_blobs.extend(indexed.iter().map(|e| e.id));
            return out;
        }
        Err(e) => {
            out.errors.push(named(&object, &e));
            return out;
        }
    };
    out.bytes = bytes.len() as u64;
    let cipher = pack::pack_cipher(repo.master(), &pack);
    match pack::read_contents(repo.master(), &object, &bytes) {
        Ok(contents) => {
            if contents.id != pack {
                out.damage.push(format!(
                    "its header names pack {}, not this one",
                    contents.id.short()
                ));
            }
            for e in &contents.entries {
                verify_blob(repo, &cipher, &object, e, &bytes, &mut out);
            }
            let slack = contents.slack();
            if slack > 0 {
                out.damage.push(format!(
                    "{slack} bytes between the last blob and the trailer"
                ));
            }
            // PackEntry has no Hash; (ID, offset) is unique within a pack.
            let in_trailer: HashMap<(Id, u32), &PackEntry> = contents
                .entries
                .iter()
                .map(|e| ((e.id, e.offset), e))
                .collect();
            for ie in indexed {
                if in_trailer.get(&(ie.id, ie.offset)) != Some(&ie) {
                    out.damage.push(format!(
                        "the index places blob {} at offset {}, but the pack's trailer does not",
                        ie.id.short(),
                        ie.offset
                    ));
                    out.bad_blobs.push(ie.id);
                }
            }
            let in_index: HashSet<(Id, u32)> = indexed.iter().map(|e| (e.id, e.offset)).collect();
            let unindexed = contents
                .entries
                .iter()
                .filter(|e| !in_index.contains(&(e.id, e.offset)))
                .count();
            if unindexed > 0 {
                out.warnings.push(format!(
                    "{object}: {unindexed} blobs in the pack are not named by the index"
                ));
            }
        }
        Err(e) => {
            out.damage.push(reason_of(&e));
            // The index knows where each blob is, so a broken trailer loses no data by itself:
            // verify the blobs at the index's offsets to trace only what is really gone.
            for ie in indexed {
                verify_blob(repo, &cipher, &object, ie, &bytes, &mut out);
            }
        }
    }
    out
}

impl Checker<'_> {
    /// Reads the packs `opts` asks for (all, or a random subset), in parallel, and records
    /// what each one found.
    pub(super) fn read_packs(&mut self, opts: &CheckOptions, progress: &CheckProgress) {
        let mut candidates: Vec<Id> = self
            .packs
            .keys()
            .filter(|id| self.stored.contains_key(id))
            .copied()
            .collect();
        candidates.sort_unstable();
        let selected = match opts.read_data {
            ReadData::None => return,
            ReadData::All => candidates,
            ReadData::Subset(percent) => sample_packs(&candidates, percent),
        };
        let threads = if opts.threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(2, 4)
        } else {
            opts.threads
        };
        progress
            .packs_total
            .store(selected.len() as u64, Ordering::Relaxed);
        let (repo, packs, stored) = (self.repo, &self.packs, &self.stored);
        let outcomes = parallel_map(&selected, threads, |id| {
            if progress.stop.load(Ordering::Relaxed) {
                return None;
            }
            let out = read_pack(repo, *id, stored[id], &packs[id]);
            progress.packs_done.fetch_add(1, Ordering::Relaxed);
            progress.bytes_done.fetch_add(out.bytes, Ordering::Relaxed);
            Some(out)
        });
        let unread = outcomes.iter().filter(|o| o.is_none()).count();
        if unread > 0 {
            self.report.warnings.push(format!(
                "stopped early: {unread} of {} selected packs were not read",
                selected.len()
            ));
        }
        self.report.packs_read = selected.len() - unread;
        let outcomes: Vec<_> = outcomes
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        for (id, out) in selected.into_iter().zip(outcomes) {
            for b in out.bad_blobs {
                self.mark_bad(b, id);
            }
            for reason in out.damage {
                self.mark_damaged(id, reason);
            }
            self.report.errors.extend(out.errors);
            self.report.warnings.extend(out.warnings);
        }
    }
}
