//! The audit log: every change lands in it, and the exported chain verifies.

use super::*;

/// One request, ready to send.
pub(super) struct Call {
    pub(super) bearer: Option<String>,
    pub(super) path: String,
    pub(super) body: Option<Value>,
}

/// The objects the audit walk acts on.
pub(super) struct AuditWalk<'a> {
    pub(super) server: &'a Server,
    pub(super) admin: Caller<'a>,
    pub(super) tenant_id: String,
    /// A user who changes their own password and enrols TOTP.
    pub(super) sam: Caller<'a>,
    /// Sam's password as it stands (the walk changes it).
    pub(super) sam_password: &'static str,
    pub(super) made: u32,
}

impl AuditWalk<'_> {
    /// A fresh invited user of the customer (no password to hash), optionally with a role.
    fn user(&mut self, role: Option<&str>) -> String {
        self.person(role, None)
    }

    /// A fresh account of the customer (an invitation has no status to change).
    fn account(&mut self) -> String {
        self.person(None, Some(USER_PASSWORD))
    }

    fn person(&mut self, role: Option<&str>, password: Option<&str>) -> String {
        self.made += 1;
        let r = self
            .admin
            .post(
                "/api/v1/users",
                json!({
                    "tenant_id": self.tenant_id, "email": format!("person{}@example.org", self.made),
                    "first_name": "Pat", "last_name": "Doe", "role": role, "password": password,
                }),
            )
            .expect(201);
        r["user"]["id"].as_str().unwrap().into()
    }

    /// The vault the walk replicated (the first with a replica) and its replica.
    fn replica(&self) -> (String, String) {
        let v = self.replicated();
        let r = self
            .admin
            .get(&format!("/api/v1/vaults/{v}/replicas"))
            .expect(200);
        (v, r[0]["id"].as_str().unwrap().to_string())
    }

    fn replicated(&self) -> String {
        let vaults = self
            .admin
            .get(&format!("/api/v1/vaults?tenant_id={}", self.tenant_id))
            .expect(200);
        vaults
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "replicated")
            .expect("the walk made the replicated vault first")["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub(super) fn created(&self, path: &str, body: Value) -> String {
        let r = self.admin.post(path, body).expect(201);
        let obj = if r.get("token").is_some() {
            &r["token"]
        } else if r.get("target").is_some() {
            &r["target"]
        } else {
            &r
        };
        obj["id"].as_str().unwrap().into()
    }

    /// A new device of the tenant.
    fn device(&self, name: &str) -> String {
        let body = json!({ "tenant_id": self.tenant_id, "name": name });
        self.created("/api/v1/devices", body)
    }

    /// Builds what the request to `method path` needs, then the request itself.
    pub(super) fn prepare(&mut self, method: &str, path: &str) -> Call {
        let admin = Some(self.admin.secret.clone());
        let by_admin = |path: String, body: Option<Value>| Call {
            bearer: admin.clone(),
            path,
            body,
        };
        let t = self.tenant_id.clone();
        match (method, path) {
            ("post", "/api/v1/auth/login") => Call {
                bearer: None,
                path: path.into(),
                body: Some(json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD })),
            },
            ("post", "/api/v1/auth/logout") => Call {
                bearer: Some(self.server.admin().secret),
                path: path.into(),
                body: None,
            },
            ("post", "/api/v1/auth/accept-invite") => {
                let r = self
                    .admin
                    .post(
                        "/api/v1/users",
                        json!({ "tenant_id": t, "email": "invitee@example.org",
                                "first_name": "In", "last_name": "Vitee" }),
                    )
                    .expect(201);
                Call {
                    bearer: None,
                    path: path.into(),
                    body: Some(json!({
                        "invite_token": r["invite_token"], "password": "invitee-password-1",
                    })),
                }
            }
            ("post", "/api/v1/auth/password-reset") => Call {
                bearer: None,
                path: path.into(),
                body: Some(json!({ "email": "sam@example.org" })),
            },
            ("post", "/api/v1/auth/password-reset/confirm") => {
                // Not Sam: a reset ends every session of the account.
                self.made += 1;
                let r = self
                    .admin
                    .post(
                        "/api/v1/users",
                        json!({
                            "tenant_id": self.tenant_id, "first_name": "Re", "last_name": "Set",
                            "email": format!("reset{}@example.org", self.made),
                            "password": "reset-password-12",
                        }),
                    )
                    .expect(201);
                let id = r["user"]["id"].as_str().unwrap();
                Call {
                    bearer: None,
                    path: path.into(),
                    body: Some(json!({
                        "token": self.server.plant_reset_code(id), "password": "reset-password-13",
                    })),
                }
            }
            ("post", "/api/v1/auth/confirm-email") => Call {
                bearer: None,
                path: path.into(),
                body: Some(json!({
                    "token": self.server.plant_email_code(&self.sam.user_id, "sam-new@example.org"),
                })),
            },
            ("post", "/api/v1/me/password") => {
                let current = std::mem::replace(&mut self.sam_password, "sam-new-password-2");
                Call {
                    bearer: Some(self.sam.secret.clone()),
                    path: path.into(),
                    body: Some(json!({
                        "current_password": current, "new_password": self.sam_password,
                    })),
                }
            }
            ("post", "/api/v1/me/totp") => Call {
                bearer: Some(self.sam.secret.clone()),
                path: path.into(),
                body: Some(json!({ "current_password": self.sam_password })),
            },
            ("post", "/api/v1/me/totp/confirm") => {
                let e = self
                    .server
                    .call(
                        "post",
                        "/api/v1/me/totp",
                        Some(&self.sam.secret),
                        Some(&json!({ "current_password": self.sam_password })),
                    )
                    .expect(200);
                let code = self.server.totp_code(e["secret"].as_str().unwrap());
                Call {
                    bearer: Some(self.sam.secret.clone()),
                    path: path.into(),
                    body: Some(json!({ "code": code })),
                }
            }
            ("post", "/api/v1/tenants") => {
                let provider = self.admin.provider_tenant_id();
                by_admin(
                    path.into(),
                    Some(json!({ "parent_id": provider, "kind": "customer", "name": "Second" })),
                )
            }
            ("post", "/api/v1/users") => by_admin(
                path.into(),
                Some(json!({
                    "tenant_id": t, "email": "new.person@example.org", "first_name": "New",
                    "last_name": "Person", "password": "new-person-password", "role": "operator",
                })),
            ),
            ("post", "/api/v1/tenants/{id}/key-rotation") => {
                by_admin(format!("/api/v1/tenants/{t}/key-rotation"), None)
            }
            // A partner or the provider brands the console: the provider here.
            ("put", "/api/v1/tenants/{id}/branding") => by_admin(
                format!(
                    "/api/v1/tenants/{}/branding",
                    self.admin.provider_tenant_id()
                ),
                Some(json!({ "product_name": "Our Backup", "accent": "#0a58ca" })),
            ),
            ("delete", "/api/v1/tenants/{id}/branding") => by_admin(
                format!(
                    "/api/v1/tenants/{}/branding",
                    self.admin.provider_tenant_id()
                ),
                None,
            ),
            ("put", "/api/v1/tenants/{id}/residency") => by_admin(
                format!("/api/v1/tenants/{t}/residency"),
                Some(json!({ "allowed": ["local", "eu"] })),
            ),
            ("patch", "/api/v1/tenants/{id}") => by_admin(
                format!("/api/v1/tenants/{t}"),
                Some(json!({ "time_zone": "Asia/Tokyo" })),
            ),
            ("patch", "/api/v1/users/{id}") => {
                let u = self.user(None);
                by_admin(
                    format!("/api/v1/users/{u}"),
                    Some(json!({ "last_name": "Renamed", "business_address": "1 Main St" })),
                )
            }
            ("patch", "/api/v1/me") => Call {
                bearer: Some(self.sam.secret.clone()),
                path: path.into(),
                body: Some(json!({ "first_name": "Samuel" })),
            },
            ("post", "/api/v1/users/{id}/disable") => {
                let u = self.account();
                by_admin(format!("/api/v1/users/{u}/disable"), None)
            }
            ("post", "/api/v1/users/{id}/erase") => {
                let u = self.user(None);
                let email = format!("person{}@example.org", self.made);
                by_admin(
                    format!("/api/v1/users/{u}/erase"),
                    Some(json!({ "confirm": email })),
                )
            }
            ("post", "/api/v1/users/{id}/enable") => {
                let u = self.account();
                self.admin
                    .post(&format!("/api/v1/users/{u}/disable"), json!({}))
                    .expect(200);
                by_admin(format!("/api/v1/users/{u}/enable"), None)
            }
            ("post", "/api/v1/users/{id}/roles") => {
                let u = self.user(None);
                by_admin(
                    format!("/api/v1/users/{u}/roles"),
                    Some(json!({ "tenant_id": t, "role": "auditor" })),
                )
            }
            ("delete", "/api/v1/users/{id}/roles/{binding_id}") => {
                let u = self.user(Some("operator"));
                let roles = self
                    .admin
                    .get(&format!("/api/v1/users/{u}/roles"))
                    .expect(200);
                let b = roles[0]["id"].as_str().unwrap();
                by_admin(format!("/api/v1/users/{u}/roles/{b}"), None)
            }
            ("post", "/api/v1/devices") => by_admin(
                path.into(),
                Some(json!({ "tenant_id": t, "name": "workstation" })),
            ),
            ("post", "/api/v1/devices/{id}/restore") => {
                let d = self.device("restored-pc");
                let v = self.created(
                    "/api/v1/vaults",
                    json!({ "tenant_id": t, "name": "restore-from", "destination": "local" }),
                );
                by_admin(
                    format!("/api/v1/devices/{d}/restore"),
                    Some(json!({ "vault_id": v, "snapshot": "latest", "target": "/srv/restore" })),
                )
            }
            ("post", "/api/v1/devices/enroll-codes") => by_admin(
                path.into(),
                Some(json!({ "tenant_id": t, "expires_in_minutes": 5 })),
            ),
            ("delete", "/api/v1/devices/{id}") => {
                let d = self.device("old-pc");
                by_admin(format!("/api/v1/devices/{d}"), None)
            }
            ("post", "/api/v1/tokens") => by_admin(
                path.into(),
                Some(json!({
                    "tenant_id": t, "name": "ci", "kind": "api", "permissions": ["backup"],
                })),
            ),
            ("delete", "/api/v1/tokens/{id}") => {
                let k = self.created(
                    "/api/v1/tokens",
                    json!({ "tenant_id": t, "name": "old", "kind": "api", "permissions": ["backup"] }),
                );
                by_admin(format!("/api/v1/tokens/{k}"), None)
            }
            ("post", "/api/v1/vaults") => by_admin(
                path.into(),
                Some(json!({ "tenant_id": t, "name": "documents", "destination": "local" })),
            ),
            ("post", "/api/v1/vaults/{id}/verify") => {
                let v = self.created(
                    "/api/v1/vaults",
                    json!({ "tenant_id": t, "name": "checked", "destination": "local" }),
                );
                by_admin(
                    format!("/api/v1/vaults/{v}/verify"),
                    Some(json!({ "read_data_percent": 0 })),
                )
            }
            ("put", "/api/v1/vaults/{id}/maintainer") => {
                let v = self.created(
                    "/api/v1/vaults",
                    json!({ "tenant_id": t, "name": "maintained", "destination": "local",
                            "key_custody": "customer" }),
                );
                let d = self.device("maintainer-pc");
                by_admin(
                    format!("/api/v1/vaults/{v}/maintainer"),
                    Some(json!({ "device_id": d })),
                )
            }
            ("put", "/api/v1/vaults/{id}/quota") => {
                let v = self.created(
                    "/api/v1/vaults",
                    json!({ "tenant_id": t, "name": "limited", "destination": "local" }),
                );
                by_admin(
                    format!("/api/v1/vaults/{v}/quota"),
                    Some(json!({ "quota_bytes": 1u64 << 30 })),
                )
            }
            ("post", "/api/v1/policies") => by_admin(
                path.into(),
                Some(json!({ "tenant_id": t, "keep": { "daily": 7 } })),
            ),
            ("patch", "/api/v1/policies/{id}") | ("delete", "/api/v1/policies/{id}") => {
                let v = self.created(
                    "/api/v1/vaults",
                    json!({ "tenant_id": t, "name": format!("kept-{method}"), "destination": "local" }),
                );
                let p = self.created(
                    "/api/v1/policies",
                    json!({ "tenant_id": t, "vault_id": v, "keep": { "last": 3 } }),
                );
                let body = (method == "patch").then(|| json!({ "keep": { "last": 5 } }));
                by_admin(format!("/api/v1/policies/{p}"), body)
            }
            ("post", "/api/v1/items")
            | ("patch", "/api/v1/items/{id}")
            | ("post", "/api/v1/items/{id}/run")
            | ("delete", "/api/v1/items/{id}") => {
                let d = self.created(
                    "/api/v1/devices",
                    json!({ "tenant_id": t, "name": format!("pc-{method}-{}", path.len()) }),
                );
                let v = self.created(
                    "/api/v1/vaults",
                    json!({ "tenant_id": t, "name": format!("items-{method}-{}", path.len()), "destination": "local" }),
                );
                let body = json!({
                    "tenant_id": t, "device_id": d, "vault_id": v, "name": "documents",
                    "paths": ["/home/pat/Documents"], "schedule": "mon..fri 22:00",
                });
                if (method, path) == ("post", "/api/v1/items") {
                    return by_admin(path.into(), Some(body));
                }
                let i = self.created("/api/v1/items", body);
                match method {
                    "patch" => by_admin(
                        format!("/api/v1/items/{i}"),
                        Some(json!({ "schedule": "daily" })),
                    ),
                    "delete" => by_admin(format!("/api/v1/items/{i}"), None),
                    _ => by_admin(format!("/api/v1/items/{i}/run"), None),
                }
            }
            ("post", "/api/v1/notify/targets")
            | ("patch", "/api/v1/notify/targets/{id}")
            | ("post", "/api/v1/notify/targets/{id}/test")
            | ("delete", "/api/v1/notify/targets/{id}") => {
                let body = json!({
                    "tenant_id": t, "name": format!("alerts-{method}-{}", path.len()),
                    "webhook": { "url": "https://hooks.example.com/loop" },
                });
                if (method, path) == ("post", "/api/v1/notify/targets") {
                    return by_admin(path.into(), Some(body));
                }
                let n = self.created("/api/v1/notify/targets", body);
                match method {
                    "patch" => by_admin(
                        format!("/api/v1/notify/targets/{n}"),
                        Some(json!({ "min_severity": "error" })),
                    ),
                    "delete" => by_admin(format!("/api/v1/notify/targets/{n}"), None),
                    _ => by_admin(format!("/api/v1/notify/targets/{n}/test"), None),
                }
            }
            ("put", "/api/v1/vaults/{id}/retention-lock") => {
                let v = self.created(
                    "/api/v1/vaults",
                    json!({ "tenant_id": t, "name": "locked", "destination": "local" }),
                );
                by_admin(
                    format!("/api/v1/vaults/{v}/retention-lock"),
                    Some(json!({ "days": 30 })),
                )
            }
            ("post", "/api/v1/vaults/{id}/replicas") => {
                let v = self.created(
                    "/api/v1/vaults",
                    json!({ "tenant_id": t, "name": "replicated", "destination": "local" }),
                );
                by_admin(
                    format!("/api/v1/vaults/{v}/replicas"),
                    Some(json!({ "destination": "spare" })),
                )
            }
            ("post", "/api/v1/vaults/{id}/replication") => by_admin(
                format!("/api/v1/vaults/{}/replication", self.replicated()),
                None,
            ),
            ("post", "/api/v1/vaults/{id}/replicas/{replica}/verify") => {
                let (v, r) = self.replica();
                by_admin(
                    format!("/api/v1/vaults/{v}/replicas/{r}/verify"),
                    Some(json!({ "read_data": false })),
                )
            }
            ("post", "/api/v1/vaults/{id}/replicas/{replica}/promote") => {
                // Only a replica that completed a replication is promoted.
                let (v, r) = self.replica();
                let job = self
                    .admin
                    .post(&format!("/api/v1/vaults/{v}/replication"), json!({}))
                    .expect(202);
                let ended = self.admin.job_ended(job["id"].as_str().unwrap());
                assert_eq!(ended["state"], "succeeded", "{ended}");
                by_admin(format!("/api/v1/vaults/{v}/replicas/{r}/promote"), None)
            }
            ("delete", "/api/v1/vaults/{id}/replicas/{replica}") => {
                let (v, r) = self.replica();
                by_admin(format!("/api/v1/vaults/{v}/replicas/{r}"), None)
            }
            ("post", "/api/v1/plans")
            | ("delete", "/api/v1/plans/{id}")
            | ("put", "/api/v1/tenants/{id}/subscription")
            | ("post", "/api/v1/tenants/{id}/subscription/end")
            | ("post", "/api/v1/invoices/{id}/payment")
            | ("post", "/api/v1/tenants/{id}/subscription/payment-method")
            | ("post", "/api/v1/signup" | "/api/v1/signup/confirm") => {
                let (path, body) = self.billing_request(method, path);
                by_admin(path, body)
            }
            ("post", "/api/v1/privacy/policies" | "/api/v1/me/policy-acknowledgement")
            | ("put", "/api/v1/me/marketing-consent" | "/api/v1/users/{id}/restriction")
            | ("post", "/api/v1/announcements" | "/api/v1/subject-requests")
            | ("post", "/api/v1/subject-requests/{id}/close" | "/api/v1/subprocessors")
            | ("delete", "/api/v1/subprocessors/{id}")
            | ("post", "/api/v1/me/data-export" | "/api/v1/users/{id}/data-export") => {
                self.privacy_request(method, path)
            }
            ("post", "/api/v1/remotes") => {
                // The server itself, through a replication token of its own.
                self.made += 1;
                let (remote, _) = self
                    .server
                    .self_remote(&self.admin, &t, &self.made.to_string());
                let first = self.admin.get("/api/v1/remotes").expect(200);
                let shown = first
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["id"] == remote.as_str())
                    .unwrap()
                    .clone();
                self.admin
                    .delete(&format!("/api/v1/remotes/{remote}"))
                    .expect(204);
                let token = self
                    .admin
                    .post(
                        "/api/v1/tokens",
                        json!({
                            "tenant_id": t, "name": "replicate-walk", "kind": "api",
                            "permissions": ["replicate"],
                        }),
                    )
                    .expect(201);
                by_admin(
                    path.into(),
                    Some(json!({
                        "tenant_id": t, "name": shown["name"], "url": shown["url"],
                        "fingerprint": shown["fingerprint"], "token": token["secret"],
                    })),
                )
            }
            ("delete", "/api/v1/remotes/{id}") => {
                self.made += 1;
                let (remote, _) = self
                    .server
                    .self_remote(&self.admin, &t, &self.made.to_string());
                by_admin(format!("/api/v1/remotes/{remote}"), None)
            }
            ("post", "/api/v1/sync-jobs") => {
                self.made += 1;
                let (remote, mirror) =
                    self.server
                        .self_remote(&self.admin, &t, &self.made.to_string());
                let body = json!({
                    "remote_id": remote, "direction": "push", "vault_id": self.replicated(),
                    "remote_vault_id": mirror,
                });
                by_admin(path.into(), Some(body))
            }
            ("post", "/api/v1/sync-jobs/{id}/run") | ("delete", "/api/v1/sync-jobs/{id}") => {
                self.made += 1;
                let v = self.replicated();
                let (_, job) = self
                    .server
                    .sync_job(&self.admin, &t, &v, &self.made.to_string());
                let path = if method == "post" {
                    format!("/api/v1/sync-jobs/{job}/run")
                } else {
                    format!("/api/v1/sync-jobs/{job}")
                };
                by_admin(path, (method == "post").then(|| json!({})))
            }
            ("post", "/api/v1/vaults/{id}/retention") => {
                let v = self.created(
                    "/api/v1/vaults",
                    json!({ "tenant_id": t, "name": "pruned", "destination": "local" }),
                );
                by_admin(
                    format!("/api/v1/vaults/{v}/retention"),
                    Some(json!({ "dry_run": true })),
                )
            }
            ("delete", "/api/v1/vaults/{id}") => {
                let v = self.created(
                    "/api/v1/vaults",
                    json!({ "tenant_id": t, "name": "old-vault", "destination": "local" }),
                );
                by_admin(format!("/api/v1/vaults/{v}"), None)
            }
            ("delete", "/api/v1/sessions/{id}") => {
                let other = self.server.admin();
                by_admin(format!("/api/v1/sessions/{}", other.session_id), None)
            }
            ("post", "/api/v1/jobs/{id}/cancel") => {
                let job = self.server.plant_job(&t);
                by_admin(format!("/api/v1/jobs/{job}/cancel"), Some(json!({})))
            }
            ("post", "/api/v1/tenants/{id}/erase") => {
                let provider = self.admin.provider_tenant_id();
                let leaving = self.created(
                    "/api/v1/tenants",
                    json!({ "parent_id": provider, "kind": "customer", "name": "Leaving" }),
                );
                by_admin(
                    format!("/api/v1/tenants/{leaving}/erase"),
                    Some(json!({ "confirm": "Leaving" })),
                )
            }
            _ => panic!("{method} {path}: no valid request known; add it to prepare()"),
        }
    }
}
