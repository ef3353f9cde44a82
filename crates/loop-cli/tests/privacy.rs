//! The privacy commands as a person and their provider use them: the provider publishes a
//! privacy policy with `loop privacy publish`, and `loop login` shows it until `loop
//! privacy accept`; a person gives consent to product news with `loop privacy consent on`
//! and downloads everything held on them with `loop privacy export`; the organisation
//! records a data-subject request, closes it, restricts processing, and reads `loop privacy
//! report`; the provider keeps the sub-processor register. The server's log names no person
//! and no client address all along.

mod support;

use std::io::Read as _;

use support::server::*;
use support::story::*;

/// `profile.json` of an exported archive.
fn profile_in(zip: &std::path::Path) -> serde_json::Value {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let mut profile = String::new();
    archive
        .by_name("profile.json")
        .unwrap()
        .read_to_string(&mut profile)
        .unwrap();
    serde_json::from_str(&profile).unwrap()
}

fn login(s: &Story) -> String {
    ok(s.admin(
        "ana",
        &[
            "login",
            "--server",
            &s.server.url,
            "--email",
            "ana@acme.example",
        ],
    )
    .env("LOOP_LOGIN_PASSWORD", "ana-password-1234"))
}

/// On a server whose nodes run no jobs, the archive is never made: the export gives up after
/// `--wait-secs` and says which job to follow, instead of waiting for ever.
#[test]
fn an_export_that_is_not_made_in_time_says_so_and_names_its_job() {
    let s = set_up(
        Some(&|d: &std::path::Path| {
            let p = d.join("server.toml");
            std::fs::write(&p, "[jobs]\nconcurrency = 0\n").unwrap();
            p
        }),
        "local",
    );
    let zip = s.dir.path().join("my-data.zip");
    let out = s
        .admin(
            "ana",
            &[
                "privacy",
                "export",
                "--output",
                zip.to_str().unwrap(),
                "--wait-secs",
                "2",
            ],
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not ready after 2 s") && err.contains("is queued; `loop job show jb_"),
        "{err}"
    );
    assert!(!zip.exists());
}

/// A person whose role reads no jobs (here: billing only) still gets their own archive: the
/// export waits for it without the job's details.
#[test]
fn a_person_who_may_not_read_jobs_exports_their_own_data() {
    let s = set_up(None, "local");
    ok(s.admin(
        "provider-admin",
        &[
            "user",
            "create",
            "--tenant",
            &s.customer,
            "--email",
            "bea@acme.example",
            "--first-name",
            "Bea",
            "--last-name",
            "Berg",
            "--role",
            "billing",
        ],
    )
    .env("LOOP_NEW_USER_PASSWORD", "bea-password-1234"));
    ok(s.admin(
        "bea",
        &[
            "login",
            "--server",
            &s.server.url,
            "--email",
            "bea@acme.example",
        ],
    )
    .env("LOOP_LOGIN_PASSWORD", "bea-password-1234"));
    let zip = s.dir.path().join("bea.zip");
    ok(&mut s.admin(
        "bea",
        &["privacy", "export", "--output", zip.to_str().unwrap()],
    ));
    let profile = profile_in(&zip);
    assert_eq!(profile["user"]["email"], "bea@acme.example");
}

#[test]
fn privacy_from_the_command_line() {
    let s = set_up_logging(None, "local", true);
    let published = ok(&mut s.admin(
        "provider-admin",
        &[
            "privacy",
            "publish",
            "--version",
            "2026-12",
            "--url",
            "https://provider.example/privacy",
            "--summary",
            "Sub-processors are listed in the service.",
        ],
    ));
    assert!(
        published.contains("published privacy policy 2026-12"),
        "{published}"
    );
    let shown = login(&s);
    assert!(
        shown.contains("the privacy policy changed: version 2026-12")
            && shown.contains("loop privacy accept"),
        "{shown}"
    );
    let accepted = ok(&mut s.admin("ana", &["privacy", "accept"]));
    assert!(
        accepted.contains("acknowledged privacy policy 2026-12"),
        "{accepted}"
    );
    assert!(
        !login(&s).contains("privacy policy"),
        "shown until acknowledged"
    );

    let consent = ok(&mut s.admin("ana", &["privacy", "consent"]));
    assert_eq!(consent.trim(), "consent to product news: not given");
    let consent = ok(&mut s.admin("ana", &["privacy", "consent", "on"]));
    assert!(
        consent.starts_with("consent to product news: given (")
            && consent.contains("policy 2026-12"),
        "{consent}"
    );

    // Everything held on her, in one zip file.
    let zip = s.dir.path().join("my-data.zip");
    let done = ok(&mut s.admin(
        "ana",
        &["privacy", "export", "--output", zip.to_str().unwrap()],
    ));
    assert!(done.contains("bytes written to"), "{done}");
    // Personal data: readable by her only.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&zip).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    let profile = profile_in(&zip);
    assert_eq!(profile["user"]["email"], "ana@acme.example");
    assert_eq!(profile["marketing_consent"]["given"], true);
    let ana = profile["user"]["id"].as_str().unwrap().to_string();

    // The organisation answers a request about her, and restricts processing.
    let r = json(&mut s.admin(
        "provider-admin",
        &[
            "privacy",
            "request",
            "add",
            "--user",
            &ana,
            "--kind",
            "rectification",
        ],
    ));
    let listed = ok(&mut s.admin("provider-admin", &["privacy", "request", "list", "--open"]));
    assert!(
        listed.contains(&id(&r)) && listed.contains("rectification"),
        "{listed}"
    );
    let closed = ok(&mut s.admin(
        "provider-admin",
        &[
            "privacy",
            "request",
            "close",
            &id(&r),
            "--action",
            "Corrected her address.",
        ],
    ));
    assert!(
        closed.contains("(done: Corrected her address.)"),
        "{closed}"
    );
    let restricted = ok(&mut s.admin("provider-admin", &["user", "restrict", &ana]));
    assert!(restricted.contains("processing restricted"), "{restricted}");

    ok(&mut s.admin(
        "provider-admin",
        &[
            "privacy",
            "subprocessor",
            "add",
            "--name",
            "Mailgun",
            "--purpose",
            "sending mail",
            "--location",
            "EU",
        ],
    ));
    let register = ok(&mut s.admin("ana", &["privacy", "subprocessor", "list"]));
    assert!(
        register.contains("Mailgun (EU): sending mail"),
        "{register}"
    );
    let report = ok(&mut s.admin(
        "provider-admin",
        &["privacy", "report", "--tenant", &s.customer],
    ));
    // The server's log, at its default level, names no person and no client address.
    let log = std::fs::read_to_string(s.server_log.as_ref().unwrap()).unwrap();
    assert!(
        log.contains("route=/api/v1/me/data-export"),
        "the story is in the log: {log}"
    );
    for person in ["ana@acme.example", "Ana", "Alves", "admin@localhost"] {
        assert!(!log.contains(person), "{person} is in the server's log");
    }
    let addressed: Vec<&str> = log.lines().filter(|l| l.contains("127.0.0.1")).collect();
    assert!(addressed.is_empty(), "{addressed:#?}");
    for part in [
        "personal data held:",
        "users: name, e-mail",
        "where it lives:",
        "retention:",
        "Mailgun (EU)",
        "open data-subject requests: 0",
    ] {
        assert!(report.contains(part), "{part} in {report}");
    }
}
