//! A target's life: paused and resumed, deleted with its log kept.

use super::*;

/// A daily summary target paused for three weeks and resumed: no summary of a day three
/// weeks gone goes out; the next comes at its own time.
#[test]
fn a_summary_target_resumed_after_a_pause_reports_no_period_long_past() {
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
    assert!(admin.events(&tenant, "summary-report").is_empty());
    server.advance(Duration::from_secs(86_400 + 60));
    pass(&server);
    let admin = server.admin();
    assert_eq!(admin.events(&tenant, "summary-report").len(), 1);
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
