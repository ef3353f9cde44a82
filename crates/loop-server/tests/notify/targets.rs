//! A target's life: paused and resumed, deleted with its log kept.

use super::*;

/// A daily summary target paused for three weeks and resumed: no summary of a day three
/// weeks gone goes out, at most the one of the day just ended; the next comes at its time.
/// And when no node ran for a day and an hour past a summary's time, the summary due an
/// hour ago still goes out, for its own day.
#[test]
fn a_summary_long_overdue_is_not_sent_but_the_latest_due_is() {
    let server = start(|_| {});
    let admin = server.admin();
    let (tenant, _) = customer_with_vault(&admin, "Paused", None);
    let target = email_target(
        &admin,
        &tenant,
        "boss@paused.example",
        json!({ "summary": "daily" }),
    );
    let path = format!("/api/v1/notify/targets/{target}");
    admin.patch(&path, json!({ "enabled": false })).expect(200);
    server.advance(Duration::from_secs(21 * 86_400));
    pass(&server);
    let admin = server.admin();
    admin.patch(&path, json!({ "enabled": true })).expect(200);
    pass(&server);
    pass(&server);
    let now = server.state.now();
    let sent = admin.events(&tenant, "summary-report");
    assert!(sent.len() <= 1, "{sent:#?}");
    for e in &sent {
        let to = e["details"]["to"].as_i64().unwrap();
        assert!(now - to <= 86_400_000, "a period long past: {e:#}");
    }
    server.advance(Duration::from_secs(86_400 + 60));
    pass(&server);
    let admin = server.admin();
    assert_eq!(
        admin.events(&tenant, "summary-report").len(),
        sent.len() + 1
    );

    // No node runs from before a summary's time to a day and an hour after it.
    let (other, _) = customer_with_vault(&admin, "Asleep", None);
    email_target(
        &admin,
        &other,
        "boss@asleep.example",
        json!({ "summary": "daily" }),
    );
    let due = loop_server::notify::next_summary(
        loop_api::SummaryPeriod::Daily,
        "UTC",
        server.state.now(),
    )
    .unwrap();
    server.advance(Duration::from_millis(
        (due + 25 * 3_600_000 - server.state.now()) as u64,
    ));
    pass(&server);
    pass(&server);
    let admin = server.admin();
    let sent = admin.events(&other, "summary-report");
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["details"]["to"], due + 86_400_000, "{:#}", sent[0]);
}

/// A deleted target's delivery log stays readable, filtered by the target, as the delete
/// says; a target that never was is a 404.
#[test]
fn a_deleted_targets_delivery_log_stays_readable() {
    let server = start(|_| {});
    let admin = server.admin();
    let (tenant, _) = customer_with_vault(&admin, "Gone", None);
    let target = team(&admin, &tenant, &["ops@gone.example"]);
    admin
        .post(&format!("/api/v1/notify/targets/{target}/test"), json!({}))
        .expect(202);
    admin
        .delete(&format!("/api/v1/notify/targets/{target}"))
        .expect(204);
    let log = deliveries(&admin, &target);
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0]["state"], "failed", "what was queued ends as failed");
    admin
        .get(&format!(
            "/api/v1/notify/deliveries?target_id=nt_{}",
            "0".repeat(32)
        ))
        .expect_problem(404, "not_found");
}
