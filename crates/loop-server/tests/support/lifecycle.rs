//! The subscription lifecycle's test steps: a server that mails to an SMTP sink and whose
//! lifecycle timer only the test ticks, the clock moved on by days, and the mail waited for.

use std::time::Duration;

use loop_server::Config;
use loop_server::config::SmtpSecurity;
use serde_json::{Value, json};

use super::smtp::SmtpSink;
use super::{Caller, Server, USER_PASSWORD};

pub const DAY: u64 = 86_400;

pub fn server_mailing_to(sink: &SmtpSink) -> Server {
    server_mailing_to_with(sink, |_| {})
}

/// [`server_mailing_to`], then `configure`.
pub fn server_mailing_to_with(sink: &SmtpSink, configure: impl FnOnce(&mut Config)) -> Server {
    let port = sink.port;
    Server::start_with(|c| {
        super::with_spare(c);
        c.mail.host = Some("127.0.0.1".into());
        c.mail.port = Some(port);
        c.mail.security = SmtpSecurity::None;
        c.mail.poll_seconds = 1;
        // The test ticks; the server's own timer waits.
        c.jobs.scheduler_seconds = 86_400;
        configure(c);
    })
}

/// One pass of the lifecycle timer: the steps it took, as their debug names.
pub fn tick(server: &Server) -> Vec<String> {
    let r = server
        .block_on(loop_server::billing::tick(&server.state))
        .unwrap_or_else(|e| panic!("a lifecycle tick: {e:?}"));
    r.steps.iter().map(|(_, s)| format!("{s:?}")).collect()
}

/// Moves the clock on by `days` (and `secs`), then ticks.
pub fn after(server: &Server, days: u64, secs: u64) -> Vec<String> {
    server.advance(Duration::from_secs(days * DAY + secs));
    tick(server)
}

/// Moves the clock to `at` (Unix ms; never backwards), then ticks.
pub fn at(server: &Server, at: i64) -> Vec<String> {
    let now = server.state.now();
    if at > now {
        server.advance(Duration::from_millis((at - now) as u64));
    }
    tick(server)
}

pub fn ms(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time"))
        .expect("an RFC 3339 time")
        .timestamp_millis()
}

/// Waits until `to` received `n` messages whose subject starts with `prefix`; answers the
/// `n`th one's subject and text.
pub fn mail(sink: &SmtpSink, to: &str, prefix: &str, n: usize) -> (String, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let found: Vec<Value> = sink
            .messages()
            .into_iter()
            .filter(|m| m["rcpt_tos"].as_array().unwrap().iter().any(|r| r == to))
            .filter(|m| {
                m["subject"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with(prefix)
            })
            .collect();
        if found.len() >= n {
            let m = &found[n - 1];
            return (
                m["subject"].as_str().unwrap().to_string(),
                m["text"].as_str().unwrap().to_string(),
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{to} did not get {n} messages starting {prefix:?}; got {:?}",
            sink.messages()
                .iter()
                .map(|m| m["subject"].clone())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn subscription(admin: &Caller<'_>, tenant: &str) -> Value {
    admin
        .get(&format!("/api/v1/tenants/{tenant}/subscription"))
        .expect(200)
}

pub fn user(admin: &Caller<'_>, tenant: &str, email: &str, role: &str) -> String {
    admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": tenant, "email": email, "first_name": role,
                    "last_name": "Acme", "password": USER_PASSWORD, "role": role }),
        )
        .expect(201)["user"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A plan "Small" of the provider, 19.99 EUR a month; its ID.
pub fn small_plan(admin: &Caller<'_>) -> String {
    admin
        .post(
            "/api/v1/plans",
            json!({ "issuer_id": admin.provider_tenant_id(), "name": "Small",
                    "price_cents": 1999, "currency": "eur" }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A customer "Acme" of the provider subscribed to `plan`, whose trial starts now.
pub fn acme_on(admin: &Caller<'_>, plan: &str) -> String {
    customer_on(admin, "Acme", plan)
}

/// [`acme_on`] a new [`small_plan`], paying by invoice: (the tenant, its subscription).
pub fn acme_paying_by_invoice(admin: &Caller<'_>) -> (String, Value) {
    let plan = small_plan(admin);
    let tenant = acme_on(admin, &plan);
    let s = admin
        .put(
            &format!("/api/v1/tenants/{tenant}/subscription"),
            json!({ "plan_id": plan, "collection": "invoice" }),
        )
        .expect(200);
    (tenant, s)
}

/// A customer `name` of the provider subscribed to `plan`, whose trial starts now; its ID.
pub fn customer_on(admin: &Caller<'_>, name: &str, plan: &str) -> String {
    admin
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": admin.provider_tenant_id(), "kind": "customer",
                    "name": name, "plan_id": plan }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The first delivery of `target` once a try of it failed (the notifier run by hand until
/// then): its record, with the reason in `last_error`.
pub fn failed_delivery(server: &Server, target: &str) -> Value {
    let admin = server.admin();
    for _ in 0..600 {
        let log = admin
            .get(&format!("/api/v1/notify/deliveries?target_id={target}"))
            .expect(200);
        if log[0]["last_error"].is_string() {
            return log[0].clone();
        }
        server
            .block_on(loop_server::notify::pass(&server.state, false))
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no try of a delivery to {target} failed");
}

/// Records invoice `invoice` paid by a transfer with `reference` (the issuer's admin).
pub fn paid_by_transfer(admin: &Caller<'_>, invoice: &str, reference: &str) {
    admin
        .post(
            &format!("/api/v1/invoices/{invoice}/payment"),
            json!({ "reference": reference }),
        )
        .expect(200);
}
