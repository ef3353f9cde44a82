//! A `loop server` running inside the test process, and an HTTPS client for it.
//!
//! [`Server::start`] builds the application on port 0 with its own data directory and
//! serves it on a private tokio runtime; the test thread talks to it with blocking
//! `reqwest` (which must not run inside an async context, hence the separate runtime).
//! [`Server::advance`] moves the server's clock, so expiry and throttling windows pass
//! without sleeping.
#![allow(dead_code)]

pub mod agent;
mod checks;
pub mod console;
mod customer;
pub mod lifecycle;
mod reply;
pub mod stripe;
mod totp;
pub mod vault;

#[allow(unused_imports)]
pub use checks::*;
#[allow(unused_imports)]
pub use customer::{Customer, Member};
pub use reply::Reply;

#[allow(unused_imports)]
pub use loop_testkit::smtp;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use loop_server::Config;
use loop_server::config::SecretString;
use loop_server::state::AppState;
use reqwest::Method;
use serde_json::{Value, json};

pub const ADMIN_EMAIL: &str = "admin@localhost";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
/// The password every user made by [`Server::customer`] signs in with.
pub const USER_PASSWORD: &str = "user-password-123";

pub struct Server {
    client: reqwest::blocking::Client,
    /// A client that follows no redirect, as [`console`] needs to see them.
    pages: reqwest::blocking::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub state: AppState,
    pub base: String,
    /// SHA-256 of the server's certificate (hex), as a remote pins it.
    pub fingerprint: String,
    pub data_dir: PathBuf,
    /// The payment processor's stand-in the server charges cards through (unless the test
    /// configured none).
    pub stripe: stripe::FakeStripe,
    rt: tokio::runtime::Runtime,
    /// The PostgreSQL database, when the run asks for one; dropped after the runtime.
    _database: Option<Arc<loop_testkit::postgres::Database>>,
    _dir: tempfile::TempDir,
}

/// A signed-in person (or a token holder): every request carries its bearer secret.
#[derive(Clone)]
pub struct Caller<'a> {
    server: &'a Server,
    pub secret: String,
    pub session_id: String,
    pub user_id: String,
}

/// Configures the embedded `local` destination and a second local one, `spare` (in the data
/// directory's `spare`), both of jurisdiction `local`.
pub fn with_spare(c: &mut Config) {
    with_destinations(c, &["local", "spare"]);
}

/// Local destinations `names` (in jurisdiction `local`): `local` in the data directory's
/// `vaults`, each other in the directory of its name.
pub fn with_destinations(c: &mut Config, names: &[&str]) {
    c.destinations = names
        .iter()
        .map(|&name| loop_server::config::DestinationConfig {
            name: name.into(),
            jurisdiction: "local".into(),
            backend: loop_server::config::BackendConfig::Local {
                path: c
                    .data_dir
                    .join(if name == "local" { "vaults" } else { name }),
            },
        })
        .collect();
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(|_| {})
    }

    /// A server with a second local destination, `spare`, where the customers it makes
    /// ([`Server::customer`]) replicate their vault.
    pub fn start_with_spare() -> Server {
        Server::start_with(with_spare)
    }

    /// Starts a server after `configure` adjusted its configuration.
    pub fn start_with(configure: impl FnOnce(&mut Config)) -> Server {
        Server::start_on(
            loop_testkit::postgres::for_server().map(Arc::new),
            configure,
        )
    }

    /// Starts a server on `database` (PostgreSQL, which other nodes may share), or on
    /// SQLite in its data directory.
    pub fn start_on(
        database: Option<Arc<loop_testkit::postgres::Database>>,
        configure: impl FnOnce(&mut Config),
    ) -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = Config {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_password: Some(SecretString::new(ADMIN_PASSWORD.into())),
            ..Config::default()
        };
        match &database {
            Some(d) => config.database.url = Some(SecretString::new(d.url.clone())),
            None => {
                // One connection: code that reads through the pool while its own
                // transaction holds SQLite's write lock waits for itself, which in
                // production only shows under load (every other connection waiting for that
                // lock); here it fails every time.
                config.database.max_connections = 1;
                config.database.acquire_timeout_seconds = 20;
            }
        }
        let stripe = stripe::FakeStripe::start();
        config.billing.stripe = Some(stripe::config(&stripe));
        // The remotes of tests are test servers, on loopback (a test of the default turns
        // this off again).
        config.replication.allow_private_remotes = true;
        configure(&mut config);
        let data_dir = config.data_dir.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let app = rt
            .block_on(loop_server::Application::build(config))
            .expect("the server starts");
        let port = app.addr.port();
        let state = app.state.clone();
        let fingerprint = app.fingerprint.clone();
        let pem = std::fs::read(app.cert_path.as_ref().expect("a generated certificate"))
            .expect("certificate file");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let client = reqwest::blocking::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("PEM certificate")])
            .timeout(Duration::from_secs(120))
            .build()
            .expect("HTTPS client");
        let pages = reqwest::blocking::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("PEM certificate")])
            .timeout(Duration::from_secs(120))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTPS client");
        Server {
            client,
            pages,
            stop: Some(stop),
            state,
            base: format!("https://localhost:{port}"),
            fingerprint,
            data_dir,
            stripe,
            rt,
            _database: database,
            _dir: dir,
        }
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, by: Duration) {
        self.state.clock.advance(by);
    }

    /// Steps the server's clock back.
    pub fn step_back(&self, by: Duration) {
        self.state.clock.step_back(by);
    }

    /// Runs a future on the server's runtime (direct database access in tests).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Puts a code confirming `new_email` on a user, as the mail to that address would
    /// carry it (the mail itself is tested in tests/mail.rs), and returns the code.
    pub fn plant_email_code(&self, user_id: &str, new_email: &str) -> String {
        let code = loop_server::domain::new_secret("lpe");
        let now = self.state.now();
        self.block_on(
            sqlx::query(
                "UPDATE users SET pending_email = $1, email_token_hash = $2,
                    email_token_issued_at = $3 WHERE id = $4",
            )
            .bind(new_email)
            .bind(loop_server::domain::secret_hash(&code))
            .bind(now)
            .bind(user_id)
            .execute(&self.state.db.pool),
        )
        .expect("planting a confirmation code");
        code
    }

    /// Records a password reset code for `user_id` as its mail would (the mail itself is
    /// tested in tests/mail.rs), and returns the code.
    pub fn plant_reset_code(&self, user_id: &str) -> String {
        let code = loop_server::domain::new_secret("lpr");
        let hash = loop_server::domain::secret_hash(&code);
        let planted = self.block_on(loop_server::db::users::issue_reset(
            &self.state.db.pool,
            user_id,
            &hash,
            self.state.now(),
        ));
        assert!(
            planted.expect("planting a reset code"),
            "{user_id} is not active"
        );
        code
    }

    /// Records an unsubscribe link as a marketing message to `user_id` would carry it (the
    /// message itself is tested in tests/privacy.rs), and returns its token.
    pub fn plant_unsubscribe_link(&self, user_id: &str) -> String {
        let token = loop_server::domain::new_secret("lpu");
        self.block_on(loop_server::db::privacy::insert_unsubscribe_link(
            &self.state.db.pool,
            &loop_server::domain::secret_hash(&token),
            user_id,
            self.state.now(),
        ))
        .expect("planting an unsubscribe link");
        token
    }

    /// Queues a staging-sweep job for `tenant_id` due in a day, so it stays queued (and can
    /// be cancelled) while a test runs; returns its ID.
    pub fn plant_job(&self, tenant_id: &str) -> String {
        let now = self.state.now();
        let target = loop_server::domain::new_id("planted");
        self.block_on(async {
            let mut tx = self.state.db.begin().await?;
            let id = loop_server::db::jobs::enqueue(
                &mut tx,
                &loop_server::db::jobs::NewJob {
                    runner: loop_server::db::jobs::Runner::Server,
                    tenant_id,
                    kind: loop_api::JobKind::StagingSweep,
                    target_kind: "destination",
                    target_id: &target,
                    scheduled_at: now + 86_400_000,
                    trigger: loop_api::JobTrigger::System,
                    started_by_id: None,
                    max_attempts: 1,
                    params: json!({}),
                    deadline_at: None,
                },
                now,
            )
            .await?;
            tx.commit().await.map_err(loop_server::db::DbError::from)?;
            Ok::<_, loop_server::db::DbError>(id)
        })
        .expect("planting a job")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A raw request, for what the JSON helpers cannot express.
    pub fn request(&self, method: Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub fn send(&self, req: reqwest::blocking::RequestBuilder) -> Reply {
        let r = req.send().expect("the server answers");
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let retry_after = r
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let link = r
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body = r.text().expect("a readable body");
        Reply {
            status,
            content_type,
            retry_after,
            link,
            body,
        }
    }

    /// A JSON request, with a bearer secret when given.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
        let mut req = self.request(method, path);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        self.send(req)
    }

    /// POST /api/v1/auth/login.
    pub fn login(&self, email: &str, password: &str) -> Reply {
        self.call(
            "post",
            "/api/v1/auth/login",
            None,
            Some(&json!({ "email": email, "password": password })),
        )
    }

    pub fn sign_in(&self, email: &str, password: &str) -> Caller<'_> {
        self.sign_in_with(json!({ "email": email, "password": password }))
    }

    /// Signs in with a full login request (remember, TOTP, device label).
    pub fn sign_in_with(&self, request: Value) -> Caller<'_> {
        let r = self
            .call("post", "/api/v1/auth/login", None, Some(&request))
            .expect(200);
        Caller {
            server: self,
            secret: r["session_token"].as_str().unwrap().into(),
            session_id: r["session"]["id"].as_str().unwrap().into(),
            user_id: r["user"]["id"].as_str().unwrap().into(),
        }
    }

    /// The provider's first administrator, signed in.
    pub fn admin(&self) -> Caller<'_> {
        self.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    }

    /// Someone holding a token instead of a session (the vault protocol).
    pub fn with_token(&self, secret: &str) -> Caller<'_> {
        Caller {
            server: self,
            secret: secret.into(),
            session_id: String::new(),
            user_id: String::new(),
        }
    }

    /// A customer's member, in the session they signed in with.
    pub fn as_member(&self, m: &Member) -> Caller<'_> {
        Caller {
            server: self,
            secret: m.secret.clone(),
            session_id: m.session_id.clone(),
            user_id: m.user_id.clone(),
        }
    }

    /// The OpenAPI document the server publishes.
    pub fn openapi(&self) -> Value {
        self.call("get", "/api/v1/openapi.json", None, None)
            .expect(200)
    }
}

impl Server {
    /// The bytes the metadata database keeps: SQLite's files, or a dump of PostgreSQL's
    /// database (for tests that a secret is nowhere in it).
    pub fn database_bytes(&self) -> Vec<Vec<u8>> {
        match &self._database {
            Some(d) => vec![d.dump()],
            None => ["loop.db", "loop.db-wal"]
                .iter()
                .map(|f| std::fs::read(self.data_dir.join(f)).unwrap_or_default())
                .collect(),
        }
    }

    /// Whether `text` appears anywhere in the database's stored bytes (its files, or a dump
    /// of its PostgreSQL database): what an attacker holding a copy of it would find.
    pub fn database_holds(&self, text: &str) -> bool {
        let stored = self.database_bytes();
        assert!(!stored[0].is_empty(), "the database has content");
        stored
            .iter()
            .any(|bytes| bytes.windows(text.len()).any(|w| w == text.as_bytes()))
    }

    /// Stops the server and hands over its PostgreSQL database (if any), for a server
    /// started after it on the same data ([`Server::start_on`]).
    pub fn stop(mut self) -> Option<Arc<loop_testkit::postgres::Database>> {
        self._database.take()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl<'a> Caller<'a> {
    /// The job, once it ended (polled; the bound only stops a hung test).
    pub fn job_ended(&self, id: &str) -> Value {
        for _ in 0..1200 {
            let job = self.get(&format!("/api/v1/jobs/{id}")).expect(200);
            if !["queued", "running"].contains(&job["state"].as_str().unwrap()) {
                return job;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = self.get(&format!("/api/v1/jobs/{id}/log")).expect(200);
        panic!("job {id} did not end; its log: {log:#}");
    }

    /// The events of `kind` raised for `tenant`, newest first.
    pub fn events(&self, tenant: &str, kind: &str) -> Vec<Value> {
        self.get(&format!("/api/v1/events?tenant_id={tenant}&kind={kind}"))
            .expect(200)
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn server(&self) -> &'a Server {
        self.server
    }

    pub fn get(&self, path: &str) -> Reply {
        self.server.call("get", path, Some(&self.secret), None)
    }

    pub fn post(&self, path: &str, body: Value) -> Reply {
        self.server
            .call("post", path, Some(&self.secret), Some(&body))
    }

    /// Posts each of `bodies` to `path` at once, each from a thread of its own: the answers'
    /// statuses, in the order of `bodies`.
    pub fn post_at_once(&self, path: &str, bodies: Vec<Value>) -> Vec<u16> {
        std::thread::scope(|s| {
            let sent: Vec<_> = bodies
                .into_iter()
                .map(|body| s.spawn(move || self.post(path, body).status))
                .collect();
            sent.into_iter().map(|t| t.join().unwrap()).collect()
        })
    }

    pub fn patch(&self, path: &str, body: Value) -> Reply {
        self.server
            .call("patch", path, Some(&self.secret), Some(&body))
    }

    pub fn put(&self, path: &str, body: Value) -> Reply {
        self.server
            .call("put", path, Some(&self.secret), Some(&body))
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.server.call("delete", path, Some(&self.secret), None)
    }

    /// A request with this caller's credentials, for raw bodies and headers.
    pub fn request(&self, method: Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.server.request(method, path).bearer_auth(&self.secret)
    }

    /// A new customer tenant under the provider; its ID.
    pub fn customer_tenant(&self, name: &str) -> String {
        self.post(
            "/api/v1/tenants",
            json!({ "parent_id": self.provider_tenant_id(), "kind": "customer", "name": name }),
        )
        .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A partner under the provider and a customer under that partner: (partner, customer).
    pub fn partner_with_customer(&self, partner: &str, customer: &str) -> (String, String) {
        let mut parent = self.provider_tenant_id();
        let mut made = Vec::new();
        for (kind, name) in [("partner", partner), ("customer", customer)] {
            parent = self
                .post(
                    "/api/v1/tenants",
                    json!({ "parent_id": parent, "kind": kind, "name": name }),
                )
                .expect(201)["id"]
                .as_str()
                .unwrap()
                .to_string();
            made.push(parent.clone());
        }
        (made[0].clone(), made[1].clone())
    }

    /// A new active user of `tenant` with [`USER_PASSWORD`] and `role`; their ID.
    pub fn user_in(&self, tenant: &str, email: &str, first_name: &str, role: &str) -> String {
        self.post(
            "/api/v1/users",
            json!({ "tenant_id": tenant, "email": email, "first_name": first_name,
                    "last_name": "Tester", "password": USER_PASSWORD, "role": role }),
        )
        .expect(201)["user"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Invites `email` to `tenant` (no password: an invitation); the answer.
    pub fn invite(&self, tenant: &str, email: &str) -> Value {
        self.post(
            "/api/v1/users",
            json!({ "tenant_id": tenant, "email": email, "first_name": "In",
                    "last_name": "Vited" }),
        )
        .expect(201)
    }

    /// A new e-mail notification target of `tenant`; its ID.
    pub fn email_target(&self, tenant: &str, name: &str, recipients: &[&str]) -> String {
        self.post(
            "/api/v1/notify/targets",
            json!({ "tenant_id": tenant, "name": name, "email": { "recipients": recipients } }),
        )
        .expect(201)["target"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn provider_tenant_id(&self) -> String {
        let tenants = self.get("/api/v1/tenants").expect(200);
        tenants
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["kind"] == "provider")
            .expect("the provider tenant is visible")["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Every audit event this caller may read (the provider admin: all of them).
    pub fn audit_events(&self) -> Vec<loop_api::AuditEvent> {
        serde_json::from_value(self.get("/api/v1/audit?limit=10000").expect(200))
            .expect("audit events")
    }
}
