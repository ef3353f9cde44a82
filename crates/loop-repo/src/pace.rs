//! Bandwidth limits (`--limit-upload`, `--limit-download`): every transfer in one direction
//! shares one line of a fixed rate, the way restic and Kopia limit theirs.
//!
//! The line is kept as the time it is next free. A transfer of `n` bytes takes the line from
//! then (or now, when it is idle) for `n / rate` seconds, and is done when that time is over:
//! the transfers of a command together never move more than the rate, however many threads
//! share the line. Bytes are counted in steps of at most [`STEP`], so a paced stream runs
//! ahead of its rate by at most one step; an idle line earns no credit, so nothing bursts
//! after a pause.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::storage::{FileKind, ObjectInfo, Storage};

/// The largest step a paced reader lets through at once, and never more than a second's
/// worth at the limit: at a slow limit each of the streams sharing the line still moves
/// bytes every few seconds (a server aborts a request body that sends nothing for a
/// minute), and at fast ones the bookkeeping costs nothing.
pub const STEP: usize = 16 << 10;

/// One direction's line, shared by clones (every storage and thread of a process).
#[derive(Clone, Debug)]
pub struct Pace {
    bytes_per_sec: u64,
    free_at: Arc<Mutex<Option<Instant>>>,
}

impl Pace {
    /// A line of `kib` KiB/s; none for 0 (no limit).
    pub fn kib_per_sec(kib: u64) -> Option<Pace> {
        (kib > 0).then(|| Pace {
            bytes_per_sec: kib.saturating_mul(1024),
            free_at: Default::default(),
        })
    }

    /// The line's rate in KiB/s.
    pub fn kib(&self) -> u64 {
        self.bytes_per_sec / 1024
    }

    /// How long `n` bytes take on the line by themselves.
    pub fn time_for(&self, n: u64) -> Duration {
        Duration::try_from_secs_f64(n as f64 / self.bytes_per_sec as f64).unwrap_or(Duration::MAX)
    }

    /// Books the line for `n` bytes ready at `now`: how long until their time on it is over.
    fn book(&self, now: Instant, n: usize) -> Duration {
        let mut free_at = self.free_at.lock().expect("pace");
        let start = free_at.map_or(now, |t| t.max(now));
        let end = start + self.time_for(n as u64);
        *free_at = Some(end);
        end - now
    }

    /// Waits until `n` bytes have had their time on the line.
    pub fn take(&self, n: usize) {
        let wait = self.book(Instant::now(), n);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }

    /// The most a paced reader lets through at once: [`STEP`], or a second's worth.
    fn step(&self) -> usize {
        STEP.min(usize::try_from(self.bytes_per_sec).unwrap_or(STEP))
    }

    /// `inner`, read at this pace.
    pub fn reader<R: Read>(&self, inner: R) -> PacedReader<R> {
        PacedReader {
            inner,
            pace: self.clone(),
        }
    }
}

/// A reader that lets its bytes through at a [`Pace`].
pub struct PacedReader<R> {
    inner: R,
    pace: Pace,
}

impl<R: Read> Read for PacedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let step = buf.len().min(self.pace.step());
        let n = self.inner.read(&mut buf[..step])?;
        if n > 0 {
            self.pace.take(n);
        }
        Ok(n)
    }
}

/// The limits of one process: uploads and downloads each have a line, or none.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    pub upload: Option<Pace>,
    pub download: Option<Pace>,
    /// How many transfers may share a line at once (a command's worker threads and a few
    /// more), for how long one may take; 0: one per core and two more.
    pub sharing: u32,
}

impl Limits {
    pub fn is_none(&self) -> bool {
        self.upload.is_none() && self.download.is_none()
    }

    /// How long a transfer of `n` bytes at `pace` may be on a line it shares with the
    /// others (see [`Limits::sharing`]).
    pub fn shared_time_for(&self, pace: &Pace, n: u64) -> Duration {
        let sharing = match self.sharing {
            0 => std::thread::available_parallelism().map_or(2, |c| c.get() as u32) + 2,
            n => n,
        };
        pace.time_for(n).saturating_mul(sharing)
    }

    /// These limits, with uploads at most `kib` KiB/s (a protected item's limit): a line of
    /// that rate when it is below the upload line's, which otherwise stays as it is.
    pub fn upload_at_most(self, kib: u64) -> Limits {
        match (&self.upload, Pace::kib_per_sec(kib)) {
            (Some(line), Some(tighter)) if tighter.bytes_per_sec < line.bytes_per_sec => Limits {
                upload: Some(tighter),
                ..self
            },
            (None, Some(line)) => Limits {
                upload: Some(line),
                ..self
            },
            _ => self,
        }
    }
}

/// A storage whose objects move at the process's limits, one whole object at a time: an
/// object goes at the store's speed, and its call returns once the object's time on the
/// line is over. For stores that take an object in one request (local disk, S3); server
/// vaults pace their request bodies in [`STEP`]s instead. Lock markers are not paced: a
/// refresh queued behind packs at a slow limit would come too late, and a repository's
/// other users would take the lock as abandoned.
pub struct PacedStorage {
    inner: Arc<dyn Storage>,
    limits: Limits,
}

impl PacedStorage {
    /// `inner` at `limits`; `inner` itself when there are none.
    pub fn wrap(inner: Arc<dyn Storage>, limits: Limits) -> Arc<dyn Storage> {
        if limits.is_none() {
            return inner;
        }
        Arc::new(PacedStorage { inner, limits })
    }

    fn sent(&self, n: usize) {
        if let Some(p) = &self.limits.upload {
            p.take(n);
        }
    }

    fn received(&self, n: usize) {
        if let Some(p) = &self.limits.download {
            p.take(n);
        }
    }
}

/// Whether writes of `kind` wait for the line: all but lock markers.
fn paced(kind: FileKind) -> bool {
    kind != FileKind::Lock
}

impl Storage for PacedStorage {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn put(&self, kind: FileKind, name: &str, data: Vec<u8>) -> Result<()> {
        if paced(kind) {
            self.sent(data.len());
        }
        self.inner.put(kind, name, data)
    }

    fn get(&self, kind: FileKind, name: &str, max: u64) -> Result<Vec<u8>> {
        let data = self.inner.get(kind, name, max)?;
        self.received(data.len());
        Ok(data)
    }

    fn get_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let data = self.inner.get_range(kind, name, offset, len)?;
        self.received(data.len());
        Ok(data)
    }

    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
        self.inner.list(kind)
    }

    fn delete(&self, kind: FileKind, name: &str) -> Result<()> {
        self.inner.delete(kind, name)
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.inner.size(kind, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_books_each_transfer_after_the_last_and_earns_nothing_while_idle() {
        let pace = Pace::kib_per_sec(1).expect("a limit"); // 1,024 bytes a second
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // The first transfer has the line for half a second.
        assert_eq!(pace.book(t0, 512), ms(500));
        // The next, ready at the same moment, follows it: done at 1.5 s.
        assert_eq!(pace.book(t0, 1024), ms(1500));
        // Ready at 1 s, it follows the one before: done at 1.75 s.
        assert_eq!(pace.book(t0 + ms(1000), 256), ms(750));
        // After an idle line (free at 1.75 s, ready at 5 s): it starts at once, and the idle
        // time earned no credit.
        assert_eq!(pace.book(t0 + ms(5000), 2048), ms(2000));
        assert_eq!(pace.book(t0 + ms(5000), 1024), ms(3000));
        // Clones share the line.
        assert_eq!(pace.clone().book(t0 + ms(5000), 1024), ms(4000));
    }

    #[test]
    fn an_items_upload_limit_applies_where_it_is_the_tighter() {
        let kib = |l: &Limits| l.upload.as_ref().map(Pace::kib);
        let mine = Limits {
            upload: Pace::kib_per_sec(100),
            download: Pace::kib_per_sec(7),
            sharing: 0,
        };
        let under = mine.clone().upload_at_most(40);
        assert_eq!(kib(&under), Some(40));
        assert_eq!(under.download.as_ref().map(Pace::kib), Some(7));
        assert_eq!(kib(&mine.clone().upload_at_most(400)), Some(100));
        assert_eq!(kib(&mine.upload_at_most(0)), Some(100));
        assert_eq!(kib(&Limits::default().upload_at_most(40)), Some(40));
        assert_eq!(kib(&Limits::default().upload_at_most(0)), None);
    }

    #[test]
    fn every_kind_but_lock_markers_waits_for_the_line() {
        let unpaced: Vec<FileKind> = FileKind::ALL.into_iter().filter(|k| !paced(*k)).collect();
        assert_eq!(unpaced, [FileKind::Lock]);
    }

    #[test]
    fn no_limit_is_no_line() {
        assert!(Pace::kib_per_sec(0).is_none());
        assert!(Limits::default().is_none());
    }

    #[test]
    fn a_paced_reader_passes_every_byte_in_steps() {
        // A line fast enough that the test never waits long (1 GiB/s).
        let pace = Pace::kib_per_sec(1 << 20).expect("a limit");
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut r = pace.reader(&data[..]);
        let mut first = vec![0u8; 1 << 20];
        assert_eq!(r.read(&mut first).unwrap(), STEP);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!([&first[..STEP], &rest[..]].concat(), data);
        // At 1 KiB/s, a second's worth at a time.
        let slow = Pace::kib_per_sec(1).expect("a limit");
        assert_eq!(slow.reader(&data[..]).read(&mut first).unwrap(), 1024);
    }
}
