//! Checks the suites share: a burst of guesses, the files under a directory, an unbroken
//! audit chain.

use std::path::PathBuf;

use super::Server;

/// `n` simultaneous sign-ins at `email` with a wrong password, sent to `nodes` in turn:
/// (guesses checked, guesses refused as throttled).
pub fn burst_of_guesses(nodes: &[&Server], email: &str, n: usize) -> (usize, usize) {
    let results: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let node = nodes[i % nodes.len()];
                s.spawn(move || node.login(email, "a-wrong-guess-123").status)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = results.iter().filter(|s| **s == 401).count();
    let refused = results.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + refused, n, "only 401 and 429: {results:?}");
    (checked, refused)
}

/// Every file under `dir`, at any depth.
pub fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// Requires the events of each tenant (given in sequence order, as the audit API lists
/// them) to form an unbroken chain: sequence numbers 1, 2, 3, … and each `prev_hash` the
/// `hash` of the event before it in that tenant (empty for the first). Checked here by
/// hand, not with `loop_api::audit`, so the chain code cannot vouch for itself.
pub fn assert_chained(events: &[loop_api::AuditEvent]) {
    let mut last: std::collections::HashMap<&str, (u64, &str)> = Default::default();
    for e in events {
        let (seq, hash) = last.get(e.tenant_id.as_str()).copied().unwrap_or((0, ""));
        assert_eq!(
            (e.seq, e.prev_hash.as_str()),
            (seq + 1, hash),
            "tenant {} event {} ({}) does not follow the event before it",
            e.tenant_id,
            e.seq,
            e.action
        );
        assert_eq!(e.hash.len(), 64, "event {} has no hash", e.seq);
        last.insert(&e.tenant_id, (e.seq, &e.hash));
    }
}

/// An erased tenant's deletion certificate, once its erasure job issued it (waits up to a
/// minute), as JSON; its `sha256` is checked against its text and the audit chain.
pub fn certificate(admin: &super::Caller<'_>, tenant: &str) -> serde_json::Value {
    for _ in 0..1200 {
        let r = admin.server().call(
            "get",
            &format!("/api/v1/tenants/{tenant}/erasure-certificate"),
            Some(&admin.secret),
            None,
        );
        if r.status == 200 {
            let c = r.json();
            let body = c["body"].as_str().unwrap();
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body.as_bytes());
            assert_eq!(
                c["sha256"],
                hex::encode(digest.as_ref()),
                "the hash of the text"
            );
            let recorded = admin
                .audit_events()
                .into_iter()
                .find(|e| e.tenant_id == tenant && e.action == "tenant.erasure_certificate")
                .expect("the certificate in the audit log");
            assert_eq!(recorded.details["sha256"], c["sha256"]);
            return serde_json::from_str(body).expect("the certificate is JSON");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("no deletion certificate for {tenant}");
}
