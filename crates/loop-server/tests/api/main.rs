//! The service as its users meet it over HTTPS: tenant isolation, the audit log, sessions,
//! sign-in throttling, vault tokens and hostile requests. (Roles inside a tenant are in
//! roles/, tenant erasure in erasure.rs.)
//!
//! Route lists come from the server's own OpenAPI document wherever a test walks "every
//! route", so a route added later is covered (or makes the test fail until it is).
//!
//! One file per story: `wire.rs` (the OpenAPI document), `isolation.rs`, `audit_log.rs`,
//! `audit_export.rs`, `pages.rs`, `remotes.rs`, `residency.rs`, `sessions.rs`, `throttling.rs`, `credentials.rs`, `hostile.rs` and
//! `tenants.rs`; helpers more than one story uses are here.

#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use loop_api::Outcome;
use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN_EMAIL, ADMIN_PASSWORD, Caller, Customer, Reply, Server, USER_PASSWORD};

mod audit_billing;
mod audit_export;
mod audit_log;
mod audit_privacy;
mod audited;
mod credentials;
mod hostile;
mod isolation;
mod pages;
mod remotes;
mod residency;
mod sessions;
mod suspended;
mod tenants;
mod throttling;
mod wire;
mod wire_errors;

/// One operation of the OpenAPI document.
#[derive(Clone, Debug)]
struct Route {
    method: String,
    path: String,
    /// (`in`, `name`) of each parameter.
    params: Vec<(String, String)>,
    has_body: bool,
}

impl Route {
    fn changes_state(&self) -> bool {
        matches!(self.method.as_str(), "post" | "put" | "patch" | "delete")
    }
    fn has_path_params(&self) -> bool {
        self.path.contains('{')
    }
    /// True when the route takes `name` outside its path: a query parameter. (Read from the
    /// parameter's name, not its `in`, which the document gets wrong; see
    /// `the_openapi_document_places_every_parameter_where_it_is_sent`.)
    fn has_query(&self, name: &str) -> bool {
        let in_path = self.path.contains(&format!("{{{name}}}"));
        self.params.iter().any(|(_, n)| n == name) && !in_path
    }
}

fn documented_routes(doc: &Value) -> Vec<Route> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if !["get", "put", "post", "delete", "patch", "head"].contains(&method.as_str()) {
                continue;
            }
            let params = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            (
                                p["in"].as_str().unwrap_or_default().to_string(),
                                p["name"].as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(Route {
                method: method.clone(),
                path: path.clone(),
                params,
                has_body: op.get("requestBody").is_some(),
            });
        }
    }
    assert!(out.len() > 20, "the OpenAPI document lists the API: {doc}");
    out
}

/// The parts of a path template, e.g. `/api/v1/users/{id}/roles` → `["users", "{id}", "roles"]`.
fn segments(path: &str) -> Vec<&str> {
    path.trim_start_matches("/api/v1/").split('/').collect()
}

/// Text that only a server's internals would produce.
const INTERNAL_TEXT: &[&str] = &[
    "sqlx",
    "sqlite",
    "database",
    "panicked",
    "stack backtrace",
    "constraint failed",
    "object_store",
    "no such table",
];

fn assert_no_internal_text(what: &str, r: &Reply) {
    let body = r.body.to_lowercase();
    for t in INTERNAL_TEXT {
        assert!(
            !body.contains(t),
            "{what}: the answer shows internal text {t:?}: {}",
            r.body
        );
    }
}

fn assert_no_leak(what: &str, r: &Reply, secrets: &[String]) {
    for s in secrets {
        assert!(
            !r.body.contains(s.as_str()),
            "{what} ({}) shows another tenant's {s:?}: {}",
            r.status,
            r.body
        );
    }
}
