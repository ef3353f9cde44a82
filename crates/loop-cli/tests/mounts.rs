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

/// A restore over files already there, onto a disk too small for the new versions: the
/// files it could not write are left as they were, not truncated.
#[test]
fn a_full_disk_during_a_restore_over_existing_files_leaves_them_as_they_were() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("big.bin"), &noise(4 * 1024 * 1024, 1));
    write(&src.join("small.txt"), b"the snapshot's small file");
    env.init();
    env.backup(&[&src], &[]);
    let target = env.path("target");
    let Some(_disk) = Tmpfs::mount(&target, "3m") else {
        return;
    };
    let had = noise(1024 * 1024, 2);
    write(&target.join("src/big.bin"), &had);
    write(&target.join("src/small.txt"), b"the user's small file");

    let err = env.fails(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert!(err.contains("big.bin"), "{err}");
    assert!(err.to_lowercase().contains("space"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        std::fs::read(target.join("src/big.bin")).unwrap() == had,
        "big.bin is no longer what was there"
    );
    assert_eq!(
        std::fs::read(target.join("src/small.txt")).unwrap(),
        b"the snapshot's small file"
    );
    let mut names: Vec<String> = std::fs::read_dir(target.join("src"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["big.bin", "small.txt"], "no temporary name is left");
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
