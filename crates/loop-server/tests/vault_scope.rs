//! Tokens scoped to some vaults of a tenant: on every other vault of the same tenant, every
//! vault-protocol request answers as if that vault did not exist.

mod support;

use reqwest::Method;
use serde_json::json;
use support::vault::KINDS;
use support::{Caller, Reply, Server};

/// A token holder's requests to one vault.
struct Holder<'a> {
    server: &'a Server,
    secret: String,
    vault: String,
}

impl Holder<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/vaults/{}/v1/{rest}", self.vault)
    }

    fn open(&self) -> Reply {
        let body = json!({ "operation": "restore", "host": "test-host" });
        self.server
            .call("post", &self.path("open"), Some(&self.secret), Some(&body))
    }

    fn call(&self, method: &str, object: &str) -> Reply {
        self.server
            .call(method, &self.path(object), Some(&self.secret), None)
    }

    fn put(&self, kind: &str, body: &[u8]) -> Reply {
        let hash = blake3::hash(body).to_hex().to_string();
        let req = self
            .server
            .request(Method::PUT, &self.path(&format!("{kind}/{hash}")))
            .bearer_auth(&self.secret)
            .header(loop_api::CONTENT_HASH_HEADER, hash)
            .body(body.to_vec());
        self.server.send(req)
    }

    /// The same token aimed at another vault.
    fn at(&self, vault: &str) -> Holder<'_> {
        Holder {
            server: self.server,
            secret: self.secret.clone(),
            vault: vault.into(),
        }
    }
}

/// A structurally valid index object: magic, version, padding, then opaque bytes.
fn index_object(fill: u8) -> Vec<u8> {
    let mut o = b"LPIX\x01\x00\x00\x00".to_vec();
    o.extend(std::iter::repeat_n(fill, 64));
    o
}

fn vault(admin: &Caller<'_>, tenant: &str, name: &str) -> String {
    admin
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": tenant, "name": name, "destination": "local" }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .into()
}

fn token(admin: &Caller<'_>, tenant: &str, vaults: &[&str]) -> String {
    admin
        .post(
            "/api/v1/tokens",
            json!({ "tenant_id": tenant, "name": "t", "kind": "api", "vault_ids": vaults,
                    "permissions": ["backup", "restore", "manage"] }),
        )
        .expect(201)["secret"]
        .as_str()
        .unwrap()
        .into()
}

#[test]
fn a_token_for_one_vault_finds_nothing_in_another_vault_of_its_own_tenant() {
    let server = Server::start();
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let tenant = admin
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": provider, "kind": "customer", "name": "Acme" }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a = vault(&admin, &tenant, "laptops");
    let b = vault(&admin, &tenant, "servers");
    let only_a = Holder {
        server: &server,
        secret: token(&admin, &tenant, &[&a]),
        vault: a.clone(),
    };
    let every_vault = Holder {
        server: &server,
        secret: token(&admin, &tenant, &[]),
        vault: b.clone(),
    };
    // B holds an object of each kind a request below names.
    let in_b = index_object(1);
    every_vault.put("index", &in_b).expect(201);
    let index_name = blake3::hash(&in_b).to_hex().to_string();
    let key_name = every_vault.call("get", "keys").json()[0]["name"]
        .as_str()
        .expect("a managed vault has a key slot")
        .to_string();

    // The control: on its own vault the token does everything.
    only_a.open().expect(200);
    for kind in KINDS {
        only_a.call("get", kind).expect(200);
    }
    let in_a = index_object(2);
    only_a.put("index", &in_a).expect(201);
    let in_a_name = format!("index/{}", blake3::hash(&in_a).to_hex());
    assert_eq!(only_a.call("get", &in_a_name).status, 200);
    assert_eq!(only_a.call("head", &in_a_name).status, 200);
    only_a.call("delete", &in_a_name).expect(204);

    // On B, and on a vault that exists nowhere, it gets the same answer: not found.
    let nowhere = format!("vt_{}", "0".repeat(32));
    for target in [b.as_str(), nowhere.as_str()] {
        let there = only_a.at(target);
        there.open().expect_problem(404, "not_found");
        for kind in KINDS {
            there.call("get", kind).expect_problem(404, "not_found");
        }
        for object in [
            format!("index/{index_name}"),
            format!("keys/{key_name}"),
            "config/config".to_string(),
        ] {
            there.call("get", &object).expect_problem(404, "not_found");
            let head = there.call("head", &object);
            assert_eq!(head.status, 404, "HEAD {object} on {target}");
            there
                .call("delete", &object)
                .expect_problem(404, "not_found");
        }
        there
            .put("index", &index_object(3))
            .expect_problem(404, "not_found");
    }

    // Nothing of B changed.
    let names: Vec<String> = every_vault
        .call("get", "index")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec![index_name.clone()]);
    let key = every_vault.call("get", &format!("keys/{key_name}"));
    assert_eq!(key.status, 200, "B's key slot is untouched");
    every_vault.open().expect(200);
}
