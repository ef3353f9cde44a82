//! A customer set up on a real `loop server` by its administrators, with a vault, a device
//! and its tokens: the starting point of the service's end-to-end stories.

use std::path::Path;

use super::cli::{assert_same_tree, build_full_tree};
use super::server::*;

pub fn id(v: &serde_json::Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

pub struct Story {
    pub server: Server,
    /// The server's access log, when the story was set up with one.
    pub server_log: Option<std::path::PathBuf>,
    pub dir: tempfile::TempDir,
    pub customer: String,
    pub vault: String,
    pub device_id: String,
    pub backup_token: String,
    pub restore_token: String,
}

/// A server configuration with the test clock on and sessions that outlast its jumps.
pub fn test_clock_config(d: &Path) -> std::path::PathBuf {
    let p = d.join("server.toml");
    std::fs::write(
        &p,
        "test_clock = true\n[session]\nidle_minutes = 100000\nabsolute_hours = 10000\n",
    )
    .unwrap();
    p
}

/// The provider admin creates a customer and its admin; the customer admin creates a vault
/// at `destination`, a device and its tokens.
pub fn set_up(config: Option<&dyn Fn(&Path) -> std::path::PathBuf>, destination: &str) -> Story {
    set_up_logging(config, destination, false)
}

/// [`set_up`], with the server's access log in `Story::server_log` when `log` is set.
pub fn set_up_logging(
    config: Option<&dyn Fn(&Path) -> std::path::PathBuf>,
    destination: &str,
    log: bool,
) -> Story {
    let dir = tempfile::tempdir().unwrap();
    let config_file = config.map(|f| f(dir.path()));
    let server_log = log.then(|| dir.path().join("server.log"));
    let server = Server::start_logging(
        &dir.path().join("server"),
        config_file.as_deref(),
        server_log.as_deref(),
    );
    set_up_on(server, server_log, dir, destination)
}

/// The story's set-up on a running `server` (whose `url` may be a load balancer's).
pub fn set_up_on(
    server: Server,
    server_log: Option<std::path::PathBuf>,
    dir: tempfile::TempDir,
    destination: &str,
) -> Story {
    let provider_admin = dir.path().join("provider-admin");
    let admin = |args: &[&str]| server.as_user(&provider_admin, args);
    server.sign_in_provider_admin(&provider_admin);
    let tenants = json(&mut admin(&["tenant", "list"]));
    let provider = id(&tenants[0]);
    assert_eq!(tenants[0]["kind"], "provider");
    let customer = id(&json(&mut admin(&[
        "tenant",
        "create",
        "--parent",
        &provider,
        "--kind",
        "customer",
        "--name",
        "Acme GmbH",
    ])));
    ok(admin(&[
        "user",
        "create",
        "--tenant",
        &customer,
        "--email",
        "ana@acme.example",
        "--first-name",
        "Ana",
        "--last-name",
        "Alves",
        "--role",
        "admin",
    ])
    .env("LOOP_NEW_USER_PASSWORD", "ana-password-1234"));

    let ana_dir = dir.path().join("ana");
    let ana = |args: &[&str]| server.as_user(&ana_dir, args);
    ok(ana(&[
        "login",
        "--server",
        &server.url,
        "--email",
        "ana@acme.example",
    ])
    .env("LOOP_LOGIN_PASSWORD", "ana-password-1234"));
    let vault = id(&json(&mut ana(&[
        "vault",
        "create",
        "--tenant",
        &customer,
        "--name",
        "laptop",
        "--destination",
        destination,
    ])));
    let device = id(&json(&mut ana(&[
        "device",
        "create",
        "--tenant",
        &customer,
        "--name",
        "laptop-01",
    ])));
    let token = |perm: &str| {
        json(&mut ana(&[
            "token",
            "create",
            "--tenant",
            &customer,
            "--name",
            perm,
            "--device",
            &device,
            "--vault",
            &vault,
            "--permission",
            perm,
        ]))["secret"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let backup_token = token("backup");
    let restore_token = token("restore");
    Story {
        server,
        server_log,
        dir,
        customer,
        vault,
        device_id: device,
        backup_token,
        restore_token,
    }
}

impl Story {
    /// A protected item of `device` backing up `path` into the story's vault, made by the
    /// customer admin with further `item create` arguments; its ID.
    pub fn item(&self, device: &str, name: &str, path: &Path, extra: &[&str]) -> String {
        let mut args = vec![
            "item",
            "create",
            "--tenant",
            &self.customer,
            "--device",
            device,
            "--vault",
            &self.vault,
            "--name",
            name,
            "--path",
            path.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        json(&mut self.admin("ana", &args))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A further token of the device for the vault, made by the customer admin.
    pub fn token(&self, name: &str, permission: &str) -> String {
        json(&mut self.admin(
            "ana",
            &[
                "token",
                "create",
                "--tenant",
                &self.customer,
                "--name",
                name,
                "--device",
                &self.device_id,
                "--vault",
                &self.vault,
                "--permission",
                permission,
            ],
        ))["secret"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A customer-key vault of the customer and a manage token for it: (vault, token).
    pub fn customer_key_vault(&self, name: &str) -> (String, String) {
        self.customer_key_vault_at(name, None)
    }

    /// [`Story::customer_key_vault`] at `destination` (the server's default when none).
    pub fn customer_key_vault_at(&self, name: &str, destination: Option<&str>) -> (String, String) {
        let mut args = vec![
            "vault",
            "create",
            "--tenant",
            &self.customer,
            "--name",
            name,
            "--customer-key",
        ];
        if let Some(d) = destination {
            args.extend(["--destination", d]);
        }
        let vault = id(&json(&mut self.admin("ana", &args)));
        let manage = json(&mut self.admin(
            "ana",
            &[
                "token",
                "create",
                "--tenant",
                &self.customer,
                "--name",
                name,
                "--kind",
                "api",
                "--vault",
                &vault,
                "--permission",
                "manage",
            ],
        ))["secret"]
            .as_str()
            .unwrap()
            .to_string();
        (vault, manage)
    }

    /// `loop` on the customer's own machine, against `vault` with `token` and the
    /// customer's passphrase (fast key derivation).
    pub fn customer_cli(&self, vault: &str, token: &str, args: &[&str]) -> std::process::Command {
        let mut c = self.server.cli(&self.dir.path().join("customer"));
        c.env(
            "LOOP_REPOSITORY",
            format!("{}/vaults/{vault}", self.server.url),
        )
        .env("LOOP_TOKEN", token)
        .env("LOOP_PASSWORD", "customer passphrase")
        .args(["--kdf-memory", "64", "--kdf-passes", "1"])
        .args(args);
        c
    }

    /// `loop` on the device, against the vault, with a token.
    pub fn device(&self, token: &str, args: &[&str]) -> std::process::Command {
        let mut c = self.server.cli(&self.dir.path().join("device"));
        c.env(
            "LOOP_REPOSITORY",
            format!("{}/vaults/{}", self.server.url, self.vault),
        )
        .env("LOOP_TOKEN", token)
        .args(args);
        c
    }

    /// Moves the server's test clock forward (the server must run with `test_clock = true`),
    /// as the provider admin; the server's time after the move.
    pub fn advance_clock(&self, seconds: u64) -> chrono::DateTime<chrono::Utc> {
        let session: serde_json::Value = serde_json::from_slice(
            &std::fs::read(self.dir.path().join("provider-admin/session.json")).unwrap(),
        )
        .unwrap();
        let pem = std::fs::read(self.server.data_dir.join("tls-cert.pem")).unwrap();
        let client = reqwest::blocking::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            .build()
            .unwrap();
        let r = client
            .post(format!("{}/api/v1/admin/test-clock", self.server.url))
            .bearer_auth(session["session_token"].as_str().unwrap())
            .json(&serde_json::json!({ "advance_seconds": seconds }))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "the test clock moves");
        let v: serde_json::Value = r.json().unwrap();
        v["now"].as_str().unwrap().parse().unwrap()
    }

    /// The job, once it ended (polled through the customer admin `ana`; the bound only
    /// stops a hung test).
    pub fn job_ended(&self, job: &str) -> serde_json::Value {
        for _ in 0..1200 {
            let j = json(&mut self.admin("ana", &["job", "show", job]));
            if !["queued", "running"].contains(&j["state"].as_str().unwrap()) {
                return j;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("job {job} did not end");
    }

    /// The object names of `kind` in `vault` (sorted), listed on the vault protocol with a
    /// token that may.
    pub fn object_names(&self, vault: &str, kind: &str, token: &str) -> Vec<String> {
        let (status, body) = self.server.vault_request(
            reqwest::Method::GET,
            &format!("/vaults/{vault}/v1/{kind}"),
            token,
            None,
        );
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut names: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    }

    pub fn admin(&self, who: &str, args: &[&str]) -> std::process::Command {
        self.server.as_user(&self.dir.path().join(who), args)
    }

    pub fn backup_and_restore(&self) {
        let src = self.dir.path().join("device-files");
        build_full_tree(&src);
        let summary =
            json(&mut self.device(&self.backup_token, &["backup", src.to_str().unwrap()]));
        assert!(summary["snapshot_id"].is_string(), "{summary}");

        // The backup token appends; it cannot read what is there.
        let err = fails(&mut self.device(&self.backup_token, &["snapshots"]));
        assert!(err.contains("permission"), "{err}");
        let err =
            fails(&mut self.device(&self.backup_token, &["restore", "latest", "--target", "x"]));
        assert!(err.contains("permission"), "{err}");

        let snaps = json(&mut self.device(&self.restore_token, &["snapshots"]));
        assert_eq!(snaps.as_array().unwrap().len(), 1);
        let target = self.dir.path().join("restored");
        ok(&mut self.device(
            &self.restore_token,
            &[
                "restore",
                "latest",
                "--target",
                target.to_str().unwrap(),
                "--verify",
            ],
        ));
        let name = src.file_name().unwrap();
        assert_same_tree(&src, &target.join(name));

        // The administrator sees the snapshot through the API as well.
        let listed = json(&mut self.admin("ana", &["vault", "snapshots", &self.vault]));
        assert_eq!(listed[0]["id"], snaps[0]["id"]);
    }
}
