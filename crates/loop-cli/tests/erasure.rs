//! Erasing a customer with the real binary: a provider-admin runs `loop tenant erase`, and
//! from then on nobody can read the customer's backups, neither through the server nor
//! straight from storage with the customer's own passphrase.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::cli::build_full_tree;
use support::server::*;

const PASSPHRASE: &str = "customer passphrase";

fn id(v: &serde_json::Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

struct Shop {
    server: Server,
    dir: tempfile::TempDir,
}

impl Shop {
    /// `loop ARGS` as the person whose session lives in `who`.
    fn as_(&self, who: &str, args: &[&str]) -> Command {
        self.server.as_user(&self.dir.path().join(who), args)
    }

    fn sign_in(&self, who: &str, email: &str, password: &str) {
        ok(self
            .as_(
                who,
                &["login", "--server", &self.server.url, "--email", email],
            )
            .env("LOOP_LOGIN_PASSWORD", password));
    }

    /// `loop` on a device against `vault` through the server, with `token`.
    fn device(&self, vault: &str, token: &str, args: &[&str]) -> Command {
        let mut c = self.server.cli(&self.dir.path().join("device"));
        c.env(
            "LOOP_REPOSITORY",
            format!("{}/vaults/{vault}", self.server.url),
        )
        .env("LOOP_TOKEN", token)
        .env("LOOP_PASSWORD", PASSPHRASE)
        .args(["--kdf-memory", "64", "--kdf-passes", "1"])
        .args(args);
        c
    }

    fn vault_dir(&self, vault: &str) -> PathBuf {
        self.server.data_dir.join("vaults").join(vault)
    }
}

fn token(shop: &Shop, tenant: &str, vault: &str, permission: &str) -> String {
    json(&mut shop.as_(
        "ana",
        &[
            "token",
            "create",
            "--tenant",
            tenant,
            "--name",
            permission,
            "--kind",
            "api",
            "--vault",
            vault,
            "--permission",
            permission,
        ],
    ))["secret"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Files anywhere under `dir` (directories left behind do not count).
fn files_below(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                files_below(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn an_erased_customers_backups_cannot_be_read_by_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"), None);
    let shop = Shop { server, dir };
    shop.sign_in("provider-admin", "admin@localhost", ADMIN_PASSWORD);
    let admin = |args: &[&str]| shop.as_("provider-admin", args);
    let provider = id(&json(&mut admin(&["tenant", "list"]))[0]);
    let create = |parent: &str, kind: &str, name: &str| {
        id(&json(&mut admin(&[
            "tenant", "create", "--parent", parent, "--kind", kind, "--name", name,
        ])))
    };
    let partner = create(&provider, "partner", "Reseller");
    let acme = create(&partner, "customer", "Acme GmbH");
    for (tenant, email, role, who) in [
        (&acme, "ana@acme.example", "admin", "ana"),
        (&partner, "pat@reseller.example", "partner-admin", "pat"),
    ] {
        ok(admin(&[
            "user",
            "create",
            "--tenant",
            tenant,
            "--email",
            email,
            "--first-name",
            who,
            "--last-name",
            "X",
            "--role",
            role,
        ])
        .env("LOOP_NEW_USER_PASSWORD", "a-password-1234"));
        shop.sign_in(who, email, "a-password-1234");
    }

    // Acme backs up into a managed vault and into a vault only its passphrase opens.
    let managed = id(&json(&mut shop.as_(
        "ana",
        &[
            "vault",
            "create",
            "--tenant",
            &acme,
            "--name",
            "laptops",
            "--destination",
            "local",
        ],
    )));
    let own_key = id(&json(&mut shop.as_(
        "ana",
        &[
            "vault",
            "create",
            "--tenant",
            &acme,
            "--name",
            "secrets",
            "--customer-key",
        ],
    )));
    let managed_token = token(&shop, &acme, &managed, "manage");
    let own_key_token = token(&shop, &acme, &own_key, "manage");
    let src = shop.dir.path().join("files");
    build_full_tree(&src);
    let src = src.to_str().unwrap();
    ok(&mut shop.device(&managed, &managed_token, &["backup", src]));
    ok(&mut shop.device(&own_key, &own_key_token, &["backup", "--init", src]));
    let snaps = json(&mut shop.device(&managed, &managed_token, &["snapshots"]));
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    let target = shop.dir.path().join("restored-before");
    let target = target.to_str().unwrap();
    let own_key_on_disk = |args: &[&str]| {
        let mut c = shop.server.cli(&shop.dir.path().join("customer"));
        c.env("LOOP_REPOSITORY", shop.vault_dir(&own_key))
            .env("LOOP_PASSWORD", PASSPHRASE)
            .args(args);
        c
    };
    // Straight from storage, the passphrase opens the customer-key vault (until erasure).
    ok(&mut own_key_on_disk(&[
        "restore", "latest", "--target", target,
    ]));

    // Neither the customer's own admin nor its partner may erase it, and a wrong name is
    // refused.
    let erase =
        |who: &str, confirm: &str| shop.as_(who, &["tenant", "erase", &acme, "--confirm", confirm]);
    for who in ["ana", "pat"] {
        let err = fails(&mut erase(who, "Acme GmbH"));
        assert!(err.contains("forbidden"), "{who}: {err}");
    }
    let err = fails(&mut erase("provider-admin", "Acme"));
    assert!(err.contains("confirmation_mismatch"), "{err}");
    ok(&mut shop.device(&managed, &managed_token, &["snapshots"]));

    let report = json(&mut erase("provider-admin", "Acme GmbH"));
    assert_eq!(report["tenant_key_destroyed"], true, "{report}");

    // The managed vault: nobody lists or restores it, and they are told why.
    let after = shop.dir.path().join("restored-after");
    let after = after.to_str().unwrap();
    for args in [
        &["snapshots"][..],
        &["restore", "latest", "--target", after][..],
    ] {
        let err = fails(&mut shop.device(&managed, &managed_token, args));
        assert!(err.contains("tenant was erased"), "{args:?}: {err}");
    }
    // The vaults are deleted with the tenant.
    let err = fails(&mut admin(&["vault", "snapshots", &managed]));
    assert!(err.contains("no such resource"), "{err}");

    // The customer-key vault: its key slots went at once, so even the right passphrase,
    // reading the storage directly, opens nothing; then the erasure job deletes every
    // object and certifies that each place is empty.
    let err = fails(&mut own_key_on_disk(&[
        "restore", "latest", "--target", after,
    ]));
    assert!(
        err.contains("has no key slot") || err.contains("no repository"),
        "{err}"
    );
    let certificate = (0..600)
        .find_map(|_| {
            let c = admin(&["tenant", "certificate", &acme])
                .arg("--json")
                .output()
                .unwrap();
            if c.status.success() {
                return Some(serde_json::from_slice::<serde_json::Value>(&c.stdout).unwrap());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            None
        })
        .expect("a deletion certificate");
    let body: serde_json::Value =
        serde_json::from_str(certificate["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["complete"], true, "{body}");
    for v in [&own_key, &managed] {
        assert_eq!(files_below(&shop.vault_dir(v)), 0, "{v} is empty");
    }
    let shown = ok(&mut admin(&["tenant", "certificate", &acme]));
    assert!(shown.contains("SHA-256"), "{shown}");

    // The audit log names the erasure and what it destroyed, and still verifies.
    let events = json(&mut admin(&["audit", "list", "--tenant", &acme]));
    let erased = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "tenant.erase")
        .expect("a tenant.erase event");
    assert_eq!(erased["details"]["tenant_key_destroyed"], true);
    let slots = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "tenant.erase_key_slots")
        .expect("a tenant.erase_key_slots event");
    assert!(slots["details"].to_string().contains(&own_key), "{slots}");
    ok(&mut admin(&["admin", "audit", "verify"]));
}
