//! What a hostile source or a long wait for a copy's turn cannot do: hold a job hostage.

use super::*;
use crate::config::{BackendConfig, DestinationConfig};
use crate::destinations::Destinations;

/// A vault `v` at a local destination in `dir`.
fn local(dir: &std::path::Path) -> Place {
    let destinations = Destinations::open(&[DestinationConfig {
        name: "here".into(),
        jurisdiction: "eu".into(),
        backend: BackendConfig::Local {
            path: dir.to_path_buf(),
        },
    }])
    .unwrap();
    Place::stored(destinations.get("here").unwrap(), "v")
}

/// A vault on a server that is not there (nothing listens on port 9).
fn remote_nowhere(max_object: u64) -> Place {
    let conn = loop_agent::Connection::new(
        "https://127.0.0.1:9",
        &loop_agent::Trust::Fingerprint("00".repeat(32)),
    )
    .unwrap();
    Place {
        vault_id: "v".into(),
        at: At::Remote {
            storage: Arc::new(loop_agent::VaultStorage::new(conn, "v", "token")),
            max_object,
        },
    }
}

#[test]
fn an_object_listed_larger_than_a_read_may_be_is_refused_before_it_waits_its_turn() {
    // Made (and dropped) outside the runtime: a remote's client has a runtime of its own.
    let (source, target) = (remote_nowhere(1 << 20), remote_nowhere(1 << 20));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let pace = Pace::new(1 << 20);
        let asked = tokio::time::Instant::now();
        let name = "ab".repeat(32);
        let e = copy(
            &source,
            &target,
            Some(&pace),
            FileKind::Pack,
            &name,
            1 << 40,
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string().contains("lists it at 1099511627776 bytes"),
            "{e}"
        );
        // Refused at once: the pace's clock (paused, moved only by waits) did not move.
        assert_eq!(tokio::time::Instant::now(), asked);
    });
}

#[tokio::test(start_paused = true)]
async fn a_cancel_is_heard_while_a_copy_waits_its_turn() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (source, target) = (local(a.path()), local(b.path()));
    let At::Stored(d) = &source.at else {
        unreachable!()
    };
    let (first, second) = ("cd".repeat(32), "ef".repeat(32));
    for name in [&first, &second] {
        d.store
            .put(
                &d.path("v", &FileKind::Pack.path(name)),
                vec![7u8; 1 << 20].into(),
            )
            .await
            .unwrap();
    }
    // Asked nothing: the sync has no records to guard it.
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect_lazy("sqlite::memory:").unwrap();
    // At 1 byte a second the first copy goes at once and the second waits a day for its
    // turn; the job is cancelled once both have started.
    let opts = SyncOptions {
        transfers: 2,
        remove_vanished: false,
        bytes_per_sec: Some(1),
        guard: None,
    };
    let asked = std::sync::atomic::AtomicU32::new(0);
    let check = || match asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
        0 | 1 => Ok(()),
        _ => Err("cancelled".to_string()),
    };
    let got = sync(&pool, &source, &target, &opts, &check, &mut |_| {}).await;
    assert!(
        matches!(&got, Err(SyncError::Stopped(m)) if m == "cancelled"),
        "{got:?}"
    );
    let held = target.list(FileKind::Pack).await.unwrap();
    assert!(!held.contains_key(&second), "{held:?}");
}

/// Of what a replica verify found missing, what arrived at the primary since the replica's
/// last replication began (read after the listings) is lagging, and what was pruned while
/// the places were listed is gone: neither is held against the replica. What it lacks of
/// the rest, recorded before and after, is.
#[test]
fn only_what_a_replica_still_owes_counts_as_missing() {
    let key = |name: &str| (FileKind::Pack, name.to_string());
    let stored = |names: &[&str]| -> StoredCopies {
        names
            .iter()
            .map(|n| {
                let copy = AsStored {
                    size: 1,
                    blake3: None,
                };
                (key(n), copy)
            })
            .collect()
    };
    let before = stored(&["owed", "pruned", "legacy"]);
    let after = stored(&["owed", "arrived"]);
    let young: HashSet<_> = [key("arrived")].into_iter().collect();
    let mut missing: Vec<String> = ["owed", "pruned", "arrived", "unrecorded"]
        .iter()
        .map(|n| FileKind::Pack.path(n))
        .collect();
    still_owed(&mut missing, &young, &before, &after);
    assert_eq!(
        missing,
        [
            FileKind::Pack.path("owed"),
            FileKind::Pack.path("unrecorded")
        ]
    );
}
