//! Promotions that would lose what the old primary holds: a replica behind it, and an
//! upload still under way when the replica is promoted.

use std::time::Duration;

use serde_json::json;

use super::support::Server;
use super::support::vault::*;
use super::{replicate, replicated_vault, support};

/// Without a lock too: a replica that lacks what the primary still holds is not promoted
/// (the promotion would drop it, and the replication after it remove it from the old
/// primary); once replicated it is, and nothing is lost.
#[test]
fn a_replica_lacking_what_the_primary_holds_is_promoted_only_once_in_step() {
    let server = Server::start_with(support::with_spare);
    let admin = server.admin();
    let (tenant, vault, replicas, replica) = replicated_vault(&admin, "Busy");
    let writer = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let newest = hex::encode([9u8; 32]);
    writer
        .put("data", &newest, &pack_object([9u8; 32]))
        .expect(201);

    let promote = format!("{replicas}/{replica}/promote");
    admin
        .post(&promote, json!({}))
        .expect_problem(409, "replica_behind");
    replicate(&admin, &vault);
    assert_eq!(
        admin.post(&promote, json!({})).expect(200)["destination"],
        "spare"
    );
    replicate(&admin, &vault);
    let reader = holder(&server, &admin, &tenant, &vault, &["restore"]);
    assert!(reader.names("data").contains(&newest));
    let old_primary = server.data_dir.join("vaults").join(&vault).join("data");
    assert!(
        support::files_under(&old_primary)
            .iter()
            .any(|p| p.ends_with(&newest)),
        "the old primary keeps it"
    );
}

/// An upload whose body is still arriving when its vault's replica is promoted went to the
/// old primary: it is not recorded as stored (where the new primary would never have it), the
/// client is told to send it again, and sent again it lands at the new primary.
#[test]
fn an_upload_under_way_across_a_promotion_is_sent_again_to_the_new_primary() {
    let server = Server::start_with(support::with_spare);
    let admin = server.admin();
    let (tenant, vault, replicas, replica) = replicated_vault(&admin, "Moving");
    let writer = holder(&server, &admin, &tenant, &vault, &["backup"]);
    let object = index_object(100_000);
    let name = blake3_hex(&object);
    let writing = || -> bool {
        server
            .block_on(
                sqlx::query(
                    "SELECT 1 AS x FROM vault_objects WHERE vault_id = $1 AND state = 'writing'",
                )
                .bind(&vault)
                .fetch_optional(&server.state.db.pool),
            )
            .unwrap()
            .is_some()
    };
    let (go, held) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let upload = s.spawn(|| {
            let len = object.len() as u64;
            let req = server
                .request(reqwest::Method::PUT, &writer.path(&format!("index/{name}")))
                .bearer_auth(&writer.secret)
                .header(loop_api::CONTENT_HASH_HEADER, &name)
                .body(reqwest::blocking::Body::sized(
                    HeldBody::new(object.clone(), held),
                    len,
                ));
            let r = server.send(req);
            (r.status, r.body.to_string())
        });
        for _ in 0..1200 {
            if writing() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(writing(), "the upload holds its claim");
        admin
            .post(&format!("{replicas}/{replica}/promote"), json!({}))
            .expect(200);
        go.send(()).unwrap();
        let (status, body) = upload.join().unwrap();
        assert_eq!(status, 409, "{body}");
        assert!(
            body.contains("vault_moved"),
            "told to send it again: {body}"
        );
    });
    let reader = holder(&server, &admin, &tenant, &vault, &["restore"]);
    assert!(!reader.names("index").contains(&name));
    writer.put("index", &name, &object).expect(201);
    assert!(reader.names("index").contains(&name));
    let at_new = server.data_dir.join("spare").join(&vault);
    assert!(
        support::files_under(&at_new)
            .iter()
            .any(|p| p.ends_with(&name)),
        "stored at the new primary"
    );
}
