//! Links `loop` with packed relative relocations (DT_RELR) where the toolchain and C library
//! support them. A position-independent binary of this size carries 80,000 relative
//! relocations: as classic records they are 1.9 MB that the loader reads at every start, as
//! RELR bitmaps 30 KB, which lowers every command's resident memory by 2 to 3 MiB
//! (docs/BENCHMARKS.md). The loader of glibc 2.36 or later applies them; where the host's
//! linker or C library cannot (older systems, cross builds), the binary is linked as before.

use std::io::Write;
use std::process::{Command, Stdio};

const FLAG: &str = "-Wl,-z,pack-relative-relocs";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    if target == host && target.ends_with("-linux-gnu") && links_with_relr() {
        println!("cargo:rustc-link-arg-bins={FLAG}");
    }
}

/// Whether the system C compiler (rustc's linker driver on this target) links a program
/// with the flag (GNU ld 2.38+ and lld know it; older linkers ignore it with a warning) and
/// the program then runs (the loader of glibc 2.36+ applies RELR; an older one would not).
fn links_with_relr() -> bool {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("relr");
    let Ok(mut cc) = Command::new("cc")
        .args(["-x", "c", "-", "-o"])
        .arg(&out)
        .args(["-pie", FLAG])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    if let Some(mut stdin) = cc.stdin.take() {
        let _ = stdin.write_all(b"int main(void) { return 0; }\n");
    }
    cc.wait().is_ok_and(|s| s.success()) && Command::new(&out).status().is_ok_and(|s| s.success())
}
