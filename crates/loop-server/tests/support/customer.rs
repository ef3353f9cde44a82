//! [`Server::customer`]: a customer tenant with one user per role, a vault, a device, a token,
//! a job, a policy, an item and a notification target, for the tests that walk every route.

use serde_json::json;

use super::{Caller, Reply, Server, USER_PASSWORD};

impl Server {
    /// A customer tenant made by the provider admin, with one user per tenant role (signed
    /// in), a managed vault, a device and a restore token for the vault. `tag` goes into every
    /// name and e-mail, so a test can tell customers apart in any answer.
    pub fn customer(&self, admin: &Caller<'_>, tag: &str) -> Customer {
        let provider = admin.provider_tenant_id();
        let tenant = admin
            .post(
                "/api/v1/tenants",
                json!({ "parent_id": provider, "kind": "customer", "name": format!("Tenant {tag}") }),
            )
            .expect(201);
        let tenant_id = tenant["id"].as_str().unwrap().to_string();
        let mut users = Vec::new();
        for role in ["admin", "operator", "auditor", "billing"] {
            let email = format!("{role}@{tag}.example");
            let u = admin
                .post(
                    "/api/v1/users",
                    json!({
                        "tenant_id": tenant_id, "email": email, "first_name": format!("{role}-{tag}"),
                        "last_name": format!("Person-{tag}"), "password": USER_PASSWORD, "role": role,
                    }),
                )
                .expect(201);
            let session = self.sign_in(&email, USER_PASSWORD);
            users.push(Member {
                role: role.into(),
                email,
                user_id: u["user"]["id"].as_str().unwrap().into(),
                secret: session.secret,
                session_id: session.session_id,
            });
        }
        let binding_id = admin
            .get(&format!("/api/v1/users/{}/roles", users[1].user_id))
            .expect(200)[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let vault = admin
            .post(
                "/api/v1/vaults",
                json!({ "tenant_id": tenant_id, "name": format!("vault-{tag}"), "destination": "local" }),
            )
            .expect(201);
        let replica_id = self.state.destinations.get("spare").map(|_| {
            admin
                .post(
                    &format!("/api/v1/vaults/{}/replicas", vault["id"].as_str().unwrap()),
                    json!({ "destination": "spare" }),
                )
                .expect(201)["id"]
                .as_str()
                .unwrap()
                .to_string()
        });
        let device = admin
            .post(
                "/api/v1/devices",
                json!({ "tenant_id": tenant_id, "name": format!("laptop-{tag}") }),
            )
            .expect(201);
        let token = admin
            .post(
                "/api/v1/tokens",
                json!({
                    "tenant_id": tenant_id, "name": format!("token-{tag}"), "kind": "device",
                    "device_id": device["id"], "permissions": ["restore"],
                }),
            )
            .expect(201);
        let job_id = self.plant_job(&tenant_id);
        let policy = admin
            .post(
                "/api/v1/policies",
                json!({ "tenant_id": tenant_id, "vault_id": vault["id"], "keep": { "last": 7 } }),
            )
            .expect(201);
        let item = admin
            .post(
                "/api/v1/items",
                json!({
                    "tenant_id": tenant_id, "device_id": device["id"], "vault_id": vault["id"],
                    "name": format!("home-{tag}"), "paths": ["/home"], "schedule": "daily",
                }),
            )
            .expect(201);
        let target = admin
            .post(
                "/api/v1/notify/targets",
                json!({
                    "tenant_id": tenant_id, "name": format!("alerts-{tag}"),
                    "email": { "recipients": [format!("alerts@{tag}.example")] },
                }),
            )
            .expect(201);
        let sync = replica_id
            .is_some()
            .then(|| self.sync_job(admin, &tenant_id, vault["id"].as_str().unwrap(), tag));
        let (plan_id, invoice_id) = self.subscribed(admin, &tenant_id, tag);
        let request_id = admin
            .post(
                "/api/v1/subject-requests",
                json!({ "user_id": users[1].user_id, "kind": "access" }),
            )
            .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
        let export_id = self.data_export(admin, &users[1].user_id);
        Customer {
            request_id,
            export_id,
            sync,
            plan_id,
            invoice_id,
            target_id: target["target"]["id"].as_str().unwrap().into(),
            policy_id: policy["id"].as_str().unwrap().into(),
            item_id: item["id"].as_str().unwrap().into(),
            tenant_id,
            name: format!("Tenant {tag}"),
            users,
            binding_id,
            vault_id: vault["id"].as_str().unwrap().into(),
            vault_name: format!("vault-{tag}"),
            device_id: device["id"].as_str().unwrap().into(),
            device_name: format!("laptop-{tag}"),
            token_id: token["token"]["id"].as_str().unwrap().into(),
            token_name: format!("token-{tag}"),
            token_secret: token["secret"].as_str().unwrap().into(),
            job_id,
            replica_id,
        }
    }
}

impl Server {
    /// An archive of `user_id`'s data made at `admin`'s request, once its job made it.
    pub fn data_export(&self, admin: &Caller<'_>, user_id: &str) -> String {
        let asked = admin
            .post(&format!("/api/v1/users/{user_id}/data-export"), json!({}))
            .expect(202);
        let id = asked["id"].as_str().unwrap().to_string();
        for _ in 0..1200 {
            let e = admin.get(&format!("/api/v1/data-exports/{id}")).expect(200);
            if e["state"] == "ready" {
                return id;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("the archive {id} was never made");
    }

    /// Subscribes `tenant_id` to a new plan of the provider and records an open invoice of
    /// it (as the lifecycle timer would): (plan, invoice).
    pub fn subscribed(&self, admin: &Caller<'_>, tenant_id: &str, tag: &str) -> (String, String) {
        let provider = admin.provider_tenant_id();
        let plan = admin
            .post(
                "/api/v1/plans",
                json!({ "issuer_id": provider, "name": format!("plan-{tag}"),
                        "price_cents": 900, "currency": "EUR" }),
            )
            .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
        admin
            .put(
                &format!("/api/v1/tenants/{tenant_id}/subscription"),
                json!({ "plan_id": plan }),
            )
            .expect(200);
        let invoice = self.plant_invoice(&provider, tenant_id, &plan);
        (plan, invoice)
    }

    /// Records a deletion certificate of `tenant` (as the erasure job would), unless it has
    /// one.
    pub fn plant_certificate(&self, tenant: &str) {
        let body = json!({ "tenant_id": tenant, "places": [] }).to_string();
        let c = loop_server::db::erasure::CertificateRow {
            id: loop_server::domain::new_id("dc"),
            tenant_id: tenant.into(),
            issued_at: self.state.now(),
            sha256: "0".repeat(64),
            body,
        };
        self.block_on(async {
            let mut tx = self.state.db.begin().await.unwrap();
            loop_server::db::erasure::insert_certificate(&mut tx, &c)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        });
    }

    /// A plan of the provider offered on the self-service sign-up (made the first time).
    pub fn signup_plan(&self, admin: &Caller<'_>) -> String {
        let offered = self.call("get", "/api/v1/signup/plans", None, None);
        if offered.status == 200 {
            return offered.json()[0]["id"].as_str().unwrap().to_string();
        }
        admin
            .post(
                "/api/v1/plans",
                json!({ "issuer_id": admin.provider_tenant_id(), "name": "Self service",
                        "price_cents": 1500, "currency": "EUR", "signup": true }),
            )
            .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Records a sign-up of `email` for `plan` as its mail would have, and answers its code.
    pub fn plant_signup(&self, plan: &str, email: &str) -> String {
        let code = loop_server::domain::new_secret("lps");
        let now = self.state.now();
        let s = loop_server::db::signups::SignupRow {
            id: loop_server::domain::new_id("su"),
            email: email.into(),
            organisation: format!("Signed up {email}"),
            first_name: "Sign".into(),
            last_name: "Up".into(),
            business_address: String::new(),
            language: loop_api::Language::En,
            plan_id: plan.into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
                .into(),
            created_at: now,
            expires_at: now + loop_server::signup::VALID_MS,
        };
        self.block_on(async {
            let mut tx = self.state.db.begin().await.unwrap();
            loop_server::db::signups::insert_signup(&mut tx, &s)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            let hash = loop_server::domain::secret_hash(&code);
            assert!(
                loop_server::db::signups::set_code(&self.state.db.pool, &s.id, &hash)
                    .await
                    .unwrap()
            );
        });
        code
    }

    /// Records an open invoice of `tenant` from `issuer` for `plan`, due in a day, as the
    /// lifecycle timer would; answers its ID.
    pub fn plant_invoice(&self, issuer: &str, tenant: &str, plan: &str) -> String {
        let now = self.state.now();
        let inv = loop_api::Invoice {
            id: loop_server::domain::new_id("in"),
            issuer_id: issuer.into(),
            number: 0,
            tenant_id: tenant.into(),
            bill_to: tenant.into(),
            plan_id: plan.into(),
            // Its own period: one invoice per period and tenant.
            period_start: loop_server::db::time(now + (rand_ms() as i64)),
            period_end: loop_server::db::time(now + 2_000_000_000),
            currency: "EUR".into(),
            lines: Vec::new(),
            total_cents: 900,
            state: loop_api::InvoiceState::Open,
            issued_at: loop_server::db::time(now),
            due_at: loop_server::db::time(now + 86_400_000),
            paid_at: None,
            payment_reference: None,
        };
        self.block_on(async {
            let mut tx = self.state.db.begin().await.unwrap();
            loop_server::db::invoices::insert_invoice(&mut tx, &inv)
                .await
                .unwrap()
                .expect("a period of its own");
            tx.commit().await.unwrap();
        });
        inv.id
    }

    /// A remote of `tenant_id` that is this server itself (its own address and certificate),
    /// with a replication token naming a new customer-key vault of the tenant: (remote,
    /// that vault).
    pub fn self_remote(&self, admin: &Caller<'_>, tenant_id: &str, tag: &str) -> (String, String) {
        let (added, mirror) = self.add_remote_at(admin, tenant_id, tag, &self.base);
        let remote = added.expect(201)["id"].as_str().unwrap().to_string();
        (remote, mirror)
    }

    /// Asks for a remote `self-{tag}` of `tenant_id` at `url`, with this server's certificate
    /// and a replication token naming a new customer-key vault of the tenant: (the answer,
    /// that vault).
    pub fn add_remote_at(
        &self,
        admin: &Caller<'_>,
        tenant_id: &str,
        tag: &str,
        url: &str,
    ) -> (Reply, String) {
        let mirror = admin
            .post(
                "/api/v1/vaults",
                json!({
                    "tenant_id": tenant_id, "name": format!("mirror-{tag}"),
                    "destination": "local", "key_custody": "customer",
                }),
            )
            .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
        let token = admin
            .post(
                "/api/v1/tokens",
                json!({
                    "tenant_id": tenant_id, "name": format!("replicate-{tag}"), "kind": "api",
                    "vault_ids": [mirror], "permissions": ["replicate"],
                }),
            )
            .expect(201);
        let added = admin.post(
            "/api/v1/remotes",
            json!({
                "tenant_id": tenant_id, "name": format!("self-{tag}"), "url": url,
                "fingerprint": self.fingerprint, "token": token["secret"],
            }),
        );
        (added, mirror)
    }

    /// A sync job pushing `vault_id` to a [`Server::self_remote`]: (remote, sync job).
    pub fn sync_job(
        &self,
        admin: &Caller<'_>,
        tenant_id: &str,
        vault_id: &str,
        tag: &str,
    ) -> (String, String) {
        let (remote, mirror) = self.self_remote(admin, tenant_id, tag);
        let job = admin
            .post(
                "/api/v1/sync-jobs",
                json!({
                    "remote_id": remote, "direction": "push", "vault_id": vault_id,
                    "remote_vault_id": mirror,
                }),
            )
            .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
        (remote, job)
    }
}

/// A user of a [`Customer`], signed in.
pub struct Member {
    pub role: String,
    pub email: String,
    pub user_id: String,
    pub secret: String,
    pub session_id: String,
}

/// What [`Server::customer`] made.
pub struct Customer {
    pub tenant_id: String,
    pub name: String,
    /// admin, operator, auditor, billing: in that order.
    pub users: Vec<Member>,
    /// The operator's role binding.
    pub binding_id: String,
    pub vault_id: String,
    pub vault_name: String,
    pub device_id: String,
    pub device_name: String,
    pub token_id: String,
    pub token_name: String,
    pub token_secret: String,
    /// A queued job (due in a day, so it can be cancelled).
    pub job_id: String,
    /// The retention policy attached to the vault.
    pub policy_id: String,
    /// A protected item of the device, into the vault.
    pub item_id: String,
    /// An e-mail notification target.
    pub target_id: String,
    /// The provider's plan it subscribes to, and an open invoice of it.
    pub plan_id: String,
    pub invoice_id: String,
    /// The vault's replica, on a server started with a spare destination.
    pub replica_id: Option<String>,
    /// On such a server also a remote (the server itself) and a sync job pushing the vault
    /// there: (remote, sync job).
    pub sync: Option<(String, String)>,
    /// A data-subject request about the operator.
    pub request_id: String,
    /// A personal-data archive of the operator, ready to download.
    pub export_id: String,
}

impl Customer {
    pub fn member(&self, role: &str) -> &Member {
        self.users.iter().find(|m| m.role == role).expect("role")
    }

    /// Every ID, name and e-mail of this customer: none may reach another tenant's users.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = vec![
            self.tenant_id.clone(),
            self.name.clone(),
            self.binding_id.clone(),
            self.vault_id.clone(),
            self.vault_name.clone(),
            self.device_id.clone(),
            self.device_name.clone(),
            self.token_id.clone(),
            self.token_name.clone(),
            self.job_id.clone(),
            self.policy_id.clone(),
            self.item_id.clone(),
            self.target_id.clone(),
            self.request_id.clone(),
            self.export_id.clone(),
        ];
        for m in &self.users {
            out.extend([m.email.clone(), m.user_id.clone(), m.session_id.clone()]);
        }
        out
    }
}

/// A number of milliseconds that differs from call to call (an invoice's own period).
fn rand_ms() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
