//! The quick start ends in the browser: `loop server` on a fresh data directory prints the
//! console's address and the first administrator's password, and a real Chromium signs in
//! there with them. And the whole service from the console: a machine enrolled with a code
//! made there backs up a folder asked for there, and a file of it downloads again.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use loop_testkit::browser::Browser;
use support::agents::{agent_cmd, enroll_with};
use support::server::{Running, json};

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

/// Polls `f` every half second until it answers, for up to `secs` seconds (a bound that only
/// stops a hung test); then fails with `what` and what `f` last saw.
fn poll<T>(what: &str, secs: u64, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return v,
            Err(seen) if Instant::now() >= deadline => {
                panic!("never happened within {secs} s: {what}\nlast seen: {seen}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// The whole service from the console: a customer's admin signs in to the browser, makes an
/// enrolment code on the devices page, and a real `loop agent` enrols with it and runs; the
/// devices page shows the machine online. In the browser the admin protects a folder of that
/// machine, presses "Back up now" on the item's page and watches the job's page until it says
/// the backup succeeded. The vault's page then lists the snapshot (tagged with the item), and
/// a file downloaded from the snapshot browser is the file on the machine, byte for byte.
#[test]
fn a_machine_enrolled_from_the_console_backs_up_a_folder_and_its_file_downloads_again() {
    let s = support::story::set_up(None, "local");
    let Some(b) = Browser::start(&s.server.url, "en") else {
        eprintln!("SKIPPED: no Chromium for the console's end-to-end backup story");
        return;
    };
    let tenant = &s.customer;

    // 1. Ana, the customer's admin, signs in.
    b.goto("/signin");
    b.fill("#email", "ana@acme.example");
    b.fill("#password", "ana-password-1234");
    b.click("button[type=submit]");
    b.wait_for_path("/t/");

    // 2. On the devices page she makes an enrolment code.
    b.click(&format!("nav.tenant a[href='/t/{tenant}/devices']"));
    b.click(&format!(
        "form[action='/t/{tenant}/devices'] button[type=submit]"
    ));
    let code = b.text("#enrolment-code");
    assert!(
        code.starts_with("lpc_"),
        "an enrolment code on the page: {code:?}"
    );

    // 3. The file server enrols with it; until its agent runs it has never been heard from.
    let state = s.dir.path().join("agent-state");
    let enrolled = enroll_with(&s, &state, &code, &["--name", "file-server"]);
    let device = enrolled["device_id"].as_str().unwrap().to_string();
    let row = format!("tr[data-device='{device}']");
    b.goto(&format!("/t/{tenant}/devices"));
    let before = b.text(&row);
    assert!(
        before.contains("file-server") && before.contains("never seen"),
        "{before}"
    );
    let agent = agent_cmd(&s, &state, &["agent", "run", "--poll-seconds", "1"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start loop agent run");
    let _agent = Running(agent);

    // 4. The devices page shows it online, with its agent's version.
    let version = env!("CARGO_PKG_VERSION");
    poll("the devices page shows file-server online", 60, || {
        b.goto(&format!("/t/{tenant}/devices"));
        let text = b.text(&row);
        if b.has(&format!("{row} .badge.ok")) && text.contains(version) {
            Ok(())
        } else {
            Err(text)
        }
    });
    assert!(
        b.text(&format!("{row} .badge"))
            .eq_ignore_ascii_case("online")
    );

    // 5. A folder of generated files on the machine, protected from the items page.
    let src = s.dir.path().join("shared");
    let figures = loop_testkit::data::noise(3 << 20, 11);
    loop_testkit::data::write(&src.join("figures.bin"), &figures);
    loop_testkit::data::write(
        &src.join("minutes/2026-03.txt"),
        &loop_testkit::data::text(40_000, 12),
    );
    loop_testkit::data::write(&src.join("empty"), b"");
    b.click(&format!("nav.tenant a[href='/t/{tenant}/items']"));
    b.fill("#name", "shared folder");
    // The device is chosen by typing its name in the list, as with a keyboard.
    b.run("document.getElementById('device').focus();");
    b.keys("file-server");
    assert_eq!(
        b.run("return document.getElementById('device').value;"),
        device.as_str(),
        "file-server chosen in the device list"
    );
    b.fill("#paths", src.to_str().unwrap());
    b.click(&format!(
        "form[action='/t/{tenant}/items'] button[type=submit]"
    ));
    let path = b.wait_for_path("/items/");
    assert!(path.ends_with("?done=created"), "{path}");
    let item = path["/items/".len()..path.find('?').unwrap()].to_string();
    assert!(
        b.text("dl.facts").contains("file-server"),
        "{}",
        b.text("dl.facts")
    );

    // The vault holds nothing yet.
    b.goto(&format!("/vaults/{}", s.vault));
    assert!(!b.has("tr[data-snapshot]"), "{}", b.text("main"));

    // 6. "Back up now" on the item's page; its job's page follows the agent to the end.
    b.goto(&format!("/items/{item}"));
    b.click(&format!("form[action='/items/{item}/run'] button"));
    let page = b.wait_for_path("/jobs/");
    let job = page.trim_start_matches("/jobs/").to_string();
    let ended = poll("the job's page shows the backup ended", 180, || {
        let shown = b.text("#job-state");
        if ["Queued", "Running"].contains(&shown.as_str()) {
            let api = json(&mut s.admin("ana", &["job", "show", &job]));
            Err(format!("page: {shown}; API: {}", api["state"]))
        } else {
            Ok(shown)
        }
    });
    assert_eq!(
        ended,
        "Succeeded",
        "the backup failed; its page says:\n{}",
        b.text("main")
    );

    // 7. The vault's page lists the snapshot the job made, tagged with the item.
    let done = json(&mut s.admin("ana", &["job", "show", &job]));
    let snapshot = done["summary"]["snapshot_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a snapshot in {done:#}"))
        .to_string();
    b.click(&format!("nav.tenant a[href='/t/{tenant}/vaults']"));
    b.click(&format!("a[href='/vaults/{}']", s.vault));
    let snapshot_row = format!("tr[data-snapshot='{snapshot}']");
    assert!(b.has(&snapshot_row), "{snapshot} on {}", b.text("main"));
    assert_eq!(
        b.run("return document.querySelectorAll('tr[data-snapshot]').length;"),
        1
    );
    let snaps = json(&mut s.device(&s.restore_token, &["snapshots"]));
    let listed = snaps
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == snapshot.as_str())
        .unwrap_or_else(|| panic!("{snapshot} in {snaps:#}"));
    let tag = format!("item:{item}");
    assert!(
        listed["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == tag.as_str()),
        "{tag} in {listed:#}"
    );

    // In the snapshot browser, the file found by name downloads as it is on the machine.
    b.click(&format!("{snapshot_row} a"));
    b.fill("#q", "figures.bin");
    b.click("form.search button");
    b.click_here("main table a[download][href$='figures.bin']");
    let (name, bytes) = b.downloaded("figures.bin");
    assert_eq!(name, "figures.bin");
    assert!(
        bytes == figures,
        "the downloaded figures.bin differs from the machine's"
    );
}
