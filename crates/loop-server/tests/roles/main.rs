//! Roles inside a tenant: every documented route, for every role acting inside its own
//! scope, answers `403 forbidden` exactly where the role lacks what the route needs, and
//! succeeds where it has it. A partner-admin acts on its partner's two customers; the admin
//! of a second partner meets the first partner's customers as if they did not exist.
//!
//! The expectations come from two tables written here from the product rules in
//! docs/SECURITY.md ("Who may do what"), not from the server's own table: [`ROUTES`] (what
//! each route needs) and [`holds`] (what each role holds). The route list comes from the
//! server's OpenAPI document, so a route added without an entry in [`ROUTES`] fails the test.

#[path = "../support/mod.rs"]
mod support;

mod requests;
mod routes;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use support::{Caller, Reply, Server, USER_PASSWORD};

use Need::*;
use Rule::*;
use routes::{Need, ROUTES, Rule};

/// What each role holds on its tenant's subtree (docs/SECURITY.md): the three admin roles
/// everything, except that only a provider-admin erases a tenant; an operator reads the
/// directory and manages devices, tokens, vaults and jobs; an auditor reads everything, the
/// audit log, sessions and jobs included, and changes nothing; billing reads tenants and
/// the subscription and ends it. Plans are sold from above the customer: by its partner's
/// and the provider's admins.
fn holds(role: &str, need: Need) -> bool {
    match role {
        "provider-admin" => true,
        "partner-admin" => need != EraseTenants,
        "admin" => need != EraseTenants && need != SellPlans,
        "operator" => matches!(
            need,
            ReadTenants
                | ReadUsers
                | ReadDevices
                | ChangeDevices
                | ReadTokens
                | ChangeTokens
                | ReadVaults
                | ChangeVaults
                | ReadJobs
                | RunJobs
                | ReadNotifications
                | ChangeNotifications
        ),
        "auditor" => matches!(
            need,
            ReadTenants
                | ReadUsers
                | ReadDevices
                | ReadTokens
                | ReadVaults
                | ReadSessions
                | ReadAudit
                | ReadJobs
                | ReadNotifications
                | ReadBilling
        ),
        "billing" => matches!(need, ReadTenants | ReadBilling | ChangeBilling),
        other => panic!("no such role in the product: {other}"),
    }
}

/// What the answer must be.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Success,
    Forbidden,
    NotFound,
    /// A 200 listing that shows the target tenant, or does not.
    Listed(bool),
}

fn expect(rule: Rule, role: &str, in_scope: bool) -> Expect {
    match rule {
        Public | SignedIn | Signed | Link => Expect::Success,
        Provider(need) if role == "provider-admin" && holds(role, need) => Expect::Success,
        Provider(_) => Expect::Forbidden,
        Lists(need) => Expect::Listed(in_scope && holds(role, need)),
        Needs(_) if !in_scope => Expect::NotFound,
        Needs(needs) if needs.iter().all(|n| holds(role, *n)) => Expect::Success,
        Needs(_) => Expect::Forbidden,
    }
}

/// A tenant the walk acts on, with objects that stay for the whole walk (and a device and
/// a token, so its listings are not empty).
struct Target {
    id: String,
    name: String,
    resident_user: String,
    /// Has a password: each request that ends another user's session signs them in anew.
    bystander_email: String,
    vault: String,
    /// Its partner, and the partner's plan it subscribes to.
    partner: String,
    plan: String,
    /// The retention policy attached to `vault`.
    policy: String,
    /// A protected item of a device of the tenant, into `vault`.
    item: String,
    /// The erasure job of a vault deleted at the start.
    job: String,
    /// A notification target of the tenant.
    notify_target: String,
}

/// Someone whose role the walk tries.
struct Actor<'a> {
    role: &'static str,
    email: String,
    password: String,
    session: Caller<'a>,
}

struct Walk<'a> {
    server: &'a Server,
    root: Caller<'a>,
    made: u32,
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

impl<'a> Walk<'a> {
    fn tenant(&self, parent: &str, kind: &str, name: &str) -> String {
        id(&self
            .root
            .post(
                "/api/v1/tenants",
                json!({ "parent_id": parent, "kind": kind, "name": name }),
            )
            .expect(201))
    }

    /// A new plan sold by `issuer`.
    fn plan(&mut self, issuer: &str) -> String {
        self.made += 1;
        id(&self
            .root
            .post(
                "/api/v1/plans",
                json!({ "issuer_id": issuer, "name": format!("plan {}", self.made),
                        "price_cents": 500, "currency": "EUR" }),
            )
            .expect(201))
    }

    /// A new open invoice of customer `t`, issued by its partner.
    fn invoice(&mut self, t: &Target) -> String {
        self.server.plant_invoice(&t.partner, &t.id, &t.plan)
    }

    fn email(&mut self, what: &str) -> String {
        self.made += 1;
        format!("{what}{}@roles.example", self.made)
    }

    /// A user of `tenant` made by the provider's first admin: with a password when given
    /// (else invited), with a role when given. Returns (user ID, e-mail).
    fn user(
        &mut self,
        tenant: &str,
        role: Option<&str>,
        password: Option<&str>,
    ) -> (String, String) {
        let email = self.email(role.unwrap_or("person"));
        let r = self
            .root
            .post(
                "/api/v1/users",
                json!({
                    "tenant_id": tenant, "email": email, "first_name": "Pat",
                    "last_name": "Doe", "role": role, "password": password,
                }),
            )
            .expect(201);
        (id(&r["user"]), email)
    }

    fn actor(&mut self, tenant: &str, role: &'static str) -> Actor<'a> {
        let (_, email) = self.user(tenant, Some(role), Some(USER_PASSWORD));
        Actor {
            role,
            session: self.server.sign_in(&email, USER_PASSWORD),
            email,
            password: USER_PASSWORD.into(),
        }
    }

    fn created(&self, path: &str, body: Value) -> String {
        let r = self.root.post(path, body).expect(201);
        id(r.get("token").or(r.get("target")).unwrap_or(&r))
    }

    /// Waits until no `tenant-key-rotation` job of `t` is open.
    fn rotated(&self, t: &str) {
        for state in ["queued", "running"] {
            let path = format!("/api/v1/jobs?tenant_id={t}&kind=tenant-key-rotation&state={state}");
            for _ in 0..600 {
                let open = self.root.get(&path).expect(200);
                if open.as_array().unwrap().is_empty() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }

    fn device(&self, t: &str) -> String {
        self.created("/api/v1/devices", json!({ "tenant_id": t, "name": "pc" }))
    }

    fn token(&self, t: &str) -> String {
        self.created(
            "/api/v1/tokens",
            json!({ "tenant_id": t, "name": "ci", "kind": "api", "permissions": ["restore"] }),
        )
    }

    fn vault(&self, t: &str) -> String {
        self.created(
            "/api/v1/vaults",
            json!({ "tenant_id": t, "name": "files", "destination": "local" }),
        )
    }

    /// A fresh vault of `t` replicated to the spare destination: (vault, replica).
    fn replicated(&self, t: &str) -> (String, String) {
        let vault = self.vault(t);
        let replica = self.created(
            &format!("/api/v1/vaults/{vault}/replicas"),
            json!({ "destination": "spare" }),
        );
        (vault, replica)
    }

    /// A fresh customer-key vault of `t`.
    fn customer_key_vault(&self, t: &str) -> String {
        self.created(
            "/api/v1/vaults",
            json!({ "tenant_id": t, "name": "secret", "destination": "local",
                    "key_custody": "customer" }),
        )
    }

    /// A fresh vault of `t` with a retention policy of its own: (vault, policy).
    fn policy(&self, t: &str) -> (String, String) {
        let vault = self.vault(t);
        let policy = self.created(
            "/api/v1/policies",
            json!({ "tenant_id": t, "vault_id": vault, "keep": { "last": 3 } }),
        );
        (vault, policy)
    }

    /// A fresh protected item of a fresh device of `t`, into `vault`.
    fn item(&self, t: &str, vault: &str) -> String {
        let body = self.item_body(t, vault);
        self.created("/api/v1/items", body)
    }

    /// A fresh e-mail notification target of `t`.
    fn notify_target(&self, t: &str) -> String {
        self.created(
            "/api/v1/notify/targets",
            json!({ "tenant_id": t, "name": "alerts",
                    "email": { "recipients": ["alerts@roles.example"] } }),
        )
    }

    fn item_body(&self, t: &str, vault: &str) -> Value {
        json!({
            "tenant_id": t, "device_id": self.device(t), "vault_id": vault, "name": "home",
            "paths": ["/home"], "schedule": "daily",
        })
    }

    fn target(&mut self, parent: &str, name: &str) -> Target {
        let id = self.tenant(parent, "customer", name);
        let (resident_user, _) = self.user(&id, None, None);
        let (_, bystander_email) = self.user(&id, None, Some(USER_PASSWORD));
        // Listings have something to show.
        self.device(&id);
        self.token(&id);
        let deleted = self.vault(&id);
        let job = self
            .root
            .delete(&format!("/api/v1/vaults/{deleted}"))
            .expect(202);
        let (vault, policy) = self.policy(&id);
        let item = self.item(&id, &vault);
        let notify_target = self.notify_target(&id);
        let plan = self.plan(parent);
        self.root
            .put(
                &format!("/api/v1/tenants/{id}/subscription"),
                json!({ "plan_id": plan, "collection": "invoice" }),
            )
            .expect(200);
        Target {
            partner: parent.into(),
            plan,
            notify_target,
            item,
            resident_user,
            bystander_email,
            job: job["id"].as_str().unwrap().to_string(),
            vault,
            policy,
            name: name.into(),
            id,
        }
    }
}

/// Compares an answer with the expectation; a description of the difference, if any.
fn mismatch(method: &str, path: &str, want: &Expect, r: &Reply, target: &str) -> Option<String> {
    let ok = match want {
        // A customer has no child tenants: a caller who may create tenants passes the role
        // check and meets the tree's rule instead.
        Expect::Success if (method, path) == ("post", "/api/v1/tenants") => {
            r.status == 400 && r.body.contains("cannot have a customer child")
        }
        // The tenant's one job is a vault erasure, which nobody may cancel: a caller who may
        // cancel jobs passes the role check and meets that rule instead.
        Expect::Success if (method, path) == ("post", "/api/v1/jobs/{id}/cancel") => {
            (r.status, r.code().as_str()) == (409, "not_cancellable")
        }
        // A fresh replica may not have completed its first replication yet: a caller who may
        // promote passes the role check and may meet the replica's state instead.
        Expect::Success
            if (method, path) == ("post", "/api/v1/vaults/{id}/replicas/{replica}/promote") =>
        {
            (200..300).contains(&r.status)
                || (r.status, r.code().as_str()) == (409, "replica_not_ready")
        }
        // A customer takes its partner's branding: a caller who may change the tenant passes
        // the role check and meets that rule instead.
        Expect::Success if (method, path) == ("put", "/api/v1/tenants/{id}/branding") => {
            r.status == 400 && r.body.contains("not a customer")
        }
        // A customer sells no plans: a caller who may sell passes the role check and meets
        // that rule instead.
        Expect::Success if (method, path) == ("post", "/api/v1/plans") => {
            r.status == 400 && r.body.contains("sold by a provider or a partner")
        }
        // The plans a customer's users may not sell are their partner's, whose objects they
        // do not see: not found rather than forbidden.
        Expect::Forbidden
            if matches!(
                (method, path),
                ("delete", "/api/v1/plans/{id}") | ("put", "/api/v1/tenants/{id}/subscription")
            ) =>
        {
            (r.status, r.code().as_str()) == (404, "not_found")
                || (r.status, r.code().as_str()) == (403, "forbidden")
        }
        Expect::Success => (200..300).contains(&r.status),
        Expect::Forbidden => (r.status, r.code().as_str()) == (403, "forbidden"),
        Expect::NotFound => (r.status, r.code().as_str()) == (404, "not_found"),
        Expect::Listed(shown) => r.status == 200 && r.body.contains(target) == *shown,
    };
    (!ok).then(|| format!("expected {want:?}, got {} {}", r.status, r.body))
}

fn documented(server: &Server) -> BTreeSet<(String, String)> {
    let doc = server.openapi();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "put", "post", "delete", "patch", "head"].contains(&method.as_str()) {
                out.insert((method.clone(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn every_role_can_do_exactly_what_the_product_rules_give_it_inside_its_own_scope() {
    // Announcements need the address people reach the server at.
    let server = Server::start_with(|c| {
        support::with_spare(c);
        c.public_url = Some("https://backup.provider.example".into());
    });
    let tabled: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let documented = documented(&server);
    let missing: Vec<_> = documented.difference(&tabled).collect();
    let stale: Vec<_> = tabled.difference(&documented).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "ROUTES must say what every documented route needs; missing: {missing:?}, \
         not documented: {stale:?}"
    );

    let mut walk = Walk {
        server: &server,
        root: server.admin(),
        made: 0,
    };
    let provider = walk.root.provider_tenant_id();
    let partner = walk.tenant(&provider, "partner", "Partner One");
    let other_partner = walk.tenant(&provider, "partner", "Partner Two");
    walk.tenant(&other_partner, "customer", "Partner Two's Customer");
    let first = walk.target(&partner, "Customer One");
    let second = walk.target(&partner, "Customer Two");

    // (actor, the tenants it acts on, whether they are in its scope). The provider-admin
    // goes last: it is the one that may erase, and erasing ends the customer.
    let mut cast: Vec<(Actor, Vec<&Target>, bool)> = Vec::new();
    for role in ["admin", "operator", "auditor", "billing"] {
        cast.push((walk.actor(&first.id, role), vec![&first], true));
    }
    cast.push((
        walk.actor(&partner, "partner-admin"),
        vec![&second, &first],
        true,
    ));
    cast.push((
        walk.actor(&other_partner, "partner-admin"),
        vec![&first],
        false,
    ));
    cast.push((walk.actor(&provider, "provider-admin"), vec![&first], true));

    let mut wrong = Vec::new();
    let mut tried = 0;
    for (actor, targets, in_scope) in &mut cast {
        let who = if *in_scope {
            actor.role.to_string()
        } else {
            format!("{} of another partner", actor.role)
        };
        for t in targets.iter() {
            for (method, path, rule) in ROUTES {
                if matches!(rule, Public | SignedIn | Signed | Link) {
                    continue;
                }
                let (p, body) = walk.aimed(method, path, t);
                let r = server.call(method, &p, Some(&actor.session.secret), body.as_ref());
                tried += 1;
                let want = expect(*rule, actor.role, *in_scope);
                if let Some(m) = mismatch(method, path, &want, &r, &t.id) {
                    wrong.push(format!("{who} on {}: {method} {p}: {m}", t.name));
                }
            }
        }
        for (method, path, rule) in ROUTES {
            if !matches!(rule, Public | SignedIn) {
                continue;
            }
            let (p, body) = walk.own(method, path, actor);
            let r = server.call(method, &p, Some(&actor.session.secret), body.as_ref());
            tried += 1;
            if let Some(m) = mismatch(method, path, &Expect::Success, &r, "") {
                wrong.push(format!("{who}: {method} {p}: {m}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {tried} answers differ from the product rules:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // The control for the one erasure the walk expected to succeed: it did erase.
    let t = walk
        .root
        .get(&format!("/api/v1/tenants/{}", first.id))
        .expect(200);
    assert_eq!(t["status"], "erased");
    let t = walk
        .root
        .get(&format!("/api/v1/tenants/{}", second.id))
        .expect(200);
    assert_eq!(t["status"], "active");
}

/// The console's tenant tree shows each reader only the columns its role may read through
/// the API: an operator no subscription, a billing user neither health nor storage.
#[test]
fn the_tenant_tree_shows_only_what_the_readers_role_may_read() {
    let server = Server::start();
    let admin = server.admin();
    let (partner, _customer) = admin.partner_with_customer("Reseller", "Acme");
    let columns = |role: &str| -> Vec<&'static str> {
        let email = format!("{role}@reseller.example");
        admin.user_in(&partner, &email, role, role);
        let reader = server.sign_in(&email, USER_PASSWORD);
        let page = server.page(
            &format!("/t/{partner}/tenants"),
            &support::console::session_cookie(&reader.secret),
            "en",
        );
        assert_eq!(page.status, 200, "{}", page.body);
        ["Health", "Subscription", "Storage"]
            .into_iter()
            .filter(|c| page.body.contains(&format!("<th scope=\"col\">{c}</th>")))
            .collect()
    };
    assert_eq!(columns("admin"), ["Health", "Subscription", "Storage"]);
    assert_eq!(columns("operator"), ["Health", "Storage"]);
    assert_eq!(columns("billing"), ["Subscription"]);
}
