//! What is made for a tenant while its erasure reads its places is erased with it.

use super::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

/// A TCP relay to `port` on loopback. While `hold` is set, a connection it accepts is
/// announced on the channel and waits, unanswered, until `hold` is cleared.
struct Relay {
    port: u16,
    hold: Arc<AtomicBool>,
    held: mpsc::Receiver<()>,
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 << 10];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Relay {
    fn to(port: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let hold = Arc::new(AtomicBool::new(false));
        let (tell, held) = mpsc::channel();
        let relay = Relay {
            port: listener.local_addr().unwrap().port(),
            hold: hold.clone(),
            held,
        };
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let (hold, tell) = (hold.clone(), tell.clone());
                std::thread::spawn(move || {
                    if hold.load(Ordering::SeqCst) {
                        let _ = tell.send(());
                        while hold.load(Ordering::SeqCst) {
                            std::thread::sleep(std::time::Duration::from_millis(20));
                        }
                    }
                    let server = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    let (c, s) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                    std::thread::spawn(move || pipe(c, s));
                    pipe(server, client);
                });
            }
        });
        relay
    }
}

/// A whole-tenant push makes the erasure list the remote's vaults before its transaction; a
/// vault made meanwhile is erased too, not left live under the erased tenant.
#[test]
fn a_vault_made_while_the_erasure_lists_a_remote_is_erased_with_the_tenant() {
    let server = Server::start();
    let (other, _, token) = other_operator();
    let relay = Relay::to(other.base.rsplit(':').next().unwrap().parse().unwrap());
    let admin = server.admin();
    let (tenant, first) = support::vault::customer_with_vault(&admin, "Acme", None);
    let remote = id(&admin
        .post(
            "/api/v1/remotes",
            json!({ "tenant_id": tenant, "name": "other",
                    "url": format!("https://127.0.0.1:{}", relay.port),
                    "fingerprint": other.fingerprint, "token": token }),
        )
        .expect(201));
    admin
        .post(
            "/api/v1/sync-jobs",
            json!({ "remote_id": remote, "direction": "push" }),
        )
        .expect(201);

    relay.hold.store(true, Ordering::SeqCst);
    let late = std::thread::scope(|s| {
        let erasing = s.spawn(|| erase_acme(&server.admin(), &tenant));
        relay
            .held
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the erasure asks the remote for its vaults");
        // The erasure waits on the remote: a vault is made now.
        let late = id(&admin
            .post(
                "/api/v1/vaults",
                json!({ "tenant_id": tenant, "name": "late", "destination": "local",
                        "key_custody": "managed" }),
            )
            .expect(201));
        relay.hold.store(false, Ordering::SeqCst);
        let cert = erasing.join().unwrap();
        let places: Vec<&str> = cert["places"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["kind"] == "destination")
            .map(|p| p["vault_id"].as_str().unwrap())
            .collect();
        assert!(places.contains(&first.as_str()), "{cert}");
        assert!(places.contains(&late.as_str()), "{cert}");
        assert_eq!(cert["complete"], true, "{cert}");
        late
    });
    let live = admin
        .get(&format!("/api/v1/vaults?tenant_id={tenant}"))
        .expect(200);
    assert_eq!(live.as_array().unwrap().len(), 0, "{live}");
    assert!(
        support::files_under(&server.data_dir.join("vaults").join(&late)).is_empty(),
        "the late vault's objects are gone"
    );
    // Once erased, nothing more is made for the tenant.
    admin
        .post(
            "/api/v1/vaults",
            json!({ "tenant_id": tenant, "name": "later", "destination": "local",
                    "key_custody": "managed" }),
        )
        .expect(410);
}

/// An upload authorised before its vault was deleted, whose body is still arriving while
/// the vault's erasure runs, never lands where the erasure already looked: the erasure
/// waits for it to end, and the vault's closing stops it at its next lease renewal.
#[test]
fn an_upload_under_way_when_its_vault_is_deleted_leaves_nothing_behind() {
    let server = Server::start_with(|c| c.limits.claim_lease_secs = 3);
    let admin = server.admin();
    let (tenant, vault) = support::vault::customer_with_vault(&admin, "Acme", None);
    let writer = support::vault::holder(&server, &admin, &tenant, &vault, &["backup"]);
    let object = support::vault::index_object(100_000);
    let name = hex::encode([7u8; 32]);
    // The lease of the upload's claim, while it holds one.
    let lease = || -> Option<i64> {
        server
            .block_on(
                sqlx::query_scalar(
                    "SELECT lease_until FROM vault_objects
                     WHERE vault_id = $1 AND state = 'writing'",
                )
                .bind(&vault)
                .fetch_optional(&server.state.db.pool),
            )
            .unwrap()
    };
    let (go, held) = mpsc::channel();
    std::thread::scope(|s| {
        let upload = s.spawn(|| {
            let len = object.len() as u64;
            let body = support::vault::HeldBody::new(object.clone(), held);
            let req = server
                .request(reqwest::Method::PUT, &writer.path(&format!("index/{name}")))
                .bearer_auth(&writer.secret)
                .header(
                    loop_api::CONTENT_HASH_HEADER,
                    support::vault::blake3_hex(&object),
                )
                .body(reqwest::blocking::Body::sized(body, len));
            server.send(req).status
        });
        for _ in 0..1200 {
            if lease().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(lease().is_some(), "the upload holds its claim");

        let job = id(&admin.delete(&format!("/api/v1/vaults/{vault}")).expect(202));
        // The erasure runs until it ends, or until it says it waits for the upload.
        for _ in 0..1200 {
            let state = admin.get(&format!("/api/v1/jobs/{job}")).expect(200)["state"].clone();
            let log = admin.get(&format!("/api/v1/jobs/{job}/log")).expect(200);
            if !["queued", "running"].contains(&state.as_str().unwrap())
                || log.to_string().contains("waiting for 1 uploads")
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // Its lease is renewed once more (unless the erasure dropped its claim), which tells
        // it the vault closed.
        let renewed = lease();
        for _ in 0..1200 {
            if lease().is_none_or(|l| Some(l) > renewed) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        go.send(()).unwrap();
        let status = upload.join().unwrap();
        let ended = admin.job_ended(&job);
        assert!(
            support::files_under(&server.data_dir.join("vaults").join(&vault)).is_empty(),
            "nothing of the vault is left at its destination"
        );
        assert_eq!(status, 409, "a closed vault stores nothing more");
        assert_eq!(ended["state"], "succeeded", "{ended}");
    });
}
