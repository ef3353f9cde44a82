//! The server's check of an uploaded pack, which sees the pack in the pieces it arrives in:
//! the streamed check agrees with the check of the whole pack, however the bytes are split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loop_repo::Id;
use loop_repo::pack::{EnvelopeProbe, check_envelope};

fuzz_target!(|input: ([u8; 32], Vec<u8>, &[u8])| {
    let (id, cuts, pack) = input;
    let id = Id(id);
    let mut probe = EnvelopeProbe::default();
    let mut rest = pack;
    for cut in cuts {
        let n = (cut as usize).min(rest.len());
        probe.observe(&rest[..n]);
        rest = &rest[n..];
    }
    probe.observe(rest);
    let last4 = &pack[pack.len().saturating_sub(4)..];
    let head = &pack[..pack.len().min(loop_repo::pack::PACK_HEADER_LEN)];
    let whole = check_envelope(&id, head, last4, pack.len() as u64);
    assert_eq!(
        format!("{:?}", probe.check(&id)),
        format!("{whole:?}"),
        "streamed and whole checks differ"
    );
});
