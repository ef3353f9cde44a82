//! A controller's records: data-subject requests (due one month after they were
//! received, overdue after that, closed with the action taken, every step audited), the
//! provider's sub-processor register (each change mailed to the controllers' admins in
//! their language, through a real SMTP server), the privacy report, and the retention of
//! the audit log's personal data.

mod support;

use std::time::Duration;

use serde_json::json;
use support::smtp::SmtpSink;
use support::{Server, USER_PASSWORD};

#[test]
fn a_data_subject_request_is_due_in_a_month_shows_overdue_and_closes_with_its_action() {
    let server = Server::start();
    let root = server.admin();
    let alpha = server.customer(&root, "alpha");
    let bravo = server.customer(&root, "bravo");
    let admin = server.as_member(alpha.member("admin"));
    let person = alpha.member("operator").user_id.clone();

    let r = admin
        .post(
            "/api/v1/subject-requests",
            json!({ "user_id": person, "kind": "access",
                    "details": "Wants to know which devices are registered in her name." }),
        )
        .expect(201);
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(r["state"], "open");
    assert_eq!(r["overdue"], false);
    assert_eq!(r["tenant_id"], alpha.tenant_id.as_str());
    let received =
        chrono::DateTime::parse_from_rfc3339(r["received_at"].as_str().unwrap()).unwrap();
    let due = chrono::DateTime::parse_from_rfc3339(r["due_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        due,
        received.checked_add_months(chrono::Months::new(1)).unwrap(),
        "due one month after it was received"
    );
    // Another customer's admin, and the person's own colleagues without user rights, see
    // nothing of it; nor can they record one for alpha's people.
    let other = server.as_member(bravo.member("admin"));
    assert_eq!(
        other.get(&format!("/api/v1/subject-requests/{id}")).status,
        404
    );
    let theirs = other.get("/api/v1/subject-requests").expect(200);
    assert!(!theirs.to_string().contains(&id), "{theirs}");
    let forged = other.post(
        "/api/v1/subject-requests",
        json!({ "user_id": person, "kind": "erasure" }),
    );
    assert_eq!(forged.status, 404, "{}", forged.body);
    let operator = server.as_member(alpha.member("operator"));
    assert_eq!(
        operator
            .get(&format!("/api/v1/subject-requests/{id}"))
            .status,
        403
    );

    // A month and a day later it is overdue, and the listing says so.
    server.advance(Duration::from_secs(32 * 86_400));
    let admin = server.sign_in(&alpha.member("admin").email, USER_PASSWORD);
    let open = admin
        .get(&format!(
            "/api/v1/subject-requests?tenant_id={}&state=open",
            alpha.tenant_id
        ))
        .expect(200);
    let listed = open
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .expect("the open request is listed");
    assert_eq!(listed["overdue"], true);

    let closed = admin
        .post(
            &format!("/api/v1/subject-requests/{id}/close"),
            json!({ "outcome": "done", "action": "Sent her the archive of her data." }),
        )
        .expect(200);
    assert_eq!(closed["state"], "closed");
    assert_eq!(closed["overdue"], false);
    assert_eq!(closed["outcome"], "done");
    assert_eq!(closed["action"], "Sent her the archive of her data.");
    let again = admin.post(
        &format!("/api/v1/subject-requests/{id}/close"),
        json!({ "outcome": "refused", "action": "again" }),
    );
    assert_eq!(again.code(), "request_closed");
    let open = admin.get("/api/v1/subject-requests?state=open").expect(200);
    assert!(!open.to_string().contains(&id), "closed: not open any more");

    // Every step is in the tenant's audit log.
    let events = server.admin().audit_events();
    let steps: Vec<(&str, bool)> = events
        .iter()
        .filter(|e| e.object_id.as_deref() == Some(id.as_str()))
        .map(|e| (e.action.as_str(), e.details["overdue"] == true))
        .collect();
    assert_eq!(
        steps,
        [
            ("subject_request.create", false),
            ("subject_request.close", true)
        ]
    );
    support::assert_chained(&events);
}

#[test]
fn a_change_of_the_sub_processors_is_mailed_to_the_controllers_admins() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = support::lifecycle::server_mailing_to(&sink);
    let root = server.admin();
    let alpha = server.customer(&root, "alpha");
    let bravo = server.customer(&root, "bravo");
    let bravo_admin = server.as_member(bravo.member("admin"));
    bravo_admin
        .patch("/api/v1/me", json!({ "language": "nl" }))
        .expect(200);

    let refused = bravo_admin.post(
        "/api/v1/subprocessors",
        json!({ "name": "Sneaky", "purpose": "none", "location": "nowhere" }),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    let added = root
        .post(
            "/api/v1/subprocessors",
            json!({ "name": "Hetzner Online GmbH", "purpose": "hosting of the servers",
                    "location": "Germany (EU)" }),
        )
        .expect(201);
    // Everyone signed in can read the register.
    let listed = server
        .as_member(alpha.member("operator"))
        .get("/api/v1/subprocessors")
        .expect(200);
    assert_eq!(listed, json!([added]));

    let to_alpha = sink.wait_for(&alpha.member("admin").email);
    assert_eq!(
        to_alpha["subject"],
        "Loop Backup sub-processors: Hetzner Online GmbH added"
    );
    let text = to_alpha["text"].as_str().unwrap();
    assert!(text.contains("Purpose: hosting of the servers"), "{text}");
    assert!(text.contains("Location: Germany (EU)"), "{text}");
    assert!(text.contains("It is not marketing."), "{text}");
    let to_bravo = sink.wait_for(&bravo.member("admin").email);
    assert_eq!(
        to_bravo["subject"],
        "Subverwerkers van Loop Backup: Hetzner Online GmbH toegevoegd"
    );
    // Only the admins: an operator or auditor is not the controller's contact.
    for role in ["operator", "auditor", "billing"] {
        assert_eq!(sink.count_to(&alpha.member(role).email), 0, "{role}");
    }

    root.delete(&format!(
        "/api/v1/subprocessors/{}",
        added["id"].as_str().unwrap()
    ))
    .expect(204);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sink.count_to(&alpha.member("admin").email) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no notice of the removal"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let removal = sink.wait_for(&alpha.member("admin").email);
    assert_eq!(
        removal["subject"],
        "Loop Backup sub-processors: Hetzner Online GmbH removed"
    );
    let actions: Vec<String> = root
        .audit_events()
        .into_iter()
        .filter(|e| e.action.starts_with("subprocessor."))
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["subprocessor.add", "subprocessor.remove"]);
}

#[test]
fn the_privacy_report_counts_what_a_tenant_holds_and_says_where_and_how_long() {
    let server = Server::start();
    let root = server.admin();
    let alpha = server.customer(&root, "alpha");
    let bravo = server.customer(&root, "bravo");
    root.post(
        "/api/v1/subprocessors",
        json!({ "name": "Mailgun", "purpose": "sending mail", "location": "EU" }),
    )
    .expect(201);
    let admin = server.as_member(alpha.member("admin"));
    let asked = "Asked by phone to delete everything about his late mother.";
    admin
        .post(
            "/api/v1/subject-requests",
            json!({ "user_id": alpha.member("operator").user_id, "kind": "erasure",
                    "details": asked }),
        )
        .expect(201);

    let r = admin
        .get(&format!(
            "/api/v1/tenants/{}/privacy-report",
            alpha.tenant_id
        ))
        .expect(200);
    let count = |category: &str| {
        r["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["category"].as_str().unwrap().starts_with(category))
            .unwrap_or_else(|| panic!("no category {category}: {r}"))["records"]
            .as_u64()
            .unwrap()
    };
    // The four people of the customer, each signed in once, and nobody of bravo's.
    assert_eq!(count("users"), 4);
    assert_eq!(count("sessions"), 4);
    // The one recorded here, and the one every test customer is made with.
    assert_eq!(count("data-subject requests"), 2);
    assert!(count("audit events") > 0);
    assert_eq!(
        r["residency"]["locations"][0]["vault_id"],
        alpha.vault_id.as_str()
    );
    assert_eq!(r["residency"]["locations"][0]["jurisdiction"], "local");
    assert_eq!(r["subprocessors"][0]["name"], "Mailgun");
    assert_eq!(r["open_requests"].as_array().unwrap().len(), 2);
    assert!(r.to_string().contains(asked), "{r:#}");
    // An auditor reads the report, and that the request is open, but not what was asked:
    // only those who may handle a request read that.
    let auditor = server.as_member(alpha.member("auditor"));
    let seen = auditor
        .get(&format!(
            "/api/v1/tenants/{}/privacy-report",
            alpha.tenant_id
        ))
        .expect(200);
    let open = seen["open_requests"].as_array().unwrap();
    assert_eq!(open.len(), 2, "{seen:#}");
    assert!(open.iter().any(|q| q["kind"] == "erasure"), "{seen:#}");
    assert!(!seen.to_string().contains(asked), "{seen:#}");
    let retention = r["retention"].to_string();
    assert!(
        retention.contains("90 days after the session ended"),
        "{retention}"
    );
    assert!(retention.contains("365 days"), "{retention}");
    // Nothing of another customer's.
    assert!(!r.to_string().contains(&bravo.member("admin").email));
    let other = server.as_member(bravo.member("admin"));
    assert_eq!(
        other
            .get(&format!(
                "/api/v1/tenants/{}/privacy-report",
                alpha.tenant_id
            ))
            .status,
        404
    );
}

#[test]
fn the_audit_logs_personal_data_goes_after_its_retention_period_and_the_chain_stays() {
    let server = Server::start_with(|c| c.privacy.audit_personal_days = 30);
    let root = server.admin();
    let alpha = server.customer(&root, "alpha");
    let old_events = root.audit_events();
    assert!(
        old_events.iter().any(|e| e.ip.is_some()),
        "events carry addresses"
    );
    server.advance(Duration::from_secs(20 * 86_400));
    // A newer action, 20 days later.
    let admin = server.sign_in(&alpha.member("admin").email, USER_PASSWORD);
    admin
        .patch("/api/v1/me", json!({ "business_address": "Dorpsstraat 2" }))
        .expect(200);
    server.advance(Duration::from_secs(11 * 86_400));
    let report = server
        .block_on(loop_server::jobs::scheduler::tick(&server.state))
        .unwrap();
    assert!(report.audit_personal_cleared > 0);

    let root = server.admin();
    let events = root.audit_events();
    let now = server.state.now();
    for e in &events {
        let age_days = (now - e.at.timestamp_millis()) / 86_400_000;
        if age_days >= 30 {
            assert!(
                e.ip.is_none() && e.user_agent.is_none(),
                "{} of {age_days} days still has its address",
                e.action
            );
        }
    }
    let kept = events
        .iter()
        .find(|e| e.action == "user.update")
        .expect("the newer action");
    assert!(kept.ip.is_some(), "11 days old: kept");
    support::assert_chained(&events);
    assert_eq!(
        loop_api::audit::verify(&events),
        Ok(events.len() as u64),
        "every chain verifies"
    );
}
