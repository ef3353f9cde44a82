//! Places the erasure job cannot reach for a day of attempts: a destination no node running
//! it has (removed from the configuration), and another server that stays unreachable. Each
//! is tried again first; after 24 attempts (about a day with the runner's backoff) it is
//! named as out of reach, the rest is certified, and the erasure ends.

use super::remote_copies::{acme_with_a_pack, other_operator};
use super::*;

use std::time::Duration;

/// Attempts after which a place is given up (`REMOTE_ATTEMPTS` in `jobs::erase_tenant`).
const GIVEN_UP_AFTER: i64 = 24;

/// Waits until the tenant-erasure job `job` failed its first attempt for now (queued again,
/// with an error saying `why`), checks that nothing is certified yet, then records the
/// attempts as one short of the limit (as a day of retries would have) and lets the next
/// one run: the certificate that ends it.
fn given_up_after_a_day(
    server: &Server,
    admin: &Caller<'_>,
    tenant: &str,
    job: &str,
    why: &str,
) -> Value {
    let path = format!("/api/v1/jobs/{job}");
    let mut tried = admin.get(&path).expect(200);
    for _ in 0..1200 {
        if tried["attempts"].as_u64() >= Some(1) && tried["state"] == "queued" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        tried = admin.get(&path).expect(200);
    }
    assert_eq!(tried["state"], "queued", "{tried:#}");
    assert!(tried["error"].as_str().unwrap().contains(why), "{tried:#}");
    admin
        .get(&format!("/api/v1/tenants/{tenant}/erasure-certificate"))
        .expect_problem(404, "not_found");

    server
        .block_on(
            sqlx::query("UPDATE jobs SET attempts = $1 WHERE id = $2")
                .bind(GIVEN_UP_AFTER - 1)
                .bind(job)
                .execute(&server.state.db.pool),
        )
        .unwrap();
    server.advance(Duration::from_secs(2 * 3600));
    // Sessions end within those hours: a new one.
    let admin = server.admin();
    let ended = admin.job_ended(job);
    // Ended, with the place out of reach as its warning.
    assert_eq!(ended["state"], "succeeded-with-warnings", "{ended:#}");
    assert_eq!(ended["attempts"], GIVEN_UP_AFTER, "{ended:#}");
    let cert = support::certificate(&admin, tenant);
    assert_eq!(cert["complete"], false, "{cert:#}");
    cert
}

/// The certificate's places of `vault` at `place`.
fn place<'c>(cert: &'c Value, vault: &str, place: &str) -> &'c Value {
    cert["places"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["vault_id"] == vault && p["place"] == place)
        .unwrap_or_else(|| panic!("{vault} at {place} in {cert:#}"))
}

/// A tenant whose vault has a replica at a destination later removed from the
/// configuration, and a second vault whose replica there was removed before (a third's too,
/// but its own erasure found that place empty): the erasure
/// destroys what it can reach at once (answering 200, not failing on the place it cannot),
/// says which places it did not reach, tries them again, and after a day of attempts names
/// both as out of reach in a certificate that is not complete, rather than retrying for ever
/// and never forgetting the tenant's people.
#[test]
fn a_destination_no_node_has_is_named_out_of_reach_after_a_day_of_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let with = |names: &'static [&'static str]| {
        let data = data.clone();
        move |c: &mut loop_server::Config| {
            c.data_dir = data;
            support::with_destinations(c, names);
            c.jobs.concurrency = 0;
        }
    };
    let before = Server::start_with(with(&["local", "spare"]));
    let admin = before.admin();
    let (tenant, kept) = support::vault::customer_with_vault(&admin, "Acme", None);
    admin
        .post(
            &format!("/api/v1/vaults/{kept}/replicas"),
            json!({ "destination": "spare" }),
        )
        .expect(201);
    let other = id(&admin
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": tenant, "name": "other", "destination": "local" }),
        )
        .expect(201));
    // Its replica removed; and a third vault's, whose own erasure found it empty.
    let emptied = id(&admin
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": tenant, "name": "emptied", "destination": "local" }),
        )
        .expect(201));
    for vault in [&other, &emptied] {
        let replicas = format!("/api/v1/vaults/{vault}/replicas");
        let removed = id(&admin
            .post(&replicas, json!({ "destination": "spare" }))
            .expect(201));
        let job = admin.delete(&format!("{replicas}/{removed}")).expect(202);
        if vault == &emptied {
            before
                .block_on(
                    sqlx::query("UPDATE jobs SET state = 'succeeded' WHERE id = $1")
                        .bind(id(&job))
                        .execute(&before.state.db.pool),
                )
                .unwrap();
        }
    }
    drop(admin);

    // Every node now lacks `spare`.
    let database = before.stop();
    let shared = database.is_some();
    let server = Server::start_on(database, |c| {
        with(&["local"])(c);
        c.jobs.concurrency = 2;
    });
    if shared {
        // Leases of the stopped node (it ran no jobs, but say so) have lapsed.
        server.advance(Duration::from_secs(3_660));
    }
    let admin = server.admin();
    let report = super::acme_erased(&admin, &tenant);
    let erased = report["vaults"].as_array().unwrap();
    let of = |v: &str| erased.iter().find(|e| e["vault_id"] == v).unwrap();
    assert_eq!(of(&kept)["destination"], "local", "{report:#}");
    assert_eq!(
        of(&kept)["destinations_not_reached"],
        json!(["spare"]),
        "{report:#}"
    );
    assert_eq!(
        of(&other)["destinations_not_reached"],
        json!(["spare"]),
        "{report:#}"
    );
    assert!(
        !of(&kept)["key_slots_deleted"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{report:#}"
    );

    let job = report["erasure_job_id"].as_str().unwrap();
    let cert = given_up_after_a_day(&server, &admin, &tenant, job, "not configured");
    for vault in [&kept, &other] {
        let at_spare = place(&cert, vault, "spare");
        assert!(at_spare["objects_left"].is_null(), "{at_spare}");
        assert!(at_spare["verified_at"].is_null(), "{at_spare}");
        let note = at_spare["note"].as_str().unwrap();
        assert!(
            note.contains("not configured") && note.contains("outside this server's reach"),
            "{at_spare}"
        );
        assert_eq!(place(&cert, vault, "local")["objects_left"], 0, "{cert:#}");
    }
    // The replica its own erasure emptied is not held out of reach.
    let places = cert["places"].as_array().unwrap();
    assert!(
        !places
            .iter()
            .any(|p| p["vault_id"] == emptied.as_str() && p["place"] == "spare"),
        "{cert:#}"
    );
    assert_eq!(
        place(&cert, &emptied, "local")["objects_left"],
        0,
        "{cert:#}"
    );
}

/// A copy at another server that stays unreachable after the erasure started is tried
/// again, and after a day of attempts named as out of reach.
#[test]
fn a_remote_unreachable_for_a_day_of_attempts_is_named_out_of_reach() {
    let server = Server::start();
    let (other, copy, token) = other_operator();
    let admin = server.admin();
    let (tenant, vault, name) = acme_with_a_pack(&server, &admin, 6);
    super::push_to(&admin, &tenant, &vault, (&other, &copy, &token));
    let there = other.data_dir.join("vaults").join(&copy);
    // The other server goes away, keeping what it holds.
    let kept = tempfile::tempdir().unwrap();
    let held = kept.path().join("copy");
    std::fs::rename(&there, &held).unwrap();
    drop(other);

    let report = super::acme_erased(&admin, &tenant);
    let job = report["erasure_job_id"].as_str().unwrap();
    let cert = given_up_after_a_day(&server, &admin, &tenant, job, "remote's vault");
    let remote = cert["places"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "remote")
        .unwrap_or_else(|| panic!("the remote copy in {cert:#}"));
    assert!(
        remote["place"].as_str().unwrap().contains(copy.as_str()),
        "{remote}"
    );
    assert!(remote["objects_left"].is_null(), "{remote}");
    let note = remote["note"].as_str().unwrap();
    assert!(
        note.contains("not reached in 24 attempts") && note.contains("outside this server's reach"),
        "{remote}"
    );
    assert_eq!(place(&cert, &vault, "local")["objects_left"], 0, "{cert:#}");
    // The certificate says what is true: the copy is still held there.
    assert!(
        support::files_under(&held)
            .iter()
            .any(|p| p.ends_with(&name))
    );
}
