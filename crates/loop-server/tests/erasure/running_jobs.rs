//! Jobs under way when the tenant is erased: each is asked to stop, and the erasure goes
//! through the tenant's places only once none runs any more, so nothing is copied into a
//! place after it was found empty.

use super::*;
use remote_copies::{other_operator, remote_to};
use support::files_under;
use support::vault::{big_pack, customer_with_vault, holder};

/// A push of Acme's vault (three packs) to another operator, under way: at 100 bytes a
/// second each object waits for the ones before it, so it runs for several seconds; waited
/// for until its first object arrived there.
struct PushUnderWay {
    tenant: String,
    vault: String,
    /// The other operator's server: bound by the test, so that it runs until the test ends.
    _other: Server,
    /// The copy's directory there.
    at_other: std::path::PathBuf,
    push: String,
}

fn a_push_under_way(server: &Server, admin: &Caller<'_>, remove_vanished: bool) -> PushUnderWay {
    let (tenant, vault) = customer_with_vault(admin, "Acme", None);
    let writer = holder(server, admin, &tenant, &vault, &["backup"]);
    for n in 1..=3u8 {
        writer
            .put("data", &hex::encode([n; 32]), &big_pack([n; 32], 400))
            .expect(201);
    }
    let (other, copy, token) = other_operator();
    let remote = remote_to(admin, &tenant, &other, &token);
    let sync = id(&admin
        .post(
            "/api/v1/sync-jobs",
            json!({ "remote_id": remote, "direction": "push", "vault_id": vault,
                    "remote_vault_id": copy, "bytes_per_sec": 100,
                    "remove_vanished": remove_vanished }),
        )
        .expect(201));
    let push = id(&admin
        .post(&format!("/api/v1/sync-jobs/{sync}/run"), json!({}))
        .expect(202));
    let at_other = other.data_dir.join("vaults").join(&copy);
    for waited in 0.. {
        if !files_under(&at_other).is_empty() {
            break;
        }
        assert!(waited < 600, "the push never began");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    PushUnderWay {
        tenant,
        vault,
        _other: other,
        at_other,
        push,
    }
}

#[test]
fn a_push_under_way_when_the_tenant_is_erased_has_stopped_before_its_copy_is_erased() {
    // A job notices a cancel at its lease renewal (a third of the lease).
    let server = Server::start_with(|c| c.jobs.lease_seconds = 3);
    let admin = server.admin();
    let PushUnderWay {
        tenant,
        at_other,
        push,
        _other,
        ..
    } = a_push_under_way(&server, &admin, false);

    let report = admin
        .post(
            &format!("/api/v1/tenants/{tenant}/erase"),
            json!({ "confirm": "Acme" }),
        )
        .expect(200);
    let erasure = admin.job_ended(report["erasure_job_id"].as_str().unwrap());
    assert_eq!(erasure["state"], "succeeded", "{erasure:#}");
    let pushed = admin.get(&format!("/api/v1/jobs/{push}")).expect(200);
    assert_eq!(
        pushed["state"], "cancelled",
        "the push stopped before the erasure went through the places: {pushed:#}"
    );
    let cert = support::certificate(&admin, &tenant);
    assert_eq!(cert["complete"], true, "{cert:#}");
    assert!(
        files_under(&at_other).is_empty(),
        "{:?}",
        files_under(&at_other)
    );
    let log = admin
        .get(&format!(
            "/api/v1/jobs/{}/log",
            report["erasure_job_id"].as_str().unwrap()
        ))
        .expect(200);
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"].as_str().unwrap().contains(&push)),
        "the erasure says what it waited for: {log:#}"
    );
}

/// A push (that removes at the remote what the vault no longer holds) is under way when its
/// vault is deleted: the push is stopped with its sync job, and the vault's erasure waits
/// for it before it empties the vault and forgets its records. Otherwise the push would
/// take every object for one removed on purpose and delete the copy at the remote, which
/// the docs say stays (remembered for the tenant's erasure).
#[test]
fn a_push_under_way_when_its_vault_is_deleted_stops_and_its_copy_stays() {
    let server = Server::start_with(|c| c.jobs.lease_seconds = 3);
    let admin = server.admin();
    let PushUnderWay {
        vault,
        at_other,
        push,
        _other,
        ..
    } = a_push_under_way(&server, &admin, true);

    let erasure = admin.delete(&format!("/api/v1/vaults/{vault}")).expect(202);
    let erasure = admin.job_ended(erasure["id"].as_str().unwrap());
    assert_eq!(erasure["state"], "succeeded", "{erasure:#}");
    let pushed = admin.job_ended(&push);
    assert_eq!(pushed["state"], "cancelled", "{pushed:#}");
    assert!(
        !files_under(&at_other).is_empty(),
        "the copy at the remote was removed"
    );
}
