//! `loop notify` against a real `loop server`: a customer admin sets up a webhook target,
//! sends a test, and the receiver gets a signed request that an independent HMAC
//! implementation (Python's) verifies; the delivery log and the events say what happened.

mod support;

use std::path::Path;
use std::process::Command;

use loop_testkit::webhook::Receiver;
use support::server::*;
use support::story::*;

/// Verifies a request's `Loop-Signature` with Python's hmac module.
fn python_verifies(secret: &str, signature: &str, body: &[u8]) -> bool {
    let (t, v1) = signature.split_once(",v1=").expect("t=...,v1=...");
    let t = t.strip_prefix("t=").expect("t=");
    let script = "import hmac, hashlib, sys\n\
        key = bytes.fromhex(sys.argv[1][len('lwh_'):])\n\
        body = sys.stdin.buffer.read()\n\
        mac = hmac.new(key, sys.argv[2].encode() + b'.' + body, hashlib.sha256).hexdigest()\n\
        sys.exit(0 if hmac.compare_digest(mac, sys.argv[3]) else 1)\n";
    let mut child = Command::new("python3")
        .args(["-c", script, secret, t, v1])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), body).unwrap();
    drop(child.stdin.take());
    child.wait().unwrap().success()
}

#[test]
fn a_customer_admin_sets_up_a_webhook_tests_it_and_reads_the_delivery_log() {
    let config = |d: &Path| {
        let p = d.join("server.toml");
        std::fs::write(
            &p,
            "[notify]\nallow_private_webhooks = true\npoll_seconds = 1\n",
        )
        .unwrap();
        p
    };
    let s = set_up(Some(&config), "local");
    let receiver = Receiver::start(&[]);
    let ana = |args: &[&str]| s.admin("ana", args);
    let created = json(&mut ana(&[
        "notify",
        "target",
        "create",
        "--tenant",
        &s.customer,
        "--name",
        "ops hook",
        "--webhook",
        &receiver.url(),
        "--min-severity",
        "info",
    ]));
    let target = created["target"]["id"].as_str().unwrap().to_string();
    let secret = created["webhook_secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("lwh_") && secret.len() == 68, "{secret}");
    let listed = ok(&mut ana(&["notify", "target", "list"]));
    assert!(
        listed.contains(&target) && listed.contains("ops hook"),
        "{listed}"
    );
    assert!(
        !listed.contains(&secret),
        "the secret is shown once, at creation"
    );

    ok(&mut ana(&["notify", "target", "test", &target]));
    let mut log = serde_json::Value::Null;
    for _ in 0..600 {
        log = json(&mut ana(&["notify", "deliveries", "--target", &target]));
        if log[0]["state"] == "succeeded" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(log[0]["state"], "succeeded", "{log:#}");
    assert_eq!(log[0]["event_kind"], "test");
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert!(python_verifies(
        &secret,
        &r.headers["loop-signature"],
        &r.body
    ));
    let mut tampered = r.body.clone();
    tampered[0] ^= 1;
    assert!(!python_verifies(
        &secret,
        &r.headers["loop-signature"],
        &tampered
    ));
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["tenant"]["name"], "Acme GmbH");
    assert_eq!(body["delivery_id"], log[0]["id"]);

    let events = json(&mut ana(&["notify", "events", "--kind", "test"]));
    assert_eq!(events.as_array().unwrap().len(), 1, "{events:#}");
    let shown = ok(&mut ana(&["notify", "deliveries"]));
    assert!(
        shown.contains("succeeded") && shown.contains("HTTP 200"),
        "{shown}"
    );

    // A private address is refused unless the server allows it (this one does); an FTP URL
    // never is.
    let refused = fails(&mut ana(&[
        "notify",
        "target",
        "create",
        "--tenant",
        &s.customer,
        "--name",
        "x",
        "--webhook",
        "ftp://example.com/",
    ]));
    assert!(refused.contains("https://"), "{refused}");
    ok(&mut ana(&["notify", "target", "delete", &target]));
    let after = json(&mut ana(&["notify", "target", "list"]));
    assert_eq!(after, serde_json::json!([]));
}

/// A proxy in the server's environment (`HTTPS_PROXY`, `HTTP_PROXY`) is not used for
/// webhooks: through it, the proxy would resolve the receiver's name, past the check that
/// keeps webhooks off internal addresses. The delivery is tried without it, and a name that
/// resolves to nothing public fails with one message whatever the cause.
#[test]
fn webhooks_never_go_through_a_proxy_of_the_servers_environment() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "[notify]\npoll_seconds = 1\n").unwrap();
    let server = Server::start_with_env(
        &dir.path().join("data"),
        &config,
        &[("HTTPS_PROXY", &proxy_url), ("HTTP_PROXY", &proxy_url)],
    );
    let admin_dir = dir.path().join("admin");
    let admin = |args: &[&str]| server.as_user(&admin_dir, args);
    server.sign_in_provider_admin(&admin_dir);
    let provider = id(&json(&mut admin(&["tenant", "list"]))[0]);
    let created = json(&mut admin(&[
        "notify",
        "target",
        "create",
        "--tenant",
        &provider,
        "--name",
        "internal",
        "--webhook",
        "https://metadata.internal.invalid/hook",
        "--min-severity",
        "info",
    ]));
    let target = id(&created["target"]);
    ok(&mut admin(&["notify", "target", "test", &target]));
    let mut log = serde_json::Value::Null;
    for _ in 0..600 {
        log = json(&mut admin(&["notify", "deliveries", "--target", &target]));
        // The try is over once its failure is recorded.
        if log[0]["last_error"].is_string() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(log[0]["attempts"], 1, "{log:#}");
    assert_ne!(log[0]["state"], "succeeded", "{log:#}");
    assert!(
        log[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("no public address"),
        "{log:#}"
    );
    assert!(
        matches!(proxy.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the proxy was asked to connect"
    );
}
