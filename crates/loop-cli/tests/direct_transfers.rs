//! Direct transfers against a real Garage: with `direct = true` on the destination, packs go
//! from the client to the store and back with presigned URLs, never through the server,
//! while the server still checks every pack before it is stored and counted. A URL used
//! again, a pack that is not what was announced and a store that refuses a longer body
//! change nothing stored.

mod support;

use std::path::{Path, PathBuf};

use loop_repo::Id;
use loop_repo::crypto::Key;
use loop_repo::pack::{BlobKind, PackWriter};
use reqwest::Method;
use serde_json::{Value, json};
use support::cli::*;
use support::garage::Garage;
use support::server::*;
use support::story::*;

/// The Garage configuration with direct transfers on its destination (and `more` of its
/// settings), a test clock and a scheduler that ticks every second (it sweeps expired
/// uploads).
fn direct_config(garage: &Garage, dir: &Path, short_budgets: bool, more: &str) -> PathBuf {
    let path = garage.server_config(dir, short_budgets);
    let base = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("test_clock = true\n[jobs]\nscheduler_seconds = 1\n{base}direct = true\n{more}"),
    )
    .unwrap();
    path
}

/// The story on a vault at the direct-transfer destination, with the server's access log.
fn direct_story(garage: &Garage, short_budgets: bool) -> Story {
    direct_story_with(garage, short_budgets, "")
}

/// [`direct_story`] with `more` settings of the destination.
fn direct_story_with(garage: &Garage, short_budgets: bool, more: &str) -> Story {
    set_up_logging(
        Some(&|d: &Path| direct_config(garage, d, short_budgets, more)),
        "garage-eu",
        true,
    )
}

fn used(s: &Story) -> u64 {
    json(&mut s.admin("ana", &["vault", "show", &s.vault]))["used_bytes"]
        .as_u64()
        .unwrap()
}

/// Access log lines of answers to `method` on `route` with `status`.
fn answered(s: &Story, method: &str, route: &str, status: u16) -> usize {
    std::fs::read_to_string(s.server_log.as_ref().unwrap())
        .unwrap()
        .lines()
        .filter(|l| {
            l.contains(&format!("method={method} "))
                && l.contains(&format!("route={route} "))
                && l.contains(&format!("status={status} "))
        })
        .count()
}

/// The vault's objects of `kind` (`data`, `index`, ...) as the vault protocol lists them.
fn listed(s: &Story, kind: &str) -> Vec<Value> {
    let (status, body) = raw(
        s,
        Method::GET,
        &format!("/vaults/{}/v1/{kind}", s.vault),
        &s.restore_token,
        None,
    );
    assert_eq!(status, 200, "{kind}");
    match serde_json::from_slice(&body).unwrap() {
        Value::Array(objects) => objects,
        other => panic!("{kind}: {other}"),
    }
}

fn staging(garage: &Garage, s: &Story) -> Vec<String> {
    garage.list(&format!("loop-server/{}/staging", s.vault))
}

#[test]
fn packs_go_straight_to_the_store_and_back_checked_and_counted_by_the_server() {
    let Some(garage) = Garage::start() else {
        return;
    };
    let s = direct_story(&garage, false);
    let src = s.dir.path().join("files");
    build_full_tree(&src);
    write(&src.join("big.bin"), &noise(24 << 20, 7));
    ok(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));

    // Every pack arrived by a direct upload the server completed; none through the server.
    let pack_count = listed(&s, "data").len();
    assert!(pack_count >= 2, "{pack_count}");
    let completed = answered(
        &s,
        "POST",
        "/vaults/{vault}/v1/{kind}/{name}/direct/complete",
        201,
    );
    assert_eq!(
        completed, pack_count,
        "one completed direct upload per pack"
    );
    assert!(
        staging(&garage, &s).is_empty(),
        "{:?}",
        staging(&garage, &s)
    );

    // Usage is what the store holds: a reconcile finds nothing to correct.
    let config = s.dir.path().join("server.toml");
    let reconciled = ok(&mut s
        .server
        .operator(Some(&config), &["reconcile", "--vault", &s.vault]));
    assert!(
        reconciled.contains("(0 recorded, 0 dropped, 0 resized)"),
        "{reconciled}"
    );
    assert!(used(&s) > 24 << 20);

    // Reads of packs are redirected to the store; the restore is exact and checks out.
    let target = s.dir.path().join("restored");
    ok(&mut s.device(
        &s.restore_token,
        &[
            "restore",
            "latest",
            "--target",
            target.to_str().unwrap(),
            "--verify",
        ],
    ));
    assert_same_tree(&src, &target.join("files"));
    ok(&mut s.device(&s.restore_token, &["check", "--read-data"]));
    assert!(answered(&s, "GET", "/vaults/{vault}/v1/{kind}/{name}", 307) > 0);
}

/// A pack as the engine writes it: (name, bytes).
fn pack(seed: u8) -> (String, Vec<u8>) {
    let mut w = PackWriter::new(&Key::generate(), 1 << 20);
    w.add(
        BlobKind::Data,
        Id([seed; 32]),
        &noise(4096, seed as u64),
        4096,
    );
    let (id, bytes, _) = w.finish();
    (id.to_hex(), bytes)
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

/// A vault-protocol request with a JSON body (or none): the status and the body's bytes.
fn raw(s: &Story, method: Method, path: &str, token: &str, body: Option<&Value>) -> (u16, Vec<u8>) {
    let pem = std::fs::read(s.server.data_dir.join("tls-cert.pem")).unwrap();
    let client = reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let mut req = client
        .request(method, format!("{}{path}", s.server.url))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().unwrap();
    (r.status().as_u16(), r.bytes().unwrap().to_vec())
}

/// A POST of the vault protocol: (status, body as text).
fn call(s: &Story, token: &str, path: String, body: Value) -> (u16, String) {
    let (status, body) = raw(s, Method::POST, &path, token, Some(&body));
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn data(s: &Story, name: &str) -> String {
    format!("/vaults/{}/v1/data/{name}", s.vault)
}

fn hash(b: &[u8]) -> String {
    blake3::hash(b).to_hex().to_string()
}

/// Starts a direct upload of pack `name` with the backup token: the upload (ID and URL).
fn start(s: &Story, name: &str, size: usize, hash: String) -> Value {
    let (status, body) = call(
        s,
        &s.backup_token,
        format!("{}/direct", data(s, name)),
        json!({ "size": size, "hash": hash }),
    );
    assert_eq!(status, 201, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn complete(s: &Story, name: &str, upload: &Value) -> (u16, String) {
    call(
        s,
        &s.backup_token,
        format!("{}/direct/complete", data(s, name)),
        json!({ "upload_id": upload["upload_id"] }),
    )
}

/// A pack made from `seed`, uploaded to a new upload's URL and not completed yet: (its name,
/// its bytes, the upload).
fn uploaded(s: &Story, seed: u8) -> (String, Vec<u8>, Value) {
    let (name, bytes) = pack(seed);
    let up = start(s, &name, bytes.len(), hash(&bytes));
    assert_eq!(put(&up, bytes.clone()), 200);
    (name, bytes, up)
}

/// The bytes sent to an upload's URL, straight to the store: the store's status.
fn put(upload: &Value, bytes: Vec<u8>) -> u16 {
    http()
        .put(upload["url"].as_str().unwrap())
        .body(bytes)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn code(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["code"].as_str().map(String::from))
        .unwrap_or_default()
}

#[test]
fn a_reused_url_or_a_pack_unlike_its_announcement_changes_nothing_stored() {
    let Some(garage) = Garage::start() else {
        return;
    };
    let s = direct_story(&garage, false);
    let call = |token: &str, path: String, body: Value| call(&s, token, path, body);
    let data = |name: &str| data(&s, name);
    let start = |name: &str, size: usize, hash: String| start(&s, name, size, hash);
    let complete = |name: &str, upload: &Value| complete(&s, name, upload);
    let before = used(&s);

    // A restore token may not upload.
    let (a, a_bytes) = pack(1);
    let (status, body) = call(
        &s.restore_token,
        format!("{}/direct", data(&a)),
        json!({ "size": a_bytes.len(), "hash": hash(&a_bytes) }),
    );
    assert_eq!(status, 403, "{body}");

    // A pack whose bytes are not the announced ones is refused and not counted.
    let (b, b_bytes) = pack(2);
    let lie = start(&b, b_bytes.len(), hash(&a_bytes));
    assert_eq!(put(&lie, b_bytes.clone()), 200);
    let (status, body) = complete(&b, &lie);
    assert_eq!(
        (status, code(body.as_bytes())),
        (400, "object_rejected".into()),
        "{body}"
    );
    assert!(body.contains("BLAKE3"), "{body}");
    // A longer body than announced, and an upload that never arrived: refused.
    let longer = start(&b, b_bytes.len(), hash(&b_bytes));
    let mut more = b_bytes.clone();
    more.push(0);
    assert_eq!(put(&longer, more), 200);
    let (status, body) = complete(&b, &longer);
    assert_eq!(
        (status, code(body.as_bytes())),
        (400, "object_rejected".into()),
        "{body}"
    );
    assert!(body.contains("length differs"), "{body}");
    let never = start(&b, b_bytes.len(), hash(&b_bytes));
    let (status, body) = complete(&b, &never);
    assert_eq!(
        (status, code(body.as_bytes())),
        (400, "object_rejected".into()),
        "{body}"
    );
    assert!(body.contains("did not arrive"), "{body}");
    assert!(
        staging(&garage, &s).is_empty(),
        "{:?}",
        staging(&garage, &s)
    );
    assert_eq!(used(&s), before);

    // The real thing is stored and counted.
    let up = start(&a, a_bytes.len(), hash(&a_bytes));
    assert_eq!(put(&up, a_bytes.clone()), 200);
    assert_eq!(complete(&a, &up).0, 201);
    assert_eq!(used(&s), before + a_bytes.len() as u64);
    let stored = || {
        let (status, body) = raw(&s, Method::GET, &data(&a), &s.restore_token, None);
        assert_eq!(status, 200);
        body
    };
    let original = stored();
    assert_eq!(original, a_bytes);

    // The URL used again (same length, other bytes): the stored pack is unchanged; a second
    // completion changes nothing either. Only the upload's staging name was written.
    let mut forged = a_bytes.clone();
    forged[100] ^= 0xff;
    assert_eq!(put(&up, forged), 200);
    assert_eq!(complete(&a, &up).0, 201);
    assert_eq!(stored(), original);
    assert_eq!(used(&s), before + a_bytes.len() as u64);
    assert_eq!(staging(&garage, &s).len(), 1, "{:?}", staging(&garage, &s));

    // Once the URLs have expired (15 minutes, then a grace of 10), the sweep removes it.
    s.advance_clock(1600);
    for _ in 0..200 {
        if staging(&garage, &s).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        staging(&garage, &s).is_empty(),
        "{:?}",
        staging(&garage, &s)
    );
    assert_eq!(stored(), original);
}

#[test]
fn a_completion_the_store_fails_leaves_the_upload_to_be_completed_again() {
    let Some(mut garage) = Garage::start() else {
        return;
    };
    let s = direct_story(&garage, true);
    let before = used(&s);
    let (a, a_bytes, up) = uploaded(&s, 3);
    // The store is away as the upload is completed: the server cannot check or place the
    // pack, and says so with a status worth trying again; nothing is stored or counted.
    garage.stop();
    let (status, body) = complete(&s, &a, &up);
    assert!((500..600).contains(&status), "{status} {body}");
    garage.restart();
    assert_eq!(used(&s), before);
    // The same completion again, once the store is back: the pack uploaded before is
    // stored (not a new upload's), checked and counted.
    let (status, body) = complete(&s, &a, &up);
    assert_eq!(status, 201, "{body}");
    let (status, stored) = raw(&s, Method::GET, &data(&s, &a), &s.restore_token, None);
    assert_eq!((status, stored), (200, a_bytes.clone()));
    assert_eq!(used(&s), before + a_bytes.len() as u64);
}

/// A completion the quota has no room for is `507 quota_exceeded`, a status clients retry,
/// and so is every retry of it (not a 404 for an upload that ended): the upload stays, and
/// completes once the quota has room.
#[test]
fn a_completion_over_quota_stays_over_quota_and_completes_once_there_is_room() {
    let Some(garage) = Garage::start() else {
        return;
    };
    let s = direct_story(&garage, false);
    let before = used(&s);
    let (a, a_bytes, up) = uploaded(&s, 5);
    let quota = |args: &[&str]| {
        let mut all = vec!["vault", "quota", &s.vault];
        all.extend_from_slice(args);
        ok(&mut s.admin("ana", &all));
    };
    quota(&["--bytes", &(before + 1).to_string()]);
    for attempt in 0..2 {
        let (status, body) = complete(&s, &a, &up);
        assert_eq!(
            (status, code(body.as_bytes())),
            (507, "quota_exceeded".into()),
            "attempt {attempt}: {body}"
        );
    }
    assert_eq!(used(&s), before);
    quota(&["--none"]);
    let (status, body) = complete(&s, &a, &up);
    assert_eq!(status, 201, "{body}");
    let (status, stored) = raw(&s, Method::GET, &data(&s, &a), &s.restore_token, None);
    assert_eq!((status, stored), (200, a_bytes.clone()));
    assert_eq!(used(&s), before + a_bytes.len() as u64);
}

/// A completion sent more than 5 minutes after its upload's URL expired (a client paused
/// between its `PUT` and the completion) is refused as expired, stores and counts nothing, and
/// so never reads what the sweep removes; a new upload of the same pack is stored.
#[test]
fn a_completion_long_after_the_url_expired_is_refused_and_a_new_upload_stores_the_pack() {
    let Some(garage) = Garage::start() else {
        return;
    };
    let s = direct_story(&garage, false);
    let before = used(&s);
    let (a, a_bytes, up) = uploaded(&s, 4);
    // The URL lives 15 minutes; the sweep comes 10 minutes after that.
    s.advance_clock(900 + 330);
    let (status, body) = complete(&s, &a, &up);
    assert_eq!(
        (status, code(body.as_bytes())),
        (410, "upload_expired".into()),
        "{body}"
    );
    assert_eq!(used(&s), before);
    let (status, _) = raw(&s, Method::GET, &data(&s, &a), &s.restore_token, None);
    assert_eq!(status, 404, "nothing is stored");
    let again = start(&s, &a, a_bytes.len(), hash(&a_bytes));
    assert_eq!(put(&again, a_bytes.clone()), 200);
    assert_eq!(complete(&s, &a, &again).0, 201);
    let (status, stored) = raw(&s, Method::GET, &data(&s, &a), &s.restore_token, None);
    assert_eq!((status, stored), (200, a_bytes.clone()));
    assert_eq!(used(&s), before + a_bytes.len() as u64);
}

/// Waits (bounded) until the server has answered `n` requests for a direct upload URL.
fn wait_for_urls(s: &Story, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let route = "/vaults/{vault}/v1/{kind}/{name}/direct";
    while answered(s, "POST", route, 201) < n {
        assert!(
            std::time::Instant::now() < deadline,
            "no upload URL asked for"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A backup on a link so slow (`--limit-upload`) that its pack's upload outlives the URL:
/// the server refuses the completion as expired, and the client uploads the pack again with
/// a new URL instead of failing the backup. The restore is exact and the vault counts the
/// pack once.
#[test]
fn a_pack_upload_the_server_calls_expired_is_made_again_and_the_backup_succeeds() {
    let Some(garage) = Garage::start() else {
        return;
    };
    let s = direct_story(&garage, false);
    let before = used(&s);
    let src = s.dir.path().join("slow");
    // One file: one data pack (half a MiB, 16 s at 32 KiB/s) and one tree pack.
    write(&src.join("one.bin"), &noise(512 << 10, 11));
    let backup = s
        .device(
            &s.backup_token,
            &["backup", "--limit-upload", "32", src.to_str().unwrap()],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The data pack (stored before the tree pack, which holds the trees written last) has
    // its URL and is on its way: the server's clock passes the URL's 15 minutes and the 5
    // minutes' grace after.
    wait_for_urls(&s, 1);
    s.advance_clock(900 + 330);
    let out = backup.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let completions = "/vaults/{vault}/v1/{kind}/{name}/direct/complete";
    assert!(
        answered(&s, "POST", completions, 410) >= 1,
        "no upload expired"
    );
    let packs = listed(&s, "data");
    assert_eq!(packs.len(), 2, "{packs:?}");
    assert_eq!(answered(&s, "POST", completions, 201), 2);
    // Counted once: the vault's usage is what it holds, every kind of object together.
    let held: u64 = loop_repo::FileKind::ALL
        .iter()
        .flat_map(|kind| listed(&s, kind.name()))
        .map(|o| o["size"].as_u64().unwrap())
        .sum();
    assert!(used(&s) > before);
    assert_eq!(used(&s), held);

    let target = s.dir.path().join("restored");
    ok(&mut s.device(
        &s.restore_token,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ));
    assert_same_tree(&src, &target.join("slow"));
}

/// A pack's upload broken off by the store after its URL expired (URLs live 5 seconds here;
/// the paced upload takes 16): no try starts with the expired URL, and since a new one would
/// expire as well on so slow a link, the pack goes through the server instead of failing
/// the backup.
#[test]
fn a_pack_upload_that_outlived_its_url_goes_through_the_server() {
    let Some(mut garage) = Garage::start() else {
        return;
    };
    let s = direct_story_with(&garage, false, "direct_url_secs = 5\n");
    let src = s.dir.path().join("slow");
    write(&src.join("one.bin"), &noise(512 << 10, 12));
    let backup = s
        .device(
            &s.backup_token,
            &[
                "backup",
                "--limit-upload",
                "32",
                "--retries",
                "10",
                "--retry-secs",
                "120",
                src.to_str().unwrap(),
            ],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The data pack (stored first) has its URL; well past the URL's 5 seconds, and well
    // before the upload's 16, the store goes down and comes back.
    wait_for_urls(&s, 1);
    std::thread::sleep(std::time::Duration::from_secs(8));
    garage.restart();
    let out = backup.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Two packs stored; only the tree pack by a direct upload: the data pack's one URL was
    // not asked for again.
    assert_eq!(listed(&s, "data").len(), 2);
    let route = "/vaults/{vault}/v1/{kind}/{name}/direct";
    assert_eq!(answered(&s, "POST", route, 201), 2);
    assert_eq!(answered(&s, "POST", &format!("{route}/complete"), 201), 1);
    let target = s.dir.path().join("restored");
    ok(&mut s.device(
        &s.restore_token,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ));
    assert_same_tree(&src, &target.join("slow"));
}
