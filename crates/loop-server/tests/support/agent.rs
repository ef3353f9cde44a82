//! The agent protocol as a test speaks it: enrolment codes, enrolling, agent calls.

use serde_json::{Value, json};

use super::{Caller, Reply, Server};

/// A fresh enrolment code of `tenant`, valid `minutes`.
pub fn new_code(admin: &Caller<'_>, tenant: &str, minutes: u32) -> String {
    admin
        .post(
            "/api/v1/devices/enroll-codes",
            json!({ "tenant_id": tenant, "expires_in_minutes": minutes }),
        )
        .expect(201)["code"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Enrols a machine of `tenant` with a fresh code: (device ID, device token).
pub fn enrol(server: &Server, admin: &Caller<'_>, tenant: &str, name: &str) -> (String, String) {
    let code = new_code(admin, tenant, 60);
    let r = server
        .call(
            "post",
            "/agent/v1/enroll",
            None,
            Some(&json!({ "code": code, "name": name })),
        )
        .expect(200);
    (
        r["device_id"].as_str().unwrap().into(),
        r["token"].as_str().unwrap().into(),
    )
}

pub fn agent(server: &Server, token: &str, path: &str, body: Value) -> Reply {
    server.call("post", path, Some(token), Some(&body))
}
