//! The audit log's hash chain.
//!
//! Each tenant's events form one chain: an event's hash covers its sequence number, its
//! recorded fields and the previous event's hash, so changing, inserting, removing or
//! reordering any event breaks every later link. The first event of a tenant has an empty
//! `prev_hash`. Two event formats exist, and both stay verifiable:
//!
//! ```text
//! field(s) = u32 len (LE) || UTF-8 bytes          (an absent value is the empty string)
//!
//! v1: BLAKE3-derive_key("loop audit event v1",
//!         u64 seq (LE) || field(tenant) || field(at) || field(actor_kind) || field(actor_id)
//!         || field(action) || field(object_kind) || field(object_id) || field(outcome)
//!         || field(ip) || field(details) || prev_hash[32 bytes, zero for the first])
//!
//! v2: BLAKE3-derive_key("loop audit event v2",
//!         u64 seq (LE) || field(tenant) || field(at) || field(actor_kind) || field(actor_id)
//!         || field(action) || field(object_kind) || field(object_id) || field(outcome)
//!         || field(details) || field(personal_hash) || field(prev_hash))
//!     personal_hash = BLAKE3-derive_key("loop audit personal v2",
//!                         salt[32] || field(ip) || field(user_agent))    (hex; empty if none)
//! ```
//!
//! `at` is RFC 3339 in UTC with microseconds; `details` is compact JSON. In v2 the personal
//! data (IP, user agent) lies outside the hash: only a salted commitment enters it, and the
//! salt is stored with the personal data. Erasing a person deletes both, which leaves the
//! chain verifiable and the commitment unguessable.

use crate::{AuditEvent, AuditHead};

/// The first event format: the client's IP inside the hash.
pub const V1: u32 = 1;
/// Personal data outside the hash, behind a salted commitment.
pub const V2: u32 = 2;
/// The format new events are written in.
pub const CURRENT: u32 = V2;

/// The version of an event that carries none (exports written before versions existed).
pub fn v1() -> u32 {
    V1
}

fn field(h: &mut blake3::Hasher, s: &str) {
    h.update(&(s.len() as u32).to_le_bytes());
    h.update(s.as_bytes());
}

/// The fields both versions hash in the same order, after the sequence number.
fn common_fields(h: &mut blake3::Hasher, e: &AuditEvent) {
    h.update(&e.seq.to_le_bytes());
    let at = e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    for f in [
        e.tenant_id.as_str(),
        &at,
        e.actor_kind.as_str(),
        e.actor_id.as_deref().unwrap_or(""),
        &e.action,
        &e.object_kind,
        e.object_id.as_deref().unwrap_or(""),
        e.outcome.as_str(),
    ] {
        field(h, f);
    }
}

fn hash_v1(e: &AuditEvent) -> String {
    let mut h = blake3::Hasher::new_derive_key("loop audit event v1");
    common_fields(&mut h, e);
    field(&mut h, e.ip.as_deref().unwrap_or(""));
    field(&mut h, &e.details.to_string());
    let mut prev = [0u8; 32];
    if !e.prev_hash.is_empty() {
        // A malformed previous hash yields a failing link: verify compares the text too.
        let _ = hex::decode_to_slice(&e.prev_hash, &mut prev);
    }
    h.update(&prev);
    h.finalize().to_hex().to_string()
}

fn hash_v2(e: &AuditEvent) -> String {
    let mut h = blake3::Hasher::new_derive_key("loop audit event v2");
    common_fields(&mut h, e);
    field(&mut h, &e.details.to_string());
    field(&mut h, &e.personal_hash);
    field(&mut h, &e.prev_hash);
    h.finalize().to_hex().to_string()
}

/// The hash of `event` in its own format version (`None` for a version this program does
/// not know). It covers `event.prev_hash`, the link to the event before.
pub fn chain_hash(event: &AuditEvent) -> Option<String> {
    match event.version {
        V1 => Some(hash_v1(event)),
        V2 => Some(hash_v2(event)),
        _ => None,
    }
}

/// The salted commitment to an event's personal data that a v2 hash covers (hex).
pub fn personal_hash(salt: &[u8; 32], ip: Option<&str>, user_agent: Option<&str>) -> String {
    let mut h = blake3::Hasher::new_derive_key("loop audit personal v2");
    h.update(salt);
    field(&mut h, ip.unwrap_or(""));
    field(&mut h, user_agent.unwrap_or(""));
    h.finalize().to_hex().to_string()
}

/// Whether a v2 event's personal data (`ip`, `user_agent`) is what its hash committed to:
/// `None` when there is nothing to tell (v1, or no personal data shown where none was
/// committed to or it was erased). Personal data shown on an event that committed to none,
/// or whose salt is gone (erased), was added since: `Some(false)`. The chain does not
/// depend on it, so [`verify`] does not ask.
pub fn personal_matches(e: &AuditEvent) -> Option<bool> {
    if e.version != V2 {
        return None;
    }
    let shown = e.ip.is_some() || e.user_agent.is_some();
    let Some(salt) = e
        .personal_salt
        .as_deref()
        .filter(|_| !e.personal_hash.is_empty())
    else {
        return shown.then_some(false);
    };
    let mut s = [0u8; 32];
    if hex::decode_to_slice(salt, &mut s).is_err() {
        return Some(false);
    }
    Some(personal_hash(&s, e.ip.as_deref(), e.user_agent.as_deref()) == e.personal_hash)
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
    let mut v = Verifier::default();
    for e in events {
        v.push(e)?;
    }
    Ok(v.checked())
}

/// Verifies chains an event at a time, so a long log can be read in pages: each tenant's
/// events in sequence order, starting at 1.
#[derive(Debug, Default)]
pub struct Verifier {
    /// Per tenant: the last event's sequence number, hash and format version.
    heads: std::collections::HashMap<String, (u64, String, u32)>,
    checked: u64,
}

impl Verifier {
    /// Checks the next event of its tenant's chain.
    pub fn push(&mut self, e: &AuditEvent) -> Result<(), ChainBreak> {
        let (last_seq, last_hash, last_version) = self
            .heads
            .get(e.tenant_id.as_str())
            .map(|(s, h, v)| (*s, h.as_str(), *v))
            .unwrap_or((0, "", V1));
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
        if e.version < last_version {
            return Err(fail("an event of an older format follows a newer one"));
        }
        match chain_hash(e) {
            None => return Err(fail("unknown event format version")),
            Some(h) if h != e.hash => {
                return Err(fail("hash does not match the event's contents"));
            }
            Some(_) => {}
        }
        self.heads
            .insert(e.tenant_id.clone(), (e.seq, e.hash.clone(), e.version));
        self.checked += 1;
        Ok(())
    }

    /// How many events were checked.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// The last event checked of `tenant_id`: its sequence number and hash.
    pub fn head(&self, tenant_id: &str) -> Option<(u64, &str)> {
        self.heads.get(tenant_id).map(|(s, h, _)| (*s, h.as_str()))
    }
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
                version: CURRENT,
                seq,
                tenant_id: "tn_a".into(),
                at: chrono::DateTime::from_timestamp(1_700_000_000 + seq as i64, 0).unwrap(),
                actor_kind: crate::ActorKind::User,
                actor_id: Some("us_1".into()),
                action: "vault.create".into(),
                object_kind: "vault".into(),
                object_id: Some(format!("vt_{seq}")),
                outcome: crate::Outcome::Success,
                ip: None,
                user_agent: None,
                details: serde_json::json!({"n": seq}),
                personal_hash: String::new(),
                personal_salt: None,
                prev_hash: prev,
                hash: String::new(),
            };
            e.hash = chain_hash(&e).unwrap();
            out.push(e);
        }
        out
    }

    /// Details are hashed as the text they are stored as, and read back from it: a decimal
    /// number a user chose (a verify policy's read-data percentage) must come back as the same
    /// text, or the event no longer verifies. Numbers serde_json reads back off by one ulp
    /// without its `float_roundtrip` parser.
    #[test]
    fn an_event_with_a_decimal_in_its_details_verifies_after_a_trip_through_json() {
        let mut c = chain(3);
        for (e, x) in c.iter_mut().zip([
            "1.0000000000000007",
            "0.30000000000000004",
            "99.99999999999997",
        ]) {
            let stored = format!("{{\"verify_read_data_percent\":{x}}}");
            e.details = serde_json::from_str(&stored).unwrap();
            assert_eq!(e.details.to_string(), stored);
        }
        for i in 0..c.len() {
            if i > 0 {
                c[i].prev_hash = c[i - 1].hash.clone();
            }
            c[i].hash = chain_hash(&c[i]).unwrap();
        }
        let exported: Vec<String> = c
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        let read: Vec<AuditEvent> = exported
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(verify(&read), Ok(3));
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
    }

    #[test]
    fn an_edited_event_breaks_the_chain() {
        let mut c = chain(5);
        c[2].outcome = crate::Outcome::Failure;
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
        c[2].hash = chain_hash(&c[2]).unwrap();
        let err = verify(&c).unwrap_err();
        assert_eq!(
            (err.seq, err.reason),
            (4, "previous hash does not match the event before")
        );
    }
}
