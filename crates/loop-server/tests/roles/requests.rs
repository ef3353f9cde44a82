//! The requests the walk sends: one valid request per documented route, aimed at a target
//! tenant, or concerning only the caller.

use serde_json::{Value, json};

use super::support::USER_PASSWORD;
use super::{Actor, Target, Walk};

impl Walk<'_> {
    /// The request the walk sends to `method path` aimed at `t`: (path, body). Objects a
    /// request consumes are made fresh for it.
    pub(super) fn aimed(
        &mut self,
        method: &str,
        path: &str,
        t: &Target,
    ) -> (String, Option<Value>) {
        let tid = t.id.clone();
        // A key rotation the walk started holds back new managed vaults until it ends.
        self.rotated(&tid);
        let filtered = |p: &str| (format!("{p}?tenant_id={tid}"), None);
        match (method, path) {
            ("get", "/api/v1/tenants") => (path.into(), None),
            ("get", "/api/v1/tenants/{id}") => (format!("/api/v1/tenants/{tid}"), None),
            ("patch", "/api/v1/tenants/{id}") => (
                format!("/api/v1/tenants/{tid}"),
                Some(json!({ "time_zone": "Europe/Amsterdam" })),
            ),
            ("post", "/api/v1/tenants") => (
                path.into(),
                Some(json!({ "parent_id": tid, "kind": "customer", "name": "Child" })),
            ),
            ("post", "/api/v1/tenants/{id}/key-rotation") => {
                (format!("/api/v1/tenants/{tid}/key-rotation"), None)
            }
            ("get", "/api/v1/tenants/{id}/residency") => {
                (format!("/api/v1/tenants/{tid}/residency"), None)
            }
            // Setting nothing where nothing is set: allowed from inside and from above.
            ("put", "/api/v1/tenants/{id}/residency") => (
                format!("/api/v1/tenants/{tid}/residency"),
                Some(json!({ "allowed": null })),
            ),
            ("get" | "delete", "/api/v1/tenants/{id}/branding") => {
                (format!("/api/v1/tenants/{tid}/branding"), None)
            }
            ("put", "/api/v1/tenants/{id}/branding") => (
                format!("/api/v1/tenants/{tid}/branding"),
                Some(json!({ "product_name": "Their Backup", "accent": "#123456" })),
            ),
            ("get", "/api/v1/tenants/{id}/residency/report") => {
                (format!("/api/v1/tenants/{tid}/residency/report"), None)
            }
            ("post", "/api/v1/tenants/{id}/erase") => (
                format!("/api/v1/tenants/{tid}/erase"),
                Some(json!({ "confirm": t.name })),
            ),
            ("get", "/api/v1/users" | "/api/v1/devices" | "/api/v1/tokens" | "/api/v1/vaults")
            | ("get", "/api/v1/sessions" | "/api/v1/audit" | "/api/v1/audit/export")
            | ("get", "/api/v1/audit/heads" | "/api/v1/jobs" | "/api/v1/policies")
            | ("get", "/api/v1/items" | "/api/v1/notify/targets" | "/api/v1/events")
            | ("get", "/api/v1/notify/deliveries" | "/api/v1/remotes" | "/api/v1/sync-jobs")
            | ("get", "/api/v1/plans") => filtered(path),
            ("post", "/api/v1/plans") => {
                self.made += 1;
                let name = format!("plan {}", self.made);
                let body = json!({ "issuer_id": tid, "name": name, "price_cents": 100,
                                   "currency": "EUR" });
                (path.into(), Some(body))
            }
            ("delete", "/api/v1/plans/{id}") => {
                (format!("/api/v1/plans/{}", self.plan(&t.partner)), None)
            }
            ("get", "/api/v1/tenants/{id}/erasure-certificate") => {
                self.server.plant_certificate(&tid);
                (path.replace("{id}", &tid), None)
            }
            ("get", "/api/v1/tenants/{id}/subscription" | "/api/v1/tenants/{id}/invoices") => {
                (path.replace("{id}", &tid), None)
            }
            ("put", "/api/v1/tenants/{id}/subscription") => (
                format!("/api/v1/tenants/{tid}/subscription"),
                Some(json!({ "plan_id": t.plan })),
            ),
            // During the trial: it ends when the trial would have, so the walk goes on.
            ("post", "/api/v1/tenants/{id}/subscription/end") => (
                format!("/api/v1/tenants/{tid}/subscription/end"),
                Some(json!({ "confirm": t.name })),
            ),
            ("get", "/api/v1/invoices/{id}") => {
                (format!("/api/v1/invoices/{}", self.invoice(t)), None)
            }
            ("post", "/api/v1/invoices/{id}/payment") => (
                format!("/api/v1/invoices/{}/payment", self.invoice(t)),
                Some(json!({ "reference": "transfer" })),
            ),
            ("post", "/api/v1/tenants/{id}/subscription/payment-method") => {
                // Cards are for card collection: the walk's customers pay by invoice.
                self.root
                    .put(
                        &format!("/api/v1/tenants/{tid}/subscription"),
                        json!({ "plan_id": t.plan, "collection": "card" }),
                    )
                    .expect(200);
                (path.replace("{id}", &tid), None)
            }
            ("get", "/api/v1/tenants/{id}/charges") => (path.replace("{id}", &tid), None),
            ("post", "/api/v1/remotes") => {
                self.made += 1;
                let token = self
                    .root
                    .post(
                        "/api/v1/tokens",
                        json!({ "tenant_id": tid, "name": "replicate", "kind": "api",
                                "permissions": ["replicate"] }),
                    )
                    .expect(201);
                (
                    path.into(),
                    Some(json!({
                        "tenant_id": tid, "name": format!("remote-{}", self.made),
                        "url": self.server.base, "fingerprint": self.server.fingerprint,
                        "token": token["secret"],
                    })),
                )
            }
            ("delete", "/api/v1/remotes/{id}") => {
                self.made += 1;
                let tag = self.made.to_string();
                let (remote, _) = self.server.self_remote(&self.root, &tid, &tag);
                (format!("/api/v1/remotes/{remote}"), None)
            }
            ("post", "/api/v1/sync-jobs") => {
                self.made += 1;
                let tag = self.made.to_string();
                let (remote, mirror) = self.server.self_remote(&self.root, &tid, &tag);
                (
                    path.into(),
                    Some(json!({
                        "remote_id": remote, "direction": "push", "vault_id": t.vault,
                        "remote_vault_id": mirror,
                    })),
                )
            }
            ("delete", "/api/v1/sync-jobs/{id}") | ("post", "/api/v1/sync-jobs/{id}/run") => {
                self.made += 1;
                let tag = self.made.to_string();
                let (_, job) = self.server.sync_job(&self.root, &tid, &t.vault, &tag);
                if method == "post" {
                    (format!("/api/v1/sync-jobs/{job}/run"), None)
                } else {
                    (format!("/api/v1/sync-jobs/{job}"), None)
                }
            }
            ("post", "/api/v1/notify/targets") => (
                path.into(),
                Some(json!({ "tenant_id": tid, "name": "hook",
                             "webhook": { "url": "https://hooks.example.com/loop" } })),
            ),
            ("get", "/api/v1/notify/targets/{id}") => {
                (format!("/api/v1/notify/targets/{}", t.notify_target), None)
            }
            ("patch", "/api/v1/notify/targets/{id}") => (
                format!("/api/v1/notify/targets/{}", t.notify_target),
                Some(json!({ "min_severity": "info" })),
            ),
            ("post", "/api/v1/notify/targets/{id}/test") => (
                format!("/api/v1/notify/targets/{}/test", t.notify_target),
                None,
            ),
            ("delete", "/api/v1/notify/targets/{id}") => (
                format!("/api/v1/notify/targets/{}", self.notify_target(&tid)),
                None,
            ),
            ("get", "/api/v1/jobs/{id}") => (format!("/api/v1/jobs/{}", t.job), None),
            ("get", "/api/v1/jobs/{id}/log") => (format!("/api/v1/jobs/{}/log", t.job), None),
            ("post", "/api/v1/jobs/{id}/cancel") => {
                (format!("/api/v1/jobs/{}/cancel", t.job), Some(json!({})))
            }
            ("post", "/api/v1/users") => {
                let email = self.email("new");
                (
                    path.into(),
                    Some(json!({
                        "tenant_id": tid, "email": email, "first_name": "New",
                        "last_name": "Person", "role": "operator",
                    })),
                )
            }
            ("get", "/api/v1/users/{id}") => (format!("/api/v1/users/{}", t.resident_user), None),
            ("get", "/api/v1/users/{id}/roles") => {
                (format!("/api/v1/users/{}/roles", t.resident_user), None)
            }
            ("patch", "/api/v1/users/{id}") => (
                format!("/api/v1/users/{}", t.resident_user),
                Some(json!({ "last_name": "Renamed" })),
            ),
            ("post", "/api/v1/users/{id}/disable") => {
                let (u, _) = self.user(&tid, None, Some(USER_PASSWORD));
                (format!("/api/v1/users/{u}/disable"), Some(json!({})))
            }
            ("post", "/api/v1/users/{id}/erase") => {
                let (u, email) = self.user(&tid, None, None);
                (
                    format!("/api/v1/users/{u}/erase"),
                    Some(json!({ "confirm": email })),
                )
            }
            ("post", "/api/v1/users/{id}/enable") => {
                let (u, _) = self.user(&tid, None, Some(USER_PASSWORD));
                self.root
                    .post(&format!("/api/v1/users/{u}/disable"), json!({}))
                    .expect(200);
                (format!("/api/v1/users/{u}/enable"), Some(json!({})))
            }
            ("post", "/api/v1/users/{id}/roles") => {
                let (u, _) = self.user(&tid, None, None);
                (
                    format!("/api/v1/users/{u}/roles"),
                    Some(json!({ "tenant_id": tid, "role": "auditor" })),
                )
            }
            ("delete", "/api/v1/users/{id}/roles/{binding_id}") => {
                let (u, _) = self.user(&tid, Some("operator"), None);
                let roles = self
                    .root
                    .get(&format!("/api/v1/users/{u}/roles"))
                    .expect(200);
                let b = roles[0]["id"].as_str().unwrap();
                (format!("/api/v1/users/{u}/roles/{b}"), None)
            }
            ("post", "/api/v1/devices") => (
                path.into(),
                Some(json!({ "tenant_id": tid, "name": "new-pc" })),
            ),
            ("post", "/api/v1/devices/{id}/restore") => (
                format!("/api/v1/devices/{}/restore", self.device(&tid)),
                Some(
                    json!({ "vault_id": t.vault, "snapshot": "latest", "target": "/srv/restore" }),
                ),
            ),
            ("post", "/api/v1/devices/enroll-codes") => (
                path.into(),
                Some(json!({ "tenant_id": tid, "expires_in_minutes": 30 })),
            ),
            ("delete", "/api/v1/devices/{id}") => {
                (format!("/api/v1/devices/{}", self.device(&tid)), None)
            }
            ("post", "/api/v1/tokens") => (
                path.into(),
                Some(json!({
                    "tenant_id": tid, "name": "new", "kind": "api", "permissions": ["backup"],
                })),
            ),
            ("delete", "/api/v1/tokens/{id}") => {
                (format!("/api/v1/tokens/{}", self.token(&tid)), None)
            }
            ("post", "/api/v1/vaults") => (
                path.into(),
                Some(json!({ "tenant_id": tid, "name": "new", "destination": "local" })),
            ),
            ("get", "/api/v1/vaults/{id}") => (format!("/api/v1/vaults/{}", t.vault), None),
            ("get", "/api/v1/vaults/{id}/locations") => {
                (format!("/api/v1/vaults/{}/locations", t.vault), None)
            }
            ("get", "/api/v1/vaults/{id}/snapshots") => {
                (format!("/api/v1/vaults/{}/snapshots", t.vault), None)
            }
            ("post", "/api/v1/vaults/{id}/verify") => (
                format!("/api/v1/vaults/{}/verify", t.vault),
                Some(json!({ "read_data_percent": 0 })),
            ),
            ("delete", "/api/v1/vaults/{id}") => {
                (format!("/api/v1/vaults/{}", self.vault(&tid)), None)
            }
            ("get", "/api/v1/vaults/{id}/policy") => {
                (format!("/api/v1/vaults/{}/policy", t.vault), None)
            }
            ("put", "/api/v1/vaults/{id}/maintainer") => (
                format!(
                    "/api/v1/vaults/{}/maintainer",
                    self.customer_key_vault(&tid)
                ),
                Some(json!({ "device_id": self.device(&tid) })),
            ),
            ("put", "/api/v1/vaults/{id}/quota") => (
                format!("/api/v1/vaults/{}/quota", self.vault(&tid)),
                Some(json!({ "quota_bytes": 1u64 << 40 })),
            ),
            ("put", "/api/v1/vaults/{id}/retention-lock") => (
                format!("/api/v1/vaults/{}/retention-lock", self.vault(&tid)),
                Some(json!({ "days": 1 })),
            ),
            ("get", "/api/v1/vaults/{id}/replicas") => {
                (format!("/api/v1/vaults/{}/replicas", t.vault), None)
            }
            ("post", "/api/v1/vaults/{id}/replicas") => (
                format!("/api/v1/vaults/{}/replicas", self.vault(&tid)),
                Some(json!({ "destination": "spare" })),
            ),
            ("post", "/api/v1/vaults/{id}/replication") => {
                (format!("/api/v1/vaults/{}/replication", t.vault), None)
            }
            ("post", "/api/v1/vaults/{id}/replicas/{replica}/verify") => {
                let (v, r) = self.replicated(&tid);
                (
                    format!("/api/v1/vaults/{v}/replicas/{r}/verify"),
                    Some(json!({ "read_data": false })),
                )
            }
            ("post", "/api/v1/vaults/{id}/replicas/{replica}/promote") => {
                let (v, r) = self.replicated(&tid);
                (format!("/api/v1/vaults/{v}/replicas/{r}/promote"), None)
            }
            ("delete", "/api/v1/vaults/{id}/replicas/{replica}") => {
                let (v, r) = self.replicated(&tid);
                (format!("/api/v1/vaults/{v}/replicas/{r}"), None)
            }
            ("post", "/api/v1/vaults/{id}/retention") => (
                format!("/api/v1/vaults/{}/retention", t.vault),
                Some(json!({ "dry_run": true })),
            ),
            ("post", "/api/v1/policies") => (
                path.into(),
                Some(json!({ "tenant_id": tid, "vault_id": self.vault(&tid),
                             "keep": { "daily": 7 } })),
            ),
            ("get", "/api/v1/policies/{id}") => (format!("/api/v1/policies/{}", t.policy), None),
            ("post", "/api/v1/items") => (path.into(), Some(self.item_body(&tid, &t.vault))),
            ("get", "/api/v1/items/{id}") => (format!("/api/v1/items/{}", t.item), None),
            ("patch", "/api/v1/items/{id}") => (
                format!("/api/v1/items/{}", t.item),
                Some(json!({ "schedule": "mon..fri 22:00" })),
            ),
            ("delete", "/api/v1/items/{id}") => {
                (format!("/api/v1/items/{}", self.item(&tid, &t.vault)), None)
            }
            ("post", "/api/v1/items/{id}/run") => {
                (format!("/api/v1/items/{}/run", t.item), Some(json!({})))
            }
            ("patch", "/api/v1/policies/{id}") => (
                format!("/api/v1/policies/{}", t.policy),
                Some(json!({ "keep": { "last": 4 } })),
            ),
            ("delete", "/api/v1/policies/{id}") => {
                (format!("/api/v1/policies/{}", self.policy(&tid).1), None)
            }
            ("delete", "/api/v1/sessions/{id}") => {
                let other = self.server.sign_in(&t.bystander_email, USER_PASSWORD);
                (format!("/api/v1/sessions/{}", other.session_id), None)
            }
            ("put", "/api/v1/users/{id}/restriction") => (
                format!("/api/v1/users/{}/restriction", t.resident_user),
                Some(json!({ "restricted": true })),
            ),
            // The whole service's, whichever tenant the walk aims at.
            ("post", "/api/v1/privacy/policies") => {
                self.made += 1;
                let version = format!("walk-{}", self.made);
                let body = json!({ "version": version, "url": "https://provider.example/p" });
                (path.into(), Some(body))
            }
            ("get", "/api/v1/subject-requests") => filtered(path),
            ("post", "/api/v1/subject-requests") => (
                path.into(),
                Some(json!({ "user_id": t.resident_user, "kind": "access" })),
            ),
            ("get", "/api/v1/subject-requests/{id}") => (
                format!("/api/v1/subject-requests/{}", self.subject_request(t)),
                None,
            ),
            ("post", "/api/v1/subject-requests/{id}/close") => (
                format!("/api/v1/subject-requests/{}/close", self.subject_request(t)),
                Some(json!({ "outcome": "done", "action": "Answered." })),
            ),
            ("get", "/api/v1/tenants/{id}/privacy-report") => {
                (format!("/api/v1/tenants/{tid}/privacy-report"), None)
            }
            ("post", "/api/v1/users/{id}/data-export") => (
                format!("/api/v1/users/{}/data-export", t.resident_user),
                None,
            ),
            ("get", "/api/v1/data-exports/{id}") => {
                (format!("/api/v1/data-exports/{}", self.export(t)), None)
            }
            ("get", "/api/v1/data-exports/{id}/archive") => (
                format!("/api/v1/data-exports/{}/archive", self.export(t)),
                None,
            ),
            ("post", "/api/v1/subprocessors") => {
                self.made += 1;
                let body = json!({ "name": format!("Processor {}", self.made),
                                   "purpose": "hosting", "location": "EU" });
                (path.into(), Some(body))
            }
            ("delete", "/api/v1/subprocessors/{id}") => {
                self.made += 1;
                let s = self
                    .root
                    .post(
                        "/api/v1/subprocessors",
                        json!({ "name": format!("Processor {}", self.made),
                                "purpose": "mail", "location": "EU" }),
                    )
                    .expect(201);
                (
                    format!("/api/v1/subprocessors/{}", s["id"].as_str().unwrap()),
                    None,
                )
            }
            ("post", "/api/v1/announcements") => (
                path.into(),
                Some(json!({ "subject": "News", "text": "Faster restores." })),
            ),
            _ => panic!("{method} {path}: the walk knows no request aimed at a tenant; add one"),
        }
    }

    /// The request the walk sends to a route that concerns only the caller: (bearer, path,
    /// body). Changes the actor (password, TOTP) as the walk goes.
    pub(super) fn own(
        &mut self,
        method: &str,
        path: &str,
        a: &mut Actor<'_>,
    ) -> (String, Option<Value>) {
        let body = match (method, path) {
            ("post", "/api/v1/auth/login") => {
                Some(json!({ "email": a.email, "password": a.password }))
            }
            ("post", "/api/v1/auth/accept-invite") => {
                let email = self.email("invitee");
                let provider = self.root.provider_tenant_id();
                let r = self
                    .root
                    .post(
                        "/api/v1/users",
                        json!({ "tenant_id": provider, "email": email, "first_name": "In",
                                "last_name": "Vitee" }),
                    )
                    .expect(201);
                Some(json!({
                    "invite_token": r["invite_token"], "password": "invitee-password-1",
                }))
            }
            ("post", "/api/v1/auth/confirm-email") => {
                let email = self.email("invitee");
                let provider = self.root.provider_tenant_id();
                let r = self
                    .root
                    .post(
                        "/api/v1/users",
                        json!({ "tenant_id": provider, "email": email, "first_name": "Con",
                                "last_name": "Firm" }),
                    )
                    .expect(201);
                let id = r["user"]["id"].as_str().unwrap();
                let new = self.email("confirmed");
                Some(json!({ "token": self.root.server().plant_email_code(id, &new) }))
            }
            ("post", "/api/v1/auth/password-reset") => Some(json!({ "email": a.email })),
            ("post", "/api/v1/auth/password-reset/confirm") => {
                let provider = self.root.provider_tenant_id();
                let email = self.email("reset");
                let r = self
                    .root
                    .post(
                        "/api/v1/users",
                        json!({ "tenant_id": provider, "email": email,
                                "first_name": "Re", "last_name": "Set",
                                "password": "reset-password-12" }),
                    )
                    .expect(201);
                let id = r["user"]["id"].as_str().unwrap();
                Some(json!({
                    "token": self.root.server().plant_reset_code(id),
                    "password": "reset-password-13",
                }))
            }
            ("get", "/api/v1/signup/plans") => {
                self.root.server().signup_plan(&self.root);
                None
            }
            ("post", "/api/v1/signup") => {
                let plan = self.root.server().signup_plan(&self.root);
                Some(json!({
                    "organisation": "Self Service", "first_name": "Sign", "last_name": "Up",
                    "email": self.email("signup"), "password": "signup-password-1",
                    "plan_id": plan,
                }))
            }
            ("post", "/api/v1/signup/confirm") => {
                let plan = self.root.server().signup_plan(&self.root);
                let email = self.email("signed");
                Some(json!({ "token": self.root.server().plant_signup(&plan, &email) }))
            }
            ("patch", "/api/v1/me") => Some(json!({ "business_address": "Dorpsstraat 1" })),
            ("get", "/api/v1/privacy/policy") => {
                self.privacy_policy();
                None
            }
            ("post", "/api/v1/me/policy-acknowledgement") => {
                Some(json!({ "version": self.privacy_policy() }))
            }
            ("get", "/api/v1/me/marketing-consent" | "/api/v1/subprocessors") => None,
            ("post", "/api/v1/me/data-export") => None,
            ("put", "/api/v1/me/marketing-consent") => Some(json!({ "given": true })),
            ("get", "/api/v1/me" | "/api/v1/destinations") | ("post", "/api/v1/auth/logout") => {
                None
            }
            ("post", "/api/v1/me/password") => {
                let current = std::mem::replace(&mut a.password, "a-new-password-42".into());
                Some(json!({ "current_password": current, "new_password": a.password }))
            }
            ("post", "/api/v1/me/totp") => Some(json!({ "current_password": a.password })),
            ("post", "/api/v1/me/totp/confirm") => {
                let e = a
                    .session
                    .post("/api/v1/me/totp", json!({ "current_password": a.password }))
                    .expect(200);
                Some(json!({ "code": self.server.totp_code(e["secret"].as_str().unwrap()) }))
            }
            _ => panic!("{method} {path}: the walk knows no request for the caller; add one"),
        };
        (path.into(), body)
    }

    /// The version of the privacy policy in force, published by the provider when none is.
    fn privacy_policy(&self) -> String {
        let server = self.root.server();
        let r = server.call("get", "/api/v1/privacy/policy", None, None);
        if r.status == 200 {
            return r.json()["version"].as_str().unwrap().to_string();
        }
        self.root
            .post(
                "/api/v1/privacy/policies",
                json!({ "version": "walk", "url": "https://provider.example/p" }),
            )
            .expect(201)["version"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A fresh data-subject request about `t`'s resident user, recorded by the provider.
    fn subject_request(&self, t: &Target) -> String {
        self.root
            .post(
                "/api/v1/subject-requests",
                json!({ "user_id": t.resident_user, "kind": "access" }),
            )
            .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// An archive of `t`'s resident user's data, ready.
    fn export(&self, t: &Target) -> String {
        self.server.data_export(&self.root, &t.resident_user)
    }
}
