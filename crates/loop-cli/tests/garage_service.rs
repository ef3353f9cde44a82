//! The server's S3 path against a real Garage: packs larger than one upload part, an upload
//! the client cuts off, and a store that goes away in the middle of a backup.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Method;
use support::cli::*;
use support::garage::Garage;
use support::server::*;
use support::story::*;

fn config_for(garage: &Garage, dir: &Path) -> PathBuf {
    garage.server_config(dir, true)
}

/// (name, size) of every pack the vault lists, read with `token`.
fn listed_packs(s: &Story, token: &str) -> Vec<(String, u64)> {
    let (status, body) = s.server.vault_request(
        Method::GET,
        &format!("/vaults/{}/v1/data", s.vault),
        token,
        None,
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn used(s: &Story) -> u64 {
    json(&mut s.admin("ana", &["vault", "show", &s.vault]))["used_bytes"]
        .as_u64()
        .unwrap()
}

#[test]
fn packs_larger_than_an_upload_part_go_to_garage_in_parts_and_read_back() {
    let Some(garage) = Garage::start() else {
        return;
    };
    let s = set_up(Some(&|d: &Path| config_for(&garage, d)), "garage-eu");
    let src = s.dir.path().join("big");
    write(&src.join("a.bin"), &noise(40 << 20, 1));
    ok(&mut s.device(&s.backup_token, &["backup", src.to_str().unwrap()]));

    let packs = listed_packs(&s, &s.restore_token);
    assert!(
        packs.iter().any(|(_, size)| *size > 8 << 20),
        "a pack larger than one 8 MiB part: {packs:?}"
    );
    ok(&mut s.device(&s.restore_token, &["check", "--read-data"]));
    let target = s.dir.path().join("restored");
    ok(&mut s.device(
        &s.restore_token,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ));
    assert_same_tree(&src, &target.join("big"));
}

/// A reader that yields `limit` bytes of `data`, then fails: a client that goes away.
struct CutOff {
    data: Vec<u8>,
    pos: usize,
    limit: usize,
}

impl Read for CutOff {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.limit {
            return Err(std::io::Error::other("the client went away"));
        }
        let n = buf.len().min(self.limit - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A structurally valid pack of `len` bytes with the ID `id`.
fn pack(id: [u8; 32], len: usize) -> Vec<u8> {
    let mut o = b"LPPK\x01\x00\x00\x00".to_vec();
    o.extend_from_slice(&id);
    o.extend_from_slice(&noise(len - o.len() - 4, 9));
    o.extend_from_slice(&16u32.to_le_bytes());
    o
}

#[test]
fn an_upload_cut_off_mid_way_leaves_nothing_on_garage_and_keeps_no_quota() {
    let Some(garage) = Garage::start() else {
        return;
    };
    let s = set_up(Some(&|d: &Path| config_for(&garage, d)), "garage-eu");
    let before = used(&s);
    let id = [0x5au8; 32];
    let name: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let body = pack(id, 20 << 20);
    let path = format!("/vaults/{}/v1/data/{name}", s.vault);

    // The client sends 12 of 20 MiB (more than one part) and goes away.
    let pem = std::fs::read(s.server.data_dir.join("tls-cert.pem")).unwrap();
    let client = reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let cut = CutOff {
        data: body.clone(),
        pos: 0,
        limit: 12 << 20,
    };
    let sent = client
        .put(format!("{}{path}", s.server.url))
        .bearer_auth(&s.backup_token)
        .header(
            "x-loop-content-blake3",
            blake3::hash(&body).to_hex().as_str(),
        )
        .body(reqwest::blocking::Body::sized(cut, body.len() as u64))
        .send();
    assert!(sent.is_err(), "the request was cut off: {sent:?}");

    // The server notices, aborts the multipart upload and gives the quota back.
    let deadline = Instant::now() + Duration::from_secs(60);
    while used(&s) != before {
        assert!(Instant::now() < deadline, "quota still held: {}", used(&s));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        listed_packs(&s, &s.restore_token).is_empty(),
        "nothing is visible"
    );
    // The name is free again: the whole upload is accepted and reads back.
    let (status, _) =
        s.server
            .vault_request(Method::PUT, &path, &s.backup_token, Some(body.clone()));
    assert_eq!(status, 201);
    assert_eq!(used(&s), before + body.len() as u64);
}

#[test]
fn garage_stopped_during_a_backup_fails_it_clearly_and_the_next_run_completes() {
    let Some(mut garage) = Garage::start() else {
        return;
    };
    let s = set_up(Some(&|d: &Path| config_for(&garage, d)), "garage-eu");
    let first = noise(24 << 20, 3);
    let mut cmd = s.device(&s.backup_token, &["--retries", "2", "--retry-secs", "5"]);
    cmd.env("LOOP_LOG", "warn");
    let running = RunningBackup::start(cmd, &first, s.dir.path().join("backup.stderr"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while listed_packs(&s, &s.restore_token).is_empty() {
        assert!(Instant::now() < deadline, "no pack reached Garage");
        std::thread::sleep(Duration::from_millis(50));
    }
    garage.stop();
    let (done, _, stderr) = running.finish(&noise(8 << 20, 4));
    assert!(!done, "a backup whose store went away must fail");
    assert!(
        stderr.contains("storage error") && stderr.contains(&s.vault),
        "the error names what failed: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    garage.restart();
    let mut whole = first;
    whole.extend_from_slice(&noise(8 << 20, 4));
    let stream = s.dir.path().join("stream.bin");
    std::fs::write(&stream, &whole).unwrap();
    let summary = json(&mut s.device(&s.backup_token, &["backup", stream.to_str().unwrap()]));
    assert!(summary["snapshot_id"].is_string(), "{summary}");
    for (name, size) in listed_packs(&s, &s.restore_token) {
        assert!(size > 40, "pack {name} is whole ({size} bytes)");
    }
    ok(&mut s.device(&s.restore_token, &["check", "--read-data"]));
    let target = s.dir.path().join("restored");
    ok(&mut s.device(
        &s.restore_token,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ));
    assert!(std::fs::read(target.join("stream.bin")).unwrap() == whole);
}

#[test]
fn a_deleted_vaults_objects_are_erased_from_garage_by_its_job_and_no_others() {
    let Some(garage) = Garage::start() else {
        return;
    };
    let s = set_up(Some(&|d: &Path| config_for(&garage, d)), "garage-eu");
    s.backup_and_restore();
    let kept = json(&mut s.admin(
        "ana",
        &[
            "vault",
            "create",
            "--tenant",
            &s.customer,
            "--name",
            "kept",
            "--destination",
            "garage-eu",
        ],
    ));
    let kept_prefix = format!("loop-server/{}", kept["id"].as_str().unwrap());
    let kept_before = garage.list(&kept_prefix);
    assert!(
        !kept_before.is_empty(),
        "the kept vault has its config and key"
    );
    let prefix = format!("loop-server/{}", s.vault);
    let stored = garage.list(&prefix);
    assert!(
        stored.iter().any(|n| n.contains("/data/")),
        "the backup's packs are on Garage: {stored:?}"
    );

    let job = json(&mut s.admin("ana", &["vault", "delete", &s.vault]));
    let job_id = job["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let j = json(&mut s.admin("ana", &["job", "show", &job_id]));
        if !["queued", "running"].contains(&j["state"].as_str().unwrap()) {
            assert_eq!(j["state"], "succeeded", "{j:#}");
            break;
        }
        assert!(Instant::now() < deadline, "the erasure did not end");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        garage.list(&prefix),
        Vec::<String>::new(),
        "nothing of the vault is left"
    );
    assert_eq!(
        garage.list(&kept_prefix),
        kept_before,
        "the other vault is untouched"
    );
}
