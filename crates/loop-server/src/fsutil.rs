//! Small file helpers for the server's own secrets.

use std::io::Write as _;
use std::path::Path;

/// Writes a file readable by its owner only (mode 0600), replacing it atomically and durably:
/// the file's bytes, then its name in the directory, reach the disk before this returns (a
/// master key whose name a power loss took would be made again, and every tenant key
/// wrapped under the first lost).
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

/// Creates directory `dir` (and those above it) if missing, readable by its owner only (mode
/// 0700), whatever the umask: the data directory holds the database, keys and vaults. One
/// that exists keeps its mode (the operator chose it).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates file `path` empty, readable by its owner only (mode 0600), if it does not exist:
/// SQLite then makes its journal files with the same mode.
pub fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
