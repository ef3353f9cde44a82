//! A file or a directory of a snapshot, streamed to a browser as it is read: a file as it is,
//! a directory as `.zip` (stored, not compressed again: most of what people keep compresses
//! poorly, and the download should run at the speed of a restore) or `.tar.zst`.
//!
//! A blocking thread walks the snapshot and writes the archive into a small channel; the
//! response body drains it, so the thread waits while the client is slow and stops when the
//! client goes away. Archives hold directories, regular files and symbolic links; device
//! nodes, FIFOs and sockets are left out. A failure after the first bytes (a damaged object)
//! ends the body with an error, so the browser reports a failed download rather than keeping
//! a short archive.

use std::io::{self, Read, Write};
use std::ops::ControlFlow;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use loop_repo::Id;
use loop_repo::tree::{Node, NodeKind};
use tokio::sync::mpsc;

use super::opened::{Opened, walk};

/// Bytes the writer gathers before it hands them to the response.
const CHUNK: usize = 256 * 1024;

/// Chunks waiting in the channel at most.
const QUEUED: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One file, as it is.
    File,
    Zip,
    TarZst,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "file" => Some(Format::File),
            "zip" => Some(Format::Zip),
            "tar.zst" => Some(Format::TarZst),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::File => "application/octet-stream",
            Format::Zip => "application/zip",
            Format::TarZst => "application/zstd",
        }
    }

    /// The downloaded file's name for a node named `name`.
    pub fn file_name(self, name: &str) -> String {
        match self {
            Format::File => name.to_string(),
            Format::Zip => format!("{name}.zip"),
            Format::TarZst => format!("{name}.tar.zst"),
        }
    }
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// The body that streams `top` (named `name` in the archive) as `format`.
pub fn stream(opened: Arc<Opened>, top: Node, name: String, format: Format) -> Body {
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(QUEUED);
    tokio::task::spawn_blocking(move || {
        let pipe = Pipe {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let written = match format {
            Format::File => file(&opened, &top, pipe),
            Format::Zip => zip(&opened, top, name.clone(), pipe),
            Format::TarZst => tar_zst(&opened, top, name.clone(), pipe),
        };
        if let Err(e) = written {
            let gone = e
                .downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe);
            if !gone {
                tracing::warn!(file = %name, error = %e, "a download ended early");
                let _ = tx.blocking_send(Err(io::Error::other("the download failed")));
            }
        }
    });
    Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// The response's end of the channel, as a writer.
struct Pipe {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl Pipe {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for Pipe {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        if data.len() >= CHUNK && self.buf.is_empty() {
            self.buf.extend_from_slice(data);
            self.send()?;
        } else {
            self.buf.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A file's content, blob by blob, held to the size its node records (a node that lies about
/// its size is an error, not a short or long entry in an archive).
struct Content<'a> {
    o: &'a Opened,
    blobs: std::slice::Iter<'a, Id>,
    current: Vec<u8>,
    at: usize,
    left: u64,
}

impl<'a> Content<'a> {
    fn of(o: &'a Opened, n: &'a Node) -> Self {
        Content {
            o,
            blobs: n.content.iter(),
            current: Vec::new(),
            at: 0,
            left: n.size,
        }
    }
}

impl Read for Content<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            let Some(id) = self.blobs.next() else {
                return match self.left {
                    0 => Ok(0),
                    _ => Err(io::Error::other("a file is shorter than its recorded size")),
                };
            };
            self.current = self
                .o
                .repo
                .read_blob(&self.o.index, id)
                .map_err(io::Error::other)?;
            self.at = 0;
            if self.current.len() as u64 > self.left {
                return Err(io::Error::other("a file is longer than its recorded size"));
            }
            self.left -= self.current.len() as u64;
        }
        let n = out.len().min(self.current.len() - self.at);
        out[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn file(o: &Opened, n: &Node, mut out: Pipe) -> Result<(), Failure> {
    if n.kind != NodeKind::File {
        return Err("not a file".into());
    }
    io::copy(&mut Content::of(o, n), &mut out)?;
    out.flush()?;
    Ok(())
}

fn name_of(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

fn zip(o: &Opened, top: Node, name: String, out: Pipe) -> Result<(), Failure> {
    use zip::write::SimpleFileOptions;
    let mut z = zip::ZipWriter::new_stream(out);
    walk::<Failure>(o, name.into_bytes(), top, &mut |path, n| {
        let secs = n.mtime_ns.div_euclid(1_000_000_000);
        let when = chrono::DateTime::from_timestamp(secs, 0)
            .and_then(|t| {
                use chrono::{Datelike as _, Timelike as _};
                let year = u16::try_from(t.year()).ok()?;
                zip::DateTime::from_date_and_time(
                    year,
                    t.month() as u8,
                    t.day() as u8,
                    t.hour() as u8,
                    t.minute() as u8,
                    t.second() as u8,
                )
                .ok()
            })
            .unwrap_or_default();
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .last_modified_time(when)
            .unix_permissions(n.mode & 0o7777);
        match n.kind {
            NodeKind::Dir => z.add_directory(format!("{}/", name_of(path)), options)?,
            NodeKind::File => {
                z.start_file(name_of(path), options.large_file(n.size >= u32::MAX as u64))?;
                io::copy(&mut Content::of(o, n), &mut z)?;
            }
            NodeKind::Symlink => {
                let target = n.link_target.as_ref().map(|t| t.to_string());
                z.add_symlink(name_of(path), target.unwrap_or_default(), options)?;
            }
            _ => {}
        }
        Ok(ControlFlow::Continue(()))
    })?;
    let mut out = z.finish()?.into_inner();
    out.flush()?;
    Ok(())
}

fn tar_zst(o: &Opened, top: Node, name: String, out: Pipe) -> Result<(), Failure> {
    use std::os::unix::ffi::OsStrExt;
    let zst = zstd::stream::write::Encoder::new(out, 1)?;
    let mut t = tar::Builder::new(zst);
    t.mode(tar::HeaderMode::Complete);
    walk::<Failure>(o, name.into_bytes(), top, &mut |path, n| {
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(path));
        let mut h = tar::Header::new_gnu();
        h.set_mode(n.mode & 0o7777);
        h.set_uid(n.uid.into());
        h.set_gid(n.gid.into());
        h.set_mtime(n.mtime_ns.div_euclid(1_000_000_000).max(0) as u64);
        match n.kind {
            NodeKind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                t.append_data(&mut h, path, io::empty())?;
            }
            NodeKind::File => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(n.size);
                t.append_data(&mut h, path, Content::of(o, n))?;
            }
            NodeKind::Symlink => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                let target = n.link_target.clone().unwrap_or_default();
                t.append_link(&mut h, path, target.to_os())?;
            }
            _ => {}
        }
        Ok(ControlFlow::Continue(()))
    })?;
    let mut out = t.into_inner()?.finish()?;
    out.flush()?;
    Ok(())
}
