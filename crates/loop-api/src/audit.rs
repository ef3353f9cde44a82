//! The audit log's hash chain.
//!
//! Each tenant's events form one chain. An event's hash covers its sequence number, every
//! recorded field and the previous event's hash:
//!
//! ```text
//! hash = BLAKE3-derive_key("loop audit event v1",
//!            u64 seq || field(tenant) || field(at) || field(actor_kind) || field(actor_id)
//!            || field(action) || field(object_kind) || field(object_id) || field(outcome)
//!            || field(ip) || field(details) || prev_hash[32])
//! field(s) = u32 len (LE) || UTF-8 bytes
//! ```
//!
//! The first event of a tenant has `prev_hash` of 32 zero bytes. Changing, inserting,
//! removing or reordering any event breaks every later link. Personal data never enters an
//! event (people are named by ID), so erasing a person leaves the chain intact.

use crate::{AuditEvent, AuditHead};

const CONTEXT: &str = "loop audit event v1";

/// The hash of `event`, given the hash of the event before it (hex; empty for the first).
pub fn chain_hash(event: &AuditEvent, prev_hash: &str) -> String {
    let mut h = blake3::Hasher::new_derive_key(CONTEXT);
    h.update(&event.seq.to_le_bytes());
    for field in [
        event.tenant_id.as_str(),
        &event
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        &event.actor_kind,
        event.actor_id.as_deref().unwrap_or(""),
        &event.action,
        &event.object_kind,
        event.object_id.as_deref().unwrap_or(""),
        &event.outcome,
        event.ip.as_deref().unwrap_or(""),
        &event.details.to_string(),
    ] {
        h.update(&(field.len() as u32).to_le_bytes());
        h.update(field.as_bytes());
    }
    let mut prev = [0u8; 32];
    if !prev_hash.is_empty() {
        // A malformed previous hash simply yields a different (failing) link.
        let _ = hex::decode_to_slice(prev_hash, &mut prev);
    }
    h.update(&prev);
    h.finalize().to_hex().to_string()
}

/// Where a chain first fails to verify.
#[derive(Debug, PartialEq, Eq)]
pub struct ChainBreak {
    pub tenant_id: String,
    pub seq: u64,
    pub reason: &'static str,
}

/// Verifies the chains of `events` (any order of tenants; each tenant's events in sequence
/// order, starting at 1). Returns the number of events checked.
pub fn verify<'a>(events: impl IntoIterator<Item = &'a AuditEvent>) -> Result<u64, ChainBreak> {
    let mut heads: std::collections::HashMap<&str, (u64, &str)> = Default::default();
    let mut n = 0;
    for e in events {
        let (last_seq, last_hash) = heads.get(e.tenant_id.as_str()).copied().unwrap_or((0, ""));
        let fail = |reason| ChainBreak {
            tenant_id: e.tenant_id.clone(),
            seq: e.seq,
            reason,
        };
        if e.seq != last_seq + 1 {
            return Err(fail("sequence gap: an event is missing or out of order"));
        }
        if e.prev_hash != last_hash {
            return Err(fail("previous hash does not match the event before"));
        }
        if chain_hash(e, &e.prev_hash) != e.hash {
            return Err(fail("hash does not match the event's contents"));
        }
        heads.insert(&e.tenant_id, (e.seq, &e.hash));
        n += 1;
    }
    Ok(n)
}

/// Checks that `events` reach each chain head taken *before* the export: the event at the
/// head's sequence number must be there with the head's hash. This catches an export (or a
/// database) cut short at its end, which chain links alone cannot show.
pub fn check_heads(events: &[AuditEvent], heads: &[AuditHead]) -> Result<(), ChainBreak> {
    for h in heads {
        let found = events
            .iter()
            .find(|e| e.tenant_id == h.tenant_id && e.seq == h.seq);
        match found {
            Some(e) if e.hash == h.hash => {}
            Some(_) => {
                return Err(ChainBreak {
                    tenant_id: h.tenant_id.clone(),
                    seq: h.seq,
                    reason: "the event at the chain head has another hash",
                });
            }
            None => {
                return Err(ChainBreak {
                    tenant_id: h.tenant_id.clone(),
                    seq: h.seq,
                    reason: "events up to the chain head are missing",
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditEvent> {
        let mut out: Vec<AuditEvent> = Vec::new();
        for seq in 1..=n {
            let prev = out.last().map(|e| e.hash.clone()).unwrap_or_default();
            let mut e = AuditEvent {
                seq,
                tenant_id: "tn_a".into(),
                at: chrono::DateTime::from_timestamp(1_700_000_000 + seq as i64, 0).unwrap(),
                actor_kind: "user".into(),
                actor_id: Some("us_1".into()),
                action: "vault.create".into(),
                object_kind: "vault".into(),
                object_id: Some(format!("vt_{seq}")),
                outcome: "success".into(),
                ip: Some("127.0.0.1".into()),
                details: serde_json::json!({"n": seq}),
                prev_hash: prev.clone(),
                hash: String::new(),
            };
            e.hash = chain_hash(&e, &prev);
            out.push(e);
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
    }

    #[test]
    fn an_edited_event_breaks_the_chain() {
        let mut c = chain(5);
        c[2].outcome = "failure".into();
        assert_eq!(verify(&c).unwrap_err().seq, 3);
    }

    #[test]
    fn a_removed_event_breaks_the_chain() {
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify(&c).unwrap_err().seq, 3);
    }

    #[test]
    fn a_log_cut_at_its_end_fails_against_the_head() {
        let c = chain(5);
        let head = AuditHead {
            tenant_id: "tn_a".into(),
            seq: 5,
            hash: c[4].hash.clone(),
        };
        assert_eq!(check_heads(&c, std::slice::from_ref(&head)), Ok(()));
        let cut = &c[..4];
        assert_eq!(verify(cut), Ok(4));
        assert_eq!(check_heads(cut, &[head]).unwrap_err().seq, 5);
    }

    #[test]
    fn a_rehashed_edit_still_breaks_the_next_link() {
        let mut c = chain(5);
        c[2].details = serde_json::json!({"n": 99});
        c[2].hash = chain_hash(&c[2], &c[2].prev_hash.clone());
        let err = verify(&c).unwrap_err();
        assert_eq!(
            (err.seq, err.reason),
            (4, "previous hash does not match the event before")
        );
    }
}
