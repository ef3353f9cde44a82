//! Writes under way as a person is erased: what they would keep of the person lands before
//! the erasure (and is erased with the rest) or not at all.

use loop_api::{ActorKind, Outcome};
use loop_server::db::audit::{self, NewEvent, Personal};

use super::*;

/// Zoë, an admin of her bakery: (the bakery, her ID).
fn zoe_at_her_bakery(admin: &support::Caller<'_>) -> (String, String) {
    let tenant = admin.customer_tenant("Gent Bakery");
    let zoe = admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": tenant, "email": EMAIL, "first_name": FIRST,
                    "last_name": LAST, "password": USER_PASSWORD, "role": "admin" }),
        )
        .expect(201)["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    (tenant, zoe)
}

/// A request of hers under way as she is erased writes its audit event after the erasure:
/// the event is kept, her address and browser are not, and the chain verifies. A change to
/// her account asked for after the erasure is `409 user_erased`, not a role on the
/// pseudonym.
#[test]
fn what_a_request_under_way_would_keep_of_an_erased_person_is_not_written() {
    let server = Server::start();
    let admin = server.admin();
    let (tenant, zoe) = zoe_at_her_bakery(&admin);
    erase(&admin, &zoe, EMAIL);

    // Her request, authenticated before the erasure, records what it did after it.
    let late_ip = "198.51.100.77";
    server.block_on(async {
        let mut tx = server.state.db.begin().await.unwrap();
        let event = NewEvent {
            tenant_id: tenant.clone(),
            actor_kind: ActorKind::User,
            actor_id: Some(zoe.clone()),
            action: "device.create",
            object_kind: "device",
            object_id: None,
            outcome: Outcome::Success,
            personal: Personal {
                user_id: Some(zoe.clone()),
                ip: Some(late_ip.into()),
                user_agent: Some(HER_BROWSER.into()),
            },
            details: json!({}),
        };
        audit::append(&mut tx, event, server.state.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    });
    let events = admin.audit_events();
    let late = events
        .iter()
        .find(|e| e.action == "device.create" && e.actor_id.as_deref() == Some(zoe.as_str()))
        .expect("the late event is kept");
    assert_eq!((&late.ip, &late.user_agent), (&None, &None), "{late:?}");
    support::assert_chained(&events);

    admin
        .post(
            &format!("/api/v1/users/{zoe}/roles"),
            json!({ "tenant_id": tenant, "role": "auditor" }),
        )
        .expect_problem(409, "user_erased");
}

/// A reader of an older snapshot (a long listing) while she is erased keeps SQLite's
/// write-ahead log from being truncated, longer than a connection waits for a lock: the
/// erasure tries again until the reader is done, so no copy of her address stays in the
/// database's files.
#[test]
fn an_erasure_truncates_the_log_once_a_reader_of_an_older_snapshot_is_done() {
    let server = Server::start();
    if server.state.db.backend != loop_server::db::Backend::Sqlite {
        eprintln!("SQLite's write-ahead log only: nothing to test on PostgreSQL");
        return;
    }
    let admin = server.admin();
    let (_, zoe) = zoe_at_her_bakery(&admin);
    // Another process's reader: a connection of its own to the database's file.
    let url = format!("sqlite://{}", server.data_dir.join("loop.db").display());
    let mut reader = server
        .block_on(<sqlx::AnyConnection as sqlx::Connection>::connect(&url))
        .unwrap();
    server
        .block_on(sqlx::query("BEGIN").execute(&mut reader))
        .unwrap();
    server
        .block_on(sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(&mut reader))
        .unwrap();
    std::thread::scope(|s| {
        let server = &server;
        s.spawn(move || {
            // Longer than a checkpoint waits for the readers (the connections' busy
            // timeout, 10 s).
            std::thread::sleep(Duration::from_secs(14));
            server.block_on(async move {
                sqlx::query("COMMIT").execute(&mut reader).await.unwrap();
                sqlx::Connection::close(reader).await.unwrap();
            });
        });
        erase(&admin, &zoe, EMAIL);
    });
    assert!(!server.database_holds(EMAIL));
}
