//! Shell completions and manual pages come from the argument definitions: every command is
//! in them, and the scripts are valid for their shell.

use std::process::{Command, Stdio};

fn loop_out(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_loop"))
        .args(args)
        .output()
        .expect("run loop");
    assert!(
        out.status.success(),
        "loop {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Top-level commands, as `loop --help` lists them.
fn commands() -> Vec<String> {
    let help = loop_out(&["--help"]);
    let list = help
        .split("Commands:")
        .nth(1)
        .expect("a command list")
        .split("Options:")
        .next()
        .unwrap();
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn the_bash_completion_is_valid_bash_and_knows_every_command() {
    let script = loop_out(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("loop.bash");
    std::fs::write(&file, &script).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .stderr(Stdio::piped())
        .output()
        .expect("run bash");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let commands = commands();
    assert!(commands.len() > 20, "{commands:?}");
    for c in &commands {
        assert!(script.contains(c.as_str()), "{c} missing from the script");
    }
    // A subcommand's own flags are completed too.
    assert!(script.contains("--read-data"));
    for shell in ["zsh", "fish"] {
        assert!(loop_out(&["completions", shell]).contains("restore"));
    }
    // An unknown shell is refused with a usage error, not a panic.
    let bad = Command::new(env!("CARGO_BIN_EXE_loop"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn the_manual_has_a_page_for_every_command() {
    let page = loop_out(&["man"]);
    assert!(page.contains(".TH loop 1"), "{page}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS"] {
        assert!(page.contains(section), "{section} missing");
    }
    let dir = tempfile::tempdir().unwrap();
    loop_out(&["man", "--dir", dir.path().to_str().unwrap()]);
    for c in commands() {
        let file = dir.path().join(format!("loop-{c}.1"));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        assert!(text.contains(&format!(".TH loop-{c} 1")), "{file:?}");
    }
    assert!(dir.path().join("loop-user-accept-invite.1").exists());
}
