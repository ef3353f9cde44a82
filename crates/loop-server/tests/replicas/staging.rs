//! A direct upload's staging objects are swept where its URL put them, also when a promotion
//! moved the vault to another destination since; such an upload is not completed at the new
//! destination.

use std::time::Duration;

use loop_server::db::direct::{self, DirectUpload};
use object_store::ObjectStoreExt as _;
use serde_json::json;

use super::replicated_vault;
use super::support::vault::token;
use super::support::{self, Server};

#[test]
fn staging_objects_are_swept_at_the_destination_they_were_put_on_after_a_promotion() {
    let server = Server::start_with(|c| {
        support::with_spare(c);
        // The test sweeps; the scheduler's own sweep waits.
        c.jobs.scheduler_seconds = 86_400;
    });
    let admin = server.admin();
    let (tenant, vault, replicas, replica) = replicated_vault(&admin, "Moved");
    let (token_id, secret) = token(&admin, &tenant, &["backup"], None);
    let local = server.state.destinations.get("local").unwrap().clone();
    // An upload begun at the primary, whose client put part of a pack there and went away.
    let upload = begun_at_local(&server, &vault, &token_id, "du_moved", [9u8; 32]);
    let staged = server.block_on(async {
        let path = local.staging_path(&vault, &upload.id);
        local
            .store
            .put(&path, b"partial".to_vec().into())
            .await
            .unwrap();
        path
    });
    let promoted = admin
        .post(&format!("{replicas}/{replica}/promote"), json!({}))
        .expect(200);
    assert_eq!(promoted["destination"], "spare");
    let name = hex::encode([9u8; 32]);
    let completed = server.call(
        "post",
        &format!("/vaults/{vault}/v1/data/{name}/direct/complete"),
        Some(&secret),
        Some(&json!({ "upload_id": "du_moved" })),
    );
    assert_eq!(completed.status, 410, "{}", completed.body);
    assert_eq!(completed.json()["code"], "upload_expired");
    // Past the URL's expiry and the sweep's grace.
    server.advance(Duration::from_secs(3600));
    server.block_on(async {
        let swept = loop_server::vault_objects::direct::sweep(&server.state)
            .await
            .unwrap();
        assert_eq!(swept, 1);
        assert!(
            matches!(
                local.store.head(&staged).await,
                Err(object_store::Error::NotFound { .. })
            ),
            "the staging object at the old primary is gone"
        );
    });
}

/// A completion that a promotion ended (the pack went to the old primary, so nothing was
/// recorded) and that the client sends again: it is told to upload again (`410
/// upload_expired`, which the client answers with a new upload to the new primary), not that
/// there is no such upload, which would fail the backup.
#[test]
fn a_completion_sent_again_after_a_promotion_ended_it_is_told_to_upload_again() {
    let server = Server::start_with(support::with_spare);
    let admin = server.admin();
    let (tenant, vault, replicas, replica) = replicated_vault(&admin, "Ended");
    let (token_id, secret) = token(&admin, &tenant, &["backup"], None);
    let upload = begun_at_local(&server, &vault, &token_id, "du_ended", [8u8; 32]);
    let name = upload.name.clone();
    // The first completion's end: over, with the pack where the vault no longer is.
    server.block_on(async {
        direct::complete(&server.state.db.pool, &upload.id, server.state.now())
            .await
            .unwrap();
    });
    admin
        .post(&format!("{replicas}/{replica}/promote"), json!({}))
        .expect(200);
    let again = server.call(
        "post",
        &format!("/vaults/{vault}/v1/data/{name}/direct/complete"),
        Some(&secret),
        Some(&json!({ "upload_id": "du_ended" })),
    );
    assert_eq!(again.status, 410, "{}", again.body);
    assert_eq!(again.json()["code"], "upload_expired");
}

/// A direct upload `id` of the 7-byte pack named `name` by token `token_id`, begun at the
/// vault's primary, `local`, and recorded as the server records one.
fn begun_at_local(
    server: &Server,
    vault: &str,
    token_id: &str,
    id: &str,
    name: [u8; 32],
) -> DirectUpload {
    let now = server.state.now();
    let upload = DirectUpload {
        id: id.into(),
        vault_id: vault.into(),
        kind: "data".into(),
        name: hex::encode(name),
        token_id: token_id.into(),
        size: 7,
        hash: hex::encode([0u8; 32]),
        expires_at: now + 900_000,
        completed_at: None,
        destination: Some("local".into()),
    };
    server
        .block_on(direct::insert(&server.state.db.pool, &upload, now))
        .unwrap();
    upload
}
