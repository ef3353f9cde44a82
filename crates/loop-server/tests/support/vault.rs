//! A token holder's view of a vault over the raw vault protocol, and objects shaped like
//! the repository's (structurally valid, opaque inside).

use reqwest::Method;
use serde_json::json;

use super::{Caller, Reply, Server};

/// Every object kind of the vault protocol, as it appears in paths.
pub const KINDS: [&str; 7] = [
    "config",
    "keys",
    "snapshots",
    "index",
    "data",
    "locks",
    "plans",
];

/// A customer tenant with one managed vault (of `quota` bytes, when given).
pub fn customer_with_vault(admin: &Caller<'_>, name: &str, quota: Option<u64>) -> (String, String) {
    let provider = admin.provider_tenant_id();
    let t = admin
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": provider, "kind": "customer", "name": name }),
        )
        .expect(201);
    let tenant_id = t["id"].as_str().unwrap().to_string();
    let v = admin
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": tenant_id, "name": "files", "destination": "local",
                    "quota_bytes": quota }),
        )
        .expect(201);
    (tenant_id, v["id"].as_str().unwrap().into())
}

/// An API token of the tenant with these permissions: (token ID, secret).
pub fn token(
    admin: &Caller<'_>,
    tenant_id: &str,
    permissions: &[&str],
    expires_in_days: Option<u32>,
) -> (String, String) {
    let r = admin
        .post(
            "/api/v1/tokens",
            json!({ "tenant_id": tenant_id, "name": permissions.join("+"), "kind": "api",
                    "permissions": permissions, "expires_in_days": expires_in_days }),
        )
        .expect(201);
    (
        r["token"]["id"].as_str().unwrap().into(),
        r["secret"].as_str().unwrap().into(),
    )
}

/// A token holder's view of one vault, over the raw vault protocol.
pub struct VaultAs<'a> {
    pub server: &'a Server,
    pub vault: String,
    pub secret: String,
}

pub fn vault_as<'a>(server: &'a Server, vault: &str, secret: &str) -> VaultAs<'a> {
    VaultAs {
        server,
        vault: vault.into(),
        secret: secret.into(),
    }
}

/// A fresh API token of `tenant` with `permissions`, as its holder sees `vault`.
pub fn holder<'a>(
    server: &'a Server,
    admin: &Caller<'_>,
    tenant: &str,
    vault: &str,
    permissions: &[&str],
) -> VaultAs<'a> {
    vault_as(server, vault, &token(admin, tenant, permissions, None).1)
}

impl VaultAs<'_> {
    pub fn path(&self, rest: &str) -> String {
        format!("/vaults/{}/v1/{rest}", self.vault)
    }

    pub fn open(&self) -> Reply {
        let body = json!({ "operation": "backup", "host": "test-host" });
        self.server
            .call("post", &self.path("open"), Some(&self.secret), Some(&body))
    }

    /// `method` on `kind` (a listing) or `kind/name` (one object).
    pub fn call(&self, method: &str, object: &str) -> Reply {
        self.server
            .call(method, &self.path(object), Some(&self.secret), None)
    }

    /// The names listed under `kind`.
    pub fn names(&self, kind: &str) -> Vec<String> {
        let r = self.call("get", kind);
        assert_eq!(r.status, 200, "listing {kind}: {}", r.body);
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Uploads `body` with its BLAKE3 hash.
    pub fn put(&self, kind: &str, name: &str, body: &[u8]) -> Reply {
        self.put_claiming(kind, name, body, Some(&blake3_hex(body)))
    }

    /// Uploads `body` claiming `hash` (or no hash at all).
    pub fn put_claiming(&self, kind: &str, name: &str, body: &[u8], hash: Option<&str>) -> Reply {
        let mut req = self
            .server
            .request(Method::PUT, &self.path(&format!("{kind}/{name}")))
            .bearer_auth(&self.secret)
            .body(body.to_vec());
        if let Some(h) = hash {
            req = req.header(loop_api::CONTENT_HASH_HEADER, h);
        }
        self.server.send(req)
    }
}

/// Gives `vault` a replica at the `spare` destination ([`super::with_spare`]), stores one
/// pack through a token holding `backup` and `restore`, and replicates: the holder, the pack's
/// bytes and its name.
pub fn replicated_pack<'a>(
    server: &'a Server,
    admin: &Caller<'_>,
    tenant: &str,
    vault: &str,
) -> (VaultAs<'a>, Vec<u8>, String) {
    admin
        .post(
            &format!("/api/v1/vaults/{vault}/replicas"),
            json!({ "destination": "spare" }),
        )
        .expect(201);
    let writer = holder(server, admin, tenant, vault, &["backup", "restore"]);
    let pack = pack_object([7u8; 32]);
    let name = hex::encode([7u8; 32]);
    writer.put("data", &name, &pack).expect(201);
    let job = admin
        .post(&format!("/api/v1/vaults/{vault}/replication"), json!({}))
        .expect(202);
    let ended = admin.job_ended(job["id"].as_str().unwrap());
    assert_eq!(ended["state"], "succeeded", "{ended}");
    (writer, pack, name)
}

pub fn blake3_hex(b: &[u8]) -> String {
    blake3::hash(b).to_hex().to_string()
}

/// A structurally valid index object: magic, version, padding, then opaque bytes.
pub fn index_object(payload_len: usize) -> Vec<u8> {
    let mut o = b"LPIX\x01\x00\x00\x00".to_vec();
    o.extend(std::iter::repeat_n(0x5a, payload_len));
    o
}

/// A structurally valid pack: header, its 32-byte ID, opaque bytes, trailer length 0.
pub fn pack_object(id: [u8; 32]) -> Vec<u8> {
    let mut o = b"LPPK\x01\x00\x00\x00".to_vec();
    o.extend_from_slice(&id);
    o.extend_from_slice(&[1u8; 16]);
    o.extend_from_slice(&0u32.to_le_bytes());
    o
}

/// A pack larger than one upload part, so it streams to the destination in parts.
pub fn big_pack(id: [u8; 32], len: usize) -> Vec<u8> {
    let mut o = b"LPPK\x01\x00\x00\x00".to_vec();
    o.extend_from_slice(&id);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    while o.len() < len - 4 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        o.push(x as u8);
    }
    o.extend_from_slice(&16u32.to_le_bytes());
    o
}

pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A sealed-looking lock marker of `len` bytes.
pub fn lock_object(len: usize) -> Vec<u8> {
    let mut o = b"LPLK\x01\x00\x00\x00".to_vec();
    o.resize(len, 0x42);
    o
}

/// The size of a lock object as stored, read with a restore token.
pub fn restore_size(
    server: &Server,
    vault: &str,
    tenant: &str,
    admin: &Caller<'_>,
    name: &str,
) -> u64 {
    let restore = holder(server, admin, tenant, vault, &["restore"]);
    let listed = restore.call("get", "locks").expect(200);
    listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .expect("the marker is listed")["size"]
        .as_u64()
        .unwrap()
}

/// Backs up a tree into the managed vault `vault`, opening it with the key the server
/// holds (as the server's own jobs do), and answers
/// the snapshot's ID.
pub fn back_up_into(server: &Server, vault: &str, src: &std::path::Path) -> String {
    let v = server
        .block_on(loop_server::db::vaults::vault_by_id(
            &server.state.db.pool,
            vault,
        ))
        .unwrap()
        .unwrap();
    let kek = server
        .block_on(loop_server::managed_keys::managed_kek(&server.state, &v))
        .unwrap();
    let dir = server.data_dir.join("vaults").join(vault);
    let storage = std::sync::Arc::new(
        loop_repo::ObjectStorage::open(dir.to_str().unwrap(), &Default::default(), false).unwrap(),
    );
    let repo = loop_repo::Repository::open(storage, loop_repo::keys::Secret::RawKey(&kek)).unwrap();
    let opts = loop_repo::backup::BackupOptions {
        paths: vec![src.to_path_buf()],
        host: "test-host".into(),
        ..Default::default()
    };
    let report = loop_repo::backup::run(&repo, opts, &Default::default()).unwrap();
    report.snapshot_id.expect("not a dry run").to_hex()
}

/// A request body that sends its first half, then waits until `go` says so before the rest:
/// an upload held under way while a test changes the vault.
pub struct HeldBody {
    bytes: Vec<u8>,
    at: usize,
    go: std::sync::mpsc::Receiver<()>,
}

impl HeldBody {
    pub fn new(bytes: Vec<u8>, go: std::sync::mpsc::Receiver<()>) -> HeldBody {
        HeldBody { bytes, at: 0, go }
    }
}

impl std::io::Read for HeldBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let half = self.bytes.len() / 2;
        if self.at == half {
            let _ = self.go.recv();
        }
        let end = if self.at < half {
            half
        } else {
            self.bytes.len()
        };
        let n = buf.len().min(end - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
