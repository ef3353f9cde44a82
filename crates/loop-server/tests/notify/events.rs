//! What raises which event, once, and which targets up the tenant tree hear it.

use super::*;

#[test]
fn a_backup_with_warnings_raises_job_warnings_and_a_clean_one_nothing() {
    let server = start(|_| {});
    let admin = server.admin();
    let (alpha, vault) = customer_with_vault(&admin, "Alpha", None);
    let summary = json!({ "snapshot_id": "5e".repeat(32), "files": 2 });
    let clean = json!({ "state": "succeeded", "summary": summary });
    ended_backup(&server, &admin, (&alpha, &vault), clean);
    pass(&server);
    assert!(admin.events(&alpha, "job-warnings").is_empty());
    let warned = json!({ "state": "succeeded-with-warnings", "summary": summary });
    let job = ended_backup(&server, &admin, (&alpha, &vault), warned);
    pass(&server);
    let raised = admin.events(&alpha, "job-warnings");
    assert_eq!(raised.len(), 1, "{raised:#?}");
    assert_eq!(raised[0]["severity"], "warning");
    assert_eq!(raised[0]["subject_id"], job.as_str());
}

#[test]
fn a_failed_backup_reaches_the_targets_that_match_it_up_the_tree_and_no_others() {
    let server = start(|_| {});
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let (alpha, vault) = customer_with_vault(&admin, "Alpha", None);
    let (bravo, _) = customer_with_vault(&admin, "Bravo", None);
    let receiver = Receiver::start(&[]);
    let url = receiver.url();
    // Hears its customers' errors; its own only with include_children off.
    let (watching, _) = webhook_target(&admin, &provider, &url, json!({ "min_severity": "error" }));
    let (own_only, _) = webhook_target(
        &admin,
        &provider,
        &url,
        json!({ "include_children": false }),
    );
    let (alpha_failures, _) =
        webhook_target(&admin, &alpha, &url, json!({ "kinds": ["job-failed"] }));
    let (alpha_info_other_kind, _) =
        webhook_target(&admin, &alpha, &url, json!({ "kinds": ["vault-quota"] }));
    let (bravo_all, _) = webhook_target(&admin, &bravo, &url, json!({ "min_severity": "info" }));

    let job = failed_backup(&server, &admin, &alpha, &vault, "pre-command exited with 3");
    pass_until(&server, "both deliveries", || receiver.got().len() >= 2);
    let raised = admin.events(&alpha, "job-failed");
    assert_eq!(raised.len(), 1, "{raised:#?}");
    assert_eq!(raised[0]["severity"], "error");
    assert_eq!(raised[0]["subject_id"], job.as_str());
    assert_eq!(raised[0]["details"]["target_name"], "docs");
    assert_eq!(raised[0]["details"]["device_name"], "laptop");
    assert!(
        raised[0]["message"]
            .as_str()
            .unwrap()
            .contains("pre-command exited with 3")
    );
    for (t, hears) in [
        (&watching, true),
        (&own_only, false),
        (&alpha_failures, true),
        (&alpha_info_other_kind, false),
        (&bravo_all, false),
    ] {
        let log: Vec<Value> = deliveries(&admin, t)
            .into_iter()
            .filter(|d| d["event_kind"] == "job-failed")
            .collect();
        assert_eq!(log.len(), usize::from(hears), "target {t}: {log:#?}");
    }
    // Another pass raises nothing twice.
    pass(&server);
    assert_eq!(admin.events(&alpha, "job-failed").len(), 1);
    assert_eq!(receiver.got().len(), 2);
}

/// A missed item and a quiet device are raised once, also after their event is trimmed
/// (`notify.keep_days`) while the item is still missed and the device still quiet.
#[test]
fn a_scheduled_item_without_a_success_raises_item_missed_once() {
    let server = start(|_| {});
    let admin = server.admin();
    let (alpha, vault) = customer_with_vault(&admin, "Alpha", None);
    let device = heard_from(&server, &admin, &alpha, "laptop");
    let item = admin
        .post(
            "/api/v1/items",
            json!({ "tenant_id": alpha, "device_id": device, "vault_id": vault,
                    "name": "docs", "paths": ["/srv/docs"], "schedule": "daily",
                    "window_seconds": 3600 }),
        )
        .expect(201);
    let item_id = item["id"].as_str().unwrap();
    pass(&server);
    assert!(admin.events(&alpha, "item-missed").is_empty());
    // Past the next midnight, its window (1 h) and the grace (1 h).
    server.advance(Duration::from_secs(86_400 + 2 * 3600 + 60));
    pass(&server);
    let admin = server.admin();
    let missed = admin.events(&alpha, "item-missed");
    assert_eq!(missed.len(), 1, "{missed:#?}");
    assert_eq!(missed[0]["subject_id"], item_id);
    assert_eq!(missed[0]["severity"], "error");
    assert_eq!(missed[0]["details"]["device_name"], "laptop");
    assert_eq!(missed[0]["details"]["last_success_at"], Value::Null);
    pass(&server);
    assert_eq!(admin.events(&alpha, "item-missed").len(), 1, "raised once");
    assert_eq!(admin.events(&alpha, "device-offline").len(), 1);

    let keep = server.state.config.notify.keep_days as u64;
    server.advance(Duration::from_secs((keep + 1) * 86_400));
    pass(&server);
    pass(&server);
    let admin = server.admin();
    for kind in ["item-missed", "device-offline"] {
        let again = admin.events(&alpha, kind);
        assert!(again.is_empty(), "trimmed, not raised again: {again:#?}");
    }
}

/// An item made long ago (longer than events are kept) and scheduled only now is reported
/// when it misses a run: only a spell already raised is kept from being raised again.
#[test]
fn an_item_scheduled_long_after_it_was_made_is_reported_when_missed() {
    let server = start(|_| {});
    let admin = server.admin();
    let (alpha, vault) = customer_with_vault(&admin, "Alpha", None);
    let (device, _) = enrol(&server, &admin, &alpha, "laptop");
    let item = admin
        .post(
            "/api/v1/items",
            json!({ "tenant_id": alpha, "device_id": device, "vault_id": vault,
                    "name": "docs", "paths": ["/srv/docs"] }),
        )
        .expect(201);
    let keep = server.state.config.notify.keep_days as u64;
    server.advance(Duration::from_secs((keep + 10) * 86_400));
    let admin = server.admin();
    admin
        .patch(
            &format!("/api/v1/items/{}", item["id"].as_str().unwrap()),
            json!({ "schedule": "daily", "window_seconds": 3600 }),
        )
        .expect(200);
    server.advance(Duration::from_secs(86_400 + 2 * 3600 + 60));
    pass(&server);
    let missed = server.admin().events(&alpha, "item-missed");
    assert_eq!(missed.len(), 1, "{missed:#?}");
}

#[test]
fn a_full_vault_a_quiet_device_a_new_token_and_a_new_browser_each_raise_their_event() {
    let server = start(|_| {});
    let admin = server.admin();
    let (alpha, vault) = customer_with_vault(&admin, "Alpha", Some(4000));
    let backup = holder(&server, &admin, &alpha, &vault, &["backup"]);
    // `holder` made a token: that raised token-created.
    let created = admin.events(&alpha, "token-created");
    assert_eq!(created.len(), 1, "{created:#?}");
    assert_eq!(created[0]["severity"], "info");

    let base = admin.get(&format!("/api/v1/vaults/{vault}")).expect(200)["used_bytes"]
        .as_u64()
        .unwrap() as usize;
    let small = index_object(10);
    backup.put("index", &blake3_hex(&small), &small).expect(201);
    pass(&server);
    assert!(admin.events(&alpha, "vault-quota").is_empty(), "under 90%");
    let big = index_object(3700 - base);
    backup.put("index", &blake3_hex(&big), &big).expect(201);
    pass(&server);
    let full = admin.events(&alpha, "vault-quota");
    assert_eq!(full.len(), 1, "{full:#?}");
    assert_eq!(full[0]["details"]["quota_bytes"], 4000);
    pass(&server);
    assert_eq!(admin.events(&alpha, "vault-quota").len(), 1, "once a day");

    let device = heard_from(&server, &admin, &alpha, "laptop");
    server.advance(Duration::from_secs(23 * 3600));
    pass(&server);
    let admin = server.admin();
    assert!(admin.events(&alpha, "device-offline").is_empty());
    server.advance(Duration::from_secs(3600 + 60));
    pass(&server);
    let admin = server.admin();
    let offline = admin.events(&alpha, "device-offline");
    assert_eq!(offline.len(), 1, "{offline:#?}");
    assert_eq!(offline[0]["subject_id"], device.as_str());

    // The provider admin signs in again from another browser.
    let provider = admin.provider_tenant_id();
    let before = admin.events(&provider, "sign-in-new-device").len();
    let again = server.sign_in_with(json!({
        "email": support::ADMIN_EMAIL, "password": support::ADMIN_PASSWORD,
    }));
    assert_eq!(
        again.events(&provider, "sign-in-new-device").len(),
        before,
        "same browser"
    );
    let reply = server.send(
        server
            .request(reqwest::Method::POST, "/api/v1/auth/login")
            .header(
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            )
            .json(&json!({ "email": support::ADMIN_EMAIL, "password": support::ADMIN_PASSWORD })),
    );
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    let new = admin.events(&provider, "sign-in-new-device");
    assert_eq!(new.len(), before + 1, "{new:#?}");
    assert_eq!(new[0]["details"]["browser"], "Firefox 128.0");
}
