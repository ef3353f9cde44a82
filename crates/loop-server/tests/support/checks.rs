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
