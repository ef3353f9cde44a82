//! Protected items and sync jobs on a schedule: the scheduler queues each run once when the
//! server's clock passes its time (in the tenant's time zone), skips a run while the previous
//! one is open, marks runs whose window passed as missed, and catches up a missed run when the
//! next is far away. The tests drive the clock and the scheduler's tick; nothing waits on wall
//! time.

mod support;

#[path = "schedules/zones.rs"]
mod zones;

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use loop_server::jobs::scheduler::{TickReport, tick};
use serde_json::{Value, json};
use support::Server;
use support::vault::customer_with_vault;

fn start() -> Server {
    // The server's own scheduler ticks once at start and then not again during a test, so
    // every run below comes from the test's ticks.
    Server::start_with(|c| c.jobs.scheduler_seconds = 86_400)
}

fn tick_now(server: &Server) -> TickReport {
    server.block_on(tick(&server.state)).expect("a tick")
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// A customer with a device and a vault: (tenant, device, vault).
fn customer(admin: &support::Caller<'_>, name: &str) -> (String, String, String) {
    let (tenant, vault) = customer_with_vault(admin, name, None);
    let device = admin
        .post(
            "/api/v1/devices",
            json!({ "tenant_id": tenant, "name": "pc" }),
        )
        .expect(201);
    (tenant, device["id"].as_str().unwrap().to_string(), vault)
}

fn item(admin: &support::Caller<'_>, ids: &(String, String, String), extra: Value) -> Value {
    let mut body = json!({
        "tenant_id": ids.0, "device_id": ids.1, "vault_id": ids.2, "name": "home",
        "paths": ["/home"],
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    admin.post("/api/v1/items", body).expect(201)
}

/// Ticks, which must queue exactly one job: that job.
fn the_one_queued(server: &Server, admin: &support::Caller<'_>) -> Value {
    let r = tick_now(server);
    assert_eq!(r.queued.len(), 1, "{r:?}");
    admin
        .get(&format!("/api/v1/jobs/{}", r.queued[0]))
        .expect(200)
}

/// A new customer `name`'s item with `settings`: (the item's ID, its first run).
fn scheduled_item(
    admin: &support::Caller<'_>,
    name: &str,
    settings: Value,
) -> (String, DateTime<Utc>) {
    let ids = customer(admin, name);
    let i = item(admin, &ids, settings);
    (
        i["id"].as_str().unwrap().to_string(),
        time(&i["next_run_at"]),
    )
}

/// Moves the server's clock to `at` plus `by` (never backwards).
fn advance_to(server: &Server, at: DateTime<Utc>, by: Duration) {
    let now = DateTime::from_timestamp_millis(server.state.now()).unwrap();
    let target = at + chrono::Duration::from_std(by).unwrap();
    if target > now {
        server.advance((target - now).to_std().unwrap());
    }
}

#[test]
fn a_scheduled_run_is_queued_once_skipped_while_open_and_missed_when_its_window_passes() {
    let server = start();
    let admin = server.admin();
    let ids = customer(&admin, "Scheduled");
    let i = item(
        &admin,
        &ids,
        json!({ "schedule": "*:0/15", "window_seconds": 3600 }),
    );
    let id = i["id"].as_str().unwrap();
    let first = time(&i["next_run_at"]);
    assert_eq!(first.minute() % 15, 0, "{first}");
    assert_eq!(first.second(), 0);

    // Not due yet: nothing happens.
    let r = tick_now(&server);
    assert!(r.queued.is_empty() && r.skipped.is_empty(), "{r:?}");

    // Its time passes: one backup job for the item, due at its time, missed an hour later.
    advance_to(&server, first, Duration::from_secs(1));
    // Sessions end when idle: sign in anew after the clock moved.
    let admin = server.admin();
    let (a, b) = server.block_on(async { tokio::join!(tick(&server.state), tick(&server.state)) });
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.queued.len() + b.queued.len(),
        1,
        "two ticks at once fire the run once: {a:?} {b:?}"
    );
    let job_id = a.queued.first().or(b.queued.first()).unwrap().clone();
    let job = admin.get(&format!("/api/v1/jobs/{job_id}")).expect(200);
    assert_eq!(job["kind"], "backup");
    assert_eq!(job["state"], "queued");
    assert_eq!(job["trigger"], "schedule");
    assert_eq!(
        (&job["target_kind"], &job["target_id"]),
        (&json!("item"), &json!(id))
    );
    assert_eq!(time(&job["scheduled_at"]), first);
    assert_eq!(
        time(&job["deadline_at"]),
        first + chrono::Duration::hours(1)
    );
    let moved = admin.get(&format!("/api/v1/items/{id}")).expect(200);
    assert_eq!(
        time(&moved["next_run_at"]),
        first + chrono::Duration::minutes(15)
    );

    // The next run comes while the first is still queued (no agent took it): skipped.
    advance_to(&server, first, Duration::from_secs(15 * 60 + 1));
    // Sessions end when idle: sign in anew after the clock moved.
    let admin = server.admin();
    let r = tick_now(&server);
    assert!(r.queued.is_empty(), "{r:?}");
    assert_eq!(r.skipped.len(), 1, "{r:?}");
    let skipped = admin
        .get(&format!("/api/v1/jobs/{}", r.skipped[0]))
        .expect(200);
    assert_eq!(skipped["state"], "skipped");
    assert!(skipped["error"].as_str().unwrap().contains("still queued"));

    // Past the first run's window: it is missed; the item's overdue run is missed too
    // (no tick came in its window), and the next is near, so there is no catch-up.
    advance_to(&server, first, Duration::from_secs(2 * 3600 + 60));
    // Sessions end when idle: sign in anew after the clock moved.
    let admin = server.admin();
    let r = tick_now(&server);
    assert!(r.missed.contains(&job_id), "{r:?}");
    assert_eq!(r.missed.len(), 2, "{r:?}");
    assert!(r.queued.is_empty(), "{r:?}");
    let job = admin.get(&format!("/api/v1/jobs/{job_id}")).expect(200);
    assert_eq!(job["state"], "missed");
    let missed = admin
        .get(&format!("/api/v1/jobs?tenant_id={}&state=missed", ids.0))
        .expect(200);
    assert_eq!(missed.as_array().unwrap().len(), 2);
    // Each missed run raises a `job-missed` event for the tenant's notification targets.
    server
        .block_on(loop_server::notify::pass(&server.state, true))
        .expect("a notifier pass");
    let raised = admin.events(&ids.0, "job-missed");
    assert_eq!(raised.len(), 2, "{raised:#?}");
    assert_eq!(raised[0]["severity"], "warning");

    // A missed job cannot be taken any more: the runner of the server never takes backups,
    // and a run asked for now is a new job.
    let run = admin
        .post(&format!("/api/v1/items/{id}/run"), json!({}))
        .expect(202);
    assert_eq!(run["kind"], "backup");
    assert_eq!(run["trigger"], "user");
    assert_eq!(run["state"], "queued");
    let again = admin
        .post(&format!("/api/v1/items/{id}/run"), json!({}))
        .expect(202);
    assert_eq!(
        again["id"], run["id"],
        "while a run is open, asking again answers it"
    );
}

/// An item changed (renamed) after its run came due, before the scheduler's next tick: the
/// run still fires. A new schedule moves the next run.
#[test]
fn an_edit_keeps_a_run_that_is_due_and_a_new_schedule_moves_it() {
    let server = start();
    let admin = server.admin();
    let (id, due) = scheduled_item(&admin, "Edited", json!({ "schedule": "daily" }));
    advance_to(&server, due, Duration::from_secs(5));
    let admin = server.admin();
    let renamed = admin
        .patch(&format!("/api/v1/items/{id}"), json!({ "name": "renamed" }))
        .expect(200);
    assert_eq!(time(&renamed["next_run_at"]), due);
    let job = the_one_queued(&server, &admin);
    assert_eq!(
        (time(&job["scheduled_at"]), &job["target_id"]),
        (due, &json!(id))
    );

    let hourly = admin
        .patch(
            &format!("/api/v1/items/{id}"),
            json!({ "schedule": "hourly" }),
        )
        .expect(200);
    let now = DateTime::from_timestamp_millis(server.state.now()).unwrap();
    let next = time(&hourly["next_run_at"]);
    assert!(
        next > now && next - now <= chrono::Duration::hours(1),
        "{next}"
    );
    let stored = admin.get(&format!("/api/v1/items/{id}")).expect(200);
    assert_eq!(time(&stored["next_run_at"]), next);
}

#[test]
fn a_run_missed_while_no_server_ran_is_caught_up_when_the_next_is_far_away() {
    let server = start();
    let admin = server.admin();
    let settings = json!({ "schedule": "daily", "window_seconds": 3600, "jitter_seconds": 600 });
    let (id, due) = scheduled_item(&admin, "Daily", settings);
    // Three hours late (every node was down): missed, and the next run is a day away, so
    // one run is queued at once.
    advance_to(&server, due, Duration::from_secs(3 * 3600));
    // Sessions end when idle: sign in anew after the clock moved.
    let admin = server.admin();
    let r = tick_now(&server);
    assert_eq!(r.missed.len(), 1, "{r:?}");
    assert_eq!(r.queued.len(), 1, "{r:?}");
    let catch_up = admin
        .get(&format!("/api/v1/jobs/{}", r.queued[0]))
        .expect(200);
    assert_eq!(catch_up["target_id"], id);
    let now = DateTime::from_timestamp_millis(server.state.now()).unwrap();
    assert!(time(&catch_up["scheduled_at"]) <= now);
    let missed = admin
        .get(&format!("/api/v1/jobs/{}", r.missed[0]))
        .expect(200);
    assert_eq!(missed["state"], "missed");
    assert_eq!(time(&missed["scheduled_at"]), due);

    // The next day's run starts within its jitter.
    let next = time(&admin.get(&format!("/api/v1/items/{id}")).expect(200)["next_run_at"]);
    assert_eq!(next, due + chrono::Duration::days(1));
    // The catch-up run is done with (cancelled), so the next run is not skipped.
    admin
        .post(&format!("/api/v1/jobs/{}/cancel", r.queued[0]), json!({}))
        .expect(200);
    advance_to(&server, next, Duration::from_secs(1));
    // Sessions end when idle: sign in anew after the clock moved.
    let admin = server.admin();
    let job = the_one_queued(&server, &admin);
    let at = time(&job["scheduled_at"]);
    assert!(
        at >= next && at <= next + chrono::Duration::seconds(600),
        "{at} is within 10 minutes after {next}"
    );
}

#[test]
fn schedules_are_read_in_the_tenants_time_zone_and_bad_ones_are_refused() {
    let server = start();
    let admin = server.admin();
    let ids = customer(&admin, "Tokyo");
    admin
        .patch(
            &format!("/api/v1/tenants/{}", ids.0),
            json!({ "time_zone": "Asia/Tokyo" }),
        )
        .expect(200);
    // Midnight in Tokyo is 15:00 UTC (no daylight saving there).
    let i = item(&admin, &ids, json!({ "schedule": "daily" }));
    let next = time(&i["next_run_at"]);
    assert_eq!((next.hour(), next.minute()), (15, 0), "{next}");
    // Without a schedule: no next run; a schedule can be added and removed.
    let id = i["id"].as_str().unwrap();
    let cleared = admin
        .patch(&format!("/api/v1/items/{id}"), json!({ "schedule": "" }))
        .expect(200);
    assert!(cleared["schedule"].is_null() && cleared["next_run_at"].is_null());
    for (body, what) in [
        (json!({ "schedule": "someday" }), "schedule"),
        (json!({ "schedule": "0 0 30 2 *" }), "never happens"),
        (json!({ "paths": ["relative/path"] }), "absolute"),
        (json!({ "paths": [] }), "at least one path"),
        (json!({ "window_seconds": 10 }), "window_seconds"),
        (
            json!({ "jitter_seconds": 99999, "window_seconds": 3600 }),
            "jitter_seconds",
        ),
    ] {
        let r = admin.patch(&format!("/api/v1/items/{id}"), body.clone());
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body.contains(what), "{body}: {}", r.body);
    }
    // One name per device.
    let r = admin.post(
        "/api/v1/items",
        json!({ "tenant_id": ids.0, "device_id": ids.1, "vault_id": ids.2, "name": "home",
                "paths": ["/srv"] }),
    );
    r.expect_problem(409, "item_exists");
    // Deleting the device removes its items.
    admin
        .delete(&format!("/api/v1/devices/{}", ids.1))
        .expect(204);
    admin
        .get(&format!("/api/v1/items/{id}"))
        .expect_problem(404, "not_found");
}

/// An item's upload limit (which its agent applies to the item's backups) is kept across
/// other changes, changed, and removed with 0; a limit that is no number of KiB/s is refused.
#[test]
fn an_items_upload_limit_is_kept_changed_and_removed_with_zero() {
    let server = start();
    let admin = server.admin();
    let ids = customer(&admin, "Slow link");
    let i = item(&admin, &ids, json!({ "upload_limit_kib": 512 }));
    assert_eq!(i["upload_limit_kib"], 512);
    let id = i["id"].as_str().unwrap();
    let path = format!("/api/v1/items/{id}");
    assert_eq!(admin.get(&path).expect(200)["upload_limit_kib"], 512);
    let renamed = admin.patch(&path, json!({ "name": "renamed" })).expect(200);
    assert_eq!(renamed["upload_limit_kib"], 512);
    let changed = admin
        .patch(&path, json!({ "upload_limit_kib": 64 }))
        .expect(200);
    assert_eq!(changed["upload_limit_kib"], 64);
    let lifted = admin
        .patch(&path, json!({ "upload_limit_kib": 0 }))
        .expect(200);
    assert!(lifted["upload_limit_kib"].is_null(), "{lifted}");
    assert!(admin.get(&path).expect(200)["upload_limit_kib"].is_null());
    for bad in [json!(-1), json!("fast"), json!(1.5), json!(1u64 << 33)] {
        let r = admin.patch(&path, json!({ "upload_limit_kib": bad }));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    assert!(admin.get(&path).expect(200)["upload_limit_kib"].is_null());
}

#[test]
fn a_policys_maintenance_runs_retention_and_verify_on_schedule_and_reverifies_when_outdated() {
    let server = start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Kept", None);
    let theirs = admin
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": tenant, "name": "theirs", "destination": "local",
                    "key_custody": "customer" }),
        )
        .expect(201);
    let policy = |maintenance: Value| {
        admin.post(
            "/api/v1/policies",
            json!({ "tenant_id": tenant, "keep": { "last": 3 }, "maintenance": maintenance }),
        )
    };
    policy(json!({ "verify_schedule": "every full moon" })).expect_problem(400, "invalid_request");
    policy(json!({ "reverify_after_days": 0 })).expect_problem(400, "invalid_request");
    let p = policy(json!({
        "retention_schedule": "daily", "verify_schedule": "daily",
        "verify_read_data_percent": 100, "reverify_after_days": 3,
    }))
    .expect(201);
    assert_eq!(p["maintenance"]["verify_read_data_percent"], 100.0);

    // The first tick plans the runs; nothing is due yet.
    let r = tick_now(&server);
    assert!(r.queued.is_empty(), "{r:?}");
    let now = DateTime::from_timestamp_millis(server.state.now()).unwrap();
    let midnight = (now + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    advance_to(&server, midnight, Duration::from_secs(60));
    let r = tick_now(&server);
    assert_eq!(r.queued.len(), 2, "a retention and a verify: {r:?}");
    let mut kinds = Vec::new();
    for id in &r.queued {
        let j = server.admin().job_ended(id);
        assert_eq!(j["state"], "succeeded", "{j:#}");
        assert_eq!(j["trigger"], "schedule");
        assert_eq!(
            j["target_id"],
            vault.as_str(),
            "never the customer-key vault"
        );
        kinds.push(j["kind"].as_str().unwrap().to_string());
    }
    kinds.sort();
    assert_eq!(kinds, ["retention", "verify"]);
    let verify = r
        .queued
        .iter()
        .map(|id| server.admin().job_ended(id))
        .find(|j| j["kind"] == "verify")
        .unwrap();
    assert_eq!(verify["summary"]["read_data_percent"], 100.0, "{verify:#}");
    let _ = theirs;

    // A day on: retention runs again; the vault was verified a day ago, within three days.
    advance_to(&server, midnight, Duration::from_secs(86_400 + 60));
    let r = tick_now(&server);
    assert_eq!(r.queued.len(), 1, "{r:?}");
    assert_eq!(server.admin().job_ended(&r.queued[0])["kind"], "retention");
    assert_eq!(r.skipped.len(), 1, "{r:?}");
    let skipped = server
        .admin()
        .get(&format!("/api/v1/jobs/{}", r.skipped[0]))
        .expect(200);
    assert_eq!(skipped["kind"], "verify");
    assert_eq!(skipped["state"], "skipped");
    assert!(
        skipped["error"]
            .as_str()
            .unwrap()
            .contains("reverify_after_days")
    );

    // Three days after the verify, it is outdated: verified again.
    advance_to(&server, midnight, Duration::from_secs(3 * 86_400 + 60));
    let r = tick_now(&server);
    assert_eq!(r.queued.len(), 2, "{r:?}");
    assert!(r.skipped.is_empty(), "{r:?}");
}

#[test]
fn a_sync_job_on_a_schedule_is_queued_when_its_time_passes_and_moves_to_its_next_time() {
    let server = start();
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Synced", None);
    let (remote, mirror) = server.self_remote(&admin, &tenant, "scheduled");
    let created = admin
        .post(
            "/api/v1/sync-jobs",
            json!({ "remote_id": remote, "direction": "push", "vault_id": vault,
                    "remote_vault_id": mirror, "schedule": "*:0/30" }),
        )
        .expect(201);
    let id = created["id"].as_str().unwrap();
    let first = time(&created["next_run_at"]);
    assert_eq!((first.minute() % 30, first.second()), (0, 0), "{first}");
    assert!(tick_now(&server).queued.is_empty());

    advance_to(&server, first, Duration::from_secs(1));
    // Sessions end when idle: sign in anew after the clock moved.
    let admin = server.admin();
    let job = the_one_queued(&server, &admin);
    assert_eq!(
        (
            &job["kind"],
            &job["trigger"],
            &job["target_kind"],
            &job["target_id"]
        ),
        (
            &json!("sync"),
            &json!("schedule"),
            &json!("sync-job"),
            &json!(id)
        ),
        "{job}"
    );
    let listed = admin.get("/api/v1/sync-jobs").expect(200);
    let moved = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == id)
        .unwrap();
    assert_eq!(
        time(&moved["next_run_at"]),
        first + chrono::Duration::minutes(30)
    );
    // The same time does not fire twice.
    assert!(tick_now(&server).queued.is_empty());
}

fn time_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

/// "Run now" joins the run a schedule queued for later (its jitter): the open job is
/// answered, and it is due now rather than at its jittered time.
#[test]
fn run_now_brings_a_jittered_scheduled_run_forward() {
    let server = start();
    let admin = server.admin();
    let settings = json!({ "schedule": "daily", "jitter_seconds": 1800, "window_seconds": 7200 });
    let (id, due) = scheduled_item(&admin, "Jittered", settings);
    advance_to(&server, due, Duration::ZERO);
    let admin = server.admin();
    let r = tick_now(&server);
    assert_eq!(r.queued.len(), 1, "{r:?}");

    let ran = admin
        .post(&format!("/api/v1/items/{id}/run"), json!({}))
        .expect(202);
    let now = DateTime::from_timestamp_millis(server.state.now()).unwrap();
    assert_eq!(ran["id"], r.queued[0].as_str(), "the open run answers");
    let job = admin
        .get(&format!("/api/v1/jobs/{}", r.queued[0]))
        .expect(200);
    assert!(time(&job["scheduled_at"]) <= now, "{job}");
}
