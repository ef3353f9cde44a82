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

/// A running backup held by an agent: a machine of `tenant` enrolled as `device_name`, an
/// item "docs" of it into `vault`, run now and claimed by its agent.
pub struct ClaimedBackup {
    pub token: String,
    pub job_id: String,
    pub fence: i64,
}

pub fn claimed_backup(
    server: &Server,
    admin: &Caller<'_>,
    tenant: &str,
    vault: &str,
    device_name: &str,
) -> ClaimedBackup {
    let (device, token) = enrol(server, admin, tenant, device_name);
    let item = admin
        .post(
            "/api/v1/items",
            json!({ "tenant_id": tenant, "device_id": device, "vault_id": vault,
                    "name": "docs", "paths": ["/srv/docs"] }),
        )
        .expect(201);
    let job = admin
        .post(
            &format!("/api/v1/items/{}/run", item["id"].as_str().unwrap()),
            json!({}),
        )
        .expect(202);
    let claimed = agent(server, &token, "/agent/v1/jobs/claim", json!({})).expect(200);
    assert_eq!(claimed["job"]["id"], job["id"]);
    ClaimedBackup {
        token,
        job_id: job["id"].as_str().unwrap().into(),
        fence: claimed["fence"].as_i64().unwrap(),
    }
}
