//! Session markers ("locks") that say a backup or prune is running.
//!
//! No operation here is exclusive for backups: a backup (or a restore or check) only announces
//! itself, so prune can tell whether someone may still be using an older index. A marker is refreshed
//! every [`REFRESH`]; one not refreshed for [`STALE_AFTER`] belongs to a killed process and is
//! ignored (and removed by prune). Markers are sealed objects (`LPLK`) with random names, so
//! creating one never needs a conditional write.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::Key;
use crate::error::{Error, Result};
use crate::format::{self, Magic, Version};
use crate::id::Id;
use crate::repo::Repository;
use crate::storage::{FileKind, Storage};

/// How often a running command rewrites its marker's `refreshed` time.
pub(crate) const REFRESH: Duration = Duration::from_secs(5 * 60);
/// A marker not refreshed for this long belongs to a dead process (six missed refreshes,
/// so a slow storage or a suspended laptop does not lose its marker).
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(30 * 60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LockKind {
    Backup,
    Prune,
    /// A restore or check: reads packs, so prune must not delete them underneath it.
    Read,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LockInfo {
    pub kind: LockKind,
    pub host: String,
    pub pid: u32,
    pub created: DateTime<Utc>,
    pub refreshed: DateTime<Utc>,
}

impl LockInfo {
    /// Stale: not refreshed for [`STALE_AFTER`], or written on this machine by a process that
    /// no longer exists (killed), as restic also decides.
    pub(crate) fn is_stale(&self, now: DateTime<Utc>) -> bool {
        let expired = now.signed_duration_since(self.refreshed)
            > chrono::Duration::from_std(STALE_AFTER).expect("small duration");
        expired || (self.host == this_host() && !process_exists(self.pid))
    }
}

/// This machine's name, recorded in markers so a dead local process can be recognised.
pub(crate) fn this_host() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

fn process_exists(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // EPERM means it exists but belongs to someone else.
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// A held marker; removed on drop.
pub(crate) struct Lock {
    storage: Arc<dyn Storage>,
    pub id: Id,
    pub info: LockInfo,
    stop: Arc<(Mutex<bool>, Condvar)>,
    refresher: Option<JoinHandle<()>>,
    /// Set when the refresher found the marker gone (a prune took it for stale while this
    /// process was suspended or cut off): it is not written again, and the lock is lost.
    removed: Arc<AtomicBool>,
}

fn write_lock(storage: &dyn Storage, master: &Key, id: &Id, info: &LockInfo) -> Result<()> {
    let json = serde_json::to_vec(info).expect("lock serializes");
    storage.put(
        FileKind::Lock,
        &id.to_hex(),
        format::seal(master, Magic::Lock, &json, 1),
    )
}

impl Lock {
    pub(crate) fn acquire(repo: &Repository, kind: LockKind) -> Result<Lock> {
        Lock::acquire_refreshing(repo, kind, REFRESH)
    }

    /// [`Lock::acquire`] with the marker rewritten every `every` (tests use a short one).
    fn acquire_refreshing(repo: &Repository, kind: LockKind, every: Duration) -> Result<Lock> {
        let now = Utc::now();
        let info = LockInfo {
            kind,
            host: this_host(),
            pid: std::process::id(),
            created: now,
            refreshed: now,
        };
        let id = Id::random();
        let storage = repo.storage().clone();
        write_lock(storage.as_ref(), repo.master(), &id, &info)?;
        remove_stale(repo, &id, now);
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let removed = Arc::new(AtomicBool::new(false));
        let refresher = {
            let stop = stop.clone();
            let removed = removed.clone();
            let storage = storage.clone();
            let master = repo.master().clone();
            let mut info = info.clone();
            std::thread::Builder::new()
                .name("loop-lock".into())
                .spawn(move || {
                    let (m, cv) = &*stop;
                    let mut stopped = m.lock().expect("lock mutex");
                    // The flag is checked before every wait: a lock dropped before this thread
                    // first ran must not leave it (and the dropping thread) waiting.
                    while !*stopped {
                        let (guard, timeout) = cv.wait_timeout(stopped, every).expect("lock mutex");
                        stopped = guard;
                        if !*stopped && timeout.timed_out() {
                            // Rewriting a marker a prune removed would hide from the backup's
                            // last check that the prune ran without it.
                            let name = id.to_hex();
                            if let Err(e) = storage.size(FileKind::Lock, &name)
                                && e.is_not_found()
                            {
                                removed.store(true, Ordering::Relaxed);
                                return;
                            }
                            info.refreshed = Utc::now();
                            // A failed refresh is retried next round; the marker goes stale
                            // only after several misses.
                            let _ = write_lock(storage.as_ref(), &master, &id, &info);
                        }
                    }
                })
                .map_err(|e| Error::io("lock refresher thread", e))?
        };
        Ok(Lock {
            storage,
            id,
            info,
            stop,
            refresher: Some(refresher),
            removed,
        })
    }

    /// Fails unless this marker is still stored as written. A marker someone removed (or
    /// replaced) means a prune may not have seen this operation, and may have deleted what
    /// it wrote: a backup checks this before it saves its snapshot.
    pub(crate) fn verify_held(&self, master: &Key) -> Result<()> {
        let name = self.id.to_hex();
        let object = FileKind::Lock.path(&name);
        let lost = || {
            Error::Invalid(format!(
                "this operation's lock marker {object} was removed or replaced while it ran, \
                 so a prune may have deleted data it wrote"
            ))
        };
        if self.removed.load(Ordering::Relaxed) {
            return Err(lost());
        }
        let bytes = match self.storage.get(FileKind::Lock, &name, 64 * 1024) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Err(lost()),
            Err(e) => return Err(e),
        };
        let info = format::open(master, Magic::Lock, &object, &bytes, 64 * 1024)
            .ok()
            .and_then(|(v, j)| decode_info(v, &j))
            .ok_or_else(lost)?;
        if info.kind != self.info.kind
            || info.host != self.info.host
            || info.pid != self.info.pid
            || info.created != self.info.created
        {
            return Err(lost());
        }
        Ok(())
    }

    /// Takes a prune marker and fails when another live prune holds one.
    pub(crate) fn acquire_exclusive_prune(repo: &Repository) -> Result<Lock> {
        let lock = Lock::acquire(repo, LockKind::Prune)?;
        let others: Vec<_> = list(repo)?
            .into_iter()
            .filter(|(id, info)| {
                *id != lock.id && info.kind == LockKind::Prune && !info.is_stale(Utc::now())
            })
            .collect();
        if let Some((_, info)) = others.first() {
            return Err(Error::Invalid(format!(
                "another prune is running (host {}, pid {}, since {})",
                info.host, info.pid, info.created
            )));
        }
        Ok(lock)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        {
            let (m, cv) = &*self.stop;
            *m.lock().expect("lock mutex") = true;
            cv.notify_all();
        }
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let _ = self.storage.delete(FileKind::Lock, &self.id.to_hex());
    }
}

/// Removes the markers of operations that are gone (killed, or not refreshed for
/// [`STALE_AFTER`]), which would otherwise hold back prune's deferred deletions until they age
/// out. Best effort: a marker that cannot be removed (over a server, another token's) stays
/// for prune.
fn remove_stale(repo: &Repository, own: &Id, now: DateTime<Utc>) {
    let Ok(all) = list(repo) else {
        return;
    };
    for (id, info) in all {
        if id != *own && info.is_stale(now) {
            let _ = repo.storage().delete(FileKind::Lock, &id.to_hex());
        }
    }
}

/// A marker's contents, or `None` when they do not decode.
fn decode_info(version: Version, json: &[u8]) -> Option<LockInfo> {
    match version {
        Version::V1 => serde_json::from_slice(json).ok(),
    }
}

/// Every marker in the repository. A marker that cannot be read is reported as a live backup,
/// the cautious reading for prune.
pub(crate) fn list(repo: &Repository) -> Result<Vec<(Id, LockInfo)>> {
    let mut out = Vec::new();
    for obj in repo.storage().list(FileKind::Lock)? {
        let id = Id::parse(&obj.name)?;
        let object = FileKind::Lock.path(&obj.name);
        let info = match repo.storage().get(FileKind::Lock, &obj.name, 64 * 1024) {
            Ok(bytes) => format::open(repo.master(), Magic::Lock, &object, &bytes, 64 * 1024)
                .ok()
                .and_then(|(v, j)| decode_info(v, &j)),
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let info = info.unwrap_or(LockInfo {
            kind: LockKind::Backup,
            host: "?".into(),
            pid: 0,
            created: obj.modified,
            refreshed: obj.modified,
        });
        out.push((id, info));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(dir: &std::path::Path) -> Repository {
        crate::testutil::local_repo(dir)
    }

    /// A running command's marker keeps being rewritten, so it never looks stale to a prune
    /// however long the command runs.
    #[test]
    fn a_held_marker_is_refreshed_while_its_command_runs() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path());
        let lock =
            Lock::acquire_refreshing(&repo, LockKind::Backup, Duration::from_millis(20)).unwrap();
        let refreshed = || {
            let (id, info) = list(&repo).unwrap().pop().expect("the marker");
            assert_eq!(id, lock.id);
            info.refreshed
        };
        let first = refreshed();
        let mut later = first;
        for _ in 0..500 {
            later = refreshed();
            if later > first {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            later > first,
            "the marker was not rewritten: {first} then {later}"
        );
        lock.verify_held(repo.master()).unwrap();
        drop(lock);
        assert!(list(&repo).unwrap().is_empty());
    }

    /// A marker a prune removed (it took a suspended process for dead) is not written back:
    /// the backup's last check must see that the prune ran without it.
    #[test]
    fn a_marker_removed_under_a_running_command_is_not_written_back() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path());
        let lock =
            Lock::acquire_refreshing(&repo, LockKind::Backup, Duration::from_millis(20)).unwrap();
        repo.storage()
            .delete(FileKind::Lock, &lock.id.to_hex())
            .unwrap();
        // Enough refresh rounds to have written it back.
        std::thread::sleep(Duration::from_millis(300));
        assert!(list(&repo).unwrap().is_empty(), "the marker came back");
        assert!(lock.verify_held(repo.master()).is_err());
    }

    /// Regression: dropping a lock before its refresher thread first ran left that thread
    /// waiting five minutes, and the dropping thread joined it (a `check` that failed fast hung).
    #[test]
    fn a_lock_dropped_at_once_releases_and_removes_its_marker() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo(tmp.path());
        for _ in 0..50 {
            drop(Lock::acquire(&repo, LockKind::Read).unwrap());
        }
        assert!(list(&repo).unwrap().is_empty());
    }

    #[test]
    fn markers_of_dead_local_processes_are_stale_and_live_ones_are_not() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo(tmp.path());
        let held = Lock::acquire(&repo, LockKind::Backup).unwrap();
        let now = Utc::now();
        let (_, info) = list(&repo).unwrap().pop().unwrap();
        assert!(!info.is_stale(now), "our own live process");
        let mut dead = info.clone();
        dead.pid = i32::MAX as u32; // above pid_max: no such process
        assert!(dead.is_stale(now));
        let mut remote = dead.clone();
        remote.host = "another-machine".into();
        assert!(
            !remote.is_stale(now),
            "a remote process is judged by its refresh time only"
        );
        remote.refreshed = now - chrono::Duration::hours(1);
        assert!(remote.is_stale(now));
        let mut other = Lock::acquire_exclusive_prune(&repo).unwrap();
        assert!(
            Lock::acquire_exclusive_prune(&repo).is_err(),
            "one prune at a time"
        );
        drop(std::mem::replace(
            &mut other,
            Lock::acquire(&repo, LockKind::Read).unwrap(),
        ));
        drop(held);
    }
}
