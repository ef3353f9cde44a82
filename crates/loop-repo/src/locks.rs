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
/// A command that has not rewritten its marker for this long, by its own clock, takes it for
/// lost and never writes it again: a prune may already have judged it stale (on a machine
/// whose clock runs up to [`STALE_AFTER`] minus this ahead) and deleted what it protects. A
/// laptop that slept through a backup wakes to a backup that fails instead of one that saves
/// a snapshot of deleted packs.
pub(crate) const LOST_AFTER: Duration = Duration::from_secs(20 * 60);

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
    /// The process's PID namespace (the inode of `/proc/self/ns/pid`), so that `pid` is
    /// looked up only where it means the same process: two containers may share a host name
    /// but not their process numbers. Absent in markers of older versions and where `/proc`
    /// is not mounted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_namespace: Option<u64>,
    /// The writer's boot (`/proc/sys/kernel/random/boot_id`): machines cloned from one
    /// image share a host name, and the first PID namespace has the same inode on every
    /// Linux machine, so only the boot tells this machine from another. Absent in markers of
    /// older versions and where `/proc` is not mounted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
    /// When storage says the marker was last written (from its listing; not stored in it).
    #[serde(skip)]
    pub stored: Option<DateTime<Utc>>,
}

impl LockInfo {
    /// Stale: not refreshed for [`STALE_AFTER`], or written on this machine (this boot of
    /// it), in this PID namespace, by a process that no longer exists (killed), as restic
    /// also decides. A marker that does not name its boot and namespace is judged by its
    /// refresh time only. A refresh time more than [`STALE_AFTER`] ahead of `now` (a clock
    /// far ahead, or a marker written to block prunes for ever) is not believed: storage's
    /// time of the last write is taken instead.
    pub(crate) fn is_stale(&self, now: DateTime<Utc>) -> bool {
        let stale_after = chrono::Duration::from_std(STALE_AFTER).expect("small duration");
        let refreshed = match self.stored {
            Some(stored) if self.refreshed > now + stale_after => stored.min(self.refreshed),
            _ => self.refreshed,
        };
        let expired = now.signed_duration_since(refreshed) > stale_after;
        let here = self.host == this_host()
            && self.boot.is_some()
            && self.boot.as_deref() == this_boot()
            && self.pid_namespace.is_some()
            && self.pid_namespace == pid_namespace();
        expired || (here && !process_exists(self.pid))
    }
}

/// This process's PID namespace: the inode `/proc/self/ns/pid` names (`pid:[4026531836]`).
fn pid_namespace() -> Option<u64> {
    static NS: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *NS.get_or_init(|| {
        let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
        let link = link.to_str()?;
        link.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
    })
}

/// This boot of this machine (`/proc/sys/kernel/random/boot_id`).
fn this_boot() -> Option<&'static str> {
    static BOOT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT.get_or_init(|| {
        let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        Some(id.trim().to_string()).filter(|id| !id.is_empty())
    })
    .as_deref()
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
    /// The `refreshed` time of the marker last written; older than [`LOST_AFTER`], the lock
    /// is lost.
    written: Arc<Mutex<DateTime<Utc>>>,
}

/// Whether a marker last written at `written` may already look stale to a prune.
fn too_old(written: &Mutex<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    let at = *written.lock().expect("lock time mutex");
    now.signed_duration_since(at) > chrono::Duration::from_std(LOST_AFTER).expect("small duration")
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
            pid_namespace: pid_namespace(),
            boot: this_boot().map(String::from),
            stored: None,
        };
        let id = Id::random();
        let storage = repo.storage().clone();
        write_lock(storage.as_ref(), repo.master(), &id, &info)?;
        remove_stale(repo, &id, now);
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let removed = Arc::new(AtomicBool::new(false));
        let written = Arc::new(Mutex::new(now));
        let refresher = {
            let stop = stop.clone();
            let removed = removed.clone();
            let written = written.clone();
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
                            // Rewriting a backup's marker a prune removed would hide from the
                            // backup's last check that the prune ran without it. (A restore's,
                            // check's or prune's marker is written back: it protects them from
                            // the next prune, and none of them checks it at the end.)
                            let name = id.to_hex();
                            if info.kind == LockKind::Backup
                                && let Err(e) = storage.size(FileKind::Lock, &name)
                                && e.is_not_found()
                            {
                                removed.store(true, Ordering::Relaxed);
                                return;
                            }
                            // So would rewriting a backup's marker old enough that a prune may
                            // have taken it for stale. The time checked is the time written:
                            // a process suspended after the check writes a time that is old
                            // when it wakes.
                            let now = Utc::now();
                            if info.kind == LockKind::Backup && too_old(&written, now) {
                                removed.store(true, Ordering::Relaxed);
                                return;
                            }
                            info.refreshed = now;
                            // A failed refresh is retried next round; the marker goes stale
                            // only after several misses.
                            if write_lock(storage.as_ref(), &master, &id, &info).is_ok() {
                                *written.lock().expect("lock time mutex") = now;
                            }
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
            written,
        })
    }

    /// Fails unless this marker is still stored as written and was rewritten within
    /// [`LOST_AFTER`]. A marker someone removed (or replaced), or one a prune may have
    /// taken for stale (the process was suspended, or could not reach the storage), means a
    /// prune may not have seen this operation, and may have deleted what it wrote: a backup
    /// checks this before it saves its snapshot, and again after. Such a loss is an
    /// [`Error::Invalid`]; any other error is the storage's, and says nothing of the marker.
    pub(crate) fn verify_held(&self, master: &Key) -> Result<()> {
        let name = self.id.to_hex();
        let object = FileKind::Lock.path(&name);
        if too_old(&self.written, Utc::now()) {
            return Err(Error::Invalid(format!(
                "this operation's lock marker {object} was not refreshed for over {} minutes \
                 (the process was suspended, or the storage could not be reached), so a prune \
                 may have taken it for stale and deleted data it wrote",
                LOST_AFTER.as_secs() / 60
            )));
        }
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
        let mut info = info.unwrap_or(LockInfo {
            kind: LockKind::Backup,
            host: "?".into(),
            pid: 0,
            created: obj.modified,
            refreshed: obj.modified,
            pid_namespace: None,
            boot: None,
            stored: None,
        });
        info.stored = Some(obj.modified);
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

    /// A backup's marker a prune removed (it took a suspended process for dead) is not
    /// written back: the backup's last check must see that the prune ran without it. A
    /// restore's, check's or prune's is: it protects them from the next prune.
    #[test]
    fn a_removed_marker_is_written_back_unless_it_is_a_backups() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path());
        let every = Duration::from_millis(20);
        let backup = Lock::acquire_refreshing(&repo, LockKind::Backup, every).unwrap();
        let read = Lock::acquire_refreshing(&repo, LockKind::Read, every).unwrap();
        for lock in [&backup, &read] {
            repo.storage()
                .delete(FileKind::Lock, &lock.id.to_hex())
                .unwrap();
        }
        // Enough refresh rounds to have written them back.
        std::thread::sleep(Duration::from_millis(300));
        let listed: Vec<(Id, LockKind)> = list(&repo)
            .unwrap()
            .into_iter()
            .map(|(id, info)| (id, info.kind))
            .collect();
        assert_eq!(listed, [(read.id, LockKind::Read)]);
        assert!(backup.verify_held(repo.master()).is_err());
        read.verify_held(repo.master()).unwrap();
    }

    /// A marker whose refresh time lies far ahead (a clock years ahead, or one written to
    /// hold back every prune) is judged by when storage says it was last written.
    #[test]
    fn a_marker_refreshed_in_the_far_future_goes_stale_once_storage_saw_no_write() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path());
        let now = Utc::now();
        let mut info = Lock::acquire(&repo, LockKind::Read).unwrap().info.clone();
        info.host = "another-machine".into();
        info.refreshed = now + chrono::Duration::days(3650);
        let id = Id::random();
        write_lock(repo.storage().as_ref(), repo.master(), &id, &info).unwrap();
        let judged = |at: DateTime<Utc>| list(&repo).unwrap().pop().unwrap().1.is_stale(at);
        assert!(!judged(now), "just written");
        assert!(judged(now + chrono::Duration::hours(1)));
        // A clock a few minutes ahead is believed, as before.
        info.refreshed = now + chrono::Duration::minutes(10);
        write_lock(repo.storage().as_ref(), repo.master(), &id, &info).unwrap();
        assert!(!judged(now + chrono::Duration::minutes(35)));
    }

    /// A command that could not rewrite its marker for [`LOST_AFTER`] (a laptop asleep
    /// through its backup) takes the lock for lost: a prune may have judged the marker stale
    /// meanwhile. It neither writes the marker back nor passes its last check.
    #[test]
    fn a_marker_not_rewritten_for_too_long_is_lost_and_not_written_back() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path());
        let lock =
            Lock::acquire_refreshing(&repo, LockKind::Backup, Duration::from_secs(3600)).unwrap();
        lock.verify_held(repo.master()).unwrap();
        let asleep = Utc::now() - chrono::Duration::minutes(21);
        *lock.written.lock().unwrap() = asleep;
        let refused = lock.verify_held(repo.master()).unwrap_err().to_string();
        assert!(refused.contains("not refreshed"), "{refused}");
        drop(lock);

        // Its refresher, waking, gives the lock up and writes the marker no more: what it
        // holds is at the latest from a round that began before the lock aged.
        let lock =
            Lock::acquire_refreshing(&repo, LockKind::Backup, Duration::from_millis(20)).unwrap();
        *lock.written.lock().unwrap() = asleep;
        let aged = Utc::now();
        for _ in 0..500 {
            if lock.removed.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            lock.removed.load(Ordering::Relaxed),
            "the refresher kept the lock"
        );
        let (_, stored) = list(&repo).unwrap().pop().expect("the marker");
        assert!(stored.refreshed <= aged, "the marker was written again");
        assert!(lock.verify_held(repo.master()).is_err());
        drop(lock);

        // A restore's marker is written again: a marker back protects it from the next prune.
        let read =
            Lock::acquire_refreshing(&repo, LockKind::Read, Duration::from_millis(20)).unwrap();
        *read.written.lock().unwrap() = asleep;
        let aged = Utc::now();
        let mut rewritten = false;
        for _ in 0..500 {
            rewritten = list(&repo)
                .unwrap()
                .iter()
                .any(|(id, info)| *id == read.id && info.refreshed > aged);
            if rewritten {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(rewritten, "the restore's marker was given up");
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
        assert_eq!(info.pid_namespace, pid_namespace());
        // The same host name in another PID namespace (another container): its process
        // numbers are not ours to look up.
        let mut elsewhere = dead.clone();
        elsewhere.pid_namespace = pid_namespace().map(|n| n + 1);
        assert!(!elsewhere.is_stale(now));
        elsewhere.pid_namespace = None;
        assert!(!elsewhere.is_stale(now), "a marker naming no namespace");
        // The same host name and namespace on another machine (one cloned from the same
        // image): only its boot tells it apart.
        assert_eq!(info.boot.as_deref(), this_boot());
        let mut clone = dead.clone();
        clone.boot = Some("another machine's boot".into());
        assert!(!clone.is_stale(now), "a process of another machine");
        clone.boot = None;
        assert!(!clone.is_stale(now), "a marker naming no boot");
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
