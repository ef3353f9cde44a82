//! The quick start ends in the browser: `loop server` on a fresh data directory prints the
//! console's address and the first administrator's password, and a real Chromium signs in
//! there with them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use loop_testkit::browser::Browser;

#[test]
fn the_first_administrator_signs_in_at_the_printed_console_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loop"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LOOP_") {
            cmd.env_remove(&key);
        }
    }
    let mut child = cmd
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start loop server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut console, mut email, mut password) = (None, None, None);
    while password.is_none() {
        let line = match lines.next() {
            Some(Ok(l)) => l,
            _ => {
                let _ = child.kill();
                panic!("loop server stopped before it printed the password");
            }
        };
        if let Some(c) = line.strip_prefix("console: ") {
            console = Some(c.trim().to_string());
        } else if let Some(e) = line.strip_prefix("first administrator: ") {
            email = Some(e.trim().to_string());
        } else if let Some((_, p)) = line.split_once("(shown once, change it after signing in): ") {
            password = Some(p.trim().to_string());
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let console = console.expect("the console's address is printed before the password");
    assert!(
        console.starts_with("https://127.0.0.1:") && console.ends_with('/'),
        "{console}"
    );

    let signed_in = Browser::start(&console, "en").map(|b| {
        b.goto(&console);
        assert!(b.path().starts_with("/signin"), "{}", b.path());
        b.fill("#email", email.as_deref().unwrap());
        b.fill("#password", password.as_deref().unwrap());
        b.click("button[type=submit]");
        b.wait_for_path("/t/");
        b.text("h1")
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Some(h1) = signed_in {
        assert!(h1.starts_with("Dashboard"), "{h1}");
    }
}
