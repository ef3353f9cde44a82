//! A tenant that moves to another time zone: the runs not yet due move with it.

use super::*;

/// A tenant moves to another time zone: every run of its items, sync jobs and vaults'
/// maintenance not yet due moves to its schedule's time in the new zone; a run already due
/// keeps its time and fires.
#[test]
fn a_new_time_zone_moves_the_runs_not_yet_due_and_keeps_a_due_one() {
    let server = start();
    // The story starts after noon UTC, so today's summary (07:00) and noon run have gone
    // and the next of each comes after midnight, whenever the test runs.
    let hour = time_ms(server.state.now()).hour();
    if hour < 13 {
        server.advance(Duration::from_secs(u64::from(13 - hour) * 3600));
    }
    let admin = server.admin();
    let ids = customer(&admin, "Moving");
    let tenant = &ids.0;
    let due = item(&admin, &ids, json!({ "schedule": "daily" }));
    let noon = item(
        &admin,
        &ids,
        json!({ "name": "noon", "schedule": "12:00", "paths": ["/srv"] }),
    );
    let (remote, mirror) = server.self_remote(&admin, tenant, "zoned");
    let sync = admin
        .post(
            "/api/v1/sync-jobs",
            json!({ "remote_id": remote, "direction": "push", "vault_id": ids.2,
                    "remote_vault_id": mirror, "schedule": "12:00" }),
        )
        .expect(201);
    admin
        .post(
            "/api/v1/policies",
            json!({ "tenant_id": tenant, "keep": { "last": 3 },
                    "maintenance": { "retention_schedule": "12:00" } }),
        )
        .expect(201);
    let target = admin
        .post(
            "/api/v1/notify/targets",
            json!({ "tenant_id": tenant, "name": "boss", "summary": "daily",
                    "email": { "recipients": ["boss@moving.example"] } }),
        )
        .expect(201)["target"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let summary_at = || {
        let q = sqlx::query_scalar::<_, i64>(
            "SELECT summary_next_at FROM notify_targets WHERE id = $1",
        )
        .bind(&target)
        .fetch_one(&server.state.db.pool);
        time_ms(server.block_on(q).unwrap())
    };
    assert!(
        tick_now(&server).queued.is_empty(),
        "the vault's run is planned"
    );
    let retention_at = || {
        let pool = &server.state.db.pool;
        let run = server.block_on(loop_server::db::maintenance::next_run(
            pool,
            &ids.2,
            "retention",
        ));
        time_ms(run.unwrap().unwrap().1.unwrap())
    };
    let midnight = time(&due["next_run_at"]);
    let noon_utc = time(&noon["next_run_at"]);
    assert_eq!((midnight.hour(), noon_utc.hour()), (0, 12));
    assert_eq!(time(&sync["next_run_at"]), noon_utc);
    assert_eq!(retention_at(), noon_utc);
    assert_eq!(summary_at(), midnight + chrono::Duration::hours(7));

    // Just after midnight UTC (09:00 in Tokyo), before any tick: the daily run is due.
    advance_to(&server, midnight, Duration::from_secs(5));
    let admin = server.admin();
    admin
        .patch(
            &format!("/api/v1/tenants/{tenant}"),
            json!({ "time_zone": "Asia/Tokyo" }),
        )
        .expect(200);
    // Noon in Tokyo is 03:00 UTC, today.
    let tokyo_noon = midnight + chrono::Duration::hours(3);
    let get = |path: String| admin.get(&path).expect(200);
    let next = |v: Value| time(&v["next_run_at"]);
    assert_eq!(
        next(get(format!(
            "/api/v1/items/{}",
            noon["id"].as_str().unwrap()
        ))),
        tokyo_noon
    );
    let syncs = get("/api/v1/sync-jobs".into());
    assert_eq!(next(syncs[0].clone()), tokyo_noon);
    assert_eq!(retention_at(), tokyo_noon);
    // 07:00 in Tokyo, tomorrow there: 22:00 UTC today.
    assert_eq!(summary_at(), midnight + chrono::Duration::hours(22));
    assert_eq!(
        next(get(format!(
            "/api/v1/items/{}",
            due["id"].as_str().unwrap()
        ))),
        midnight
    );
    let job = the_one_queued(&server, &admin);
    assert_eq!(job["target_id"], due["id"]);
}
