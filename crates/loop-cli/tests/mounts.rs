//! Stories that need a filesystem of their own: a full disk, and a mount point inside the
//! backed-up tree. They mount a small tmpfs, which needs root; without root they skip loudly
//! (CI runs as root, so there they always run).

mod support;

use std::path::Path;
use std::process::Command;

use support::cli::*;

struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        if !rustix::process::geteuid().is_root() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run these tests as root"
            );
            eprintln!("SKIPPED: mounting a tmpfs needs root");
            return None;
        }
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs at {}", at.display());
        Some(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_the_backup_clearly_and_loses_nothing() {
    let env = Env::new();
    let Some(_disk) = Tmpfs::mount(Path::new(&env.repo), "3m") else {
        return;
    };
    env.init();
    let src = env.path("src");
    write(&src.join("small.txt"), &text(20_000, 1));
    env.backup(&[&src], &[]);
    write(&src.join("big.bin"), &noise(8 * 1024 * 1024, 2));
    let err = env.fails(&["backup", src.to_str().unwrap()]);
    assert!(
        err.to_lowercase().contains("space"),
        "the error says the disk is full: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // The earlier snapshot is intact and restorable.
    std::fs::remove_file(src.join("big.bin")).unwrap();
    env.ok(&["check", "--read-data"]);
    env.assert_latest_restores(&src);
}

#[test]
fn one_file_system_records_a_mount_point_but_not_what_is_mounted() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("here.txt"), b"on the root filesystem");
    let Some(_mnt) = Tmpfs::mount(&src.join("mnt"), "4m") else {
        return;
    };
    write(&src.join("mnt/elsewhere.txt"), b"on another filesystem");
    env.init();
    env.backup(&[&src], &["--one-file-system"]);
    let listing = env.ok(&["ls", "latest"]);
    assert!(listing.contains("/src/here.txt"), "{listing}");
    assert!(
        listing.contains("/src/mnt\n"),
        "the mount point itself is kept: {listing}"
    );
    assert!(!listing.contains("elsewhere.txt"), "{listing}");
    env.backup(&[&src], &[]);
    assert!(
        env.ok(&["ls", "latest"]).contains("/src/mnt/elsewhere.txt"),
        "without -x it is included"
    );
}
